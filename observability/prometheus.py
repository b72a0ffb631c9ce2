"""django-prometheus's middleware pair, configured through its own hooks (`metrics_cls`, `label_metric`).

Settings list these two classes where django-prometheus's docs list its own; the series and their names are the
library's (observability/METRICS.md). What is configured here:
- `Metrics.register_metric` exports the request series the lab reads (EXPORTED_REQUEST_METRICS) and turns the
  others into no-ops. Under gunicorn every update is a locked write into a multiprocess mmap file; the library
  updates sixteen series per request, the lab reads five of them (the rest restate these by other labels, or
  measure body sizes). PROMETHEUS_EXPORT_ALL_REQUEST_METRICS=on exports all of them.
- With only those exported, the middleware pair skips the library's work for the others (`lean`): the before
  middleware's latency, and the after middleware's transport, AJAX, body-size, per-view request and template
  counts, which read `request.headers` (a dict of every header, built per request) and resolve labels only to
  update a no-op. Measured by callgrind on the cached-page mix (`make bench-instructions`): the pair cost
  236 k instructions per request before, 96 k after. The updates of the exported series are the library's own
  calls, unchanged.
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
from prometheus_client.metrics import MetricWrapperBase

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


def _lean() -> bool:
    return not settings.PROMETHEUS_EXPORT_ALL_REQUEST_METRICS


class PrometheusBeforeMiddleware(middleware.PrometheusBeforeMiddleware):
    metrics_cls = Metrics

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lean = _lean()

    def process_request(self, request: HttpRequest) -> None:
        self.metrics.requests_total.inc()
        if not self.lean:
            request.prometheus_before_middleware_event = middleware.Time()  # type: ignore[attr-defined]

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if not self.lean:
            return super().process_response(request, response)
        # The latency including middlewares is not exported: only the in-flight count's other half.
        self.metrics.responses_total.inc()
        return response


# (id of the metric, label values in the call's order) -> the labelled series; bounded like the series themselves.
_children: dict[tuple[Any, ...], Any] = {}


class PrometheusAfterMiddleware(middleware.PrometheusAfterMiddleware):
    metrics_cls = Metrics

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lean = _lean()

    def process_request(self, request: HttpRequest) -> None:
        if not self.lean:
            return super().process_request(request)
        request.prometheus_after_middleware_event = middleware.Time()  # type: ignore[attr-defined]
        return None

    def process_view(self, request: HttpRequest, view_func: Any, *view_args: Any, **view_kwargs: Any) -> None:
        if not self.lean:
            super().process_view(request, view_func, *view_args, **view_kwargs)

    def process_template_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if not self.lean:
            return super().process_template_response(request, response)
        return response

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if not self.lean:
            return super().process_response(request, response)
        # The library's two exported updates, as it makes them (its latency label is the raw method; label_metric
        # folds an unknown one).
        method = self._method(request)
        view = self._get_view_name(request)
        self.label_metric(
            self.metrics.responses_by_status_view_method,
            request,
            response,
            status=str(response.status_code),
            view=view,
            method=method,
        ).inc()
        started = getattr(request, "prometheus_after_middleware_event", None)
        if started is not None:
            self.label_metric(
                self.metrics.requests_latency_by_view_method, request, response, view=view, method=request.method
            ).observe(middleware.TimeSince(started))
        return response

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


def labels_memoize(metric: Any) -> None:
    """Make `metric.labels(...)` return the child it returned before for the same label values.

    django-prometheus's cache and database layers call `labels()` on every cache read and every query, and
    prometheus-client's `labels()` validates, converts and sorts the values and takes a lock each time: on the
    cached-page mix that was 122 k instructions per request for the cache counters alone (callgrind, `make
    bench-instructions`). Their label values are a few aliases, vendors and backends, so the children are
    bounded. Updates still go through the library's child objects (and, under gunicorn, their mmap files).
    """
    if getattr(metric, "_chowist_memoized", False) or not getattr(metric, "_labelnames", ()):
        return
    labels = metric.labels
    children: dict[tuple[Any, ...], Any] = {}

    def memoized(*values: Any, **named: Any) -> Any:
        key = (values, *named.items())
        child = children.get(key)
        if child is None:
            child = children[key] = labels(*values, **named)
        return child

    metric.labels = memoized
    metric._chowist_memoized = True


def library_metrics_memoize() -> None:
    """Memoize the labels of django-prometheus's per-operation series: cache reads and database queries."""
    from django_prometheus.cache import metrics as cache_metrics
    from django_prometheus.db import metrics as db_metrics

    for module in (cache_metrics, db_metrics):
        for value in vars(module).values():
            if isinstance(value, MetricWrapperBase):
                labels_memoize(value)
