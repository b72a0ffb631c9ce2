"""The popular ranking: its order, and its cache (used when POPULAR_CACHE is on, bypassed when off)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from prometheus_client import REGISTRY

from chowist.interactions import selectors
from chowist.interactions.models import PlaceDailyCounter
from chowist.places.tests.factories import make_place, make_reviews

pytestmark = pytest.mark.django_db


def _popular(client, query=""):
    response = client.get(reverse("interactions_api:popular") + query)
    assert response.status_code == 200, response.content
    return response.json()


def _hits() -> float:
    """Cache hits counted by django-prometheus's cache backends, all backends together."""
    return sum(
        sample.value
        for metric in REGISTRY.collect()
        if metric.name == "django_cache_get_hits"
        for sample in metric.samples
        if sample.name == "django_cache_get_hits_total"
    )


def test_ranking_weighs_counters_and_reviews_within_the_window():
    today = timezone.now().date()
    viewed, liked, reviewed, old = make_place(), make_place(), make_place(), make_place()
    PlaceDailyCounter.objects.create(place=viewed, day=today, views=12)
    PlaceDailyCounter.objects.create(place=liked, day=today, likes=5)
    PlaceDailyCounter.objects.create(place=old, day=today - timedelta(days=10), views=1000)
    make_reviews(reviewed, 2)
    result = selectors.popular_compute(window_days=7)
    assert [item["place_id"] for item in result["items"]] == [reviewed.pk, liked.pk, viewed.pk]
    assert result["items"][0]["reviews"] == 2
    assert result["items"][1]["score"] == 15
    wide = selectors.popular_compute(window_days=30)
    assert wide["items"][0]["place_id"] == old.pk


def test_cache_on_serves_the_stored_list_until_invalidated(client, settings):
    settings.POPULAR_CACHE = True
    # The popular cache's own reads only: the page cache in front reads its tokens too (test_page_cache.py).
    settings.PAGE_CACHE = False
    place = make_place()
    first = _popular(client, "?window=7d")
    assert first["cached"] is False and first["items"] == []
    PlaceDailyCounter.objects.create(place=place, day=timezone.now().date(), views=3)
    hits = _hits()
    second = _popular(client, "?window=7d&limit=5")
    assert second["cached"] is True
    assert second["items"] == [] and second["generated_at"] == first["generated_at"]
    assert _hits() == hits + 1
    from chowist.interactions.services import popular_cache_invalidate

    popular_cache_invalidate()
    third = _popular(client, "?window=7d")
    assert third["cached"] is False
    assert [item["place_id"] for item in third["items"]] == [place.pk]


def test_cache_off_computes_every_time(client, settings):
    settings.POPULAR_CACHE = False
    place = make_place()
    hits = _hits()
    assert _popular(client)["items"] == []
    PlaceDailyCounter.objects.create(place=place, day=timezone.now().date(), likes=1)
    second = _popular(client)
    assert second["cached"] is False
    assert [item["place_id"] for item in second["items"]] == [place.pk]
    assert _hits() == hits


def test_a_new_review_retires_the_cached_lists(client, settings, django_capture_on_commit_callbacks):
    settings.POPULAR_CACHE = True
    place = make_place()
    assert _popular(client)["items"] == []
    with django_capture_on_commit_callbacks(execute=True):
        make_reviews(place, 1)
    assert [item["place_id"] for item in _popular(client)["items"]] == [place.pk]


def test_warming_stores_the_default_window(client, settings):
    settings.POPULAR_CACHE = True
    place = make_place()
    PlaceDailyCounter.objects.create(place=place, day=timezone.now().date(), views=1)
    assert selectors.popular_cache_warm() == 1
    body = _popular(client)
    assert body["cached"] is True
    assert [item["place_id"] for item in body["items"]] == [place.pk]
