"""Small builders for test data, written through the ORM (and the services where a write has side effects)."""

from __future__ import annotations

import itertools

from django.contrib.auth.models import Permission, User

from chowist.places.models import Category, Place, Review
from chowist.places.services import review_submit

_seq = itertools.count(1)
PASSWORD = "a-Long-enough-pa55word"


def make_user(*, username: str | None = None, can_edit: bool = False) -> User:
    user = User.objects.create_user(username=username or f"user{next(_seq)}", password=PASSWORD)
    if can_edit:
        user.user_permissions.add(Permission.objects.get(codename="change_place", content_type__app_label="places"))
    return user


def make_category(name: str | None = None) -> Category:
    name = name or f"Category {next(_seq)}"
    return Category.objects.create(name=name, slug=name.lower().replace(" ", "-"))


def make_place(*, name: str | None = None, categories: list[Category] = (), **fields: object) -> Place:
    place = Place.objects.create(name=name or f"Place {next(_seq)}", **fields)
    if categories:
        place.categories.set(categories)
    return place


def make_reviews(place: Place, count: int, *, rating: int = 4) -> list[Review]:
    return [review_submit(place=place, author=make_user(), rating=rating).review for _ in range(count)]


def make_world(*, places: int, reviews_per_place: int, categories_per_place: int = 2) -> list[Place]:
    """`places` places, each in a few categories and reviewed by the same `reviews_per_place` users.

    Reviews go in with bulk_create (this is fixture data, not the request path) and the denormalised
    counts are set to match, as review_submit would have left them.
    """
    categories = [make_category() for _ in range(max(categories_per_place, 3))]
    authors = [make_user() for _ in range(reviews_per_place)]
    made = []
    for i in range(places):
        place = make_place(categories=[categories[(i + j) % len(categories)] for j in range(categories_per_place)])
        ratings = [1 + (i + j) % 5 for j in range(reviews_per_place)]
        Review.objects.bulk_create(
            Review(place=place, author=author, rating=rating) for author, rating in zip(authors, ratings, strict=True)
        )
        Place.objects.filter(pk=place.pk).update(review_count=len(ratings), rating_sum=sum(ratings))
        place.refresh_from_db()
        made.append(place)
    return made
