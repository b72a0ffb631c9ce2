"""Queue and inbox gauges, read from the storage at scrape time so they are never staler than the scrape."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from django.db import close_old_connections, connection
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

_FAMILIES = {
    "chowist_queue_depth": "Tasks waiting in the huey queue.",
    "chowist_queue_oldest_pending_age_seconds": "Age of the next task to run (0 when the queue is empty).",
    "chowist_inbox_backlog": "Interactions accepted but not yet counted.",
    "chowist_inbox_oldest_pending_age_seconds": "Age of the oldest uncounted interaction (0 when none).",
}


class QueueCollector(Collector):
    def describe(self) -> Iterator[GaugeMetricFamily]:
        for name, doc in _FAMILIES.items():
            yield GaugeMetricFamily(name, doc)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from chowist.interactions.selectors import inbox_backlog_get
        from workers.queue import queue_stats_get

        # A storage outage drops these series from the scrape (an absent() alert sees it) instead of failing
        # the whole scrape, which would also hide the job counters.
        try:
            stats = queue_stats_get()
        except Exception:
            logger.warning("queue gauges unavailable", exc_info=True)
        else:
            yield self._gauge("chowist_queue_depth", stats.depth)
            yield self._gauge("chowist_queue_oldest_pending_age_seconds", stats.oldest_pending_age_s)
        # The scrape runs in a short-lived server thread: its database connection must not outlive it.
        close_old_connections()
        try:
            backlog = inbox_backlog_get()
        except Exception:
            logger.warning("inbox gauges unavailable", exc_info=True)
        else:
            yield self._gauge("chowist_inbox_backlog", backlog.pending)
            yield self._gauge("chowist_inbox_oldest_pending_age_seconds", backlog.oldest_pending_age_s)
        finally:
            connection.close()

    @staticmethod
    def _gauge(name: str, value: float) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, _FAMILIES[name], value=value)
