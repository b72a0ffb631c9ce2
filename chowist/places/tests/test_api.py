import json

import pytest
from django.conf import settings
from django.urls import reverse

from chowist.places.tests.factories import make_category, make_place, make_reviews

pytestmark = pytest.mark.django_db
LIST = reverse("api:place-list")


def detail(pk) -> str:
    return reverse("api:place-detail", kwargs={"pk": pk})


def test_list_pages_fifteen_at_a_time_with_totals(client):
    for i in range(settings.PLACES_PAGE_SIZE + 2):
        make_place(name=f"P{i:02d}")
    body = client.get(LIST, {"page": 2}).json()
    assert (body["page"], body["num_pages"], body["count"]) == (2, 2, 17)
    assert [r["name"] for r in body["results"]] == ["P15", "P16"]


def test_list_filters_by_query_and_category_without_duplicates(client):
    pizza, thai = make_category("Pizza"), make_category("Thai")
    make_place(name="Dragon Pizza Thai", categories=[pizza, thai])
    make_place(name="Dragon Noodles", categories=[thai])
    make_place(name="Golden Slice", categories=[pizza])
    body = client.get(LIST + "?q=dragon&category=pizza&category=thai").json()
    assert [r["name"] for r in body["results"]] == ["Dragon Noodles", "Dragon Pizza Thai"]
    assert body["count"] == 2
    first = body["results"][1]
    assert [c["slug"] for c in first["categories"]] == ["pizza", "thai"]


def test_detail_has_categories_average_count_and_recent_reviews_with_authors(client):
    place = make_place(name="Golden Dragon", categories=[make_category("Chinese")])
    reviews = make_reviews(place, 3, rating=5)
    body = client.get(detail(place.pk)).json()
    assert body["name"] == "Golden Dragon"
    assert body["categories"] == [{"slug": "chinese", "name": "Chinese"}]
    assert (body["average_rating"], body["review_count"]) == (5.0, 3)
    assert {r["author"] for r in body["recent_reviews"]} == {r.author.username for r in reviews}


@pytest.mark.parametrize("pk", [0, 424242, 2**63 - 1, 10**25])
def test_unknown_place_is_json_404(client, pk):
    response = client.get(f"/api/places/{pk}/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert "error" in response.json()


@pytest.mark.parametrize(
    ("params", "status", "mentions"),
    [
        ({"page": "two"}, 400, "page"),
        ({"page": "0"}, 400, "page"),
        ({"page": "9" * 400}, 404, "out of range"),
        ({"page": "50"}, 404, "out of range"),
        ({"q": "y" * 5000}, 400, "q"),
        ({"q": "\x00"}, 400, "Null characters"),
        ({"q": "%00'; DROP TABLE places_place;--"}, 200, None),
        ({"q": "😀 ünïcödé 中文"}, 200, None),
        ({"category": "../../etc"}, 400, "category"),
        ({"category": "x" * 300}, 400, "category"),
        ({"party": "-1"}, 400, "party"),
    ],
)
def test_bad_query_strings_are_json_4xx_never_500(client, params, status, mentions):
    make_place()
    response = client.get(LIST, params)
    assert response.status_code == status
    body = response.json()
    if mentions:
        assert mentions in body["error"]


def test_raw_odd_query_string_bytes_are_handled(client):
    response = client.get(LIST + "?q=%ff%fe%00&page=%00")
    assert response.status_code == 400
    assert "error" in response.json()


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_wrong_method_is_json_405(client, method):
    response = getattr(client, method)(LIST, data=json.dumps({}), content_type="application/json")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
    assert "not allowed" in response.json()["error"]


def test_unknown_api_path_is_json_404(client):
    response = client.get("/api/places/nope/")
    assert response.status_code == 404
    assert response.json() == {"error": "There is nothing at this address."}


def test_an_empty_category_is_ignored_as_the_schema_says(client):
    # Before: the server ignored `?category=` while the schema's slug pattern forbade an empty value.
    import re

    from chowist.openapi import openapi_document

    make_place(name="Anywhere")
    response = client.get("/api/places/?category=")
    assert response.status_code == 200 and response.json()["count"] == 1
    [category] = [
        p for p in openapi_document()["paths"]["/api/places/"]["get"]["parameters"] if p["name"] == "category"
    ]
    assert re.fullmatch(category["schema"]["items"]["pattern"].strip("^$"), "")
    assert "empty value is ignored" in category["description"]
