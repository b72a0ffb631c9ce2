"""How the apps declare their tasks and fire them.

Each app keeps its tasks in its own `tasks.py`, beside the models they touch, declared with `job(...)`, and
fires them from its services with `enqueue_on_commit(...)`, so a task never runs before (or without) the
write it is about.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from django.db import transaction
from huey.contrib.djhuey import HUEY, db_periodic_task, db_task

from workers.telemetry import ENVELOPE_KWARG, ENVELOPE_MARKER, envelope_get, task_context

logger = logging.getLogger(__name__)


def job(
    *, schedule: Callable[[Any], bool] | None = None, moved_from: str | None = None, **options: Any
) -> Callable[[Callable[..., Any]], Any]:
    """Declare a task (periodic when `schedule` is a huey crontab); options go to huey (retries, retry_delay...).

    huey identifies a queued task by `<module>.<function>`: `moved_from` names the module the task lived in
    before, so what that module's version queued still runs after the deploy that moved it.
    """

    def decorator(fn: Callable[..., Any]) -> Any:
        @functools.wraps(fn)
        def run(*args: Any, task: Any, **kwargs: Any) -> Any:
            envelope = envelope_get(task=task) or {"carrier": {}}
            kwargs.pop(ENVELOPE_KWARG, None)
            with task_context(task_name=task.name, task_id=task.id, carrier=envelope["carrier"]):
                return fn(*args, **kwargs)

        settings = {"context": True, "name": fn.__name__, ENVELOPE_MARKER: True, **options}
        declare = db_task(**settings) if schedule is None else db_periodic_task(schedule, **settings)
        wrapper = declare(run)
        if moved_from is not None:
            HUEY.task_moved(old=f"{moved_from}.{fn.__name__}", task_class=wrapper.task_class)
        return wrapper

    return decorator


def enqueue_on_commit(
    enqueue: Callable[..., Any], /, *args: Any, recovered_by: str | None = None, robust: bool = True, **kwargs: Any
) -> None:
    """Call `enqueue(*args, **kwargs)` (a task, or a function that enqueues one) once the current transaction
    commits; at once outside a transaction.

    robust: the write is committed and the client is about to be told so, so a queue outage is logged, not
    raised into the response: as a warning naming `recovered_by` when something else will redo the work (the
    periodic drain), as an error otherwise (the work is lost). robust=False lets the error propagate.
    """
    call = functools.partial(enqueue, *args, **kwargs)
    if not robust:
        transaction.on_commit(call)
        return
    name = getattr(enqueue, "name", None) or getattr(enqueue, "__qualname__", repr(enqueue))

    def fire() -> None:
        try:
            call()
        except Exception:
            if recovered_by:
                logger.warning(
                    "could not enqueue %s after commit; %s will pick it up", name, recovered_by, exc_info=True
                )
            else:
                logger.error("could not enqueue %s after commit; it is lost", name, exc_info=True)

    transaction.on_commit(fire)
