"""Reads for places and reviews. Each returns a fixed number of queries however many rows it shows."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import timedelta

from django.conf import settings
from django.core.paginator import EmptyPage, Page, Paginator
from django.db.models import Max, Min, Prefetch, QuerySet
from django.utils import timezone

from chowist.places.models import Category, Place, Review

DETAIL_RECENT_REVIEWS = 20
API_RECENT_REVIEWS = 10


class PageOutOfRange(Exception):
    def __init__(self, number: int, num_pages: int) -> None:
        super().__init__(f"page {number} is out of range: there are {num_pages} page(s)")
        self.number = number
        self.num_pages = num_pages


def category_list() -> QuerySet[Category]:
    return Category.objects.order_by("name")


def place_list(*, q: str = "", categories: Sequence[str] = (), party_size: int | None = None) -> QuerySet[Place]:
    places = Place.objects.all()
    if q:
        places = places.filter(name__icontains=q)
    if categories:
        # A place in two of the requested categories joins twice: DISTINCT keeps it one row.
        places = places.filter(categories__slug__in=list(categories)).distinct()
    if party_size is not None:
        places = places.filter(min_party_size__lte=party_size, max_party_size__gte=party_size)
    return places.order_by("name", "id").prefetch_related(
        Prefetch("categories", queryset=Category.objects.order_by("name"))
    )


def place_page(*, places: QuerySet[Place], number: int, per_page: int) -> Page:
    """One page of `places` (a COUNT and a LIMIT/OFFSET query), or PageOutOfRange."""
    paginator = Paginator(places, per_page)
    try:
        return paginator.page(number)
    except EmptyPage as exc:
        raise PageOutOfRange(number, paginator.num_pages) from exc


def place_get(*, pk: int) -> Place:
    """The place with its categories (two queries); Place.DoesNotExist when absent.

    With PLACES_DETAIL_PREFETCH off the categories stay lazy: the n-plus-one experiment's slow variant.
    """
    if not settings.PLACES_DETAIL_PREFETCH:
        return Place.objects.get(pk=pk)
    return Place.objects.prefetch_related(Prefetch("categories", queryset=Category.objects.order_by("name"))).get(pk=pk)


def place_get_plain(*, pk: int) -> Place:
    """The place alone (one query); its categories and reviews stay lazy so a cached fragment skips them."""
    return Place.objects.get(pk=pk)


def place_recent_reviews(*, place: Place, limit: int) -> QuerySet[Review]:
    """Lazy: evaluated by whoever renders it, with authors joined in (no query per review).

    With PLACES_DETAIL_PREFETCH off each review's author is one more query: the original's N+1, kept
    switchable so the n-plus-one experiment can measure what the join saves.
    """
    reviews = Review.objects.filter(place=place)
    if settings.PLACES_DETAIL_PREFETCH:
        reviews = reviews.select_related("author")
    return reviews.order_by("-created_at", "-id")[:limit]


def review_for_author(*, place: Place, author_id: int) -> Review | None:
    return Review.objects.filter(place=place, author_id=author_id).first()


def place_random_id(*, rng: random.Random | None = None) -> int | None:
    """A random place id without ORDER BY RANDOM(): pick a point in [min id, max id], take the first id at or after it.

    Two index lookups on the primary key, whatever the table size. Places after a gap in the ids are
    slightly more likely; for a "surprise me" link that is fine. None when there are no places.
    """
    bounds = Place.objects.aggregate(low=Min("id"), high=Max("id"))
    if bounds["low"] is None:
        return None
    point = (rng or random).randint(bounds["low"], bounds["high"])
    return Place.objects.filter(id__gte=point).order_by("id").values_list("id", flat=True).first()


# Only work from the last day is swept: older work is left alone rather than surprising anyone.
LOST_JOB_WINDOW_S = 24 * 3600
LOST_JOB_BATCH = 100


def lost_jobs_get(
    *, grace_s: float | None = None, window_s: float = LOST_JOB_WINDOW_S, limit: int = LOST_JOB_BATCH
) -> tuple[list[int], list[int]]:
    """(place ids, review ids) whose thumbnail / confirmation e-mail should exist by now and does not.

    Tasks are at-most-once once a consumer dequeued them (a SIGKILL then loses them); the state they leave
    behind says what is missing: a photo without a thumbnail, a review never confirmed.
    """
    grace_s = settings.JOBS_LOST_AFTER_S if grace_s is None else grace_s
    now = timezone.now()
    newest, oldest = now - timedelta(seconds=grace_s), now - timedelta(seconds=window_s)
    place_ids = list(
        Place.objects.exclude(photo="")
        .filter(thumbnail="", updated_at__lte=newest, updated_at__gte=oldest)
        .order_by("updated_at")
        .values_list("id", flat=True)[:limit]
    )
    review_ids = list(
        Review.objects.filter(
            confirmation_sent_at__isnull=True,
            confirmation_failed_at__isnull=True,
            created_at__lte=newest,
            created_at__gte=oldest,
        )
        .exclude(author__email="")
        .order_by("created_at")
        .values_list("id", flat=True)[:limit]
    )
    return place_ids, review_ids
