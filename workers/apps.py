from django.apps import AppConfig


class WorkersConfig(AppConfig):
    name = "workers"
    label = "workers"

    def ready(self) -> None:
        # Every process (app, consumer, manage.py queue_status) registers the tasks and the envelope/metrics hooks,
        # so any of them can enqueue a task or read one back from the queue.
        from huey.contrib.djhuey import HUEY

        from workers import tasks  # noqa: F401
        from workers.pause import consumer_pause_install

        # The consumer_paused fault (chowist/core/faults.py): dequeue reports an empty queue while it is on.
        consumer_pause_install(HUEY)
