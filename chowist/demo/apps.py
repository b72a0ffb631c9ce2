from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Demo data across every app (`manage.py seed_demo`): above the apps it fills, so none of them imports it."""

    name = "chowist.demo"
    label = "demo"
