import sys

from django.apps import AppConfig
from django.conf import settings


class ObservabilityConfig(AppConfig):
    name = "observability"
    label = "observability"

    def ready(self) -> None:
        from observability import logs

        if sys.argv[1:2] == ["run_huey"]:
            # `manage.py run_huey` is the consumer: its start-up lines come before huey's startup hook runs.
            logs.service_set("worker")
        logs.structlog_configure()
        if not settings.OBSERVABILITY:
            return
        from huey.contrib.djhuey import HUEY

        from observability.setup import django_instrument, setup

        django_instrument()

        # Consumer workers start after any fork the consumer makes: the right moment for tracing.
        @HUEY.on_startup(name="observability")
        def _consumer_setup() -> None:
            setup(service="worker")
