"""Writes for interactions: the append-only inbox, and retiring the popular lists.

The API only INSERTs into the inbox and answers 202; once it commits, a drain is requested
(chowist.interactions.tasks), which counts rows later, in batches (chowist.interactions.drain).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.cache import cache
from django.db import IntegrityError, connection, router, transaction
from django.utils import timezone

from chowist.core.durability import durable_commit
from chowist.interactions.drain import counter_totals, counters_add, interactions_recorded_count
from chowist.interactions.models import Interaction, InteractionKind
from chowist.interactions.selectors import popular_cache_keys
from chowist.interactions.tasks import drain_request
from chowist.places.models import Place
from observability.metrics import interactions_accepted
from workers.jobs import enqueue_on_commit

# A like or a bookmark says the same thing twice in a day: a logged-in user's repeat is answered with the first
# one and not counted again. Views are counted each time (a page seen twice was seen twice); anonymous clients
# cannot be told apart, so they are only rate-limited (chowist/core/ratelimit.py).
ONCE_A_DAY_KINDS = frozenset({InteractionKind.LIKE, InteractionKind.BOOKMARK})


PLACE_ID_MAX = 2**63 - 1


class UnknownPlace(LookupError):
    pass


class UnknownKind(ValueError):
    pass


def interaction_record(
    *, place_id: int, kind: str, user: AbstractBaseUser | AnonymousUser | None = None
) -> Interaction:
    """Accept one interaction: one INSERT into the inbox (and, in sync mode, the counting in the same transaction)."""
    if kind not in InteractionKind.values:
        raise UnknownKind(f"kind must be one of {', '.join(InteractionKind.values)}, got {str(kind)[:40]!r}")
    user_id = user.pk if user is not None and user.is_authenticated else None
    mode = settings.INTERACTIONS_MODE
    now = timezone.now()
    # An id no BIGINT holds names no place, and would fail any query that carries it (a DataError on
    # PostgreSQL, an OverflowError in SQLite's driver): answer it before the first one.
    if not 0 < place_id <= PLACE_ID_MAX:
        raise UnknownPlace(f"place {place_id} does not exist")
    if user_id is not None and kind in ONCE_A_DAY_KINDS:
        earlier = interaction_same_day_get(user_id=user_id, place_id=place_id, kind=kind, now=now)
        if earlier is not None:
            earlier.duplicate = True
            return earlier
    # No SELECT for the place first: the inbox row's foreign key checks it on commit (the constraints are
    # deferred), so the usual request is one INSERT; only a failure looks the place up. Inside a caller's
    # transaction that commit is the caller's, too late for a 404: look the place up first there.
    if connection.in_atomic_block and not Place.objects.filter(pk=place_id).exists():
        raise UnknownPlace(f"place {place_id} does not exist")
    try:
        # The 202 promises the row is kept: fsync this commit even though SQLite runs with synchronous=NORMAL.
        with durable_commit(), transaction.atomic():
            interaction = Interaction.objects.create(
                place_id=place_id,
                kind=kind,
                user_id=user_id,
                created_at=now,
                processed_at=now if mode == "sync" else None,
            )
            if mode == "sync":
                counters_add(totals=counter_totals(rows=[(place_id, kind, now)]))
            transaction.on_commit(lambda: _accepted(kind=kind, mode=mode))
            if mode != "sync":
                # The row is committed and the client gets its 202 either way: a queue hiccup must not turn into
                # a 500, and the periodic drain (or the consumer's startup drain) will count the row.
                enqueue_on_commit(drain_request, recovered_by="the periodic drain")
    except IntegrityError:
        if not Place.objects.filter(pk=place_id).exists():
            raise UnknownPlace(f"place {place_id} does not exist") from None
        raise
    return interaction


def interaction_same_day_get(*, user_id: int, place_id: int, kind: str, now: datetime) -> Interaction | None:
    """The user's earlier interaction of this kind with this place on the same UTC day, if any."""
    day_start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    # This read decides a write, and the request that writes does not pin its client to the primary
    # (chowist/core/db_routing.py): ask the database the write goes to, never a replica that may lag the
    # user's like of a moment ago.
    return (
        Interaction.objects.db_manager(router.db_for_write(Interaction))
        .filter(user_id=user_id, place_id=place_id, kind=kind, created_at__gte=day_start)
        .order_by("id")
        .first()
    )


def _accepted(*, kind: str, mode: str) -> None:
    interactions_accepted.labels(kind=kind, mode="sync" if mode == "sync" else "queued").inc()
    if mode == "sync":
        interactions_recorded_count(kinds=Counter({kind: 1}))


def popular_cache_invalidate() -> None:
    """Forget every cached popular list (a review changed the scores)."""
    from chowist.core.page_cache import POPULAR, page_cache_invalidate

    cache.delete_many(popular_cache_keys())
    page_cache_invalidate(POPULAR)
