"""The interactions endpoints over HTTP (Django's test client): 202 for good input, a JSON 4xx for anything else."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse
from huey.contrib.djhuey import HUEY

from chowist.interactions.models import Interaction, PlaceDailyCounter
from chowist.places.tests.factories import make_place, make_user

pytestmark = pytest.mark.django_db


def _post(client, place_id, body, content_type="application/json"):
    url = reverse("interactions_api:record", kwargs={"pk": place_id})
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(url, data=data, content_type=content_type)


def test_record_answers_202_writes_one_pending_row_and_queues_one_drain(client, django_capture_on_commit_callbacks):
    place = make_place()
    with django_capture_on_commit_callbacks(execute=True):
        first = _post(client, place.pk, {"kind": "like"})
        second = _post(client, place.pk, {"kind": "view"})
    assert first.status_code == second.status_code == 202, first.content
    assert first.json()["mode"] == "queued"
    rows = list(Interaction.objects.values_list("kind", "processed_at"))
    assert sorted(rows) == [("like", None), ("view", None)]
    # Coalesced: the second request found the drain already requested. It waits out its window in the schedule
    # (INTERACTIONS_DRAIN_DELAY_S), so the interactions that follow share it.
    [drain] = HUEY.pending()
    assert drain.name == "drain_interactions"
    assert drain.eta is not None and drain.eta > HUEY._get_timestamp()


def test_sync_mode_counts_inline(client, settings, django_capture_on_commit_callbacks):
    settings.INTERACTIONS_MODE = "sync"
    place = make_place()
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(client, place.pk, {"kind": "bookmark"})
    assert response.status_code == 202
    assert Interaction.objects.get().processed_at is not None
    counter = PlaceDailyCounter.objects.get(place=place)
    assert (counter.views, counter.likes, counter.bookmarks) == (0, 0, 1)
    assert HUEY.pending_count() == 0


@pytest.mark.parametrize(
    ("body", "content_type", "status", "fragment"),
    [
        ({"kind": "poke"}, "application/json", 400, "kind must be one of"),
        ({}, "application/json", 400, "kind"),
        ({"kind": 3}, "application/json", 400, "kind"),
        ("{not json", "application/json", 400, "malformed JSON"),
        ("[1, 2]", "application/json", 400, "object"),
        ("kind=like", "application/x-www-form-urlencoded", 415, "Content-Type"),
        # Hostile nesting: the stdlib parser raised RecursionError (a 500) on 3,000 '['.
        ("[" * 3000, "application/json", 400, "malformed JSON"),
        ('{"kind": "like", "x": ' + "[" * 500 + "]" * 500 + "}", "application/json", 400, "nested deeper"),
        ('{"kind": "like", "x": "' + "a" * 70_000 + '"}', "application/json", 413, "larger than"),
        (b"\xff\xfe{}", "application/json", 400, "malformed JSON"),
    ],
)
def test_bad_bodies_get_a_json_4xx_and_write_nothing(client, body, content_type, status, fragment):
    place = make_place()
    response = _post(client, place.pk, body, content_type)
    assert response.status_code == status
    assert fragment in response.json()["error"]
    assert not Interaction.objects.exists()


def test_unknown_place_is_404(client):
    response = _post(client, 987654, {"kind": "view"})
    assert response.status_code == 404
    assert "does not exist" in response.json()["error"]


def test_wrong_methods_are_405(client):
    place = make_place()
    record = client.get(reverse("interactions_api:record", kwargs={"pk": place.pk}))
    popular = client.post(reverse("interactions_api:popular"), data="{}", content_type="application/json")
    assert record.status_code == 405 and "error" in record.json()
    assert popular.status_code == 405 and "error" in popular.json()


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=101",
        "limit=ten",
        "window=0d",
        "window=91d",
        "window=7",
        "window=7h",
        "window=-1d",
        # Before, accepted though the schema forbids them: empty values, a leading zero, a trailing newline.
        "limit=",
        "window=",
        "window=07d",
        "window=7d%0A",
    ],
)
def test_popular_rejects_bad_limit_and_window(client, query):
    response = client.get(reverse("interactions_api:popular") + "?" + query)
    assert response.status_code == 400
    assert "error" in response.json()


def test_popular_answers_with_defaults(client, settings):
    response = client.get(reverse("interactions_api:popular"))
    assert response.status_code == 200
    body = response.json()
    assert body["limit"] == settings.POPULAR_DEFAULT_LIMIT
    assert body["window"] == f"{settings.POPULAR_DEFAULT_WINDOW_DAYS}d"
    assert body["items"] == []


def test_each_client_is_rate_limited_with_retry_after(client, settings):
    # Before: anonymous and unthrottled.
    settings.INTERACTIONS_RATE_LIMIT = "3/m"
    place = make_place()
    url = reverse("interactions_api:record", kwargs={"pk": place.pk})

    def post(ip, c=client):
        return c.post(url, data=json.dumps({"kind": "view"}), content_type="application/json", REMOTE_ADDR=ip)

    statuses = [post("203.0.113.9").status_code for _ in range(5)]
    assert statuses == [202, 202, 202, 429, 429]
    limited = post("203.0.113.9")
    assert 0 < int(limited["Retry-After"]) <= 60
    assert "rate limit" in limited.json()["error"]
    assert Interaction.objects.count() == 3
    # Another address is another client; a logged-in user is counted as themself, not by address.
    assert post("198.51.100.4").status_code == 202
    client.force_login(make_user())
    assert post("203.0.113.9").status_code == 202


def test_rate_limit_setting_is_validated(settings):
    import subprocess
    import sys

    from conftest import ROOT

    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**__import__("os").environ, "INTERACTIONS_RATE_LIMIT": "lots"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "INTERACTIONS_RATE_LIMIT must look like 300/m" in result.stderr


def test_a_logged_in_users_second_like_of_the_day_is_not_counted_again(client):
    place = make_place()
    client.force_login(make_user())
    first = _post(client, place.pk, {"kind": "like"})
    again = _post(client, place.pk, {"kind": "like"})
    assert first.status_code == again.status_code == 202
    assert (first.json()["duplicate"], again.json()["duplicate"]) == (False, True)
    assert again.json()["id"] == first.json()["id"]
    # Views count every time; another kind is another interaction.
    _post(client, place.pk, {"kind": "view"})
    _post(client, place.pk, {"kind": "view"})
    _post(client, place.pk, {"kind": "bookmark"})
    assert sorted(Interaction.objects.values_list("kind", flat=True)) == ["bookmark", "like", "view", "view"]


def test_anonymous_likes_are_not_deduplicated(client):
    place = make_place()
    _post(client, place.pk, {"kind": "like"})
    _post(client, place.pk, {"kind": "like"})
    assert Interaction.objects.filter(kind="like").count() == 2


@pytest.mark.django_db(transaction=True)
def test_unknown_place_is_404_when_the_request_commits_its_own_insert(client):
    """The usual path: no lookup first, the deferred foreign key fails the commit and that becomes the 404."""
    response = _post(client, 987654, {"kind": "view"})
    assert response.status_code == 404
    assert "does not exist" in response.json()["error"]
    assert not Interaction.objects.exists()
    place = make_place()
    assert _post(client, place.pk, {"kind": "like"}).status_code == 202
    for pk in (2**63, 10**30):  # beyond BIGINT: a 404 too, never the INSERT's 500
        assert _post(client, pk, {"kind": "view"}).status_code == 404


@pytest.mark.django_db(transaction=True)
def test_a_logged_in_like_of_a_place_id_beyond_bigint_is_404(client):
    """The same-day lookup of a logged-in like runs before the INSERT: the range check must come before it."""
    client.force_login(make_user())
    for kind in ("like", "bookmark", "view"):
        for pk in (2**63, 58746462568117547565056):
            response = _post(client, pk, {"kind": kind})
            assert response.status_code == 404, (kind, pk, response.status_code)
    assert not Interaction.objects.exists()


def test_the_schemas_window_values_are_exactly_the_ones_the_server_accepts(client, settings):
    # Before: the schema allowed 0d-9999d (e.g. 4018d) while the server answered 400 past 90d, undocumented.
    from chowist.openapi import openapi_document

    [window] = [
        p for p in openapi_document()["paths"]["/api/places/popular/"]["get"]["parameters"] if p["name"] == "window"
    ]
    documented = window["schema"]["enum"]
    assert documented[0] == "1d" and documented[-1] == f"{settings.POPULAR_MAX_WINDOW_DAYS}d"
    assert str(settings.POPULAR_MAX_WINDOW_DAYS) in window["description"]
    url = reverse("interactions_api:popular")
    for value in (documented[0], documented[-1]):
        assert client.get(f"{url}?window={value}").status_code == 200
    assert client.get(f"{url}?window={settings.POPULAR_MAX_WINDOW_DAYS + 1}d").status_code == 400
