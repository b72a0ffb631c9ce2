from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import transaction
from django.db.models import Count, Max, Sum

from chowist.accounts.models import Profile
from chowist.demo import demo_data
from chowist.interactions.models import Interaction, PlaceDailyCounter
from chowist.places.models import Category, Place, Review
from chowist.places.tests.factories import make_place, make_reviews, make_user

pytestmark = pytest.mark.django_db
SMALL = {"places": 40, "users": 12, "reviews": 300, "interactions": 2_000, "seed": 7}
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
MODELS = [Category, User, Profile, Place, Place.categories.through, Review, Interaction, PlaceDailyCounter]


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in MODELS}


def snapshot() -> dict[str, list]:
    return {
        "places": list(Place.objects.order_by("address").values_list("name", "address", "city", "min_party_size")),
        "categories": sorted(Place.categories.through.objects.values_list("place__address", "category__slug")),
        "reviews": sorted(Review.objects.values_list("place__address", "author__username", "rating", "created_at")),
        "interactions": sorted(
            Interaction.objects.values_list("place__address", "kind", "user__username", "created_at"), key=repr
        ),
    }


def test_creates_the_requested_sizes_with_consistent_aggregates():
    call_command("seed_demo", **SMALL)
    assert Place.objects.count() == 40
    assert User.objects.filter(username__startswith="demo").count() == 12
    assert Profile.objects.count() == 12
    assert Review.objects.count() == 300
    assert Interaction.objects.count() == 2_000
    actual = {
        r["place_id"]: (r["n"], r["s"])
        for r in Review.objects.values("place_id").annotate(n=Count("id"), s=Sum("rating"))
    }
    for place in Place.objects.all():
        assert (place.review_count, place.rating_sum) == actual.get(place.pk, (0, 0))
    # Interactions arrive already counted: none pending, and the daily counters add up to them per kind.
    assert not Interaction.objects.filter(processed_at__isnull=True).exists()
    totals = PlaceDailyCounter.objects.aggregate(v=Sum("views"), lk=Sum("likes"), b=Sum("bookmarks"))
    by_kind = dict(Interaction.objects.values_list("kind").annotate(n=Count("id")))
    assert (totals["v"], totals["lk"], totals["b"]) == (by_kind["view"], by_kind["like"], by_kind["bookmark"])


def test_distributions_are_skewed_like_real_traffic():
    call_command("seed_demo", places=200, users=60, reviews=3_000, interactions=0, seed=1)
    per_place = sorted(Place.objects.values_list("review_count", flat=True), reverse=True)
    assert per_place[0] == 60  # the most reviewed place is reviewed by every user: capped, not exceeded
    assert per_place[0] > 5 * per_place[len(per_place) // 2]
    ratings = dict(Review.objects.values_list("rating").annotate(n=Count("id")))
    assert ratings.get(4, 0) + ratings.get(5, 0) > 2 * (ratings.get(1, 0) + ratings.get(2, 0))
    assert Place.objects.filter(min_party_size__gt=1).exists() and Place.objects.filter(max_party_size__gte=20).exists()


def test_interactions_spread_over_the_last_thirty_days():
    demo_data.seed_demo(places=20, users=5, reviews=20, interactions=3_000, seed=3, now=NOW)
    span = Interaction.objects.aggregate(latest=Max("created_at"))
    assert span["latest"] <= NOW
    assert not Interaction.objects.filter(created_at__lt=NOW - timedelta(days=30)).exists()
    assert PlaceDailyCounter.objects.values("day").distinct().count() >= 28


def test_running_twice_adds_nothing():
    call_command("seed_demo", **SMALL)
    first = counts()
    call_command("seed_demo", **SMALL)
    assert counts() == first


def test_topping_up_adds_only_the_difference():
    call_command("seed_demo", **{**SMALL, "interactions": 500})
    call_command("seed_demo", **SMALL)
    assert Interaction.objects.count() == SMALL["interactions"]
    assert PlaceDailyCounter.objects.aggregate(n=Sum("views") + Sum("likes") + Sum("bookmarks"))["n"] == 2_000


def test_same_seed_gives_the_same_data_and_another_seed_differs():
    def run(seed: int) -> dict:
        with transaction.atomic():
            demo_data.seed_demo(**{**SMALL, "seed": seed}, now=NOW)
            data = snapshot()
            transaction.set_rollback(True)
        return data

    assert run(7) == run(7)
    assert run(7)["reviews"] != run(8)["reviews"]


def test_never_deletes_or_overwrites_existing_data():
    """Regression: the original demo loader deleted every user and place on each start."""
    mine = make_place(name="My own place")
    me = make_user(username="me")
    make_reviews(mine, 2, rating=5)
    call_command("seed_demo", **SMALL)
    call_command("seed_demo", **SMALL)
    mine.refresh_from_db()
    assert (mine.name, mine.review_count, mine.rating_sum) == ("My own place", 2, 10)
    assert User.objects.filter(pk=me.pk).exists()
    assert Review.objects.filter(place=mine).count() == 2


def test_a_demo_user_keeps_a_changed_password_and_profile():
    call_command("seed_demo", **SMALL)
    user = User.objects.get(username=demo_data.demo_username(0))
    assert user.check_password(demo_data.DEMO_PASSWORD)
    user.set_password("changed-Pa55word!")
    user.save()
    call_command("seed_demo", **SMALL)
    user.refresh_from_db()
    assert user.check_password("changed-Pa55word!")


def test_rejects_negative_sizes():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("seed_demo", places=-1)
