"""Business counters move only when the row's transaction commits."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from chowist.interactions.models import InteractionKind
from chowist.interactions.services import interaction_record
from chowist.places.models import Place, Review
from observability.tests.helpers import sample

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_signup_is_counted_after_commit_and_not_when_rolled_back() -> None:
    before = sample("chowist_signups_total")
    with transaction.atomic():
        get_user_model().objects.create_user("bea", password="pw-123456789")
        assert sample("chowist_signups_total") == before
    assert sample("chowist_signups_total") == before + 1

    with pytest.raises(RuntimeError), transaction.atomic():
        get_user_model().objects.create_user("cid", password="pw-123456789")
        raise RuntimeError("roll back")
    assert sample("chowist_signups_total") == before + 1


def test_a_review_is_counted_once_and_not_on_update() -> None:
    author = get_user_model().objects.create_user("dan", password="pw-123456789")
    place = Place.objects.create(name="Noodle Bar")
    before = sample("chowist_reviews_created_total")
    review = Review.objects.create(place=place, author=author, rating=4)
    review.rating = 5
    review.save()
    assert sample("chowist_reviews_created_total") == before + 1


def test_an_accepted_interaction_is_counted_once_by_kind_and_mode() -> None:
    place = Place.objects.create(name="Taco Stand")
    labels = {"kind": InteractionKind.LIKE.value, "mode": settings.INTERACTIONS_MODE}
    before = sample("chowist_interactions_accepted_total", **labels)
    interaction_record(place_id=place.pk, kind=InteractionKind.LIKE.value)
    assert sample("chowist_interactions_accepted_total", **labels) == before + 1
