from django.conf import settings
from django.db import models


class InteractionKind(models.TextChoices):
    VIEW = "view", "View"
    LIKE = "like", "Like"
    BOOKMARK = "bookmark", "Bookmark"


class Interaction(models.Model):
    """Append-only inbox: one row per accepted interaction, written before the API answers 202.

    Rows are never updated except to stamp `processed_at` in the same transaction that adds them to
    the counters, so a crash anywhere leaves each row either fully counted or still pending.
    """

    place = models.ForeignKey("places.Place", on_delete=models.CASCADE, related_name="+", db_index=False)
    kind = models.CharField(max_length=16, choices=InteractionKind.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    created_at = models.DateTimeField(db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    # Set with processed_at when the drain could not count the row (unknown kind): kept for inspection, never counted.
    quarantined_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # The drain scans pending rows in id order; a partial index keeps that scan tiny.
            models.Index(fields=["id"], name="interaction_pending_idx", condition=models.Q(processed_at__isnull=True)),
            # A logged-in user's like/bookmark is looked up per place and day before it is accepted again.
            models.Index(
                fields=["user", "place", "kind", "created_at"],
                name="interaction_user_day_idx",
                condition=models.Q(user__isnull=False),
            ),
        ]

    # Set on the instance interaction_record returns when it is an earlier one (same user, place, kind and day).
    duplicate = False

    def __str__(self) -> str:
        return f"{self.kind} on place {self.place_id}"


class PlaceDailyCounter(models.Model):
    """Aggregated interactions per place per UTC day: what get_popular_items reads."""

    place = models.ForeignKey("places.Place", on_delete=models.CASCADE, related_name="daily_counters")
    day = models.DateField()
    views = models.PositiveIntegerField(default=0)
    likes = models.PositiveIntegerField(default=0)
    bookmarks = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["place", "day"], name="one_counter_per_place_day")]
        indexes = [models.Index(fields=["day", "place"], name="counter_day_place_idx")]

    def __str__(self) -> str:
        return f"{self.place_id} {self.day}: {self.views}/{self.likes}/{self.bookmarks}"
