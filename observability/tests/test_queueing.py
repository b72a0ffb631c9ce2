"""The wait in front of Django, from the front door's X-Request-Start stamp: parsed in every form a router writes,
hostile or absent stamps never observed, clock skew bounded, and trusted only behind a proxy."""

from __future__ import annotations

import time

import pytest
from django.test import Client, override_settings

from monitoring.config import CONFIG
from observability.queueing import FUTURE_TOLERANCE_S, MAX_WAIT_S, queue_wait, request_start_s
from observability.tests.helpers import sample

QUEUE_COUNT = f"{CONFIG.metrics.request_queue_duration}_count"
NOW = 1_765_000_000.0


@pytest.mark.parametrize(
    "header",
    ["t=1765000000.123", "1765000000.123", "t=1765000000123", "t=1765000000123000", " t=1765000000.123 "],
)
def test_seconds_milliseconds_and_microseconds_stamps_are_the_same_instant(header: str) -> None:
    assert request_start_s(header) == pytest.approx(1_765_000_000.123, abs=1e-6)


@pytest.mark.parametrize(
    "header", ["t=", "t=abc", "t=-5", "t=1e9", "t=12", "1765000000.5; DROP TABLE", "t=" + "9" * 40, "\x00"]
)
def test_hostile_or_garbled_stamps_are_rejected_not_observed(header: str) -> None:
    assert queue_wait(header, now_s=NOW) == (None, "malformed")


def test_the_wait_and_the_clock_skew_bounds() -> None:
    assert queue_wait(None, now_s=NOW) == (None, None)
    assert queue_wait("", now_s=NOW) == (None, None)
    assert queue_wait(f"t={NOW - 0.25:.3f}", now_s=NOW)[0] == pytest.approx(0.25, abs=1e-3)
    # nginx's millisecond rounding or a little skew: ahead of the app's clock, but a wait of 0.
    assert queue_wait(f"t={NOW + FUTURE_TOLERANCE_S / 2:.3f}", now_s=NOW) == (0.0, None)
    assert queue_wait(f"t={NOW + FUTURE_TOLERANCE_S + 5:.3f}", now_s=NOW) == (None, "future")
    assert queue_wait(f"t={NOW - MAX_WAIT_S - 1:.3f}", now_s=NOW) == (None, "too_old")


@pytest.mark.django_db
def test_behind_a_proxy_the_wait_before_django_is_observed() -> None:
    with override_settings(BEHIND_PROXY=True):
        client = Client()
        before = sample(QUEUE_COUNT)
        rejected = sample("chowist_request_queue_rejected_total", reason="malformed")
        waited = sample(f"{CONFIG.metrics.request_queue_duration}_sum")
        client.get("/healthz", HTTP_X_REQUEST_START=f"t={time.time() - 0.2:.3f}")
        client.get("/healthz", HTTP_X_REQUEST_START="t=not-a-time")
        client.get("/healthz")
        assert sample(QUEUE_COUNT) == before + 1
        assert sample(f"{CONFIG.metrics.request_queue_duration}_sum") - waited == pytest.approx(0.2, abs=0.1)
        assert sample("chowist_request_queue_rejected_total", reason="malformed") == rejected + 1


@pytest.mark.django_db
def test_without_a_proxy_a_clients_stamp_is_ignored() -> None:
    with override_settings(BEHIND_PROXY=False):
        before = sample(QUEUE_COUNT)
        Client().get("/healthz", HTTP_X_REQUEST_START="t=1000000000.000")
        assert sample(QUEUE_COUNT) == before
