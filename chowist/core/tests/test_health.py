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
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["cache"] != "ok"


@pytest.mark.django_db
def test_readyz_is_503_naming_an_unreachable_queue(client, monkeypatch):
    # The check production runs (workers.queue.queue_check), against a real Redis client on a dead port.
    dead = huey.RedisHuey("chowist-dead", url=f"redis://127.0.0.1:{free_port()}/0")
    monkeypatch.setattr(queue, "HUEY", dead)
    response = client.get(reverse("core:readyz"))
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["queue"]
    assert body["checks"]["queue"].startswith("ConnectionError")
    assert body["checks"]["database"] == body["checks"]["cache"] == "ok"


def test_health_endpoints_reject_writes(client):
    response = client.post("/healthz")
    assert response.status_code == 405
    assert "not allowed" in response.json()["error"]
