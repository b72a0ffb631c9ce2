import pytest
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory

from chowist.core import views


@pytest.mark.django_db
def test_unknown_page_renders_the_404_template(client):
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert b"<h1>Not found</h1>" in response.content
    assert b"There is nothing at this address." in response.content


@pytest.mark.django_db
def test_unknown_api_path_is_json(client):
    response = client.get("/api/no/such/thing/")
    assert response.status_code == 404
    assert response.json() == {"error": "There is nothing at this address."}


@pytest.mark.django_db
def test_bad_host_is_a_rendered_400(client):
    response = client.get("/", HTTP_HOST="evil.example.com")
    assert response.status_code == 400
    assert b"<h1>Bad request</h1>" in response.content


@pytest.mark.django_db
def test_bad_host_on_the_api_is_json_400(client):
    response = client.get("/api/places/", HTTP_HOST="evil.example.com")
    assert response.status_code == 400
    assert "error" in response.json()


@pytest.mark.django_db
def test_403_page_renders_with_a_login_hint(rf: RequestFactory):
    from django.contrib.auth.models import AnonymousUser

    request = rf.get("/places/1/edit/")
    request.user = AnonymousUser()
    response = views.permission_denied(request, PermissionDenied())
    assert response.status_code == 403
    assert b"<h1>Forbidden</h1>" in response.content and b"log in" in response.content


def test_500_page_renders_without_touching_the_database(rf: RequestFactory):
    # No db fixture: any query here would fail the test.
    response = views.server_error(rf.get("/places/"))
    assert response.status_code == 500
    assert b"Server error" in response.content
    api = views.server_error(rf.get("/api/places/"))
    assert api.status_code == 500
    assert api["Content-Type"] == "application/json"


@pytest.mark.django_db
def test_an_unhandled_exception_becomes_the_500_page(client, monkeypatch):
    from chowist.places import selectors

    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(selectors, "place_random_id", broken)
    client.raise_request_exception = False
    response = client.get("/places/random/")
    assert response.status_code == 500
    assert b"Something went wrong on our side" in response.content
    assert b"boom" not in response.content


@pytest.mark.django_db
def test_csrf_failure_under_api_is_a_json_403_and_a_page_elsewhere():
    from django.test import Client

    from chowist.places.tests.factories import make_user

    strict = Client(enforce_csrf_checks=True)
    # Logged in: an anonymous upload is the view's 401 before any CSRF check (nothing to forge without a session).
    strict.force_login(make_user())
    api = strict.post("/api/places/1/photo/")
    assert api.status_code == 403
    assert "CSRF" in api.json()["error"]
    strict.logout()
    page = strict.post("/accounts/login/", {"username": "x", "password": "y"})
    assert page.status_code == 403
    assert page["Content-Type"].startswith("text/html")
    assert b"CSRF verification failed" in page.content


@pytest.mark.parametrize("path", ["/api/places/", "/places/"])
def test_database_unavailable_is_a_503_with_retry_after(path):
    from django.db import OperationalError

    from chowist.core.unavailable import DatabaseUnavailableMiddleware

    middleware = DatabaseUnavailableMiddleware(lambda request: None)
    request = RequestFactory().get(path)
    response = middleware.process_exception(request, OperationalError("database or disk is full"))
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "database or disk is full" not in response.content.decode()
    assert middleware.process_exception(request, ValueError("a bug")) is None


def test_a_database_outage_logs_one_line_per_interval_with_the_count_it_stands_for(monkeypatch, caplog):
    import json
    import logging

    from django.db import OperationalError

    from chowist.core import unavailable
    from chowist.core.log_throttle import LogThrottle

    monkeypatch.setattr(unavailable, "_throttle", LogThrottle(unavailable.DATABASE_ERROR_LOG_INTERVAL_S))
    middleware = unavailable.DatabaseUnavailableMiddleware(lambda request: None)
    request = RequestFactory().get("/places/")
    caplog.set_level(logging.ERROR, logger="chowist.core.unavailable")
    burst = 200  # about one second of the outage the fault matrix measured
    responses = []
    for _ in range(burst):
        try:
            raise OperationalError("connection refused")
        except OperationalError as exc:  # raised, so the logged line has a traceback as a real one would
            responses.append(middleware.process_exception(request, exc))
    assert all(r.status_code == 503 and r["Retry-After"] == "5" for r in responses)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "chowist.core.unavailable"]
    assert len(lines) == 1, lines
    assert lines[0]["event"] == "database_unavailable" and lines[0]["suppressed"] == 0
    assert lines[0]["level"] == "error" and "OperationalError: connection refused" in lines[0]["exception"]

    # The next line, an interval later, says how many 503s went unlogged in between.
    throttle = unavailable._throttle
    later = throttle._last_logged + unavailable.DATABASE_ERROR_LOG_INTERVAL_S
    assert throttle.allow(now=later - 0.001) is None
    assert throttle.allow(now=later) == burst  # 199 of the burst, and the one just above
    assert throttle.allow(now=later + 1) is None


TOO_MANY_FIELDS = "&".join(["a=1"] * 1001)


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [True, False], ids=["development", "production"])
def test_input_django_rejects_is_a_400_in_every_mode(client, settings, debug):
    # Before, with DEBUG on: the debug page re-parsed the query string / the UTF-16 form while rendering the 400,
    # raised again in every middleware layer, and gunicorn answered its bare 500 after seconds of worker time.
    from observability.tests.helpers import json_log_lines

    settings.DEBUG = debug
    with json_log_lines() as lines:
        too_many = client.get(f"/places/?{TOO_MANY_FIELDS}")
        utf16 = client.generic(
            "POST",
            "/accounts/signup/",
            "username=a".encode("utf-16"),
            content_type="application/x-www-form-urlencoded; charset=utf-16",
        )
    assert too_many.status_code == 400
    assert utf16.status_code == 400
    assert [line["status"] for line in lines if line["event"] == "request"] == [400, 400]


@pytest.mark.django_db
def test_a_500_that_escapes_djangos_error_handling_is_counted_and_logged(client, monkeypatch):
    # Before: when rendering the error page raised too, the exception left Django and gunicorn answered its own
    # 500, absent from the request log and from the request metrics.
    from django.core.handlers import exception

    from chowist.places import selectors
    from observability.tests.helpers import json_log_lines, sample

    def broken(**kwargs):
        raise RuntimeError("boom")

    def error_page_broken(*args, **kwargs):
        raise RuntimeError("the error page is broken too")

    monkeypatch.setattr(selectors, "place_random_id", broken)
    monkeypatch.setattr(exception, "response_for_exception", error_page_broken)
    labels = {"status": "500", "view": "places:random", "method": "GET"}
    before = sample("django_http_responses_total_by_status_view_method_total", **labels)
    with json_log_lines() as lines:
        response = client.get("/places/random/")
    assert response.status_code == 500
    assert b"boom" not in response.content
    assert sample("django_http_responses_total_by_status_view_method_total", **labels) == before + 1
    [event] = [line for line in lines if line["event"] == "request"]
    assert event["status"] == 500 and event["view"] == "places:random"
    assert any("the error page is broken too" in line.get("exception", "") for line in lines)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/places/-1/", "/api/no/such/thing/", "/api/places/999999/"])
def test_an_api_404_is_json_in_development_too(client, settings, path):
    # Before, with DEBUG on: Django's HTML debug 404 page on a JSON API.
    settings.DEBUG = True
    response = client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert "error" in response.json()
