"""Background tasks. Thin: they load ids and call services; the app fires them with transaction.on_commit."""

from __future__ import annotations

import logging

from huey import crontab

from workers.instrumentation import job

logger = logging.getLogger(__name__)

# SMTP outages are usually short: 5 tries over about 2.5 minutes (5, 10, 20, 40, 80 s apart).
EMAIL_RETRIES = 5
EMAIL_RETRY_DELAY_S = 5
EMAIL_RETRY_BACKOFF = 2
THUMBNAIL_RETRIES = 2
THUMBNAIL_RETRY_DELAY_S = 10


@job()
def drain_interactions() -> int:
    """Count what is waiting in the interactions inbox; hand over to a fresh task if a backlog remains."""
    from chowist.interactions.services import interactions_drain
    from workers.queue import drain_request, drain_request_clear

    drain_request_clear()
    result = interactions_drain()
    if result.backlog_left:
        drain_request()
    return result.counted


@job(schedule=crontab(minute="*"))
def refresh_popular() -> int:
    """Every minute: count anything a lost drain task left behind, then recompute and warm the popular lists."""
    from chowist.interactions.services import interactions_drain, popular_cache_warm

    counted = 0
    while True:
        result = interactions_drain()
        counted += result.counted
        if not result.backlog_left:
            break
    popular_cache_warm()
    return counted


@job(retries=EMAIL_RETRIES, retry_delay=EMAIL_RETRY_DELAY_S, retry_backoff=EMAIL_RETRY_BACKOFF)
def send_review_confirmation(review_id: int) -> bool:
    """E-mail the author that their review is live; an exception (SMTP down) makes huey retry with backoff."""
    from workers.notifications import review_confirmation_send

    return review_confirmation_send(review_id=review_id)


@job(retries=THUMBNAIL_RETRIES, retry_delay=THUMBNAIL_RETRY_DELAY_S)
def make_place_thumbnail(place_id: int) -> bool:
    from chowist.places.photos import place_thumbnail_make

    return place_thumbnail_make(place_id=place_id)
