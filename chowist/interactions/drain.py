"""The inbox's drain into per-place daily counters.

A batch stamps `processed_at` on its rows in the same transaction that adds them to the counters, so a crash
anywhere (SIGKILL mid-batch included) leaves every row either counted once or still pending, never
half-counted. `counters_add` is the one upsert into PlaceDailyCounter (the sync mode and the demo data use it
too).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from chowist.interactions.models import Interaction, InteractionKind, PlaceDailyCounter
from workers.metrics import interactions_quarantined, interactions_recorded

logger = logging.getLogger(__name__)

# How long one drain task keeps taking batches before handing over to a fresh task: bounds the task's
# duration (and so a graceful shutdown) under a steady stream of interactions.
DRAIN_TASK_MAX_S = 2.0
# Counter rows per upsert statement: 5 bound parameters each, well under SQLite's 32766.
UPSERT_ROWS = 2000
COUNTER_COLUMNS = ("views", "likes", "bookmarks")
# Rows deleted per prune transaction: short write locks on SQLite.
PRUNE_BATCH = 2000
QUARANTINE_LOG_IDS = 20
QUARANTINE_KIND_LABEL_CHARS = 32

KIND_COLUMN = {InteractionKind.VIEW: "views", InteractionKind.LIKE: "likes", InteractionKind.BOOKMARK: "bookmarks"}


class DrainConflict(RuntimeError):
    """Rows picked for a batch were stamped by someone else meanwhile: roll the batch back."""


@dataclass(frozen=True)
class DrainResult:
    counted: int
    batches: int
    backlog_left: bool


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
            # Rows committed after this batch's read enqueue their own drain (chowist.interactions.tasks).
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
        now = timezone.now()
        ids = [row[0] for row in rows]
        # A kind the counters do not know (a row written by a newer or buggy release) would raise on every drain
        # and block every row behind it: it is quarantined (stamped, logged, counted) and the batch goes on.
        unknown = [row for row in rows if row[2] not in KIND_COLUMN]
        if unknown:
            _quarantine(rows=unknown, now=now)
        known = [row for row in rows if row[2] in KIND_COLUMN]
        known_ids = [row[0] for row in known]
        stamped = Interaction.objects.filter(id__in=known_ids, processed_at__isnull=True).update(processed_at=now)
        if stamped != len(known_ids):
            raise DrainConflict(f"{len(known_ids) - stamped} of {len(ids)} rows were already counted")
        counters_add(
            totals=counter_totals(rows=[(place_id, kind, created_at) for _, place_id, kind, created_at in known])
        )
        kinds = Counter(kind for _, _, kind, _ in known)
        transaction.on_commit(lambda: interactions_recorded_count(kinds=kinds))
    return len(rows)


def _quarantine(*, rows: list[tuple[int, int, str, datetime]], now: datetime) -> None:
    ids = [row[0] for row in rows]
    stamped = Interaction.objects.filter(id__in=ids, processed_at__isnull=True).update(
        processed_at=now, quarantined_at=now
    )
    if stamped != len(ids):
        raise DrainConflict(f"{len(ids) - stamped} of {len(ids)} quarantined rows were already counted")
    kinds = Counter(row[2] for row in rows)
    logger.warning("interactions_quarantined count=%d kinds=%s ids=%s", len(ids), dict(kinds), ids[:QUARANTINE_LOG_IDS])
    transaction.on_commit(lambda: _quarantined_count(kinds=kinds))


def _quarantined_count(*, kinds: Counter[str]) -> None:
    for kind, n in kinds.items():
        # The label is the stored kind, attacker-independent (the API validates kinds): bounded in practice,
        # and capped here in case a release writes garbage.
        interactions_quarantined.labels(kind=kind[:QUARANTINE_KIND_LABEL_CHARS]).inc(n)


def inbox_prune(*, retention_days: int, batch_size: int = PRUNE_BATCH) -> int:
    """Delete inbox rows processed more than retention_days ago, in batches (each a short write transaction).

    Only processed rows: a pending row is work not yet counted, however old it is.
    """
    cutoff = timezone.now() - timedelta(days=retention_days)
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(
                Interaction.objects.filter(processed_at__isnull=False, processed_at__lt=cutoff)
                .order_by("id")
                .values_list("id", flat=True)[:batch_size]
            )
            if not ids:
                break
            deleted += Interaction.objects.filter(id__in=ids, processed_at__isnull=False).delete()[0]
        if len(ids) < batch_size:
            break
    if deleted:
        logger.info("inbox_pruned deleted=%d retention_days=%d", deleted, retention_days)
    return deleted


def counter_totals(*, rows: Iterable[tuple[int, str, datetime]]) -> dict[tuple[int, date], list[int]]:
    """(place id, kind, created at) rows -> {(place id, UTC day): [views, likes, bookmarks]}."""
    totals: dict[tuple[int, date], list[int]] = {}
    for place_id, kind, created_at in rows:
        key = (place_id, created_at.astimezone(UTC).date())
        totals.setdefault(key, [0, 0, 0])[COUNTER_COLUMNS.index(KIND_COLUMN[kind])] += 1
    return totals


def counters_add(*, totals: Mapping[tuple[int, date], Iterable[int]]) -> None:
    """Add to PlaceDailyCounter with upserts (increments, so concurrent drains never lose counts)."""
    if not totals:
        return
    table = connection.ops.quote_name(PlaceDailyCounter._meta.db_table)
    updates = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in COUNTER_COLUMNS)
    # Sorted keys: two PostgreSQL drains lock counter rows in the same order, so they cannot deadlock.
    keys = sorted(totals)
    with connection.cursor() as cursor:
        for start in range(0, len(keys), UPSERT_ROWS):
            chunk = keys[start : start + UPSERT_ROWS]
            values_sql = ", ".join(["(%s, %s, %s, %s, %s)"] * len(chunk))
            params: list[object] = []
            for place_id, day in chunk:
                params.extend([place_id, day, *totals[(place_id, day)]])
            # Identifiers come from the model's _meta and the values are bound parameters.
            sql = f"INSERT INTO {table} (place_id, day, {', '.join(COUNTER_COLUMNS)}) VALUES {values_sql} ON CONFLICT (place_id, day) DO UPDATE SET {updates}"  # noqa: S608
            cursor.execute(sql, params)


def interactions_recorded_count(*, kinds: Counter[str]) -> None:
    """Count interactions that reached the counters (call it once their transaction committed)."""
    for kind, n in kinds.items():
        interactions_recorded.labels(kind=kind).inc(n)
