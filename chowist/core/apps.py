from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "chowist.core"
    label = "core"

    def ready(self) -> None:
        from huey.contrib.djhuey import HUEY

        from chowist.core.consumer_pause import consumer_pause_install
        from chowist.core.lookups import integer_lookups_register

        # Out-of-range integers are matched by nothing instead of being sent to the database (an OverflowError).
        integer_lookups_register()

        # The consumer_paused fault: dequeue reports an empty queue while it is on (every process, as the
        # consumer is whichever process runs run_huey).
        consumer_pause_install(HUEY)
