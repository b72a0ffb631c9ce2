"""django-prometheus's middleware pair, configured through its own hooks (`metrics_cls`, `label_metric`).

Settings list these two classes where django-prometheus's docs list its own; the series and their names are the
library's (observability/METRICS.md). What is ours:
- `label_metric` folds a method the library does not know into its own `<invalid method>` label everywhere: the
  library does so for its counters but labels the latency histogram with the raw method, so any string a client
  sends would mint new series.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django_prometheus import middleware

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "OPTIONS", "CONNECT", "PATCH"})
INVALID_METHOD = "<invalid method>"


class PrometheusBeforeMiddleware(middleware.PrometheusBeforeMiddleware):
    pass


class PrometheusAfterMiddleware(middleware.PrometheusAfterMiddleware):
    def label_metric(
        self, metric: Any, request: HttpRequest, response: HttpResponse | None = None, **labels: str
    ) -> Any:
        if not labels:
            return metric
        method = labels.get("method")
        if method is not None and method not in KNOWN_METHODS:
            labels["method"] = INVALID_METHOD
        return metric.labels(**labels)
