import pytest
from django.conf import settings
from django.urls import reverse

from chowist.places.tests.factories import make_category, make_place

pytestmark = pytest.mark.django_db
LIST = reverse("places:list")


def names(response) -> list[str]:
    return [place.name for place in response.context["places"]]


def test_lists_places_by_name_fifteen_per_page(client):
    for i in range(settings.PLACES_PAGE_SIZE + 3):
        make_place(name=f"Place {i:02d}")
    first = client.get(LIST)
    second = client.get(LIST, {"page": 2})
    assert first.status_code == 200
    assert names(first) == [f"Place {i:02d}" for i in range(15)]
    assert names(second) == [f"Place {i:02d}" for i in range(15, 18)]
    assert b"Page 1 of 2" in first.content


def test_search_on_name_is_case_insensitive(client):
    make_place(name="Golden Dragon")
    make_place(name="Blue Fork")
    assert names(client.get(LIST, {"q": "dragon"})) == ["Golden Dragon"]
    assert names(client.get(LIST, {"q": "ünïcode ☃"})) == []


def test_category_filter_returns_each_place_once(client):
    """Regression: the original joined categories without DISTINCT, listing a place once per matching category."""
    pizza, burgers = make_category("Pizza"), make_category("Burgers")
    make_place(name="Both", categories=[pizza, burgers])
    make_place(name="Only pizza", categories=[pizza])
    make_place(name="Neither")
    response = client.get(LIST + "?category=pizza&category=burgers")
    assert names(response) == ["Both", "Only pizza"]
    assert response.context["page"].paginator.count == 2


def test_party_size_filter(client):
    make_place(name="Small", min_party_size=1, max_party_size=4)
    make_place(name="Big", min_party_size=6, max_party_size=40)
    assert names(client.get(LIST, {"party": 2})) == ["Small"]
    assert names(client.get(LIST, {"party": 20})) == ["Big"]
    assert names(client.get(LIST, {"party": 5})) == []


def test_filters_keep_their_values_in_pagination_links(client):
    for i in range(settings.PLACES_PAGE_SIZE + 1):
        make_place(name=f"Dragon {i:02d}")
    response = client.get(LIST, {"q": "dragon"})
    assert b"?q=dragon&amp;page=2" in response.content


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"page": "abc"}, b"page"),
        ({"page": "0"}, b"page"),
        ({"page": "-3"}, b"page"),
        ({"page": "1e9999"}, b"page"),
        ({"party": "many"}, b"party"),
        ({"party": "100000"}, b"party"),
        ({"q": "x" * 10_000}, b"q"),
        ({"q": "nul\x00byte"}, b"Null characters"),
        ({"category": "not a slug!"}, b"category"),
        ({"category": "bad\x00"}, b"category"),
    ],
)
def test_bad_input_is_a_400_that_names_the_parameter(client, params, message):
    response = client.get(LIST, params)
    assert response.status_code == 400
    assert message in response.content
    assert b"<h1>Bad request</h1>" in response.content


def test_page_beyond_the_last_is_a_404_saying_how_many_pages_exist(client):
    make_place()
    response = client.get(LIST, {"page": 99})
    assert response.status_code == 404
    assert b"page 99 is out of range: there are 1 page(s)" in response.content


def test_empty_list_is_page_one_of_one(client):
    response = client.get(LIST)
    assert response.status_code == 200
    assert b"No places match." in response.content


def test_unknown_category_lists_nothing(client):
    make_place()
    response = client.get(LIST, {"category": "no-such-category"})
    assert response.status_code == 200
    assert names(response) == []


def test_wrong_method_is_a_405_page(client):
    response = client.post(LIST)
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
    assert b"POST is not allowed here" in response.content
