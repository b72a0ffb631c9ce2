"""Window arithmetic for the two window sets; the windows, factors and timings are monitoring.config's.

Read by the rule generator and the experiment runner (the tests restate the SRE Workbook numbers
independently, so a typo in the config fails them).
"""

from __future__ import annotations

from monitoring.config import CONFIG, LAB, PRODUCTION, WINDOW_SETS, MonitoringConfig

_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


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


def window_duration(name: str, *, window_set: str, config: MonitoringConfig = CONFIG) -> str:
    """The range a window named `name` really covers in `window_set` (the lab scale and scrapes of `config`)."""
    if window_set == PRODUCTION:
        return name
    if window_set == LAB:
        scale = config.windows.lab_scale
        seconds, remainder = divmod(duration_seconds(name), scale)
        if remainder:
            raise ValueError(f"window {name} does not divide by the lab scale {scale}")
        min_scrapes = config.windows.min_scrapes_per_window
        if seconds < min_scrapes * config.scrape_interval_s:
            raise ValueError(f"lab window for {name} ({seconds}s) spans fewer than {min_scrapes} scrapes")
        return format_duration(seconds)
    raise ValueError(f"unknown window set {window_set!r}; choose one of {', '.join(WINDOW_SETS)}")
