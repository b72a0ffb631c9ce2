from django.apps import AppConfig


class PlacesConfig(AppConfig):
    name = "chowist.places"
    label = "places"

    def ready(self) -> None:
        from chowist.places import signals  # noqa: F401 - connects the receivers
