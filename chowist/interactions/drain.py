"""The inbox's drain into per-place daily counters.

A batch stamps `processed_at` on its rows in the same transaction that adds them to the counters, so a crash
anywhere (SIGKILL mid-batch included) leaves every row either counted once or still pending, never
half-counted. `counters_add` is the one upsert into PlaceDailyCounter (the sync mode and the demo data use it
too).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from chowist.interactions.models import Interaction, InteractionKind, PlaceDailyCounter
from workers.metrics import interactions_recorded

# How long one drain task keeps taking batches before handing over to a fresh task: bounds the task's
# duration (and so a graceful shutdown) under a steady stream of interactions.
DRAIN_TASK_MAX_S = 2.0
# Counter rows per upsert statement: 5 bound parameters each, well under SQLite's 32766.
UPSERT_ROWS = 2000
COUNTER_COLUMNS = ("views", "likes", "bookmarks")

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
        ids = [row[0] for row in rows]
        stamped = Interaction.objects.filter(id__in=ids, processed_at__isnull=True).update(processed_at=timezone.now())
        if stamped != len(ids):
            raise DrainConflict(f"{len(ids) - stamped} of {len(ids)} rows were already counted")
        counters_add(
            totals=counter_totals(rows=[(place_id, kind, created_at) for _, place_id, kind, created_at in rows])
        )
        kinds = Counter(kind for _, _, kind, _ in rows)
        transaction.on_commit(lambda: interactions_recorded_count(kinds=kinds))
    return len(rows)


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
