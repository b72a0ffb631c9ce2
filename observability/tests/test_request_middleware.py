"""In-process: django-prometheus's request and query series by URL name, request ids, the per-request log event."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from observability.tests.helpers import json_log_lines, sample

pytestmark = pytest.mark.django_db

REQUESTS = "django_http_responses_total_by_status_view_method_total"
LATENCY_COUNT = "django_http_requests_latency_seconds_by_view_method_count"


def test_a_request_is_counted_and_timed_under_its_url_name(client) -> None:
    before = sample(REQUESTS, view="core:healthz", method="GET", status="200")
    timed = sample(LATENCY_COUNT, view="core:healthz", method="GET")
    assert client.get("/healthz").status_code == 200
    assert sample(REQUESTS, view="core:healthz", method="GET", status="200") == before + 1
    assert sample(LATENCY_COUNT, view="core:healthz", method="GET") == timed + 1


def test_requests_in_flight_return_to_zero(client) -> None:
    # The lean middleware pair (observability/prometheus.py) keeps the two series the in-flight panel subtracts.
    before = sample("django_http_requests_before_middlewares_total")
    answered = sample("django_http_responses_before_middlewares_total")
    client.get("/healthz")
    client.get("/no/such/page/")
    assert sample("django_http_requests_before_middlewares_total") == before + 2
    assert sample("django_http_responses_before_middlewares_total") == answered + 2


def test_the_slo_threshold_is_a_bucket_edge(client) -> None:
    client.get("/healthz")
    assert sample(
        "django_http_requests_latency_seconds_by_view_method_bucket", view="core:healthz", method="GET", le="0.3"
    )


def test_a_path_no_route_matches_is_an_unnamed_view(client) -> None:
    before = sample(REQUESTS, view="<unnamed view>", method="GET", status="404")
    assert client.get("/no/such/page/").status_code == 404
    assert sample(REQUESTS, view="<unnamed view>", method="GET", status="404") == before + 1


def test_an_unknown_method_cannot_mint_new_label_values(client) -> None:
    labels = {"view": "core:healthz", "method": "<invalid method>"}
    before = sample(REQUESTS, status="405", **labels) + sample(REQUESTS, status="200", **labels)
    timed = sample(LATENCY_COUNT, **labels)
    client.generic("BREW", "/healthz")
    assert sample(REQUESTS, status="405", **labels) + sample(REQUESTS, status="200", **labels) == before + 1
    assert sample(LATENCY_COUNT, **labels) == timed + 1
    assert sample(LATENCY_COUNT, view="core:healthz", method="BREW") == 0


def test_database_queries_are_counted_by_the_database_backend(client) -> None:
    queries = sample("django_db_execute_total", alias="default", vendor=connection.vendor)
    timed = sample("django_db_query_duration_seconds_count", alias="default", vendor=connection.vendor)
    client.get("/readyz")
    assert sample("django_db_execute_total", alias="default", vendor=connection.vendor) >= queries + 1
    assert sample("django_db_query_duration_seconds_count", alias="default", vendor=connection.vendor) >= timed + 1


@pytest.mark.parametrize("header", ["abc-123", "A.b_C-9", "x" * 128])
def test_a_sane_request_id_is_returned_as_sent(client, header: str) -> None:
    assert client.get("/healthz", HTTP_X_REQUEST_ID=header)["X-Request-ID"] == header


@pytest.mark.parametrize("header", ["", "x" * 129, "has space", 'quote"', "new\nline", "ünï"])
def test_an_insane_request_id_is_replaced_by_a_generated_one(client, header: str) -> None:
    returned = client.get("/healthz", HTTP_X_REQUEST_ID=header)["X-Request-ID"]
    assert returned != header
    assert re.fullmatch(r"[0-9a-f]{32}", returned)


def test_one_log_event_per_request_with_the_contract_fields(client) -> None:
    with json_log_lines() as lines:
        client.get("/healthz?email=someone@example.com", HTTP_X_REQUEST_ID="req-42")
    events = [line for line in lines if line["event"] == "request"]
    assert len(events) == 1
    event = events[0]
    assert event["method"] == "GET"
    assert event["path"] == "/healthz"  # no query string: it can carry personal data
    assert event["view"] == "core:healthz"
    assert event["status"] == 200
    assert event["duration_ms"] >= 0
    assert event["request_id"] == "req-42"
    assert event["user_id"] is None
    assert event["level"] == "info"
    assert event["logger"] == "chowist.request"
    assert event["service"] == "app"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", event["timestamp"])


def test_the_log_event_carries_the_user_id_and_never_the_email(client) -> None:
    user = get_user_model().objects.create_user("ada", email="ada@example.com", password="pw-123456789")
    client.force_login(user)
    with json_log_lines() as lines:
        client.get("/healthz")
    event = next(line for line in lines if line["event"] == "request")
    assert event["user_id"] == user.pk
    assert "ada@example.com" not in str(lines)
    assert "ada" not in event.values()


def test_a_password_reset_token_never_reaches_the_request_log(client) -> None:
    # Before: the confirm URL, working token included, was logged verbatim (and shipped to Loki).
    token = "c4a9b2-0123456789abcdef0123456789abcdef"
    with json_log_lines() as lines:
        client.get(f"/accounts/password/reset/MQ/{token}/")
    event = next(line for line in lines if line["event"] == "request")
    assert event["view"] == "accounts:password_reset_confirm"
    assert event["path"] == "/accounts/password/reset/[redacted]/[redacted]/"
    assert token not in str(lines)


@pytest.mark.parametrize(
    ("suffix", "status"),
    [("", 301), ("/x/", 404), ("/%0A/", 404), ("/.", 404)],
    ids=["no-trailing-slash", "appended-segment", "appended-newline", "appended-dot"],
)
def test_a_reset_token_in_a_path_that_matches_no_route_is_redacted_too(client, suffix: str, status: int) -> None:
    # Before: redaction applied only to a matched route; the 301 (APPEND_SLASH) and 404 variants of a reset link
    # wrote the live token to the request log and to Django's "Not Found" warning (its message and its request).
    token = "c4a9b2-0123456789abcdef0123456789abcdef"
    with json_log_lines() as lines:
        response = client.get(f"/accounts/password/reset/MQ/{token}{suffix}")
    assert response.status_code == status
    event = next(line for line in lines if line["event"] == "request")
    assert event["path"] == "/accounts/password/reset/[redacted]"
    assert token not in str(lines)
    if status == 404:
        warning = next(line for line in lines if line["logger"] == "django.request")
        assert warning["event"] == "Not Found: /accounts/password/reset/[redacted]"


def test_routes_without_secrets_under_the_reset_prefix_keep_their_path(client) -> None:
    with json_log_lines() as lines:
        client.get("/accounts/password/reset/done/")
    event = next(line for line in lines if line["event"] == "request")
    assert event["path"] == "/accounts/password/reset/done/"


def test_a_reset_token_in_a_security_warnings_request_is_redacted(client) -> None:
    # Before: django.security.TooManyFieldsSent's record carried the request, rendered as its repr: full path and
    # query string, a reset token included (its logger is not django.request, so the path filter never saw it).
    token = "c4a9b2-0123456789abcdef0123456789abcdef"
    fields = "&".join(["a=1"] * 1001)
    with json_log_lines() as lines:
        response = client.get(f"/accounts/password/reset/MQ/{token}/?{fields}")
    assert response.status_code == 400
    security = [line for line in lines if line["logger"].startswith("django.security")]
    assert security and "[redacted]" in security[0]["request"]
    assert token not in str(lines)


def test_a_reset_token_in_a_sentry_events_url_is_redacted() -> None:
    # A 500 on a reset link would have sent the working token to Sentry/Bugsink in the event's request URL.
    from observability.errors import _add_trace_context

    token = "c4a9b2-0123456789abcdef0123456789abcdef"
    event = {
        "request": {"url": f"https://chowist.example/accounts/password/reset/MQ/{token}/x/", "method": "GET"},
        "transaction": f"/accounts/password/reset/MQ/{token}/x/",
    }
    redacted = _add_trace_context(event, {})
    assert redacted["request"]["url"] == "https://chowist.example/accounts/password/reset/[redacted]"
    assert token not in str(redacted)
