from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "chowist.accounts"
    label = "accounts"

    def ready(self) -> None:
        from chowist.accounts import signals  # noqa: F401 - connects the receivers
