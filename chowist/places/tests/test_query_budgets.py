"""Every page and endpoint runs a fixed number of queries, whatever it shows: measured at two data sizes.

The budgets here are the figures the README quotes. A failure means a query appeared per row (N+1) or a
page grew a query: fix the code, or if the new query is intended, change the budget deliberately.
"""

import pytest
from django.urls import reverse

from chowist.places.tests.factories import make_user, make_world


@pytest.fixture(autouse=True)
def _rendered_not_replayed(settings):
    # The budgets are those of a render; a page cache hit makes no query at all (test_page_cache.py).
    settings.PAGE_CACHE = False


# (url name, needs a place id, budget anonymous, budget logged in without permissions)
# Logged in adds the session and the user; the detail page adds the reader's own review and two
# permission lookups (the "edit" link).
BUDGETS = [
    ("marketing:home", False, 0, 2),
    ("places:list", False, 4, 6),
    ("places:detail", True, 3, 8),
    ("places:random", False, 2, 4),
    ("api:place-list", False, 3, 5),
    ("api:place-detail", True, 3, 5),
    ("accounts:login", False, 0, 2),
    ("accounts:signup", False, 0, 2),
    ("accounts:password_reset", False, 0, 2),
    # With a session cookie the observability middleware resolves request.user for its log line.
    ("core:healthz", False, 0, 2),
    ("core:readyz", False, 1, 3),
]
LOGGED_IN_ONLY = [
    ("accounts:profile", 3),
    ("accounts:profile_edit", 3),
    ("accounts:password_change", 2),
]
SIZES = [(2, 1), (20, 25)]  # (places, reviews per place): a handful, then more than a page of each


@pytest.fixture(params=SIZES, ids=lambda size: f"{size[0]}places-{size[1]}reviews")
def world(request, db):
    places, reviews = request.param
    return make_world(places=places, reviews_per_place=reviews)


def url_for(name: str, needs_id: bool, world) -> str:
    most_reviewed = max(world, key=lambda p: p.review_count)
    return reverse(name, kwargs={"pk": most_reviewed.pk}) if needs_id else reverse(name)


@pytest.mark.parametrize(("name", "needs_id", "anonymous", "logged_in"), BUDGETS)
def test_query_budget(client, django_assert_num_queries, world, name, needs_id, anonymous, logged_in):
    url = url_for(name, needs_id, world)
    with django_assert_num_queries(anonymous):
        response = client.get(url)
    assert response.status_code in (200, 302)
    client.force_login(make_user())
    from django.core.cache import cache

    cache.clear()  # the detail page's fragment: measure the cold path for the logged-in reader too
    with django_assert_num_queries(logged_in):
        response = client.get(url)
    assert response.status_code in (200, 302)


@pytest.mark.parametrize(("name", "budget"), LOGGED_IN_ONLY)
def test_account_page_budget(client, django_assert_num_queries, world, name, budget):
    client.force_login(make_user())
    with django_assert_num_queries(budget):
        assert client.get(reverse(name)).status_code == 200


def test_edit_page_budget(client, django_assert_num_queries, world):
    client.force_login(make_user(can_edit=True))
    # session, user, two permission lookups, place, its categories, every category for the checkboxes
    with django_assert_num_queries(7):
        assert client.get(reverse("places:edit", kwargs={"pk": world[0].pk})).status_code == 200


def test_review_submission_budget(client, django_assert_num_queries, world):
    client.force_login(make_user())
    place = world[-1]
    # session, user, place, savepoint, locked read, insert, counter update, release (session save excluded:
    # none here). SQLite and PostgreSQL alike.
    with django_assert_num_queries(8):
        response = client.post(reverse("places:review", kwargs={"pk": place.pk}), {"rating": "4"})
    assert response.status_code == 302
