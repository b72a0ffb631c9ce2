"""huey classes for settings.HUEY["huey_class"]: stock storage, a consumer that fits the lab.

huey.contrib.djhuey imports this module while it builds HUEY, so nothing here may import HUEY (or anything
that does): what the consumer does at start-up is done by the receivers of `consumer_started`, connected by
the apps (workers serves the metrics, interactions drains what a SIGKILL left pending).
"""

from __future__ import annotations

import logging
import os
import signal
from typing import Any

import huey
from django.dispatch import Signal
from huey.consumer import Consumer
from huey.registry import Registry

logger = logging.getLogger(__name__)

# Sent once by the consumer process, after Django is set up and before the first task runs; kwargs: huey.
consumer_started = Signal()


class LabConsumer(Consumer):
    """huey's consumer, plus: SIGTERM is graceful like SIGINT (a second one interrupts), and `consumer_started`
    is sent before the workers start."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._signal_actions[signum] = (False, True)  # (restart, graceful)

    def start(self) -> None:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            logger.warning("PROMETHEUS_MULTIPROC_DIR is set: the consumer's metrics would leak into the app's scrape")
        consumer_started.send(sender=type(self), huey=self.huey)
        super().start()


class _MovingTasksRegistry(Registry):
    """huey's task registry, plus the identifiers tasks had before they moved module.

    huey names a queued task by `<module>.<name>`: without this, a deploy that moves a task would leave the
    messages already queued (and the retries scheduled) under the old identifier unreadable, and lost.
    """

    def __init__(self) -> None:
        super().__init__()
        self.moved: dict[str, str] = {}

    def string_to_task(self, task_str: str) -> Any:
        return super().string_to_task(self.moved.get(task_str, task_str))


class _LabHuey:
    _registry: Registry

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._registry = _MovingTasksRegistry()

    def create_consumer(self, **options: Any) -> Consumer:
        return LabConsumer(self, **options)

    def task_moved(self, *, old: str, task_class: type) -> None:
        """Read messages queued as `old` (an earlier `<module>.<name>`) as `task_class`."""
        registry = self._registry
        if isinstance(registry, _MovingTasksRegistry):
            registry.moved[old] = registry.task_to_string(task_class)


class SqliteHuey(_LabHuey, huey.SqliteHuey):
    pass


class RedisHuey(_LabHuey, huey.RedisHuey):
    pass
