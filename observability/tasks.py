"""What background tasks need from observability: carry the trace and log context across the queue.

Called by `workers/`: `capture_carrier()` when a task is enqueued (inside the request), and
`task_context(...)` around the task's execution in the consumer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import structlog
from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Status, StatusCode

from observability.db import queries_recorded
from observability.logs import log_context
from observability.tracing import tracer

# Not a W3C header: carried beside traceparent so the task's log lines share the request's request_id.
REQUEST_ID_KEY = "x-request-id"


def capture_carrier() -> dict[str, str]:
    """The current trace context as W3C headers (`traceparent`, …); empty when there is none."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    request_id = log_context().get("request_id")
    if request_id:
        carrier[REQUEST_ID_KEY] = str(request_id)
    return carrier


@contextmanager
def task_context(*, task_name: str, task_id: str, carrier: dict[str, str]) -> Iterator[None]:
    """Run a task inside a span that joins the enqueuing request's trace, with task log context bound."""
    parent = propagate.extract(carrier or {})
    bound = {"task_name": task_name, "task_id": task_id}
    if (carrier or {}).get(REQUEST_ID_KEY):
        bound["request_id"] = carrier[REQUEST_ID_KEY]
    with tracer().start_as_current_span(
        f"task {task_name}",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes={"huey.task_name": task_name, "huey.task_id": task_id},
        record_exception=True,
        set_status_on_exception=True,
    ) as span:
        context = span.get_span_context()
        if context.is_valid:
            bound["trace_id"] = format(context.trace_id, "032x")
            bound["span_id"] = format(context.span_id, "016x")
        with structlog.contextvars.bound_contextvars(**bound), queries_recorded() as queries:
            try:
                yield
            except BaseException:
                span.set_status(Status(StatusCode.ERROR))
                raise
            finally:
                span.set_attribute("db.queries", queries.count)
