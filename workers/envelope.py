"""The task envelope: what every Chowist task carries besides its arguments.

Stamped on every enqueue (the first one in the request, a retry's, the scheduler's when a delayed task becomes
due), so `enqueued_at` always means "ready to run since" and enqueue -> start lag is measurable in the consumer.
The trace carrier is captured once, in the enqueuing request, and kept across retries.
"""

from __future__ import annotations

import time
from typing import Any, TypedDict

from observability.tasks import capture_carrier

# A keyword argument, so it is serialized with the task by huey itself on every backend.
ENVELOPE_KWARG = "_envelope"
# Class attribute that marks tasks built by workers.instrumentation.job (and so accept the envelope).
ENVELOPE_MARKER = "chowist_envelope"


class Envelope(TypedDict):
    enqueued_at: float
    carrier: dict[str, str]


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
