"""Sentry (any Sentry-protocol server, e.g. Bugsink): on only when SENTRY_DSN is set."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace

from observability.logs import log_context


def _add_trace_context(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    """Tag each event with the OTel trace and the request id so an error leads to its trace and log lines."""
    tags = event.setdefault("tags", {})
    context = trace.get_current_span().get_span_context()
    bound = log_context()
    trace_id = format(context.trace_id, "032x") if context.is_valid else bound.get("trace_id")
    if trace_id:
        tags["trace_id"] = trace_id
        event.setdefault("contexts", {})["otel"] = {
            "trace_id": trace_id,
            "span_id": format(context.span_id, "016x") if context.is_valid else bound.get("span_id"),
        }
    for key in ("request_id", "task_name", "task_id"):
        if bound.get(key):
            tags[key] = bound[key]
    return event


def errors_init(
    *, dsn: str, environment: str, release: str, sample_rate: float, traces_sample_rate: float, send_default_pii: bool
) -> None:
    import sentry_sdk

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release or None,
        sample_rate=sample_rate,
        traces_sample_rate=traces_sample_rate,
        send_default_pii=send_default_pii,
        before_send=_add_trace_context,
    )


def errors_flush() -> None:
    import sentry_sdk

    sentry_sdk.flush(timeout=2)
