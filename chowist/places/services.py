"""Writes for places, their photos and reviews."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from chowist.places.models import RATING_MAX, RATING_MIN, Place, Review
from chowist.places.photos import InvalidPhoto, photo_reencode, photo_validate
from chowist.places.tasks import make_place_thumbnail, send_review_confirmation
from workers.jobs import enqueue_on_commit

# What redoes a thumbnail or confirmation whose task could not be queued (named in the enqueue warning).
LOST_JOBS_SWEEP = "requeue_lost_jobs (the lost-jobs sweep)"
PLACE_EDITABLE_FIELDS = ("name", "description", "address", "city", "phone", "min_party_size", "max_party_size")


class InvalidRating(ValueError):
    pass


@dataclass(frozen=True)
class ReviewResult:
    review: Review
    created: bool


def place_update(*, place: Place, data: dict[str, Any]) -> Place:
    """Apply an edit. `updated_at` moves, which is what retires the detail page's cached fragment."""
    with transaction.atomic():
        changed = [field for field in PLACE_EDITABLE_FIELDS if field in data]
        for field in changed:
            setattr(place, field, data[field])
        # Only the edited columns: review_count and rating_sum move under concurrent reviews, and this
        # instance's copies of them may already be stale.
        place.save(update_fields=[*changed, "updated_at"])
        if "categories" in data:
            place.categories.set(data["categories"])
    return place


def place_photo_set(*, place: Place, uploaded: UploadedFile) -> Place:
    """Validate, store as the place's photo, and queue its thumbnail once the change commits."""
    extension = photo_validate(uploaded=uploaded)
    # Stored re-encoded, never as sent: no EXIF (GPS, camera), no bytes after the image (photos.photo_reencode).
    clean = photo_reencode(uploaded=uploaded)
    with transaction.atomic():
        place.photo.save(f"{place.pk}-{uuid.uuid4().hex}.{extension}", clean, save=False)
        place.thumbnail = ""
        place.save(update_fields=["photo", "thumbnail", "updated_at"])
        # The photo is committed and the client is told 202: a queue outage must not turn that into a 500. The
        # thumbnail is not lost either: a photo without one is what requeue_lost_jobs looks for.
        enqueue_on_commit(make_place_thumbnail, place.pk, recovered_by=LOST_JOBS_SWEEP)
    return place


def review_submit(*, place: Place, author: AbstractBaseUser, rating: int, comment: str = "") -> ReviewResult:
    """Create the author's review of `place`, or update it: one review per user per place.

    Two submissions racing (double click, two tabs) both see "no review yet" and both INSERT; the loser
    hits the unique constraint. It retries once, and the retry finds the winner's row and updates it.
    """
    if not RATING_MIN <= rating <= RATING_MAX:
        raise InvalidRating(f"rating must be between {RATING_MIN} and {RATING_MAX}")
    try:
        return _review_write(place=place, author=author, rating=rating, comment=comment)
    except IntegrityError:
        return _review_write(place=place, author=author, rating=rating, comment=comment)


def _review_write(*, place: Place, author: AbstractBaseUser, rating: int, comment: str) -> ReviewResult:
    with transaction.atomic():
        existing = Review.objects.select_for_update().filter(place=place, author=author).first()
        now = timezone.now()
        if existing is not None:
            delta = rating - existing.rating
            existing.rating = rating
            existing.comment = comment
            existing.save(update_fields=["rating", "comment", "updated_at"])
            Place.objects.filter(pk=place.pk).update(rating_sum=F("rating_sum") + delta, updated_at=now)
            return ReviewResult(review=existing, created=False)
        # .create(), not bulk_create: post_save(created=True) is what counts reviews for the metrics.
        review = Review.objects.create(place=place, author=author, rating=rating, comment=comment)
        Place.objects.filter(pk=place.pk).update(
            review_count=F("review_count") + 1, rating_sum=F("rating_sum") + rating, updated_at=now
        )
        # The review is committed; a queue outage must not turn that into a 500, and the e-mail is not lost: an
        # unconfirmed review is what requeue_lost_jobs looks for.
        enqueue_on_commit(send_review_confirmation, review.pk, recovered_by=LOST_JOBS_SWEEP)
        return ReviewResult(review=review, created=True)


def review_delete(*, review: Review) -> None:
    """Remove a review and take it out of its place's denormalised count and rating sum."""
    with transaction.atomic():
        locked = Review.objects.select_for_update().filter(pk=review.pk).first()
        if locked is None:
            return
        Place.objects.filter(pk=locked.place_id).update(
            review_count=F("review_count") - 1, rating_sum=F("rating_sum") - locked.rating, updated_at=timezone.now()
        )
        locked.delete()


def place_photos_reencode() -> tuple[int, int]:
    """Re-encode every stored photo (uploaded before uploads were): (re-encoded, skipped as unreadable).

    Each is written under a new name and the row pointed at it before the original is deleted, so a reader never
    finds a photo missing; the thumbnail, made from pixels, stays valid.
    """
    done = skipped = 0
    for place in Place.objects.exclude(photo="").only("pk", "photo").iterator():
        old_name = place.photo.name
        try:
            with place.photo.open("rb") as original:
                extension = photo_validate(uploaded=original)
                clean = photo_reencode(uploaded=original)
        except (InvalidPhoto, OSError):
            skipped += 1
            continue
        place.photo.save(f"{place.pk}-{uuid.uuid4().hex}.{extension}", clean, save=False)
        updated = Place.objects.filter(pk=place.pk, photo=old_name).update(photo=place.photo.name)
        # A new upload meanwhile wins: the copy made here is the one to delete, else the original is.
        place.photo.storage.delete(old_name if updated else place.photo.name)
        done += bool(updated)
    return done, skipped
