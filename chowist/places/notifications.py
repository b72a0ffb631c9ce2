"""The e-mails about places and reviews (sent by chowist.places.tasks)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.utils import timezone

from chowist.places.models import Review

logger = logging.getLogger(__name__)


def review_confirmation_send(*, review_id: int) -> bool:
    """Tell a review's author it is published; False when there is nobody to tell (review gone, no address)."""
    review = Review.objects.select_related("author", "place").filter(pk=review_id).first()
    if review is None:
        logger.info("review %s no longer exists; no confirmation sent", review_id)
        return False
    if review.confirmation_sent_at is not None:
        # Already sent: the sweeper re-queued a task that was not lost after all.
        return False
    address = review.author.email
    if not address:
        return False
    send_mail(
        subject=f"Your review of {review.place.name} is live",
        message=(
            f"Hi {review.author.get_username()},\n\n"
            f"Thanks for rating {review.place.name} {review.rating}/5. Your review is now published.\n"
        ),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[address],
        fail_silently=False,
    )
    Review.objects.filter(pk=review_id, confirmation_sent_at__isnull=True).update(confirmation_sent_at=timezone.now())
    return True
