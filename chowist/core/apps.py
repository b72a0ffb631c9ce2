from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "chowist.core"
    label = "core"

    def ready(self) -> None:
        from huey.contrib.djhuey import HUEY

        from chowist.core.consumer_pause import consumer_pause_install
        from chowist.core.fault_injection import caches_fault_tolerant

        # Before the observability app instruments the caches, so a degraded read still counts as a miss.
        caches_fault_tolerant()
        # The consumer_paused fault: dequeue reports an empty queue while it is on (every process, as the
        # consumer is whichever process runs run_huey).
        consumer_pause_install(HUEY)
