"""Receivers of the places app: the consumer's start re-queues thumbnails and e-mails a SIGKILL lost."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from chowist.places.tasks import requeue_lost_jobs
from workers.consumer import consumer_started


@receiver(consumer_started, dispatch_uid="places_consumer_started")
def _consumer_started(sender: type, **kwargs: Any) -> None:
    # A consumer usually starts again right after the one that lost the tasks: sweep now, not in 5 minutes.
    requeue_lost_jobs()
