"""Drain requests against the real huey storage: coalesced, and never stuck behind a lost task's flag."""

from __future__ import annotations

import time

import pytest

from workers import queue


def _drains(huey) -> int:
    return sum(1 for task in huey.pending() if task.name == "drain_interactions")


@pytest.mark.django_db
def test_requests_coalesce_until_the_drain_clears_the_flag(clean_queue):
    assert queue.drain_request() is True
    assert queue.drain_request() is False
    assert _drains(clean_queue) == 1
    queue.drain_request_clear()
    assert queue.drain_request() is True
    assert _drains(clean_queue) == 2


@pytest.mark.django_db
def test_a_stale_flag_left_by_a_lost_task_is_overridden(clean_queue):
    stale = time.time() - queue.DRAIN_FLAG_STALE_S - 1
    clean_queue.storage.put_data(queue.DRAIN_FLAG_KEY, str(stale).encode())
    assert queue.drain_request() is True
    assert queue.drain_request() is False
    assert _drains(clean_queue) == 1


@pytest.mark.django_db
def test_force_always_enqueues(clean_queue):
    queue.drain_request()
    assert queue.drain_request(force=True) is True
    assert _drains(clean_queue) == 2


def test_queue_check_reaches_the_storage(clean_queue):
    queue.queue_check()


@pytest.mark.django_db
def test_readyz_checks_the_queue(clean_queue):
    from chowist.core.readiness import readiness_report

    ready, results = readiness_report()
    assert results["queue"] == "ok"
    assert ready is (set(results.values()) == {"ok"})
