from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "chowist.core"
    label = "core"

    def ready(self) -> None:
        # Before the observability app instruments the caches, so a degraded read still counts as a miss.
        from chowist.core.fault_injection import caches_fault_tolerant

        caches_fault_tolerant()
