"""Trace and log context across the queue, in-process (the consumer-side span is covered in test_e2e_tracing)."""

from __future__ import annotations

import structlog
from opentelemetry.sdk.trace import TracerProvider

from observability.tasks import capture_carrier, task_context
from observability.tests.helpers import json_log_lines


def test_no_trace_means_an_empty_carrier() -> None:
    assert capture_carrier() == {}


def test_task_logs_carry_the_enqueuing_requests_trace_and_the_task_ids() -> None:
    tracer = TracerProvider().get_tracer("test")
    with (
        structlog.contextvars.bound_contextvars(request_id="req-7"),
        tracer.start_as_current_span("GET interactions_api:create") as request_span,
    ):
        carrier = capture_carrier()
    trace_id = format(request_span.get_span_context().trace_id, "032x")
    assert carrier["traceparent"].split("-")[1] == trace_id
    assert carrier["x-request-id"] == "req-7"

    with json_log_lines() as lines:
        with task_context(task_name="drain_interactions", task_id="t-1", carrier=carrier):
            structlog.get_logger("workers").info("drained", rows=3)
        structlog.get_logger("workers").info("after")
    during, after = lines
    assert during["task_name"] == "drain_interactions"
    assert during["task_id"] == "t-1"
    assert during["trace_id"] == trace_id
    assert during["request_id"] == "req-7"
    assert "task_name" not in after


def test_a_task_without_a_carrier_still_runs_and_reraises() -> None:
    try:
        with task_context(task_name="t", task_id="1", carrier={}):
            raise ValueError("task failed")
    except ValueError as exc:
        assert str(exc) == "task failed"
    else:
        raise AssertionError("the exception was swallowed")
