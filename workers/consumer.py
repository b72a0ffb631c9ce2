"""huey classes for settings.HUEY["huey_class"]: stock storage, a consumer that fits the lab.

Imported by huey.contrib.djhuey while Django is still loading apps, so nothing here imports models at module
level.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from typing import Any

import huey
from huey.consumer import Consumer

logger = logging.getLogger(__name__)


class LabConsumer(Consumer):
    """huey's consumer, plus: SIGTERM is graceful like SIGINT (a second one interrupts), the worker metrics are
    served on CONSUMER_METRICS_PORT, and the inbox is drained on startup (what a SIGKILL left pending)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._signal_actions[signum] = (False, True)  # (restart, graceful)

    def start(self) -> None:
        from django.conf import settings

        from workers.queue import drain_request

        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            logger.warning("PROMETHEUS_MULTIPROC_DIR is set: the consumer's metrics would leak into the app's scrape")
        consumer_metrics_serve(addr=settings.METRICS_ADDR, port=settings.CONSUMER_METRICS_PORT)
        drain_request(force=True)
        super().start()


def consumer_metrics_serve(*, addr: str, port: int) -> None:
    """Serve the worker registry (jobs, lag, queue and inbox gauges) on addr:port from a daemon thread."""
    from prometheus_client import start_http_server

    from workers.collector import QueueCollector
    from workers.metrics import REGISTRY

    collector = QueueCollector()
    with contextlib.suppress(ValueError):  # already registered by an earlier start in this process
        REGISTRY.register(collector)
    start_http_server(port, addr=addr, registry=REGISTRY)
    logger.info("consumer metrics on http://%s:%s/metrics", addr, port)


class _LabHuey:
    def create_consumer(self, **options: Any) -> Consumer:
        return LabConsumer(self, **options)


class SqliteHuey(_LabHuey, huey.SqliteHuey):
    pass


class RedisHuey(_LabHuey, huey.RedisHuey):
    pass
