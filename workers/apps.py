from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules

from workers import telemetry  # noqa: F401 - registers the envelope and metrics hooks on HUEY
from workers.collector import consumer_metrics_on_start
from workers.consumer import consumer_started


class WorkersConfig(AppConfig):
    name = "workers"
    label = "workers"

    def ready(self) -> None:
        # Every process (app, consumer, manage.py queue_status) registers every app's tasks (their tasks.py),
        # so any of them can enqueue a task or read one back from the queue; run_huey does the same.
        autodiscover_modules("tasks")
        consumer_started.connect(consumer_metrics_on_start, dispatch_uid="workers.consumer_metrics")
