from django.apps import AppConfig


class InteractionsConfig(AppConfig):
    name = "chowist.interactions"
    label = "interactions"

    def ready(self) -> None:
        from chowist.interactions import signals  # noqa: F401 - connects the receivers
