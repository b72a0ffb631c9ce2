"""The e-mails about places and reviews (sent by chowist.places.tasks)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.utils import timezone

from chowist.core.validators import single_line
from chowist.places.models import Review

logger = logging.getLogger(__name__)


def review_confirmation_send(*, review_id: int) -> bool:
    """Tell a review's author it is published; False when there is nobody to tell (review gone, no address)."""
    review = Review.objects.select_related("author", "place").filter(pk=review_id).first()
    if review is None:
        logger.info("review %s no longer exists; no confirmation sent", review_id)
        return False
    if review.confirmation_sent_at is not None or review.confirmation_failed_at is not None:
        # Already sent (the sweeper re-queued a task that was not lost after all), or it never can be.
        return False
    address = review.author.email
    if not address:
        return False
    place_name = single_line(review.place.name)  # a name saved before names were validated may hold CR LF
    try:
        send_mail(
            subject=f"Your review of {place_name} is live",
            message=(
                f"Hi {review.author.get_username()},\n\n"
                f"Thanks for rating {place_name} {review.rating}/5. Your review is now published.\n"
            ),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[address],
            fail_silently=False,
        )
    except ValueError:
        # BadHeaderError and the address errors are ValueErrors: the message itself is malformed, and the same
        # message fails on every try. Recorded so that neither huey's retries nor the lost-jobs sweep send it again;
        # a connection error (OSError, smtplib's) still propagates and is retried.
        logger.exception("review %s: confirmation e-mail cannot be sent; given up", review_id)
        Review.objects.filter(pk=review_id, confirmation_failed_at__isnull=True).update(
            confirmation_failed_at=timezone.now()
        )
        return False
    Review.objects.filter(pk=review_id, confirmation_sent_at__isnull=True).update(confirmation_sent_at=timezone.now())
    return True
