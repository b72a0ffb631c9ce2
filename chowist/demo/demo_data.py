"""Deterministic, idempotent demo data at load-test scale (what `manage.py seed_demo` runs).

Speed comes from raw `executemany` in one transaction per table (the ORM's per-object overhead would cost
minutes at a million rows). Idempotency comes from natural keys where a table has one (category slug,
username, place name + address, one review per user per place: INSERT ... ON CONFLICT DO NOTHING) and from
DemoSeedLedger for the interactions log, which has none. Nothing is ever deleted or overwritten, except
the denormalised Place.review_count/rating_sum, which are recomputed from the reviews.

Every table draws from its own random stream (seeded by seed + table), so one table's size does not
shift another table's data. Timestamps are relative to the moment of the run.
"""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import Count, Model, Sum

from chowist.accounts.models import Profile
from chowist.interactions.drain import COUNTER_COLUMNS, KIND_COLUMN, counters_add
from chowist.interactions.models import Interaction
from chowist.places.models import RATING_MAX, RATING_MIN, Category, DemoSeedLedger, Place, Review

DEFAULT_PLACES = 10_000
DEFAULT_USERS = 2_000
DEFAULT_REVIEWS = 200_000
DEFAULT_INTERACTIONS = 1_000_000
DEFAULT_SEED = 42
DEMO_PASSWORD = "chowist-demo"  # noqa: S105 - documented demo credential, never a real account
# The account the load test uploads photos with (experiments/locust/locustfile.py logs in as it).
DEMO_EDITOR = "lab-editor"
DEMO_USERNAME_PREFIX = "demo"
INTERACTION_WINDOW_DAYS = 30
BATCH_ROWS = 20_000

# Skew exponents for Zipf-like popularity: a handful of famous places and many quiet ones.
REVIEW_SKEW = 0.8
INTERACTION_SKEW = 0.9
CATEGORY_SKEW = 1.0
INTERACTION_KINDS = ("view", "like", "bookmark")
INTERACTION_KIND_CUM_WEIGHTS = (0.85, 0.95, 1.0)
INTERACTION_USER_SHARE = 0.3

CATEGORIES = [
    "Pizza", "Burgers", "Mexican", "Italian", "Japanese", "Chinese", "Thai", "Indian", "Coffee", "Bakery",
    "Vegetarian", "Seafood", "Steakhouse", "Korean", "Vietnamese", "Mediterranean", "Greek", "French",
    "Brunch", "Bar", "Ramen", "Sushi", "Tapas", "Ethiopian", "Lebanese", "Barbecue", "Vegan", "Dessert",
    "Peruvian", "Turkish",
]  # fmt: skip
CITIES = ["San Francisco", "Oakland", "Berkeley", "San Jose", "Palo Alto", "Sacramento", "Portland", "Seattle"]
CITY_WEIGHTS = [30, 12, 8, 14, 5, 6, 12, 13]
STREETS = ["Main St", "Market St", "Valencia St", "Mission St", "Broadway", "College Ave", "Elm St", "Oak Ave",
           "Pine St", "Castro St", "2nd Ave", "Lake Blvd", "Harbor Way", "Park Ave", "Sunset Blvd"]  # fmt: skip
NAME_FIRST = ["Golden", "Little", "Blue", "Red", "Happy", "Old", "Green", "Lucky", "Silver", "Urban", "Rustic",
              "Spicy", "Sunny", "Velvet", "Humble", "Wild", "Copper", "Salty", "Sweet", "Hidden"]  # fmt: skip
NAME_SECOND = ["Dragon", "Fork", "Table", "Spoon", "Oven", "Kitchen", "Garden", "Lantern", "Harbor", "Bowl",
               "Pepper", "Olive", "Tiger", "Basil", "Anchor", "Noodle", "Hearth", "Barrel", "Fig", "Crane"]  # fmt: skip
