import pytest
from django.urls import reverse

from chowist.places.selectors import API_RECENT_REVIEWS
from chowist.places.services import place_update
from chowist.places.tests.factories import make_category, make_place, make_reviews, make_user

pytestmark = pytest.mark.django_db


def detail(place) -> str:
    return reverse("places:detail", kwargs={"pk": place.pk})


def test_shows_categories_average_and_reviews_with_authors(client):
    place = make_place(name="Golden Dragon", categories=[make_category("Chinese"), make_category("Dim Sum")])
    reviews = make_reviews(place, 2, rating=4)
    response = client.get(detail(place))
    body = response.content.decode()
    assert response.status_code == 200
    assert "Golden Dragon" in body and "Chinese" in body and "Dim Sum" in body
    assert "4.0★" in body and "2 reviews" in body
    for review in reviews:
        assert f"by {review.author.username}" in body


@pytest.mark.parametrize("reviews", [1, 12])
def test_authors_are_loaded_with_the_reviews_not_one_query_each(client, django_assert_num_queries, reviews):
    """Regression: the original fetched each review's author with its own query (N+1)."""
    place = make_place(categories=[make_category()])
    make_reviews(place, reviews)
    # place, categories, reviews joined with their authors: the same three queries for 1 or 12 reviews.
    with django_assert_num_queries(3):
        assert client.get(detail(place)).status_code == 200


@pytest.fixture
def no_page_cache(settings):
    """The fragment cache is what logged-in visitors (and PAGE_CACHE=off) get: test it without the page cache."""
    settings.PAGE_CACHE = False


@pytest.mark.usefixtures("no_page_cache")
def test_cached_fragment_is_replaced_when_the_place_is_edited(client):
    """Regression: fragment cache keys never changed, so edits stayed invisible until the cache expired."""
    place = make_place(name="Old name")
    assert b"Old name" in client.get(detail(place)).content
    assert b"Old name" in client.get(detail(place)).content  # now served from the fragment cache
    place_update(place=place, data={"name": "New name"})
    body = client.get(detail(place)).content
    assert b"New name" in body and b"Old name" not in body


def test_cached_fragment_is_replaced_when_a_review_arrives(client):
    place = make_place()
    client.get(detail(place))
    author = make_user(username="latecomer")
    client.force_login(author)
    client.post(reverse("places:review", kwargs={"pk": place.pk}), {"rating": "5", "comment": "late"})
    assert b"by latecomer" in client.get(detail(place)).content


@pytest.mark.usefixtures("no_page_cache")
def test_a_cache_hit_skips_the_fragment_queries(client, django_assert_num_queries):
    place = make_place(categories=[make_category()])
    make_reviews(place, 3)
    client.get(detail(place))
    with django_assert_num_queries(1):  # only the place itself, for the fragment's version
        client.get(detail(place))


@pytest.mark.parametrize("pk", [999_999, 2**63 - 1, 10**30])
def test_unknown_place_is_a_friendly_404(client, pk):
    response = client.get(f"/places/{pk}/")
    assert response.status_code == 404
    assert b"There is no place with that id." in response.content


def test_non_numeric_id_is_a_404(client):
    assert client.get("/places/abc/").status_code == 404


@pytest.mark.parametrize("reviews", [1, 12])
def test_with_prefetch_off_each_author_is_one_more_query(client, settings, django_assert_num_queries, reviews):
    """PLACES_DETAIL_PREFETCH=off brings the original N+1 back for the n-plus-one experiment to measure."""
    settings.PLACES_DETAIL_PREFETCH = False
    place = make_place(categories=[make_category()])
    make_reviews(place, reviews)
    with django_assert_num_queries(3 + reviews):
        assert client.get(detail(place)).status_code == 200
    with django_assert_num_queries(3 + min(reviews, API_RECENT_REVIEWS)):
        assert client.get(reverse("api:place-detail", kwargs={"pk": place.pk})).status_code == 200
