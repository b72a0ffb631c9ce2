import huey
import pytest
from django.test import override_settings
from django.urls import reverse

from conftest import free_port
from workers import queue


def test_healthz_answers_without_any_io(client, django_assert_num_queries, db):
    with django_assert_num_queries(0):
        response = client.get(reverse("core:healthz"))
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_healthz_works_without_database_access(client):
    # No db fixture: pytest-django would fail the test on any database access.
    assert client.get("/healthz").status_code == 200


@pytest.mark.django_db
def test_readyz_checks_database_and_cache(client):
    response = client.get(reverse("core:readyz"))
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["failed"]) == ("ok", [])
    assert body["checks"] == {"database": "ok", "cache": "ok", "queue": "ok"}


@pytest.mark.django_db
def test_readyz_is_503_naming_an_unreachable_cache(client):
    dead = f"redis://127.0.0.1:{free_port()}/0"  # a real Redis client against a port nobody listens on
    caches = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": dead}}
    with override_settings(CACHES=caches):
        response = client.get(reverse("core:readyz"))
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert "cache" in body["failed"] and "database" not in body["failed"]
    assert body["checks"] == {**body["checks"], "database": "ok", "cache": "failed"}
    # The error text (here the dead port) is for the logs and staff, not for anonymous callers.
    assert dead.split("//")[1].split("/")[0] not in response.content.decode()
    assert "Error" not in response.content.decode()


@pytest.mark.django_db
def test_readyz_shows_staff_the_error_text(admin_client):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    caches = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": dead}}
    with override_settings(CACHES=caches):
        body = admin_client.get(reverse("core:readyz")).json()
    assert "Error" in body["checks"]["cache"]


@pytest.mark.django_db
def test_readyz_reuses_its_result_briefly(client, settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def probes(n: int) -> int:
        with CaptureQueriesContext(connection) as queries:
            for _ in range(n):
                assert client.get(reverse("core:readyz")).status_code == 200
        return sum(1 for q in queries.captured_queries if q["sql"].strip().upper() == "SELECT 1")

    settings.READINESS_CACHE_S = 60
    assert probes(5) == 1
    settings.READINESS_CACHE_S = 0
    assert probes(2) == 2


@pytest.mark.django_db
def test_readyz_is_503_naming_an_unreachable_queue(client, monkeypatch):
    # The check production runs (workers.queue.queue_check), against a real Redis client on a dead port.
    dead = huey.RedisHuey("chowist-dead", url=f"redis://127.0.0.1:{free_port()}/0")
    monkeypatch.setattr(queue, "HUEY", dead)
    response = client.get(reverse("core:readyz"))
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["queue"]
    # Anonymous callers learn which check failed, not the error (it names hosts and ports); it is logged.
    assert body["checks"] == {"database": "ok", "cache": "ok", "queue": "failed"}


def test_health_endpoints_reject_writes(client):
    response = client.post("/healthz")
    assert response.status_code == 405
    assert "not allowed" in response.json()["error"]
