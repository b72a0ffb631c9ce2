"""The 202-acknowledged interaction write is fsynced (SQLite synchronous=FULL) before the 202 is sent."""

from __future__ import annotations

import json
import time

import pytest
from django.db import connection
from django.db.models.signals import post_save
from django.urls import reverse
from django.utils import timezone

from chowist.core.durability import SQLITE_FULL, SQLITE_NORMAL, durable_commit
from chowist.interactions.models import Interaction
from chowist.places.tests.factories import make_place

pytestmark = pytest.mark.skipif(connection.vendor != "sqlite", reason="PostgreSQL commits durably by default")


def _synchronous() -> int:
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA synchronous")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_interaction_insert_commits_with_synchronous_full_then_the_connection_goes_back_to_normal(client):
    place = make_place()
    seen: list[int] = []

    def record_level(sender, instance, **kwargs):
        seen.append(_synchronous())

    post_save.connect(record_level, sender=Interaction)
    try:
        url = reverse("interactions_api:record", kwargs={"pk": place.pk})
        response = client.post(url, data=json.dumps({"kind": "like"}), content_type="application/json")
    finally:
        post_save.disconnect(record_level, sender=Interaction)
    assert response.status_code == 202
    assert seen == [SQLITE_FULL]
    assert _synchronous() == SQLITE_NORMAL


@pytest.mark.django_db(transaction=True)
def test_durable_commit_can_be_turned_off(settings):
    settings.INTERACTIONS_DURABLE_COMMIT = False
    with durable_commit():
        assert _synchronous() == SQLITE_NORMAL


@pytest.mark.django_db(transaction=True)
def test_cost_of_a_durable_commit_is_measured(capsys):
    """Not a bound (disks differ): prints what FULL costs over NORMAL for one small insert on this disk."""
    place = make_place()
    timings = {}
    for label, durable in (("NORMAL", False), ("FULL", True)):
        start = time.perf_counter()
        for _ in range(50):
            if durable:
                with durable_commit():
                    Interaction.objects.create(place=place, kind="view", created_at=timezone.now())
            else:
                Interaction.objects.create(place=place, kind="view", created_at=timezone.now())
        timings[label] = (time.perf_counter() - start) / 50 * 1000
    with capsys.disabled():
        print(f"\nSQLite commit of one interaction: NORMAL {timings['NORMAL']:.2f} ms, FULL {timings['FULL']:.2f} ms")
    assert Interaction.objects.count() == 100
