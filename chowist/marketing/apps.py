from django.apps import AppConfig


class MarketingConfig(AppConfig):
    name = "chowist.marketing"
    label = "marketing"
