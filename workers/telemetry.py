"""Task telemetry, in one place: what every Chowist task carries, and what its execution records.

- The envelope: every enqueue (the first one in the request, a retry's, the scheduler's when a delayed task
  becomes due) stamps `enqueued_at`, so it always means "ready to run since" and enqueue -> start lag is
  measurable in the consumer. The trace carrier is captured once, in the enqueuing request, and kept across
  retries.
- The execution context: the task runs inside a CONSUMER span that joins the enqueuing request's trace, with
  the task's ids (and the request's request_id) bound to its log lines; its queries are the dbapi
  instrumentations' client spans.
- The metrics: huey hooks record lag, duration and outcome for every execution, in whichever process runs it
  (the consumer, or the app when HUEY_IMMEDIATE is on).

Tasks are declared with `workers.jobs.job`, which marks them as carrying the envelope and runs them inside
`task_context`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypedDict

import structlog
from huey import signals
from huey.contrib.djhuey import HUEY
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from observability.logs import log_context
from observability.tracing import tracer
from workers import metrics

# A keyword argument, so it is serialized with the task by huey itself on every backend.
ENVELOPE_KWARG = "_envelope"
# Class attribute that marks tasks built by workers.jobs.job (and so accept the envelope).
ENVELOPE_MARKER = "chowist_envelope"
# Not a W3C header: carried beside traceparent so the task's log lines share the request's request_id.
REQUEST_ID_KEY = "x-request-id"
_STARTED_ATTR = "_chowist_started"


class Envelope(TypedDict):
    enqueued_at: float
    carrier: dict[str, str]


# --- the envelope ---------------------------------------------------------------------------------


def capture_carrier() -> dict[str, str]:
    """The current trace context as W3C headers (`traceparent`, …); empty when there is none.

    An unsampled request has no span (observability.tracing), only the ids on its log lines: the task gets
    those as an unsampled `traceparent`, so its lines still share the request's trace_id.
    """
    carrier: dict[str, str] = {}
    fields = log_context()
    if trace.get_current_span().get_span_context().is_valid:
        propagate.inject(carrier)
    elif fields.get("trace_id") and fields.get("span_id"):
        carrier["traceparent"] = f"00-{fields['trace_id']}-{fields['span_id']}-00"
    request_id = fields.get("request_id")
    if request_id:
        carrier[REQUEST_ID_KEY] = str(request_id)
    return carrier


def envelope_stamp(*, task: Any) -> None:
    """Add or refresh the envelope on a task about to be enqueued."""
    if not getattr(task, ENVELOPE_MARKER, False):
        return
    previous = task.kwargs.get(ENVELOPE_KWARG) or {}
    carrier = previous.get("carrier")
    if carrier is None:
        carrier = capture_carrier()
    task.kwargs[ENVELOPE_KWARG] = Envelope(enqueued_at=time.time(), carrier=carrier)


def envelope_get(*, task: Any) -> Envelope | None:
    raw = getattr(task, "kwargs", {}).get(ENVELOPE_KWARG)
    if not isinstance(raw, dict) or "enqueued_at" not in raw:
        return None
    return Envelope(enqueued_at=float(raw["enqueued_at"]), carrier=dict(raw.get("carrier") or {}))


def envelope_age(*, data: bytes, deserialize: Any, now: float | None = None) -> float | None:
    """Seconds since a serialized task was enqueued (None when it carries no envelope)."""
    try:
        task = deserialize(data)
    except Exception:  # a task of unknown code (old deploy) must not break the gauges
        return None
    envelope = envelope_get(task=task)
    if envelope is None:
        return None
    return max(0.0, (now if now is not None else time.time()) - envelope["enqueued_at"])


# --- the execution context ------------------------------------------------------------------------


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
        # The task's queries get their spans from the dbapi instrumentations (observability.tracing).
        with structlog.contextvars.bound_contextvars(**bound):
            try:
                yield
            except BaseException:
                span.set_status(Status(StatusCode.ERROR))
                raise


# --- the metrics (huey hooks) ---------------------------------------------------------------------


@HUEY.signal(signals.SIGNAL_ENQUEUED)
def _stamp_envelope(signal: str, task: Any, *args: Any, **kwargs: Any) -> None:
    envelope_stamp(task=task)


@HUEY.pre_execute(name="chowist_metrics_start")
def _record_start(task: Any) -> None:
    envelope = envelope_get(task=task)
    if envelope is not None:
        # Clocks of the enqueuing host and this one may disagree by a little; a lag is never negative.
        metrics.job_lag.labels(task=task.name).observe(max(0.0, time.time() - envelope["enqueued_at"]))
    setattr(task, _STARTED_ATTR, time.monotonic())


@HUEY.post_execute(name="chowist_metrics_finish")
def _record_finish(task: Any, task_value: Any, exception: BaseException | None) -> None:
    started = getattr(task, _STARTED_ATTR, None)
    if started is not None:
        metrics.job_duration.labels(task=task.name).observe(time.monotonic() - started)
    if exception is None:
        outcome = metrics.OUTCOME_SUCCESS
    elif task.retries:
        # huey decides after this hook: retries left means it will be requeued.
        outcome = metrics.OUTCOME_RETRY
    else:
        outcome = metrics.OUTCOME_ERROR
    metrics.jobs.labels(task=task.name, outcome=outcome).inc()
