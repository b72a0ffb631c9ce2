"""The alerting policy every SLO shares: window sets, burn-rate alerts, plain-alert timings.

One table, read by the rule generator, the runbooks' wording and the tests' expectations
(the tests restate the SRE Workbook numbers independently, so a typo here fails them).
"""

from __future__ import annotations

from dataclasses import dataclass

# Windows the SLI error ratio is recorded over, named as in production. The lab window set records
# the same names, computed over shorter windows, and carries window_set="lab".
WINDOW_NAMES: tuple[str, ...] = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
PERIOD_NAME = "30d"

# Lab windows are the production ones divided by this factor: with a 5 s scrape interval the shortest
# (5m -> 25s) still spans five scrapes, and the 14.4x page (1h -> 5m) can fire inside a 10-minute run.
LAB_SCALE = 12
LAB_SCRAPE_INTERVAL_SECONDS = 5
MIN_SCRAPES_PER_WINDOW = 4

PRODUCTION = "production"
LAB = "lab"
WINDOW_SETS: tuple[str, ...] = (PRODUCTION, LAB)

RUNBOOK_BASE_URL = "slo/runbooks/"

_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


@dataclass(frozen=True)
class BurnCondition:
    """Fire when the error ratio exceeds factor x budget over both the long and the short window."""

    factor: float
    long_window: str
    short_window: str


@dataclass(frozen=True)
class BurnAlert:
    severity: str
    conditions: tuple[BurnCondition, ...]


# SRE Workbook, chapter 5, "multiwindow, multi-burn-rate alerts" (30-day period).
BURN_ALERTS: tuple[BurnAlert, ...] = (
    BurnAlert("page", (BurnCondition(14.4, "1h", "5m"), BurnCondition(6, "6h", "30m"))),
    BurnAlert("ticket", (BurnCondition(3, "1d", "2h"), BurnCondition(1, "3d", "6h"))),
)


@dataclass(frozen=True)
class HealthTimings:
    """How long a plain (non-SLO) condition must last before it alerts, per window set."""

    target_down_for: str
    consumer_stalled_window: str


HEALTH_TIMINGS: dict[str, HealthTimings] = {
    PRODUCTION: HealthTimings(target_down_for="2m", consumer_stalled_window="10m"),
    # Three and twelve scrapes: quick enough for a 10-minute experiment, slow enough not to flap.
    LAB: HealthTimings(target_down_for="15s", consumer_stalled_window="1m"),
}


def duration_seconds(duration: str) -> int:
    """Seconds in a Prometheus duration made of one or more d/h/m/s parts ("2m30s")."""
    total, number = 0, ""
    for char in duration:
        if char.isdigit():
            number += char
        elif char in _UNIT_SECONDS and number:
            total += int(number) * _UNIT_SECONDS[char]
            number = ""
        else:
            raise ValueError(f"unsupported duration {duration!r}: use d, h, m, s parts such as 2m30s")
    if number or total <= 0:
        raise ValueError(f"unsupported duration {duration!r}: use d, h, m, s parts such as 2m30s")
    return total


def format_duration(seconds: int) -> str:
    """The shortest Prometheus duration for a whole number of seconds (150 -> "2m30s")."""
    if seconds <= 0:
        raise ValueError(f"duration must be positive, got {seconds}")
    parts = []
    for unit, size in _UNIT_SECONDS.items():
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def window_duration(name: str, *, window_set: str) -> str:
    """The range a window named `name` really covers in `window_set`."""
    if window_set == PRODUCTION:
        return name
    if window_set == LAB:
        seconds, remainder = divmod(duration_seconds(name), LAB_SCALE)
        if remainder:
            raise ValueError(f"window {name} does not divide by the lab scale {LAB_SCALE}")
        if seconds < MIN_SCRAPES_PER_WINDOW * LAB_SCRAPE_INTERVAL_SECONDS:
            raise ValueError(f"lab window for {name} ({seconds}s) spans fewer than {MIN_SCRAPES_PER_WINDOW} scrapes")
        return format_duration(seconds)
    raise ValueError(f"unknown window set {window_set!r}; choose one of {', '.join(WINDOW_SETS)}")
