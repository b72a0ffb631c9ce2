"""The interactions' tasks and their drain-request protocol, executed in this process against the real huey
storage (emptied around each test by this folder's conftest)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from huey.contrib.djhuey import HUEY

from chowist.interactions import tasks
from chowist.interactions.models import Interaction, PlaceDailyCounter
from chowist.interactions.selectors import popular_items_get
from chowist.places.tests.factories import make_place
from workers import metrics


def _drains() -> int:
    return sum(1 for task in HUEY.pending() if task.name == "drain_interactions")


def _value(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def _run_next(timestamp=None):
    task = HUEY.dequeue()
    assert task is not None
    if task.eta is not None and timestamp is None:  # a drain waiting out its window: run it once that has passed
        timestamp = task.eta + timedelta(seconds=1)
    HUEY.execute(task, timestamp)
    return task


def test_requests_coalesce_until_the_drain_clears_the_flag():
    assert tasks.drain_request() is True
    assert tasks.drain_request() is False
    assert _drains() == 1
    tasks.drain_request_clear()
    assert tasks.drain_request() is True
    assert _drains() == 2


def test_a_stale_flag_left_by_a_lost_task_is_overridden():
    stale = time.time() - tasks.DRAIN_FLAG_STALE_S - 1
    HUEY.storage.put_data(tasks.DRAIN_FLAG_KEY, str(stale).encode())
    assert tasks.drain_request() is True
    assert tasks.drain_request() is False
    assert _drains() == 1


def test_force_always_enqueues():
    tasks.drain_request()
    assert tasks.drain_request(force=True) is True
    assert _drains() == 2


def test_a_requested_drain_waits_its_window_and_a_backlog_handover_runs_at_once(settings):
    settings.INTERACTIONS_DRAIN_DELAY_S = 1.0
    asked = HUEY._get_timestamp()
    assert tasks.drain_request() is True
    [drain] = HUEY.pending()
    assert timedelta(seconds=0.9) <= drain.eta - asked <= timedelta(seconds=1.5)
    # The interactions of the window share that drain.
    assert tasks.drain_request() is False
    # A worker that takes it early parks it in the schedule, where the scheduler finds it once it is due.
    HUEY.execute(HUEY.dequeue(), asked)
    assert HUEY.read_schedule(asked) == []
    assert [t.name for t in HUEY.read_schedule(asked + timedelta(seconds=2))] == ["drain_interactions"]
    # What a drain leaves over (or a restart left pending) does not wait.
    tasks.drain_request_clear()
    assert tasks.drain_request(delay_s=0) is True
    [now] = HUEY.pending()
    assert now.eta is None


@pytest.mark.django_db(transaction=True)
def test_drain_task_counts_the_inbox_and_clears_the_flag():
    place = make_place()
    Interaction.objects.bulk_create(Interaction(place=place, kind="like", created_at=timezone.now()) for _ in range(3))
    recorded = _value("chowist_interactions_recorded_total", kind="like")
    assert tasks.drain_request() is True
    _run_next()
    assert PlaceDailyCounter.objects.get(place=place).likes == 3
    assert _value("chowist_interactions_recorded_total", kind="like") == recorded + 3
    # The task cleared the flag before reading: the next INSERT gets a drain of its own.
    assert tasks.drain_request() is True


@pytest.mark.django_db(transaction=True)
def test_periodic_task_drains_and_warms_the_popular_cache(settings):
    settings.POPULAR_CACHE = True
    place = make_place()
    Interaction.objects.create(place=place, kind="view", created_at=timezone.now())
    [periodic] = [t for t in HUEY.read_periodic(timezone.now().replace(tzinfo=None)) if t.name == "refresh_popular"]
    HUEY.enqueue(periodic)
    _run_next()
    assert PlaceDailyCounter.objects.get(place=place).views == 1
    result = popular_items_get(limit=5, window_days=settings.POPULAR_DEFAULT_WINDOW_DAYS)
    assert result["cached"] is True
    assert [item["place_id"] for item in result["items"]] == [place.pk]


@pytest.mark.django_db(transaction=True)
def test_refresh_popular_drains_once_within_its_budget_then_warms_and_hands_the_backlog_over(settings, monkeypatch):
    # Before: it looped "while a backlog remains", so a steady write rate kept it (and a worker thread) forever.
    settings.POPULAR_CACHE = True
    settings.INTERACTIONS_DRAIN_BATCH = 10
    monkeypatch.setattr(tasks, "REFRESH_DRAIN_MAX_S", 0)
    place = make_place()
    Interaction.objects.bulk_create(Interaction(place=place, kind="view", created_at=timezone.now()) for _ in range(35))
    assert HUEY.execute(tasks.refresh_popular.s()) == 10
    assert Interaction.objects.filter(processed_at__isnull=True).count() == 25
    assert _drains() == 1
    assert popular_items_get(limit=5, window_days=settings.POPULAR_DEFAULT_WINDOW_DAYS)["cached"] is True
