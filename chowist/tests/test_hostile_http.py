"""Hostile requests over real HTTP (gunicorn): a clear, counted 4xx, never the server's own 500."""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request

import pytest


def _request(url: str, *, headers: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _count_of_status(metrics_url: str, status: str) -> float:
    """Sum of every request-counter sample labelled with this status (whatever the metric is called)."""
    text = urllib.request.urlopen(metrics_url, timeout=10).read().decode()
    pattern = re.compile(
        r'^\w*(?:requests?|responses)\w*_total\{[^}]*status="' + status + r'"[^}]*\}\s+(\S+)$', re.MULTILINE
    )
    return sum(float(value) for value in pattern.findall(text))


@pytest.mark.slow
@pytest.mark.parametrize("path", ["/", "/places/", "/api/places/", "/accounts/login/"])
def test_too_many_query_fields_with_a_charset_is_a_counted_400(gunicorn_app, path):
    # 1,001 fields (DATA_UPLOAD_MAX_NUMBER_FIELDS is 1,000) and a Content-Type naming a charset: Django parsed
    # the query string while building the request, before any middleware, and gunicorn answered its own 500.
    query = "&".join(["a"] * 1001)  # short enough for gunicorn's 4,094-byte request line
    before = _count_of_status(gunicorn_app.metrics, "400")
    status, body = _request(f"{gunicorn_app.base}{path}?{query}", headers={"Content-Type": "text/plain; charset=utf-8"})
    assert status == 400, body[:300]
    deadline = time.monotonic() + 5
    while _count_of_status(gunicorn_app.metrics, "400") < before + 1:
        assert time.monotonic() < deadline, "the 400 never reached the request metrics"
        time.sleep(0.1)
