"""Hostile requests over real HTTP (gunicorn): a clear, counted 4xx, never the server's own 500."""

from __future__ import annotations

import http.client
import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

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


def _chunks(data: bytes, size: int = 1000) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.slow
def test_a_chunked_body_is_read_not_dropped(gunicorn_app):
    # Before: Django read CONTENT_LENGTH bytes (0 without the header): a valid chunked {"kind":"view"} got
    # 400 "malformed JSON: zero-length document".
    from chowist.places.tests.factories import make_place

    place = make_place()
    host, port = gunicorn_app.base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.request(
        "POST",
        f"/api/places/{place.pk}/interactions/",
        body=_chunks(b'{"kind":"view"}', size=4),
        headers={"Content-Type": "application/json"},
        encode_chunked=True,
    )
    response = connection.getresponse()
    assert response.status == 202, response.read()[:300]
    assert json.loads(response.read())["kind"] == "view"

    # Bounded like a body with a Content-Length: one byte over DATA_UPLOAD_MAX_MEMORY_SIZE is a 400.
    from django.conf import settings

    oversized = b'{"kind":"view","pad":"' + b"x" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE + b'"}'
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.request(
        "POST",
        f"/api/places/{place.pk}/interactions/",
        body=_chunks(oversized, size=256 * 1024),
        headers={"Content-Type": "application/json"},
        encode_chunked=True,
    )
    assert connection.getresponse().status == 400

    # Refused before the body was read (the Host check comes first): the connection is closed, and says so.
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.request(
        "POST",
        f"/api/places/{place.pk}/interactions/",
        body=_chunks(b'{"kind":"view"}' + b" " * 300_000, size=64 * 1024),
        headers={"Content-Type": "application/json", "Host": "evil.example"},
        encode_chunked=True,
    )
    refused = connection.getresponse()
    assert refused.status == 400 and refused.getheader("Connection") == "close"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("path", "content_type", "body"),
    [
        (
            "interactions/",
            "multipart/form-data; boundary=B",
            b'--B\r\nContent-Disposition: form-data; name="photo"; filename="a.png"\r\nX-Pad: '
            + b"x" * 200_000
            + b"\r\n\r\nabc\r\n--B--\r\n",
        ),
        ("photo/", "multipart/form-data; boundary=B", b"--B\r\n" + b"x" * 1_000_000 + b"\r\n--B--\r\n"),
    ],
    ids=["200KB-part-header", "1MB-anonymous-upload"],
)
def test_a_body_rejected_unread_never_leaves_a_dead_keep_alive_connection(gunicorn_app, path, content_type, body):
    # Before: the early 4xx said `Connection: keep-alive`, then gunicorn, unable to drain more than 64 KB of the
    # unread body, closed the socket: the client's next request on it failed (RemoteDisconnected).
    from chowist.places.tests.factories import make_place

    place = make_place()
    host, port = gunicorn_app.base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.request("POST", f"/api/places/{place.pk}/{path}", body=body, headers={"Content-Type": content_type})
    response = connection.getresponse()
    response.read()
    assert 400 <= response.status < 500
    assert response.getheader("Connection") == "close"
    connection.close()
