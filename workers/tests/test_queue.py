"""The queue as readiness sees it: the real storage answers, an unreachable one raises."""

from __future__ import annotations

import huey
import pytest
import redis

from conftest import free_port
from workers import queue


def test_queue_check_passes_on_the_real_storage_and_raises_when_it_is_unreachable(clean_queue, monkeypatch):
    queue.queue_check()
    # A real Redis client against a port nobody listens on, as when the queue's Redis is down.
    dead = huey.RedisHuey("chowist-dead", url=f"redis://127.0.0.1:{free_port()}/0")
    monkeypatch.setattr(queue, "HUEY", dead)
    with pytest.raises(redis.exceptions.ConnectionError):
        queue.queue_check()
