"""The request middleware in-process: metrics by URL name, request ids, the per-request log event."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model

from observability.tests.helpers import json_log_lines, sample

pytestmark = pytest.mark.django_db

REQUESTS = "chowist_http_requests_total"


def test_a_request_is_counted_and_timed_under_its_url_name(client) -> None:
    before = sample(REQUESTS, view="core:healthz", method="GET", status="200")
    timed = sample("chowist_http_request_duration_seconds_count", view="core:healthz", method="GET")
    assert client.get("/healthz").status_code == 200
    assert sample(REQUESTS, view="core:healthz", method="GET", status="200") == before + 1
    assert sample("chowist_http_request_duration_seconds_count", view="core:healthz", method="GET") == timed + 1


def test_a_path_no_route_matches_is_unmatched(client) -> None:
    before = sample(REQUESTS, view="unmatched", method="GET", status="404")
    assert client.get("/no/such/page/").status_code == 404
    assert sample(REQUESTS, view="unmatched", method="GET", status="404") == before + 1


def test_an_unknown_method_cannot_mint_new_label_values(client) -> None:
    before = sample(REQUESTS, view="core:healthz", method="other", status="405") + sample(
        REQUESTS, view="core:healthz", method="other", status="200"
    )
    client.generic("BREW", "/healthz")
    after = sample(REQUESTS, view="core:healthz", method="other", status="405") + sample(
        REQUESTS, view="core:healthz", method="other", status="200"
    )
    assert after == before + 1
    assert sample(REQUESTS, view="core:healthz", method="BREW", status="405") == 0


def test_database_queries_are_counted_per_request(client) -> None:
    count = sample("chowist_db_queries_per_request_count", view="core:readyz")
    queries = sample("chowist_db_queries_per_request_sum", view="core:readyz")
    client.get("/readyz")
    assert sample("chowist_db_queries_per_request_count", view="core:readyz") == count + 1
    assert sample("chowist_db_queries_per_request_sum", view="core:readyz") >= queries + 1
    assert sample("chowist_db_time_per_request_seconds_count", view="core:readyz") >= 1


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