NAME_SUFFIX = ["", "", "", " Bistro", " Cafe", " House", " Grill", " Eatery", " & Co.", " Diner"]
FIRST_NAMES = ["Ana", "Ben", "Chen", "Dara", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jia", "Kofi", "Lena",
               "Mateo", "Nia", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tariq", "Uma", "Vik", "Wen", "Yara"]  # fmt: skip
LAST_NAMES = ["Garcia", "Kim", "Nguyen", "Smith", "Okafor", "Rossi", "Patel", "Cohen", "Silva", "Tanaka",
              "Müller", "Dubois", "Haddad", "Larsen", "Novak"]  # fmt: skip
COMMENTS = {
    1: ["Not coming back.", "Cold food and a long wait.", ""],
    2: ["Disappointing for the price.", "Service was slow.", ""],
    3: ["Fine, nothing special.", "Decent portions.", ""],
    4: ["Really good, will return.", "Great flavours, a bit loud.", "", ""],
    5: ["Outstanding!", "Best in town.", "Friendly staff and amazing food.", "", ""],
}
PARTY_MIN_CHOICES = [1, 1, 1, 1, 2, 2, 2, 4, 6]
PARTY_SPAN_CHOICES = [3, 5, 5, 7, 7, 11, 19, 39]


@dataclass
class SeedReport:
    added: dict[str, int] = field(default_factory=dict)

    def add(self, table: str, rows: int) -> None:
        self.added[table] = self.added.get(table, 0) + rows


def _rng(seed: int, table: str) -> random.Random:
    return random.Random(f"{seed}:{table}")


def _zipf_cum_weights(n: int, skew: float, rng: random.Random) -> tuple[list[int], list[float]]:
    """A random ranking of range(n) and cumulative Zipf weights over it (rank 0 is the most popular)."""
    order = list(range(n))
    rng.shuffle(order)
    return order, list(itertools.accumulate(1.0 / (rank + 1) ** skew for rank in range(n)))


def _adapter() -> Callable[[datetime], Any]:
    return connection.ops.adapt_datetimefield_value


def _insert_sql(model: type[Model], columns: Sequence[str], conflict: Sequence[str] | None) -> str:
    quote = connection.ops.quote_name
    cols = ", ".join(quote(c) for c in columns)
    marks = ", ".join(["%s"] * len(columns))
    sql = f"INSERT INTO {quote(model._meta.db_table)} ({cols}) VALUES ({marks})"  # noqa: S608 - identifiers from _meta
    if conflict:
        sql += f" ON CONFLICT ({', '.join(quote(c) for c in conflict)}) DO NOTHING"
    return sql


def _insert_rows(
    model: type[Model], columns: Sequence[str], rows: Iterable[Sequence[Any]], *, conflict: Sequence[str] | None
) -> None:
    """executemany in batches; the caller holds the transaction."""
    sql = _insert_sql(model, columns, conflict)
    iterator = iter(rows)
    with connection.cursor() as cursor:
        while batch := list(itertools.islice(iterator, BATCH_ROWS)):
            cursor.executemany(sql, batch)


def _count(model: type[Model]) -> int:
    return model._default_manager.count()


def _slugify(name: str) -> str:
    return name.lower().replace(" ", "-")


# --- categories ---------------------------------------------------------------------------------------
def seed_categories(report: SeedReport) -> dict[str, int]:
    before = _count(Category)
    with transaction.atomic():
        _insert_rows(Category, ["name", "slug"], [(n, _slugify(n)) for n in CATEGORIES], conflict=["slug"])
    report.add("categories", _count(Category) - before)
    return dict(Category.objects.filter(slug__in=[_slugify(n) for n in CATEGORIES]).values_list("slug", "id"))


# --- users --------------------------------------------------------------------------------------------
def demo_username(index: int) -> str:
    return f"{DEMO_USERNAME_PREFIX}{index:05d}"


def seed_users(*, count: int, seed: int, now: datetime, report: SeedReport) -> list[int]:
    """Demo users demo00000..; ids in index order. One password hash shared by all (hashing is the slow part)."""
    rng = _rng(seed, "users")
    usernames = [demo_username(i) for i in range(count)]
    existing = set(User.objects.filter(username__in=usernames).values_list("username", flat=True))
    adapt = _adapter()
    rows = []
    for i, username in enumerate(usernames):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        joined = now - timedelta(days=rng.uniform(30, 3 * 365))
        if username not in existing:
            rows.append((username, first, last, f"{username}@example.com", adapt(joined), i))
    if rows:
        password = make_password(DEMO_PASSWORD)
        columns = ["password", "is_superuser", "username", "first_name", "last_name", "email", "is_staff"]
        columns += ["is_active", "date_joined"]
        with transaction.atomic():
            _insert_rows(
                User,
                columns,
                ((password, False, u, f, la, e, False, True, j) for u, f, la, e, j, _ in rows),
                conflict=["username"],
            )
            report.add("users", len(rows))
    ids = dict(User.objects.filter(username__in=usernames).values_list("username", "id"))
    user_ids = [ids[u] for u in usernames]
    # Profiles the post_save hook would have made; a user who already has one keeps it.
    with_profile = set(Profile.objects.filter(user_id__in=user_ids).values_list("user_id", flat=True))
    missing = [uid for uid in user_ids if uid not in with_profile]
    if missing:
        with transaction.atomic():
            _insert_rows(
                Profile,
                ["user_id", "bio", "address", "updated_at"],
                ((uid, "", "", adapt(now)) for uid in missing),
                conflict=["user_id"],
            )
        report.add("profiles", len(missing))
    return user_ids


# --- places -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DemoPlace:
    name: str
    address: str
    city: str
    phone: str
    description: str
    min_party: int
    max_party: int
    categories: tuple[str, ...]
    created_at: datetime


def demo_places(*, count: int, seed: int, now: datetime) -> list[DemoPlace]:
    rng = _rng(seed, "places")
    slugs = [_slugify(n) for n in CATEGORIES]
    category_order, category_cum = _zipf_cum_weights(len(slugs), CATEGORY_SKEW, rng)
    places = []
    for i in range(count):
        name = f"{rng.choice(NAME_FIRST)} {rng.choice(NAME_SECOND)}{rng.choice(NAME_SUFFIX)}"
        n_categories = 1 + (rng.random() < 0.5) + (rng.random() < 0.15)
        picked = {slugs[category_order[j]] for j in rng.choices(range(len(slugs)), cum_weights=category_cum, k=3)}
        categories = tuple(sorted(picked))[:n_categories]
        low = rng.choice(PARTY_MIN_CHOICES)
        city = rng.choices(CITIES, weights=CITY_WEIGHTS)[0]
        places.append(
            DemoPlace(
                name=name,
                # The street number is the place's index: (name, address) is unique among demo places.
                address=f"{i + 1} {rng.choice(STREETS)}",
                city=city,
                phone=f"+1-555-{rng.randrange(10_000):04d}",
                description=f"{name} serves {', '.join(categories)} in {city}.",
                min_party=low,
                max_party=low + rng.choice(PARTY_SPAN_CHOICES),
                categories=categories,
                created_at=now - timedelta(days=rng.uniform(730, 4 * 365)),
            )
        )
    return places


def seed_places(*, count: int, seed: int, now: datetime, category_ids: dict[str, int], report: SeedReport) -> list[int]:
    """Insert the demo places that are missing; their ids in index order."""
    places = demo_places(count=count, seed=seed, now=now)
    addresses = [p.address for p in places]

    def existing_ids() -> dict[tuple[str, str], int]:
        found: dict[tuple[str, str], int] = {}
        for chunk_start in range(0, len(addresses), 5_000):
            chunk = addresses[chunk_start : chunk_start + 5_000]
            for pk, name, address in Place.objects.filter(address__in=chunk).values_list("id", "name", "address"):
                found.setdefault((name, address), pk)
        return found

    known = existing_ids()
    new = [p for p in places if (p.name, p.address) not in known]
    if new:
        adapt = _adapter()
        columns = ["name", "description", "address", "city", "phone", "min_party_size", "max_party_size"]
        columns += ["photo", "thumbnail", "review_count", "rating_sum", "created_at", "updated_at"]
        with transaction.atomic():
            _insert_rows(
                Place,
                columns,
                (
                    (
                        p.name,
                        p.description,
                        p.address,
                        p.city,
                        p.phone,
                        p.min_party,
                        p.max_party,
                        "",
                        "",
                        0,
                        0,
                        stamp,
                        stamp,
                    )
                    for p in new
                    for stamp in [adapt(p.created_at)]
                ),
                conflict=None,
            )
            known = existing_ids()
            # Categories only for the places inserted now: an edited place keeps the categories it was given.
            through = Place.categories.through
            _insert_rows(
                through,
                ["place_id", "category_id"],
                ((known[(p.name, p.address)], category_ids[slug]) for p in new for slug in p.categories),
                conflict=["place_id", "category_id"],
            )
        report.add("places", len(new))
    return [known[(p.name, p.address)] for p in places]


# --- reviews ------------------------------------------------------------------------------------------
def review_counts(*, n_places: int, n_users: int, total: int, rng: random.Random) -> list[int]:
    """Reviews per place index: Zipf-skewed, at most one per user per place, summing to `total` (capped)."""
    total = min(total, n_places * n_users)
    order, cum = _zipf_cum_weights(n_places, REVIEW_SKEW, rng)
    weights = [cum[0]] + [b - a for a, b in itertools.pairwise(cum)]
    scale = total / cum[-1] if cum else 0
    counts = [0] * n_places
    for rank, place_index in enumerate(order):
        counts[place_index] = min(n_users, int(weights[rank] * scale))
    shortfall = total - sum(counts)
    # The cap pushed the head's overflow out: hand it down the ranking, one review at a time per place.
    while shortfall > 0:
        for place_index in order:
            if shortfall == 0:
                break
            if counts[place_index] < n_users:
                counts[place_index] += 1
                shortfall -= 1
    return counts


def demo_reviews(*, n_places: int, n_users: int, total: int, seed: int, now: datetime) -> Iterator[tuple]:
    """(place index, user index, rating, comment, created_at) rows."""
    rng = _rng(seed, "reviews")
    counts = review_counts(n_places=n_places, n_users=n_users, total=total, rng=rng)
    users = range(n_users)
    for place_index, k in enumerate(counts):
        if k == 0:
            continue
        # Each place has a quality; ratings centre above the middle, as on every review site.
        centre = 3.9 + rng.gauss(0, 0.6)
        for user_index in rng.sample(users, k):
            rating = min(RATING_MAX, max(RATING_MIN, round(rng.gauss(centre, 1.0))))
            created = now - timedelta(seconds=rng.uniform(0, 2 * 365 * 86_400))
            yield place_index, user_index, rating, rng.choice(COMMENTS[rating]), created


def seed_reviews(
    *, total: int, seed: int, now: datetime, place_ids: list[int], user_ids: list[int], report: SeedReport
) -> None:
    if not place_ids or not user_ids:
        return
    adapt = _adapter()
    before = _count(Review)
    rows = (
        (place_ids[p], user_ids[u], rating, comment, adapt(created), adapt(created), adapt(created))
        for p, u, rating, comment, created in demo_reviews(
            n_places=len(place_ids), n_users=len(user_ids), total=total, seed=seed, now=now
        )
    )
    with transaction.atomic():
        _insert_rows(
            Review,
            # Demo reviews count as confirmed: the lost-job sweeper must not e-mail their authors.
            ["place_id", "author_id", "rating", "comment", "created_at", "updated_at", "confirmation_sent_at"],
            rows,
            conflict=["place_id", "author_id"],
        )
    added = _count(Review) - before
    report.add("reviews", added)
    if added:
        places_recount(now=now)


def places_recount(*, now: datetime) -> int:
    """Make Place.review_count/rating_sum agree with the reviews; bump updated_at where they change. Returns places fixed."""
    actual = {
        row["place_id"]: (row["n"], row["total"])
        for row in Review.objects.order_by().values("place_id").annotate(n=Count("id"), total=Sum("rating"))
    }
    changed = [
        (n, total, pk)
        for pk, count, rating_sum in Place.objects.values_list("id", "review_count", "rating_sum")
        for n, total in [actual.get(pk, (0, 0))]
        if (n, total) != (count, rating_sum)
    ]
    if changed:
        quote = connection.ops.quote_name
        sql = (
            f"UPDATE {quote(Place._meta.db_table)} SET review_count = %s, rating_sum = %s, "  # noqa: S608
            f"updated_at = %s WHERE id = %s"
        )
        stamp = _adapter()(now)
        with transaction.atomic(), connection.cursor() as cursor:
            for start in range(0, len(changed), BATCH_ROWS):
                cursor.executemany(sql, [(n, t, stamp, pk) for n, t, pk in changed[start : start + BATCH_ROWS]])
    return len(changed)


# --- interactions -------------------------------------------------------------------------------------
INTERACTIONS_LEDGER = "interactions"


def demo_interactions(
    *, total: int, seed: int, now: datetime, n_places: int, n_users: int
) -> Iterator[list[tuple[int, str, int | None, datetime, datetime]]]:
    """Chunks of (place index, kind, user index or None, created_at, processed_at), spread over 30 days."""
    rng = _rng(seed, "interactions")
    order, cum = _zipf_cum_weights(n_places, INTERACTION_SKEW, rng)
    window = INTERACTION_WINDOW_DAYS * 86_400
    for start in range(0, total, BATCH_ROWS):
        k = min(BATCH_ROWS, total - start)
        places = rng.choices(order, cum_weights=cum, k=k)
        kinds = rng.choices(INTERACTION_KINDS, cum_weights=INTERACTION_KIND_CUM_WEIGHTS, k=k)
        chunk = []
        for place_index, kind in zip(places, kinds, strict=True):
            user = rng.randrange(n_users) if n_users and rng.random() < INTERACTION_USER_SHARE else None
            created = now - timedelta(seconds=rng.random() * window)
            chunk.append((place_index, kind, user, created, created + timedelta(seconds=0.05 + rng.random())))
        yield chunk


def seed_interactions(
    *, total: int, seed: int, now: datetime, place_ids: list[int], user_ids: list[int], report: SeedReport
) -> None:
    """Already-processed inbox rows plus the PlaceDailyCounter rows that count them, in one transaction."""
    if not place_ids:
        return
    ledger = DemoSeedLedger.objects.filter(table=INTERACTIONS_LEDGER).first()
    done = ledger.rows if ledger else 0
    if done >= total:
        return
    adapt = _adapter()
    counters: dict[tuple[int, Any], list[int]] = defaultdict(lambda: [0, 0, 0])
    slot = {kind: COUNTER_COLUMNS.index(KIND_COLUMN[kind]) for kind in INTERACTION_KINDS}
    position = 0

    def rows() -> Iterator[tuple]:
        nonlocal position
        for chunk in demo_interactions(total=total, seed=seed, now=now, n_places=len(place_ids), n_users=len(user_ids)):
            # Rows an earlier run wrote are generated again (same stream) and skipped.
            skip = max(0, min(len(chunk), done - position))
            position += len(chunk)
            for place_index, kind, user_index, created, processed in chunk[skip:]:
                place_id = place_ids[place_index]
                counters[(place_id, created.date())][slot[kind]] += 1
                user_id = user_ids[user_index] if user_index is not None else None
                yield place_id, kind, user_id, adapt(created), adapt(processed)

    columns = ["place_id", "kind", "user_id", "created_at", "processed_at"]
    with transaction.atomic():
        if connection.vendor == "postgresql":
            _copy_rows(Interaction, columns, rows())
        else:
            _insert_rows(Interaction, columns, rows(), conflict=None)
        # Adds to a day's counter rather than overwriting it: real traffic may already have counted that day.
        counters_add(totals=counters)
        DemoSeedLedger.objects.update_or_create(table=INTERACTIONS_LEDGER, defaults={"rows": total, "seed": seed})
    report.add("interactions", total - done)
    report.add("daily counters touched", len(counters))


def _copy_rows(model: type[Model], columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """PostgreSQL COPY: an order of magnitude faster than executemany for a million rows."""
    quote = connection.ops.quote_name
    sql = f"COPY {quote(model._meta.db_table)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)


# --- entry point --------------------------------------------------------------------------------------
def seed_demo(
    *,
    places: int = DEFAULT_PLACES,
    users: int = DEFAULT_USERS,
    reviews: int = DEFAULT_REVIEWS,
    interactions: int = DEFAULT_INTERACTIONS,
    seed: int = DEFAULT_SEED,
    now: datetime | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> SeedReport:
    now = now or datetime.now(UTC)
    report = SeedReport()
    category_ids = seed_categories(report)
    progress("categories done")
    user_ids = seed_users(count=users, seed=seed, now=now, report=report)
    progress("users done")
    place_ids = seed_places(count=places, seed=seed, now=now, category_ids=category_ids, report=report)
    progress("places done")
    seed_reviews(total=reviews, seed=seed, now=now, place_ids=place_ids, user_ids=user_ids, report=report)
    progress("reviews done")
    seed_interactions(total=interactions, seed=seed, now=now, place_ids=place_ids, user_ids=user_ids, report=report)
    progress("interactions done")
    if any(report.added.values()):
        # Bulk inserts send no signals: retire every cached page, which may predate these rows.
        from chowist.core.page_cache import SITE, page_cache_invalidate

        page_cache_invalidate(SITE)
    return report


def demo_editor_ensure() -> bool:
    """The demo editor (DEMO_EDITOR / DEMO_PASSWORD, may change places and upload photos). True when created."""
    from django.contrib.auth.models import Permission

    user, created = User.objects.get_or_create(username=DEMO_EDITOR, defaults={"email": f"{DEMO_EDITOR}@example.com"})
    if created or not user.check_password(DEMO_PASSWORD):
        user.set_password(DEMO_PASSWORD)
        user.save(update_fields=["password"])
    user.user_permissions.add(Permission.objects.get(codename="change_place", content_type__app_label="places"))
    return created
