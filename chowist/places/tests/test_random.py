import random

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from chowist.places.models import Place
from chowist.places.selectors import place_random_id
from chowist.places.tests.factories import make_place

pytestmark = pytest.mark.django_db
RANDOM = reverse("places:random")


def test_empty_table_is_a_friendly_404_not_a_500(client):
    """Regression: the original raised on an empty table (500)."""
    response = client.get(RANDOM)
    assert response.status_code == 404
    assert b"There are no places yet" in response.content


def test_redirects_to_an_existing_place(client):
    places = [make_place() for _ in range(3)]
    response = client.get(RANDOM)
    assert response.status_code == 302
    assert response["Location"] in {p.get_absolute_url() for p in places}


def test_never_orders_by_random(client):
    """Regression: the original used ORDER BY RANDOM(), a full scan and sort of the table per click."""
    make_place()
    with CaptureQueriesContext(connection) as queries:
        client.get(RANDOM)
    assert queries.captured_queries
    for query in queries.captured_queries:
        assert "RANDOM" not in query["sql"].upper()


def test_picks_across_gaps_in_the_ids():
    places = [make_place() for _ in range(6)]
    for gone in places[1:5]:
        gone.delete()
    rng = random.Random(7)
    picks = {place_random_id(rng=rng) for _ in range(50)}
    assert picks == {places[0].pk, places[5].pk}
    assert set(Place.objects.values_list("id", flat=True)) == picks
