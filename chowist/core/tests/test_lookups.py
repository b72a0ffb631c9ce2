"""Out-of-range integers given to `in` match nothing instead of reaching the database."""

from __future__ import annotations

import pytest

from chowist.places.models import Place, Review
from chowist.places.tests.factories import make_place

pytestmark = pytest.mark.django_db

HUGE = 10**20


def test_an_out_of_range_id_in_an_in_lookup_matches_nothing_and_the_rest_still_match() -> None:
    # Before: OverflowError (SQLite) or "value out of range" (PostgreSQL) for the whole query.
    place = make_place()
    assert list(Place.objects.filter(pk__in=[HUGE, -HUGE, place.pk])) == [place]
    assert list(Place.objects.filter(pk__in=[HUGE])) == []
    assert list(Place.objects.filter(pk__in=[str(HUGE)])) == []


def test_every_integer_column_is_covered_foreign_keys_and_small_ints_included() -> None:
    place = make_place()
    assert list(Review.objects.filter(place_id__in=[HUGE, place.pk])) == []
    assert list(Review.objects.filter(rating__in=[HUGE, 2**40])) == []
