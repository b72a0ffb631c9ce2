"""The inbox drain against the real database: batched, idempotent, and all-or-nothing per batch."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from chowist.interactions import drain
from chowist.interactions.models import Interaction, PlaceDailyCounter
from chowist.places.tests.factories import make_place

pytestmark = pytest.mark.django_db


def _inbox(place, kinds, *, created_at=None):
    now = created_at or timezone.now()
    Interaction.objects.bulk_create(Interaction(place=place, kind=kind, created_at=now) for kind in kinds)


def _totals(place):
    return [
        (c.day, c.views, c.likes, c.bookmarks) for c in PlaceDailyCounter.objects.filter(place=place).order_by("day")
    ]


def test_drain_counts_every_pending_row_in_batches():
    a, b = make_place(), make_place()
    _inbox(a, ["view"] * 7 + ["like"] * 2)
    _inbox(b, ["bookmark"] * 3)
    result = drain.interactions_drain(batch_size=5)
    assert result.counted == 12
    assert result.batches == 3
    assert not result.backlog_left
    today = timezone.now().date()
    assert _totals(a) == [(today, 7, 2, 0)]
    assert _totals(b) == [(today, 0, 0, 3)]
    assert not Interaction.objects.filter(processed_at__isnull=True).exists()


def test_a_second_drain_counts_nothing_twice():
    place = make_place()
    _inbox(place, ["like"] * 4)
    drain.interactions_drain()
    again = drain.interactions_drain()
    assert again.counted == 0
    assert _totals(place)[0][2] == 4


def test_new_rows_add_to_existing_counters_per_utc_day():
    place = make_place()
    yesterday = timezone.now() - timedelta(days=1)
    _inbox(place, ["view"], created_at=yesterday)
    drain.interactions_drain()
    _inbox(place, ["view", "view"], created_at=yesterday)
    _inbox(place, ["view"])
    drain.interactions_drain()
    assert [t[1] for t in _totals(place)] == [3, 1]


def test_a_batch_that_fails_midway_leaves_its_rows_pending_and_uncounted(monkeypatch):
    place = make_place()
    _inbox(place, ["view"] * 3)

    def crash(**kwargs):
        raise RuntimeError("worker died between stamping and counting")

    monkeypatch.setattr(drain, "counters_add", crash)
    with pytest.raises(RuntimeError):
        drain.interactions_drain()
    assert Interaction.objects.filter(processed_at__isnull=True).count() == 3
    assert not PlaceDailyCounter.objects.exists()
    monkeypatch.undo()
    assert drain.interactions_drain().counted == 3
    assert _totals(place)[0][1] == 3


def test_drain_stops_at_its_time_budget_and_says_a_backlog_is_left():
    place = make_place()
    _inbox(place, ["view"] * 6)
    result = drain.interactions_drain(batch_size=2, max_seconds=0)
    assert (result.counted, result.batches, result.backlog_left) == (2, 1, True)


def test_a_row_with_an_unknown_kind_is_quarantined_and_the_drain_goes_on(caplog, django_capture_on_commit_callbacks):
    from workers import metrics

    place = make_place()
    _inbox(place, ["view", "like"])
    # Written by a newer (or buggy) release: the counters have no column for it.
    poison = Interaction.objects.create(place=place, kind="superlike", created_at=timezone.now())
    _inbox(place, ["view"])
    before = metrics.REGISTRY.get_sample_value("chowist_interactions_quarantined_total", {"kind": "superlike"}) or 0
    with (
        caplog.at_level("WARNING", logger="chowist.interactions.drain"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        result = drain.interactions_drain()
    assert result.counted == 4
    assert _totals(place)[0][1:] == (2, 1, 0)
    poison.refresh_from_db()
    assert poison.processed_at is not None and poison.quarantined_at is not None
    assert not Interaction.objects.filter(processed_at__isnull=True).exists()
    assert any("interactions_quarantined" in r.getMessage() for r in caplog.records)
    after = metrics.REGISTRY.get_sample_value("chowist_interactions_quarantined_total", {"kind": "superlike"}) or 0
    assert after == before + 1
    # A second drain finds nothing to do: the poison row no longer blocks anything.
    assert drain.interactions_drain().counted == 0


def test_prune_deletes_only_rows_counted_before_the_retention_period():
    place = make_place()
    now = timezone.now()
    old_done = Interaction.objects.create(
        place=place, kind="view", created_at=now - timedelta(days=9), processed_at=now - timedelta(days=8)
    )
    recent_done = Interaction.objects.create(
        place=place, kind="view", created_at=now - timedelta(days=6), processed_at=now - timedelta(days=6)
    )
    old_pending = Interaction.objects.create(place=place, kind="view", created_at=now - timedelta(days=30))
    Interaction.objects.bulk_create(
        Interaction(
            place=place, kind="like", created_at=now - timedelta(days=20), processed_at=now - timedelta(days=19)
        )
        for _ in range(5)
    )
    assert drain.inbox_prune(retention_days=7, batch_size=2) == 6
    remaining = set(Interaction.objects.values_list("id", flat=True))
    assert remaining == {recent_done.pk, old_pending.pk}
    assert old_done.pk not in remaining
