"""The inbox gauges the consumer serves beside the queue's, read from the database at scrape time."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from django.db import close_old_connections, connection
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from chowist.interactions.selectors import inbox_backlog_get
from workers.metrics import REGISTRY

logger = logging.getLogger(__name__)

_FAMILIES = {
    "chowist_inbox_backlog": "Interactions accepted but not yet counted.",
    "chowist_inbox_oldest_pending_age_seconds": "Age of the oldest uncounted interaction (0 when none).",
}


class InboxCollector(Collector):
    def describe(self) -> Iterator[GaugeMetricFamily]:
        for name, doc in _FAMILIES.items():
            yield GaugeMetricFamily(name, doc)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        # The scrape runs in a short-lived server thread: its database connection must not outlive it.
        close_old_connections()
        # A database outage drops these series from the scrape (an absent() alert sees it) instead of failing
        # the whole scrape, which would also hide the job counters.
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


def inbox_gauges_register() -> None:
    """Add the inbox gauges to the consumer's registry (once per process)."""
    with contextlib.suppress(ValueError):  # already registered by an earlier start in this process
        REGISTRY.register(InboxCollector())
