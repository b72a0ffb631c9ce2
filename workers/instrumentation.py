"""How Chowist tasks are declared and measured.

`job(...)` replaces huey's `db_task`/`db_periodic_task`: the task gets the envelope (enqueue time, trace
carrier) and runs inside observability's `task_context`. huey hooks record lag, duration and outcome for
every execution, in whichever process runs it (the consumer, or the app when HUEY_IMMEDIATE is on).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from huey import signals
from huey.contrib.djhuey import HUEY, db_periodic_task, db_task

from observability.tasks import task_context
from workers import metrics
from workers.envelope import ENVELOPE_KWARG, ENVELOPE_MARKER, envelope_get, envelope_stamp

_STARTED_ATTR = "_chowist_started"


def job(*, schedule: Callable[[Any], bool] | None = None, **options: Any) -> Callable[[Callable[..., Any]], Any]:
    """Declare a task (periodic when `schedule` is a huey crontab); options go to huey (retries, retry_delay...)."""

    def decorator(fn: Callable[..., Any]) -> Any:
        @functools.wraps(fn)
        def run(*args: Any, task: Any, **kwargs: Any) -> Any:
            envelope = envelope_get(task=task) or {"carrier": {}}
            kwargs.pop(ENVELOPE_KWARG, None)
            with task_context(task_name=task.name, task_id=task.id, carrier=envelope["carrier"]):
                return fn(*args, **kwargs)

        settings = {"context": True, "name": fn.__name__, ENVELOPE_MARKER: True, **options}
        if schedule is not None:
            return db_periodic_task(schedule, **settings)(run)
        return db_task(**settings)(run)

    return decorator


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
