"""The places' background tasks. Thin: they load ids and call the code that does the work; services fire them
with workers.jobs.enqueue_on_commit."""

from __future__ import annotations

import logging

from huey import crontab

from chowist.places.notifications import review_confirmation_send
from chowist.places.photos import place_thumbnail_make
from chowist.places.selectors import lost_jobs_get
from workers.jobs import job

logger = logging.getLogger(__name__)

# SMTP outages are usually short: 5 tries over about 2.5 minutes (5, 10, 20, 40, 80 s apart).
EMAIL_RETRIES = 5
EMAIL_RETRY_DELAY_S = 5
EMAIL_RETRY_BACKOFF = 2
THUMBNAIL_RETRIES = 2
THUMBNAIL_RETRY_DELAY_S = 10
# Where these tasks lived until issue 11: messages queued by that version still run after the deploy.
_BEFORE_ISSUE_11 = "workers.tasks"


@job(
    retries=EMAIL_RETRIES,
    retry_delay=EMAIL_RETRY_DELAY_S,
    retry_backoff=EMAIL_RETRY_BACKOFF,
    moved_from=_BEFORE_ISSUE_11,
)
def send_review_confirmation(review_id: int) -> bool:
    """E-mail the author that their review is live; an exception (SMTP down) makes huey retry with backoff."""
    return review_confirmation_send(review_id=review_id)


@job(retries=THUMBNAIL_RETRIES, retry_delay=THUMBNAIL_RETRY_DELAY_S, moved_from=_BEFORE_ISSUE_11)
def make_place_thumbnail(place_id: int) -> bool:
    return place_thumbnail_make(place_id=place_id)


@job(schedule=crontab(minute="*/5"))
def requeue_lost_jobs() -> int:
    """Every 5 minutes: queue again the thumbnails and confirmation e-mails whose task was lost (a consumer
    SIGKILLed after dequeuing it). Both tasks are idempotent: a thumbnail replaces the last one, a confirmed
    review is not mailed twice."""
    place_ids, review_ids = lost_jobs_get()
    for place_id in place_ids:
        make_place_thumbnail(place_id)
    for review_id in review_ids:
        send_review_confirmation(review_id)
    if place_ids or review_ids:
        logger.warning("lost_jobs_requeued thumbnails=%s confirmations=%s", place_ids, review_ids)
    return len(place_ids) + len(review_ids)
