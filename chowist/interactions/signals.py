"""Receivers of the interactions app: reviews retire the popular lists; the consumer's start drains the inbox."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from chowist.interactions.gauges import inbox_gauges_register
from chowist.interactions.services import popular_cache_invalidate
from chowist.interactions.tasks import drain_request
from chowist.places.models import Review
from workers.consumer import consumer_started


@receiver(post_save, sender=Review, dispatch_uid="interactions_review_saved")
@receiver(post_delete, sender=Review, dispatch_uid="interactions_review_deleted")
def _review_changed(sender: type[Review], **kwargs: Any) -> None:
    # Reviews weigh in the popular ranking: a new or deleted review retires the cached lists once it commits.
    transaction.on_commit(popular_cache_invalidate, robust=True)


@receiver(consumer_started, dispatch_uid="interactions_consumer_started")
def _consumer_started(sender: type, **kwargs: Any) -> None:
    # The inbox gauges are served with the consumer's metrics; and whatever a SIGKILL left pending is counted
    # now rather than at the next periodic drain.
    inbox_gauges_register()
    drain_request(force=True, delay_s=0)
