"""Reads for interactions: the popular-places ranking (cached, and warmed by the periodic task) and the inbox
backlog."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Avg, Count, Min, Sum
from django.utils import timezone

from chowist.interactions.models import Interaction, PlaceDailyCounter
from chowist.places.models import Place, Review

# What an interaction is worth in the ranking, relative to a view.
POPULAR_WEIGHTS = {"views": 1, "likes": 3, "bookmarks": 5, "reviews": 10}
_CACHE_KEY = "popular:v1:{days}d"


@dataclass(frozen=True)
class InboxBacklog:
    pending: int
    oldest_pending_age_s: float


def popular_cache_keys() -> list[str]:
    return [_CACHE_KEY.format(days=days) for days in range(1, settings.POPULAR_MAX_WINDOW_DAYS + 1)]


def popular_items_get(*, limit: int, window_days: int) -> dict[str, Any]:
    """The `limit` most popular places over the last `window_days` UTC days, from the cache when POPULAR_CACHE is on."""
    cached = False
    if settings.POPULAR_CACHE:
        payload = cache.get(_CACHE_KEY.format(days=window_days))
        cached = payload is not None
        if payload is None:
            payload = popular_compute(window_days=window_days)
            popular_cache_store(window_days=window_days, payload=payload)
    else:
        payload = popular_compute(window_days=window_days)
    return {**payload, "items": payload["items"][:limit], "cached": cached}


def popular_cache_store(*, window_days: int, payload: dict[str, Any]) -> None:
    from chowist.core.page_cache import POPULAR, page_cache_invalidate

    cache.set(_CACHE_KEY.format(days=window_days), payload, timeout=settings.POPULAR_CACHE_TTL)
    page_cache_invalidate(POPULAR)


def popular_cache_warm(*, window_days: Iterable[int] | None = None) -> int:
    """Recompute the popular lists and store them, so requests after a TTL expiry still hit; returns lists warmed."""
    windows = list(window_days or (settings.POPULAR_DEFAULT_WINDOW_DAYS,))
    for days in windows:
        popular_cache_store(window_days=days, payload=popular_compute(window_days=days))
    return len(windows)


def popular_compute(*, window_days: int) -> dict[str, Any]:
    """The expensive part: aggregate counters and reviews over the window, rank, keep POPULAR_MAX_LIMIT."""
    now = timezone.now()
    first_day = now.date() - timedelta(days=window_days - 1)
    since = now - timedelta(days=window_days)
    scores: dict[int, dict[str, Any]] = {}

    def entry(place_id: int) -> dict[str, Any]:
        return scores.setdefault(
            place_id, {"views": 0, "likes": 0, "bookmarks": 0, "reviews": 0, "window_average_rating": None}
        )

    counters = (
        PlaceDailyCounter.objects.filter(day__gte=first_day)
        .values("place_id")
        .annotate(views=Sum("views"), likes=Sum("likes"), bookmarks=Sum("bookmarks"))
    )
    for row in counters:
        entry(row["place_id"]).update(views=row["views"], likes=row["likes"], bookmarks=row["bookmarks"])
    reviews = Review.objects.filter(created_at__gte=since).values("place_id").annotate(n=Count("id"), avg=Avg("rating"))
    for row in reviews:
        entry(row["place_id"]).update(reviews=row["n"], window_average_rating=round(float(row["avg"]), 2))
    for values in scores.values():
        values["score"] = sum(values[field] * weight for field, weight in POPULAR_WEIGHTS.items())
    ranked = sorted(
        ((v["score"], place_id) for place_id, v in scores.items() if v["score"] > 0), key=lambda t: (-t[0], t[1])
    )
    top = [place_id for _, place_id in ranked[: settings.POPULAR_MAX_LIMIT]]
    places = Place.objects.in_bulk(top)
    items = [
        {
            "place_id": place_id,
            "name": places[place_id].name,
            "url": places[place_id].get_absolute_url(),
            **scores[place_id],
        }
        for place_id in top
        if place_id in places
    ]
    return {"window": f"{window_days}d", "generated_at": now.isoformat(), "items": items}


def inbox_backlog_get() -> InboxBacklog:
    """Interactions accepted but not yet counted, and how long the oldest has waited."""
    pending = Interaction.objects.filter(processed_at__isnull=True)
    stats = pending.aggregate(n=Count("id"), oldest=Min("created_at"))
    if not stats["n"]:
        return InboxBacklog(pending=0, oldest_pending_age_s=0.0)
    return InboxBacklog(
        pending=stats["n"], oldest_pending_age_s=max(0.0, (timezone.now() - stats["oldest"]).total_seconds())
    )


def interaction_lag_percentiles(*, created_since: datetime, quantiles: tuple[float, ...]) -> dict[str, Any]:
    """Accepted -> counted lag of the interactions accepted since `created_since` and counted by now (exact, from
    the inbox rows; the ones still pending are in inbox_backlog_get)."""
    rows = Interaction.objects.filter(created_at__gte=created_since, processed_at__isnull=False).values_list(
        "created_at", "processed_at"
    )
    lags = sorted(max(0.0, (processed - created).total_seconds()) for created, processed in rows.iterator())
    result: dict[str, Any] = {"count": len(lags)}
    for q in quantiles:
        result[f"p{round(q * 100):g}"] = lags[min(len(lags) - 1, int(q * len(lags)))] if lags else None
    return result
