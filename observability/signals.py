"""Business counters from model signals: counted only once the row's transaction commits."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models.signals import post_save

from observability import metrics


def _review_saved(sender: Any, instance: Any, created: bool, using: str, **kwargs: Any) -> None:
    if created:
        transaction.on_commit(metrics.reviews_created.inc, using=using)


def _user_saved(sender: Any, instance: Any, created: bool, using: str, **kwargs: Any) -> None:
    if created:
        transaction.on_commit(metrics.signups.inc, using=using)


def business_signals_connect() -> None:
    # chowist_interactions_accepted_total is incremented by chowist.interactions.services itself, on commit of
    # the inbox INSERT, with the mode the request ran in: a post_save receiver here would count each one twice.
    # A lazy "app_label.Model" sender: observability imports nothing of the app it instruments.
    post_save.connect(_review_saved, sender="places.Review", dispatch_uid="observability.review_created")
    post_save.connect(_user_saved, sender=get_user_model(), dispatch_uid="observability.signup")
