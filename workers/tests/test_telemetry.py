"""Task telemetry in-process, against the real huey storage: the envelope, lag/outcome metrics, and the trace
and log context across the queue (the consumer-side span in another process: observability/tests)."""

from __future__ import annotations

import time

import structlog
from opentelemetry.sdk.trace import TracerProvider

from observability.logs import log_context_clear, request_fields_bind
from observability.tests.helpers import json_log_lines
from workers import metrics
from workers.jobs import job
from workers.queue import queue_stats_get
from workers.telemetry import ENVELOPE_KWARG, capture_carrier, task_context


@job()
def telemetry_probe(fail: bool = False) -> str:
    """A task of this test module only: registered in this process, never seen by a consumer."""
    if fail:
        raise RuntimeError("probe failed")
    return "done"


def _value(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def _run_next(huey):
    task = huey.dequeue()
    assert task is not None
    huey.execute(task)
    return task


def test_enqueue_stamps_the_envelope(clean_queue):
    before = time.time()
    telemetry_probe()
    [task] = clean_queue.pending()
    envelope = task.kwargs[ENVELOPE_KWARG]
    assert before <= envelope["enqueued_at"] <= time.time()
    assert isinstance(envelope["carrier"], dict)


def test_lag_is_recorded_positive_and_grows_while_nobody_consumes(clean_queue):
    count = _value("chowist_job_lag_seconds_count", task="telemetry_probe")
    total = _value("chowist_job_lag_seconds_sum", task="telemetry_probe")
    successes = _value("chowist_jobs_total", task="telemetry_probe", outcome="success")
    telemetry_probe()
    first = queue_stats_get()
    time.sleep(0.3)
    second = queue_stats_get()
    assert first.depth == second.depth == 1
    assert 0 <= first.oldest_pending_age_s < second.oldest_pending_age_s
    assert second.oldest_pending_age_s >= 0.3
    _run_next(clean_queue)
    assert _value("chowist_job_lag_seconds_count", task="telemetry_probe") == count + 1
    assert _value("chowist_job_lag_seconds_sum", task="telemetry_probe") - total >= 0.3
    assert _value("chowist_jobs_total", task="telemetry_probe", outcome="success") == successes + 1


def test_a_failure_without_retries_left_counts_as_error(clean_queue):
    errors = _value("chowist_jobs_total", task="telemetry_probe", outcome="error")
    telemetry_probe(fail=True)
    _run_next(clean_queue)
    assert _value("chowist_jobs_total", task="telemetry_probe", outcome="error") == errors + 1


def test_no_trace_means_an_empty_carrier() -> None:
    assert capture_carrier() == {}


def test_an_unsampled_request_hands_its_log_trace_id_to_the_task() -> None:
    """No span exists for an unsampled request (observability.tracing): the ids on its log lines travel instead."""
    request_fields_bind(request_id="req-8", trace_id="a" * 32, span_id="b" * 16)
    try:
        carrier = capture_carrier()
    finally:
        log_context_clear()
    assert carrier == {"traceparent": f"00-{'a' * 32}-{'b' * 16}-00", "x-request-id": "req-8"}
    with json_log_lines() as lines, task_context(task_name="t", task_id="t-2", carrier=carrier):
        structlog.get_logger("workers").info("ran")
    assert (lines[0]["trace_id"], lines[0]["request_id"]) == ("a" * 32, "req-8")


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
