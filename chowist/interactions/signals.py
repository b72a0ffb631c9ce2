"""Reviews weigh in the popular ranking: a new or deleted review retires the cached lists once it commits."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from chowist.places.models import Review


@receiver(post_save, sender=Review, dispatch_uid="interactions_review_saved")
@receiver(post_delete, sender=Review, dispatch_uid="interactions_review_deleted")
def _review_changed(sender: type[Review], **kwargs: Any) -> None:
    from chowist.interactions.services import popular_cache_invalidate

    transaction.on_commit(popular_cache_invalidate, robust=True)
