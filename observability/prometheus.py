"""django-prometheus's middleware pair, configured through its own hooks (`metrics_cls`, `label_metric`).

Settings list these two classes where django-prometheus's docs list its own; the series and their names are the
library's (observability/METRICS.md). What is configured here:
- `Metrics.register_metric` exports the request series the lab reads (EXPORTED_REQUEST_METRICS) and turns the
  others into no-ops. Under gunicorn every update is a locked write into a multiprocess mmap file; the library
  updates sixteen series per request, the lab reads five of them (the rest restate these by other labels, or
  measure body sizes). PROMETHEUS_EXPORT_ALL_REQUEST_METRICS=on exports all of them.
- `label_metric` resolves each label set once per process (prometheus-client's `labels()` re-validates and sorts
  on every call), and folds a method the library does not know into its own `<invalid method>` everywhere: the
  library does so for its counters but labels the latency histogram with the raw method, so any string a client
  sends would mint new series.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django_prometheus import middleware

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "OPTIONS", "CONNECT", "PATCH"})
INVALID_METHOD = "<invalid method>"
EXPORTED_REQUEST_METRICS = frozenset(
    {
        # requests in flight = requests before middlewares - responses before middlewares
        "django_http_requests_before_middlewares_total",
        "django_http_responses_before_middlewares_total",
        # the SLIs and the RED panels
        "django_http_responses_total_by_status_view_method",
        "django_http_requests_latency_seconds_by_view_method",
        "django_http_exceptions_total_by_type",
        "django_http_exceptions_total_by_view",
    }
)


class _Unexported:
    """What a series the lab does not export is: every update a no-op."""

    def labels(self, *args: Any, **kwargs: Any) -> _Unexported:
        return self

    def inc(self, amount: float = 1) -> None:
        pass

    def observe(self, amount: float) -> None:
        pass


_UNEXPORTED = _Unexported()


class Metrics(middleware.Metrics):
    def register_metric(
        self, metric_cls: Any, name: str, documentation: str, labelnames: Any = (), **kwargs: Any
    ) -> Any:
        if name in EXPORTED_REQUEST_METRICS or settings.PROMETHEUS_EXPORT_ALL_REQUEST_METRICS:
            return super().register_metric(metric_cls, name, documentation, labelnames=labelnames, **kwargs)
        return _UNEXPORTED


class PrometheusBeforeMiddleware(middleware.PrometheusBeforeMiddleware):
    metrics_cls = Metrics


# (id of the metric, label values in the call's order) -> the labelled series; bounded like the series themselves.
_children: dict[tuple[Any, ...], Any] = {}


class PrometheusAfterMiddleware(middleware.PrometheusAfterMiddleware):
    metrics_cls = Metrics

    def label_metric(
        self, metric: Any, request: HttpRequest, response: HttpResponse | None = None, **labels: str
    ) -> Any:
        if not labels:
            return metric
        method = labels.get("method")
        if method is not None and method not in KNOWN_METHODS:
            labels["method"] = INVALID_METHOD
        key = (id(metric), *labels.values())
        child = _children.get(key)
        if child is None:
            child = _children[key] = metric.labels(**labels)
        return child
