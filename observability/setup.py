"""The one entry point: `setup(service=...)` turns on everything a process needs.

Called from gunicorn.conf.py's post_fork (service="app"), from the huey consumer at start-up
(service="worker"; registered by the observability app), and indirectly from settings, which builds
LOGGING from observability.logs. Idempotent per process; a forked child sets itself up again.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from functools import cache
from pathlib import Path

import structlog

from observability import logs, release

_state: dict[str, int | None] = {"pid": None}
# huey's thread workers each call setup() as they start: the others must wait until the first has instrumented the
# database clients, or they open connections (kept for the thread's life) that are never traced.
_setup_lock = threading.Lock()
log = structlog.get_logger("chowist.telemetry")


@cache
def git_sha() -> str:
    """settings.GIT_SHA, else the checkout's HEAD (observability.release)."""
    from django.conf import settings

    return release.git_sha(Path(settings.BASE_DIR), configured=settings.GIT_SHA)


def django_instrument() -> None:
    """What every Django process gets when OBSERVABILITY is on: business counters, build info, log context reset.

    Run from the observability app's ready(); the metric objects it touches are per-process (and, under
    gunicorn, per-worker mmap files). Requests, queries and cache reads are django-prometheus's (settings).
    """
    from django.conf import settings
    from django.core.signals import request_finished

    from observability import metrics
    from observability.middleware import request_context_clear
    from observability.prometheus import library_metrics_memoize
    from observability.signals import business_signals_connect

    library_metrics_memoize()
    business_signals_connect()
    request_finished.connect(request_context_clear, dispatch_uid="observability.request_context_clear")
    metrics.build_info_set(version=settings.APP_VERSION, git_sha=git_sha())


def setup(*, service: str) -> None:
    """Logging context, then (when OBSERVABILITY is on) tracing and error reporting for this process."""
    logs.service_set(service)
    logs.structlog_configure()
    with _setup_lock:
        if _state["pid"] == os.getpid():
            return
        _state["pid"] = os.getpid()
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chowist.settings")
        from django.conf import settings

        if not settings.OBSERVABILITY:
            return

        def tracing_start() -> None:
            # Imported here so that a library that fails to import is one failed signal, not a dead worker.
            from observability.tracing import tracing_init

            tracing_init(
                service_name=f"{settings.OTEL_SERVICE_NAME}-{service}",
                sampler_ratio=settings.OTEL_TRACES_SAMPLER_RATIO,
                otlp_endpoint=settings.OTEL_EXPORTER_OTLP_ENDPOINT,
                spans_file=Path(settings.OTEL_SPANS_FILE),
                spans_file_max_bytes=settings.OTEL_SPANS_FILE_MAX_MB * 2**20,
                semconv_opt_in=settings.OTEL_SEMCONV_STABILITY_OPT_IN,
                excluded_urls=settings.OTEL_PYTHON_DJANGO_EXCLUDED_URLS,
                # The Django instrumentation edits MIDDLEWARE, so it must run before the WSGI handler is built
                # (gunicorn's post_fork comes before the worker loads the app); the consumer serves no requests.
                django=service == "app",
            )

        def errors_start() -> None:
            from observability.errors import errors_init

            errors_init(
                dsn=settings.SENTRY_DSN,
                environment=settings.SENTRY_ENVIRONMENT,
                release=git_sha(),
                sample_rate=settings.SENTRY_SAMPLE_RATE,
                traces_sample_rate=settings.SENTRY_TRACES_SAMPLE_RATE,
                send_default_pii=settings.SENTRY_SEND_DEFAULT_PII,
            )

        signal_start(signal="tracing", start=tracing_start)
        if settings.SENTRY_DSN:
            signal_start(signal="errors", start=errors_start)


def signal_start(*, signal: str, start: Callable[[], object]) -> bool:
    """Start one telemetry signal; a failure is logged once (with its traceback) and counted, and the process goes on.

    A telemetry library is never a reason not to serve: sentry-sdk 3.0 refusing an option stopped every gunicorn
    worker from booting. The counter feeds ChowistTelemetryDegraded. Configuration the app needs (the database,
    SECRET_KEY) is read by settings and still stops start-up.
    """
    from observability import metrics

    try:
        start()
    except Exception as exc:
        metrics.telemetry_setup_failures.labels(signal=signal).inc()
        log.error("telemetry_setup_failed", signal=signal, error=f"{type(exc).__name__}: {exc}", exc_info=True)
        return False
    return True


def shutdown() -> None:
    """Flush buffered spans and error events before the process exits."""
    from observability.tracing import tracing_flush

    tracing_flush()
    from django.conf import settings

    if settings.SENTRY_DSN and settings.OBSERVABILITY:
        from observability.errors import errors_flush

        errors_flush()
