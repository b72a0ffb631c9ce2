from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse

from chowist.core.validators import validate_single_line

RATING_MIN = 1
RATING_MAX = 5


class Category(models.Model):
    name = models.CharField(max_length=100, unique=True, validators=[validate_single_line])
    slug = models.SlugField(max_length=100, unique=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name


class Place(models.Model):
    # One-line values: the name is in e-mail subjects, all of them in log lines (chowist/core/validators.py).
    name = models.CharField(max_length=200, validators=[validate_single_line])
    description = models.TextField(blank=True)
    address = models.CharField(max_length=255, blank=True, validators=[validate_single_line])
    city = models.CharField(max_length=100, blank=True, db_index=True, validators=[validate_single_line])
    phone = models.CharField(max_length=40, blank=True, validators=[validate_single_line])
    categories = models.ManyToManyField(Category, related_name="places", blank=True)
    min_party_size = models.PositiveSmallIntegerField(default=1)
    max_party_size = models.PositiveSmallIntegerField(default=8)
    photo = models.ImageField(upload_to="places/photos/", blank=True)
    thumbnail = models.ImageField(upload_to="places/thumbs/", blank=True)
    # Denormalised on review writes so the list can order and show ratings without aggregating.
    review_count = models.PositiveIntegerField(default=0)
    rating_sum = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        indexes = [
            # The list's ORDER BY name, id with LIMIT/OFFSET walks this index instead of sorting the table.
            models.Index(fields=["name", "id"], name="place_name_id_idx"),
            models.Index(fields=["min_party_size", "max_party_size"], name="place_party_idx"),
            models.Index(fields=["-review_count", "id"], name="place_review_count_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("places:detail", kwargs={"pk": self.pk})

    @property
    def average_rating(self) -> float | None:
        return round(self.rating_sum / self.review_count, 2) if self.review_count else None


class Review(models.Model):
    place = models.ForeignKey(Place, on_delete=models.CASCADE, related_name="reviews")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reviews")
    rating = models.PositiveSmallIntegerField(validators=[MinValueValidator(RATING_MIN), MaxValueValidator(RATING_MAX)])
    comment = models.TextField(blank=True, max_length=5000)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Stamped once the author's confirmation e-mail went out: the sweeper re-sends what a lost task never did.
    confirmation_sent_at = models.DateTimeField(null=True, blank=True)
    # Stamped when the e-mail can never be sent (a malformed header, an address the mail library refuses): the
    # task gives up at once instead of retrying, and the sweeper does not queue it again.
    confirmation_failed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["place", "author"], name="one_review_per_user_per_place"),
            models.CheckConstraint(
                condition=models.Q(rating__gte=RATING_MIN) & models.Q(rating__lte=RATING_MAX), name="rating_1_to_5"
            ),
        ]
        indexes = [
            models.Index(fields=["place", "-created_at"], name="review_place_recent_idx"),
            models.Index(fields=["created_at"], name="review_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.author} on {self.place}: {self.rating}"


class DemoSeedLedger(models.Model):
    """How many rows seed_demo has written to a table that has no natural key to deduplicate on.

    Interactions are an append-only log: a re-run cannot tell its own rows from real traffic, so it reads
    this count and only tops up the difference. Written in the same transaction as the rows it counts.
    """

    table = models.CharField(max_length=100, unique=True)
    rows = models.BigIntegerField(default=0)
    seed = models.BigIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.table}: {self.rows} demo rows (seed {self.seed})"
