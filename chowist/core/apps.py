from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "chowist.core"
    label = "core"

    def ready(self) -> None:
        from huey.contrib.djhuey import HUEY

        from chowist.core.consumer_pause import consumer_pause_install

        # The consumer_paused fault: dequeue reports an empty queue while it is on (every process, as the
        # consumer is whichever process runs run_huey).
        consumer_pause_install(HUEY)
