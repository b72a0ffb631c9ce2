"""The consumer's metrics endpoint, and the queue gauges it serves, read from the storage at scrape time so
they are never staler than the scrape."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from prometheus_client import start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from workers.metrics import REGISTRY
from workers.queue import queue_stats_get

logger = logging.getLogger(__name__)

_FAMILIES = {
    "chowist_queue_depth": "Tasks waiting in the huey queue.",
    "chowist_queue_oldest_pending_age_seconds": "Age of the next task to run (0 when the queue is empty).",
}


class QueueCollector(Collector):
    def describe(self) -> Iterator[GaugeMetricFamily]:
        for name, doc in _FAMILIES.items():
            yield GaugeMetricFamily(name, doc)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        # A storage outage drops these series from the scrape (an absent() alert sees it) instead of failing
        # the whole scrape, which would also hide the job counters.
        try:
            stats = queue_stats_get()
        except Exception:
            logger.warning("queue gauges unavailable", exc_info=True)
        else:
            yield self._gauge("chowist_queue_depth", stats.depth)
            yield self._gauge("chowist_queue_oldest_pending_age_seconds", stats.oldest_pending_age_s)

    @staticmethod
    def _gauge(name: str, value: float) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, _FAMILIES[name], value=value)


def consumer_metrics_serve(*, addr: str, port: int) -> None:
    """Serve the worker registry (jobs, lag, queue gauges and what the apps registered) on addr:port from a
    daemon thread."""
    with contextlib.suppress(ValueError):  # already registered by an earlier start in this process
        REGISTRY.register(QueueCollector())
    start_http_server(port, addr=addr, registry=REGISTRY)
    logger.info("consumer metrics on http://%s:%s/metrics", addr, port)


def consumer_metrics_on_start(sender: Any, **kwargs: Any) -> None:
    """Receiver of workers.consumer.consumer_started."""
    from observability.setup import signal_start

    # A metrics port that cannot be bound must not stop the consumer: the jobs still run, Prometheus sees the
    # target down.
    signal_start(
        signal="metrics",
        start=lambda: consumer_metrics_serve(addr=settings.METRICS_ADDR, port=settings.CONSUMER_METRICS_PORT),
    )
