"""The anonymous page cache: hits skip the database, and a committed write is visible on the next request.

Transactional tests: the invalidation runs on commit, as it does in production.
"""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from chowist.core.page_cache import PLACES, page_cache_invalidate, place_generation
from chowist.places.models import Place, Review
from chowist.places.services import place_update, review_delete, review_submit
from chowist.places.tests.factories import make_category, make_place, make_reviews, make_user

pytestmark = pytest.mark.django_db(transaction=True)


def _queries(client, url: str) -> tuple[int, bytes]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content[:300]
    return len(queries), response.content


def _urls(place: Place) -> list[str]:
    return [
        reverse("places:detail", kwargs={"pk": place.pk}),
        f"/api/places/{place.pk}/",
        "/places/",
        "/api/places/",
        "/api/places/?q=" + place.name.split()[0],
    ]


def _warm(client, urls: list[str]) -> None:
    for url in urls:
        client.get(url)
        client.get(url)


def test_a_repeated_anonymous_request_is_answered_without_a_query(client):
    place = make_place(name="Cached Corner", categories=[make_category("Pizza")])
    make_reviews(place, 3)
    urls = [*_urls(place), "/"]
    _warm(client, urls)
    for url in urls:
        queries, body = _queries(client, url)
        assert queries == 0, url
        assert b"Cached Corner" in body or url == "/"
    response = client.get(urls[0])
    assert "Cookie" in response["Vary"]


def test_a_new_review_is_on_every_page_at_the_next_request(client):
    place = make_place(name="Review Target")
    _warm(client, _urls(place))
    author = make_user(username="freshreviewer")
    client.force_login(author)
    response = client.post(reverse("places:review", kwargs={"pk": place.pk}), {"rating": "5", "comment": "superb"})
    assert response.status_code == 302
    client.logout()
    client.cookies.clear()
    detail_html = client.get(reverse("places:detail", kwargs={"pk": place.pk})).content.decode()
    assert "by freshreviewer" in detail_html and "1 review" in detail_html
    detail_api = client.get(f"/api/places/{place.pk}/").json()
    assert detail_api["review_count"] == 1 and detail_api["recent_reviews"][0]["author"] == "freshreviewer"
    listed = client.get("/api/places/").json()["results"]
    assert [p["review_count"] for p in listed if p["id"] == place.pk] == [1]
    assert "5.0★ from 1 review" in client.get("/places/").content.decode()


def test_an_edit_and_a_deleted_review_are_visible_at_the_next_request(client):
    place = make_place(name="Old Name Diner")
    review = review_submit(place=place, author=make_user(), rating=2).review
    _warm(client, _urls(place))
    place_update(place=place, data={"name": "New Name Diner", "categories": [make_category("Thai")]})
    for url in _urls(place)[:-1]:
        body = client.get(url).content
        assert b"New Name Diner" in body and b"Old Name Diner" not in body, url
    assert b"Thai" in client.get(f"/api/places/{place.pk}/").content
    review_delete(review=review)
    assert client.get(f"/api/places/{place.pk}/").json()["review_count"] == 0


def test_a_write_to_one_place_keeps_the_other_places_detail_cached(client):
    first, second = make_place(name="First"), make_place(name="Second")
    _warm(client, _urls(first) + _urls(second))
    make_reviews(first, 1)
    assert _queries(client, f"/api/places/{second.pk}/")[0] == 0
    assert _queries(client, f"/api/places/{first.pk}/")[0] > 0
    assert _queries(client, "/api/places/")[0] > 0  # lists show every place's review count


def test_a_logged_in_visitor_gets_their_own_render(client):
    place = make_place()
    _warm(client, _urls(place))
    client.force_login(make_user(username="someone"))
    queries, body = _queries(client, reverse("places:detail", kwargs={"pk": place.pk}))
    assert queries > 0 and b"someone" in body


def test_an_evicted_generation_is_a_miss_never_a_stale_page(client):
    place = make_place(name="Before Eviction")
    _warm(client, _urls(place))
    # A write that sends no signal, then the generation's token is evicted: the stored page must not be served.
    Place.objects.filter(pk=place.pk).update(name="After Eviction")
    cache.delete_many([f"pagegen:{place_generation(place.pk)}", f"pagegen:{PLACES}"])
    assert b"After Eviction" in client.get(f"/api/places/{place.pk}/").content
    assert b"After Eviction" in client.get("/places/").content


