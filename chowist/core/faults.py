"""Fault flags: failures switched on at runtime, like the OpenTelemetry demo's feature flags.

The flags live in one JSON file (settings.FAULTS_FILE) that the app's workers and the consumer re-read on their
own: a reader stats the file at most every FAULTS_RECHECK_S and parses it only when it changed, so the check
is cheap enough to run on every request and every queue poll. Writes go through `fault_set` / `fault_clear` /
`faults_clear_all` (the `manage.py fault` command), which log `fault_changed` and are refused in production
unless settings.FAULTS_ALLOW_IN_PRODUCTION. In production without that setting the file is not even read.

What each fault does is in chowist/core/fault_injection.py (HTTP, database, cache) and
chowist/core/consumer_pause.py (consumer).
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from django.conf import settings

log = structlog.get_logger("chowist.faults")

HTTP_5XX = "http_5xx"
HTTP_LATENCY = "http_latency"
DB_LATENCY = "db_latency"
CACHE_DOWN = "cache_down"
CONSUMER_PAUSED = "consumer_paused"

# How stale a process's view of the flags may be: one stat() per this interval, per process.
FAULTS_RECHECK_S = 0.5
FILE_VERSION = 1
HTTP_5XX_STATUSES = (500, 503)
# Health probes stay truthful unless a fault names them explicitly.
PROBE_VIEWS = frozenset({"core:healthz", "core:readyz"})


@dataclass(frozen=True)
class FaultSpec:
    name: str
    description: str
    unit: str = ""
    default: float | None = None
    minimum: float = 0.0
    maximum: float = 0.0
    takes_views: bool = False


SPECS: dict[str, FaultSpec] = {
    spec.name: spec
    for spec in (
        FaultSpec(HTTP_5XX, "a fraction of requests answer 500 (or --status 503)", "fraction", 1.0, 0.0, 1.0, True),
        FaultSpec(HTTP_LATENCY, "added latency on every request to the chosen views", "ms", 200.0, 0.0, 60_000.0, True),
        FaultSpec(DB_LATENCY, "added latency on every database query", "ms", 20.0, 0.0, 10_000.0),
        FaultSpec(CACHE_DOWN, "cache operations fail as if the cache server were unreachable"),
        FaultSpec(CONSUMER_PAUSED, "the consumer starts no task; tasks wait in the queue"),
    )
}


class FaultError(ValueError):
    """A fault request the app cannot apply: unknown name, bad value, unknown view."""


class FaultsRefused(PermissionError):
    """Fault injection is off in production unless FAULTS_ALLOW_IN_PRODUCTION is set."""


@dataclass(frozen=True)
class Fault:
    name: str
    value: float | None = None
    views: tuple[str, ...] = ()
    status: int = 500
    set_at: str = ""

    def applies_to(self, view: str) -> bool:
        if self.views:
            return view in self.views
        return view not in PROBE_VIEWS

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "views": list(self.views), "status": self.status, "set_at": self.set_at}

    @classmethod
    def from_dict(cls, name: str, data: dict[str, Any]) -> Fault:
        value = data.get("value")
        return cls(
            name=name,
            value=None if value is None else float(value),
            views=tuple(str(v) for v in data.get("views") or ()),
            status=int(data.get("status") or 500),
            set_at=str(data.get("set_at") or ""),
        )


def faults_enabled() -> bool:
    return not settings.IS_PRODUCTION or settings.FAULTS_ALLOW_IN_PRODUCTION


def faults_path() -> Path:
    return Path(settings.FAULTS_FILE)


# --- reading (every request, every queue poll) ----------------------------------------------------------
@dataclass
class _Snapshot:
    faults: dict[str, Fault] = field(default_factory=dict)
    signature: tuple[int, int, int] | None = None
    checked_at: float = float("-inf")
    path: Path | None = None


_snapshot = _Snapshot()
_reload_lock = threading.Lock()


def faults_active() -> dict[str, Fault]:
    """The faults switched on now, as this process last read them (at most FAULTS_RECHECK_S old)."""
    snapshot = _snapshot
    if time.monotonic() - snapshot.checked_at < FAULTS_RECHECK_S:
        return snapshot.faults
    with _reload_lock:
        if time.monotonic() - _snapshot.checked_at >= FAULTS_RECHECK_S:
            _refresh()
    return _snapshot.faults


def fault_get(name: str) -> Fault | None:
    return faults_active().get(name)


def faults_reload() -> dict[str, Fault]:
    """Re-read the file now, ignoring the recheck interval (tests, and right after a write)."""
    with _reload_lock:
        _snapshot.checked_at = float("-inf")
        _refresh()
    return _snapshot.faults


def _refresh() -> None:
    path = faults_path()
    now = time.monotonic()
    if not faults_enabled():
        if _snapshot.faults or _snapshot.signature is None:
            _publish(_Snapshot({}, (0, 0, 0), now, path), reason="refused in production")
        _snapshot.checked_at = now
        return
    try:
        stat = path.stat()
        signature = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
    except FileNotFoundError:
        signature = (0, 0, 0)
    if signature == _snapshot.signature and path == _snapshot.path:
        _snapshot.checked_at = now
        return
    faults = _read(path) if signature != (0, 0, 0) else {}
    _publish(_Snapshot(faults, signature, now, path), reason="file changed")


def _publish(snapshot: _Snapshot, *, reason: str) -> None:
    global _snapshot
    previous = _snapshot.faults
    _snapshot = snapshot
    _gauges_set(snapshot.faults)
    if previous != snapshot.faults:
        log.info("faults_reloaded", active=sorted(snapshot.faults), reason=reason, pid=os.getpid())


def _gauges_set(faults: dict[str, Fault]) -> None:
    from observability.metrics import fault_active_set

    for name in SPECS:
        fault_active_set(fault=name, active=name in faults)


def _read(path: Path) -> dict[str, Fault]:
    try:
        data = json.loads(path.read_text())
        entries = data.get("faults") or {}
        return {name: Fault.from_dict(name, entry) for name, entry in entries.items() if name in SPECS}
    except FileNotFoundError:
        return {}
    except (ValueError, TypeError, AttributeError) as exc:
        # A hand-edited, broken file must not take the app down: no faults until it is fixed.
        log.warning("faults_file_unreadable", path=str(path), error=str(exc))
        return {}


# --- writing (manage.py fault) ----------------------------------------------------------------------------
def _refuse_in_production() -> None:
    if not faults_enabled():
        raise FaultsRefused(
            "fault injection is refused when DJANGO_ENV=production (set FAULTS_ALLOW_IN_PRODUCTION=on to allow it)"
        )


@contextmanager
def _file_locked() -> Iterator[dict[str, Fault]]:
    """The flags as stored, for a read-modify-write under an exclusive lock; written back atomically."""
    path = faults_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.with_name(path.name + ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        faults = _read(path)
        yield faults
        payload = {"version": FILE_VERSION, "faults": {name: f.as_dict() for name, f in sorted(faults.items())}}
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(payload, indent=2) + "\n")
        tmp.replace(path)


def fault_validate(
    *, name: str, value: float | None = None, views: list[str] | tuple[str, ...] = (), status: int = 500
) -> Fault:
    spec = SPECS.get(name)
    if spec is None:
        raise FaultError(f"unknown fault {name!r}; known faults: {', '.join(SPECS)}")
    if spec.default is None:
        if value is not None:
            raise FaultError(f"{name} takes no --value")
    else:
        value = spec.default if value is None else value
        if value != value or not spec.minimum <= value <= spec.maximum:
            raise FaultError(f"{name} --value must be between {spec.minimum:g} and {spec.maximum:g} {spec.unit}")
    views = tuple(dict.fromkeys(v.strip() for v in views if v.strip()))
    if views and not spec.takes_views:
        raise FaultError(f"{name} applies to every query or task; it takes no --views")
    unknown = [v for v in views if v not in view_names()]
    if unknown:
        raise FaultError(f"unknown view name(s) {', '.join(unknown)}; URL names look like places:detail")
    if name == HTTP_5XX and status not in HTTP_5XX_STATUSES:
        raise FaultError(f"{name} --status must be one of {', '.join(map(str, HTTP_5XX_STATUSES))}")
    return Fault(name=name, value=value, views=views, status=status if name == HTTP_5XX else 500)


def fault_set(
    *, name: str, value: float | None = None, views: list[str] | tuple[str, ...] = (), status: int = 500
) -> Fault:
    """Switch a fault on (or change its value); every process picks it up within FAULTS_RECHECK_S."""
    _refuse_in_production()
    fault = fault_validate(name=name, value=value, views=views, status=status)
    fault = Fault(fault.name, fault.value, fault.views, fault.status, datetime.now(UTC).isoformat())
    with _file_locked() as faults:
        previous = faults.get(name)
        faults[name] = fault
    log.info(
        "fault_changed",
        fault=name,
        action="set",
        value=fault.value,
        views=list(fault.views),
        status=fault.status,
        previous=previous.as_dict() if previous else None,
        file=str(faults_path()),
    )
    faults_reload()
    return fault


def fault_clear(*, name: str) -> bool:
    """Switch one fault off. False when it was not on."""
    _refuse_in_production()
    if name not in SPECS:
        raise FaultError(f"unknown fault {name!r}; known faults: {', '.join(SPECS)}")
    with _file_locked() as faults:
        previous = faults.pop(name, None)
    if previous is not None:
        log.info("fault_changed", fault=name, action="clear", previous=previous.as_dict(), file=str(faults_path()))
    faults_reload()
    return previous is not None


def faults_clear_all() -> list[str]:
    """Switch every fault off; returns the names that were on."""
    _refuse_in_production()
    with _file_locked() as faults:
        cleared = sorted(faults)
        faults.clear()
    for name in cleared:
        log.info("fault_changed", fault=name, action="clear", file=str(faults_path()))
    faults_reload()
    return cleared


def view_names() -> frozenset[str]:
    """Every URL name a fault may target, namespaced as in the metrics' `view` label (e.g. places:detail)."""
    from django.urls import URLPattern, URLResolver, get_resolver

    names: set[str] = set()

    def walk(patterns: list, prefix: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, f"{prefix}{pattern.namespace}:" if pattern.namespace else prefix)
            elif isinstance(pattern, URLPattern) and pattern.name:
                names.add(prefix + pattern.name)

    walk(get_resolver().url_patterns, "")
    return frozenset(names)
