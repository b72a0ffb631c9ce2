"""Sentry (any Sentry-protocol server, e.g. Bugsink): on only when SENTRY_DSN is set."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace

from observability.logs import log_context
from observability.redaction import sentry_event_redacted


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
    # The URL of a failed request may carry a password-reset token (observability/redaction.py).
    return sentry_event_redacted(event)


# What "no personal data" means where sentry-sdk 3 replaced send_default_pii with per-category data_collection:
# no user identity, no cookies, no request bodies (a login or password-reset form), headers and query strings
# with sensitive keys filtered (3.x's denylist, like 2.x's scrubber). The same events as 2.x with PII off.
DATA_COLLECTION_NO_PII: dict[str, Any] = {
    "user_info": False,
    "cookies": {"mode": "off"},
    "http_bodies": [],
    "http_headers": {"request": {"mode": "denylist"}},
    "url_query_params": {"mode": "denylist"},
}


def errors_options(*, send_default_pii: bool, default_options: dict[str, Any]) -> dict[str, Any]:
    """The privacy option in the form the installed sentry-sdk takes: 2.x `send_default_pii`, 3.x `data_collection`.

    Decided by what the SDK accepts (its DEFAULT_OPTIONS), not by its version number: 3.0 refuses the old option
    with a TypeError that stopped every gunicorn worker from booting.
    """
    if "send_default_pii" in default_options:
        return {"send_default_pii": send_default_pii}
    if "data_collection" in default_options:
        return {} if send_default_pii else {"data_collection": DATA_COLLECTION_NO_PII}
    raise TypeError("this sentry-sdk takes neither send_default_pii nor data_collection: unsupported major version")


def errors_init(
    *, dsn: str, environment: str, release: str, sample_rate: float, traces_sample_rate: float, send_default_pii: bool
) -> None:
    import sentry_sdk
    from sentry_sdk.consts import DEFAULT_OPTIONS

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release or None,
        sample_rate=sample_rate,
        traces_sample_rate=traces_sample_rate,
        before_send=_add_trace_context,
        **errors_options(send_default_pii=send_default_pii, default_options=DEFAULT_OPTIONS),
    )


def errors_flush() -> None:
    import sentry_sdk

    sentry_sdk.flush(timeout=2)