def test_invalidating_by_hand_retires_the_pages(client):
    place = make_place(name="Hand Made")
    _warm(client, _urls(place))
    Review.objects.filter(place=place).delete()
    page_cache_invalidate(place_generation(place.pk))
    assert _queries(client, f"/api/places/{place.pk}/")[0] > 0


def test_page_cache_off_renders_every_request(client, settings):
    settings.PAGE_CACHE = False
    place = make_place()
    _warm(client, _urls(place))
    for url in _urls(place):
        assert _queries(client, url)[0] > 0, url


def test_errors_are_not_cached(client):
    assert client.get("/api/places/999999/").status_code == 404
    make_place(pk=999999, name="Late Arrival")
    assert client.get("/api/places/999999/").status_code == 200


def test_popular_is_page_cached_only_with_the_popular_cache(client, settings):
    settings.POPULAR_CACHE = True
    make_place()
    url = "/api/places/popular/?window=7d"
    client.get(url)
    assert client.get(url).json()["cached"] is True
    queries, body = _queries(client, url)
    assert queries == 0 and b'"cached": true' in body
    settings.POPULAR_CACHE = False
    client.get(url)
    assert _queries(client, url)[0] > 0


def test_a_replica_render_soon_after_a_write_is_not_stored() -> None:
    """The replica may not have the write that minted the new token yet: only older tokens make it safe."""
    import time
    from types import SimpleNamespace

    from django.http import HttpResponse
    from django.test import RequestFactory

    from chowist.core.page_cache import _fresh_token, _storable

    request = RequestFactory().get("/places/")
    request._db_routing = SimpleNamespace(used_replica=True)
    fresh, old = _fresh_token(), f"{time.time() - 60:.3f}/0123"
    assert not _storable(request, HttpResponse("x"), [old, fresh])
    assert _storable(request, HttpResponse("x"), [old, old])
    request._db_routing.used_replica = False
    assert _storable(request, HttpResponse("x"), [old, fresh])


def test_a_hit_is_answered_like_the_render_and_counted_under_its_view(client):
    # The cache answers in front of Django's middleware (PageCacheMiddleware): the replayed headers are the
    # ones that middleware added to the stored render, and the metrics and the log still name the view.
    from observability.tests.helpers import json_log_lines, sample

    place = make_place(name="Header Hall")
    url = reverse("places:detail", kwargs={"pk": place.pk})
    rendered = client.get(url)
    client.get(url)  # the first render minted the generation tokens; this one is stored
    queries, _ = _queries(client, url)
    assert queries == 0
    counted = sample(
        "django_http_responses_total_by_status_view_method_total", view="places:detail", method="GET", status="200"
    )
    with json_log_lines() as lines:
        hit = client.get(url)
    assert hit.content == rendered.content
    for header in ("Content-Type", "X-Frame-Options", "X-Content-Type-Options", "Vary"):
        assert hit[header] == rendered[header], header
    assert (
        sample(
            "django_http_responses_total_by_status_view_method_total", view="places:detail", method="GET", status="200"
        )
        == counted + 1
    )
    assert [line["view"] for line in lines if line["event"] == "request"] == ["places:detail"]


def test_an_active_fault_bypasses_the_cache(client, settings):
    from chowist.core import faults

    place = make_place(name="Faulty Fare")
    url = reverse("places:detail", kwargs={"pk": place.pk})
    _warm(client, [url])
    faults.fault_set(name=faults.HTTP_5XX, value=1.0, views=["places:detail"])
    try:
        faults.faults_reload()
        assert client.get(url).status_code >= 500
    finally:
        faults.fault_clear(name=faults.HTTP_5XX)
        faults.faults_reload()
    assert client.get(url).status_code == 200


def test_a_cached_page_is_not_served_to_a_host_outside_allowed_hosts(client):
    # Before: a stored page was answered before Django's Host check: 200 to `Host: evil.example`.
    place = make_place(name="Host Check")
    urls = _urls(place)
    _warm(client, urls)
    for url in urls:
        response = client.get(url, HTTP_HOST="evil.example")
        assert response.status_code == 400, url
        assert b"Host Check" not in response.content


def test_a_cached_page_over_plain_http_is_redirected_to_https_in_production(client, settings):
    # Before: with SECURE_SSL_REDIRECT on (production), a stored page was served over HTTP (200, not 301).
    place = make_place(name="Scheme Check")
    url = reverse("places:detail", kwargs={"pk": place.pk})
    settings.SECURE_SSL_REDIRECT = True
    client.get(url, secure=True)
    assert client.get(url, secure=True).status_code == 200
    response = client.get(url)
    assert response.status_code == 301
    assert response["Location"] == f"https://testserver{url}"
