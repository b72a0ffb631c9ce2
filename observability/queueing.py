"""How long a request waited in front of Django: from the front door's stamp to the moment Django ran it.

nginx stamps every request it proxies with `X-Request-Start: t=<unix seconds>` (experiments/lab/nginx.py), as
Heroku's router does; the app subtracts it from its own clock when the outermost middleware starts. The wait is
the kernel's accept backlog and gunicorn's poller and thread queue: time a client waits that the app's latency
histogram (django-prometheus, from Django's first middleware on) never sees. Without a proxy nobody stamps the
request, so an app served by gunicorn alone cannot measure its own queueing.

The header is trusted only behind a proxy (BEHIND_PROXY), which overwrites whatever the client sent; even then a
stamp is checked: unparseable, too far in the future (the two hosts' clocks disagree) or implausibly old, it is
counted as rejected and not observed. A stamp slightly in the future (nginx's millisecond resolution, or a small
skew) is a wait of 0.

What the wait includes: everything between nginx building the upstream request and Django's first middleware, i.e.
the connection's queues, gunicorn reading and parsing the request and Django building it, and on a busy machine the
CPU scheduler's delays. $msec has millisecond resolution, so a single wait is accurate to about a millisecond.
"""

from __future__ import annotations

import re

from prometheus_client import Counter, Histogram

from monitoring.config import CONFIG

REQUEST_START_META_KEY = "HTTP_X_REQUEST_START"
# `t=1700000000.123` (nginx's $msec), or a bare number; seconds, milliseconds or microseconds since the epoch
# (the forms Heroku, HAProxy setups and New Relic's agents accept), told apart by magnitude.
_STAMP = re.compile(r"^\s*(?:t=)?(\d{1,20}(?:\.\d{1,9})?)\s*$")
_MS_ABOVE = 1e11  # a seconds stamp passes this in the year 5138
_US_ABOVE = 1e14
# Stamps from before this (2001-09-09) are not a clock at all.
_EARLIEST_S = 1e9
# A stamp up to this far ahead of the app's clock is a wait of 0: $msec's rounding, or a small clock skew.
FUTURE_TOLERANCE_S = 1.0
# Longer than nginx waits for an answer (proxy_read_timeout, 60 s) is no request anyone still waits for.
MAX_WAIT_S = 120.0

request_queue = Histogram(
    CONFIG.metrics.request_queue_duration,
    "Seconds a request waited between the front door's X-Request-Start stamp and Django running it.",
    buckets=CONFIG.request_buckets_s,
)
request_queue_rejected = Counter(
    "chowist_request_queue_rejected",
    "X-Request-Start stamps not observed as a wait, by reason (malformed, future, too_old).",
    ["reason"],
)


def request_start_s(header: str) -> float | None:
    """The stamp as unix seconds, or None when it is not one."""
    match = _STAMP.match(header)
    if match is None:
        return None
    value = float(match.group(1))
    if value >= _US_ABOVE:
        value /= 1e6
    elif value >= _MS_ABOVE:
        value /= 1e3
    return value if value >= _EARLIEST_S else None


def queue_wait(header: str | None, *, now_s: float) -> tuple[float | None, str | None]:
    """(seconds waited, None) or (None, why the stamp was rejected); (None, None) when there was no stamp."""
    if header is None or header == "":
        return None, None
    start = request_start_s(header)
    if start is None:
        return None, "malformed"
    wait = now_s - start
    if wait < -FUTURE_TOLERANCE_S:
        return None, "future"
    if wait > MAX_WAIT_S:
        return None, "too_old"
    return max(wait, 0.0), None


def queue_wait_observe(header: str | None, *, now_s: float) -> float | None:
    """Record the wait the stamp says (or why it was rejected); returns the wait."""
    wait, rejected = queue_wait(header, now_s=now_s)
    if wait is not None:
        request_queue.observe(wait)
    elif rejected is not None:
        request_queue_rejected.labels(reason=rejected).inc()
    return wait
