"""Receivers of the places app: a committed change to a place, its categories or its reviews retires the cached
pages that show it; the consumer's start re-queues thumbnails and e-mails a SIGKILL lost."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from chowist.core.page_cache import PLACES, SITE, page_cache_invalidate, place_generation
from chowist.places.models import Category, Place, Review
from chowist.places.tasks import requeue_lost_jobs
from workers.consumer import consumer_started


def _retire(*generations: str) -> None:
    # After the commit: a reader that renders before it still sees the old rows, and stamps them with the
    # old tokens this replaces. robust: the write has happened; a cache outage must not turn it into a 500.
    transaction.on_commit(lambda: page_cache_invalidate(*generations), robust=True)


@receiver(post_save, sender=Place, dispatch_uid="places_page_cache_place_saved")
@receiver(post_delete, sender=Place, dispatch_uid="places_page_cache_place_deleted")
def _place_changed(sender: type[Place], instance: Place, **kwargs: Any) -> None:
    _retire(PLACES, place_generation(instance.pk))


@receiver(post_save, sender=Review, dispatch_uid="places_page_cache_review_saved")
@receiver(post_delete, sender=Review, dispatch_uid="places_page_cache_review_deleted")
def _review_changed(sender: type[Review], instance: Review, **kwargs: Any) -> None:
    _retire(PLACES, place_generation(instance.place_id))


@receiver(m2m_changed, sender=Place.categories.through, dispatch_uid="places_page_cache_categories_changed")
def _categories_changed(sender: type, instance: Place | Category, action: str, **kwargs: Any) -> None:
    if action.startswith("post_"):
        # From the place's side one place changed; from a category's side, any number: retire them all.
        if isinstance(instance, Place):
            _retire(PLACES, place_generation(instance.pk))
        else:
            _retire(SITE)


@receiver(post_save, sender=Category, dispatch_uid="places_page_cache_category_saved")
@receiver(post_delete, sender=Category, dispatch_uid="places_page_cache_category_deleted")
def _category_changed(sender: type[Category], **kwargs: Any) -> None:
    _retire(SITE)


@receiver(consumer_started, dispatch_uid="places_consumer_started")
def _consumer_started(sender: type, **kwargs: Any) -> None:
    # A consumer usually starts again right after the one that lost the tasks: sweep now, not in 5 minutes.
    requeue_lost_jobs()
