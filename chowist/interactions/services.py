"""Writes for interactions: the append-only inbox and its drain into per-place daily counters.

The API only INSERTs into the inbox and answers 202; the drain counts rows later, in batches. A batch stamps
`processed_at` on its rows in the same transaction that adds them to the counters, so a crash anywhere
(SIGKILL mid-batch included) leaves every row either counted once or still pending, never half-counted.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from chowist.interactions.models import Interaction, InteractionKind, PlaceDailyCounter
from chowist.places.models import Place

logger = logging.getLogger(__name__)

# How long one drain task keeps taking batches before handing over to a fresh task: bounds the task's
# duration (and so a graceful shutdown) under a steady stream of interactions.
DRAIN_TASK_MAX_S = 2.0

_KIND_COLUMN = {InteractionKind.VIEW: "views", InteractionKind.LIKE: "likes", InteractionKind.BOOKMARK: "bookmarks"}


class UnknownPlace(LookupError):
    pass


class UnknownKind(ValueError):
    pass


class DrainConflict(RuntimeError):
    """Rows picked for a batch were stamped by someone else meanwhile: roll the batch back."""


@dataclass(frozen=True)
class DrainResult:
    counted: int
    batches: int
    backlog_left: bool


def interaction_record(
    *, place_id: int, kind: str, user: AbstractBaseUser | AnonymousUser | None = None
) -> Interaction:
    """Accept one interaction: one INSERT into the inbox (and, in sync mode, the counting in the same transaction)."""
    if kind not in InteractionKind.values:
        raise UnknownKind(f"kind must be one of {', '.join(InteractionKind.values)}, got {str(kind)[:40]!r}")
    if not Place.objects.filter(pk=place_id).exists():
        raise UnknownPlace(f"place {place_id} does not exist")
    user_id = user.pk if user is not None and user.is_authenticated else None
    mode = settings.INTERACTIONS_MODE
    now = timezone.now()
    with transaction.atomic():
        interaction = Interaction.objects.create(
            place_id=place_id, kind=kind, user_id=user_id, created_at=now, processed_at=now if mode == "sync" else None
        )
        if mode == "sync":
            _counters_add(rows=[(place_id, kind, now)])
        transaction.on_commit(lambda: _accepted(kind=kind, mode=mode))
    return interaction


def _accepted(*, kind: str, mode: str) -> None:
    from observability.metrics import interactions_accepted

    interactions_accepted.labels(kind=kind, mode="sync" if mode == "sync" else "queued").inc()
    if mode == "sync":
        _recorded(kinds=Counter({kind: 1}))
    else:
        from workers.queue import drain_request

        # The row is committed and the client gets its 202 either way: a queue hiccup must not turn into a
        # 500, and the periodic drain (or the consumer's startup drain) will count the row.
        try:
            drain_request()
        except Exception:
            logger.warning("drain request failed; the periodic drain will pick it up", exc_info=True)


def interactions_drain(*, batch_size: int | None = None, max_seconds: float = DRAIN_TASK_MAX_S) -> DrainResult:
    """Count pending inbox rows batch by batch until a short batch, or until max_seconds have passed."""
    size = batch_size or settings.INTERACTIONS_DRAIN_BATCH
    deadline = time.monotonic() + max_seconds
    counted = batches = 0
    while True:
        n = _drain_batch(size=size)
        counted += n
        batches += 1
        if n < size:
            # Rows committed after this batch's read enqueue their own drain (see workers.queue).
            return DrainResult(counted=counted, batches=batches, backlog_left=False)
        if time.monotonic() >= deadline:
            return DrainResult(counted=counted, batches=batches, backlog_left=True)


def _drain_batch(*, size: int) -> int:
    with transaction.atomic():
        # SKIP LOCKED lets concurrent drains on PostgreSQL take disjoint batches; SQLite ignores it and
        # serializes drains on its write lock (BEGIN IMMEDIATE), which is just as safe.
        rows = list(
            Interaction.objects.select_for_update(skip_locked=True)
            .filter(processed_at__isnull=True)
            .order_by("id")
            .values_list("id", "place_id", "kind", "created_at")[:size]
        )
        if not rows:
            return 0
        ids = [row[0] for row in rows]
        stamped = Interaction.objects.filter(id__in=ids, processed_at__isnull=True).update(processed_at=timezone.now())
        if stamped != len(ids):
            raise DrainConflict(f"{len(ids) - stamped} of {len(ids)} rows were already counted")
        _counters_add(rows=[(place_id, kind, created_at) for _, place_id, kind, created_at in rows])
        kinds = Counter(kind for _, _, kind, _ in rows)
        transaction.on_commit(lambda: _recorded(kinds=kinds))
    return len(rows)


def _counters_add(*, rows: Iterable[tuple[int, str, datetime]]) -> None:
    """Add rows to PlaceDailyCounter with one upsert (increments, so concurrent drains never lose counts)."""
    totals: dict[tuple[int, date], list[int]] = {}
    columns = ("views", "likes", "bookmarks")
    for place_id, kind, created_at in rows:
        key = (place_id, created_at.astimezone(UTC).date())
        totals.setdefault(key, [0, 0, 0])[columns.index(_KIND_COLUMN[kind])] += 1
    if not totals:
        return
    table = connection.ops.quote_name(PlaceDailyCounter._meta.db_table)
    # Sorted keys: two PostgreSQL drains lock counter rows in the same order, so they cannot deadlock.
    keys = sorted(totals)
    values_sql = ", ".join(["(%s, %s, %s, %s, %s)"] * len(keys))
    params: list[object] = []
    for place_id, day in keys:
        params.extend([place_id, day, *totals[(place_id, day)]])
    updates = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in columns)
    # Identifiers come from the model's _meta and the values are bound parameters.
    sql = f"INSERT INTO {table} (place_id, day, {', '.join(columns)}) VALUES {values_sql} ON CONFLICT (place_id, day) DO UPDATE SET {updates}"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _recorded(*, kinds: Counter[str]) -> None:
    from workers.metrics import interactions_recorded

    for kind, n in kinds.items():
        interactions_recorded.labels(kind=kind).inc(n)


def popular_cache_invalidate() -> None:
    """Forget every cached popular list (a review changed the scores)."""
    from chowist.interactions.selectors import popular_cache_keys

    cache.delete_many(popular_cache_keys())


def popular_cache_warm(*, window_days: Iterable[int] | None = None) -> int:
    """Recompute the popular lists and store them, so requests after a TTL expiry still hit; returns lists warmed."""
    from chowist.interactions.selectors import popular_cache_store, popular_compute

    windows = list(window_days or (settings.POPULAR_DEFAULT_WINDOW_DAYS,))
    for days in windows:
        popular_cache_store(window_days=days, payload=popular_compute(window_days=days))
    return len(windows)
