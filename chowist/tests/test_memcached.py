"""CACHE_URL=memcached:// works against a real memcached: the app's pages cache through it, and a dead
memcached costs misses, never a 500."""

from __future__ import annotations

import shutil
import signal
from collections.abc import Iterator

import pytest
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse

from chowist.dburl import cache_from_url
from chowist.places.tests.factories import make_place, make_reviews
from conftest import free_port
from experiments.lab.procs import Process, start, tcp_probe

STARTUP_TIMEOUT_S = 10


@pytest.fixture
def memcached(settings, tmp_path) -> Iterator[Process]:
    """A memcached of this test's own on a free port, configured as the default cache."""
    if shutil.which("memcached") is None:
        pytest.skip("memcached is not installed (apt-get install memcached, or make system-deps)")
    port = free_port()
    # -u: memcached refuses to run as root without naming the user to stay.
    process = start(
        ["memcached", "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m", "16", "-u", "root"],
        log_path=tmp_path / "memcached.log",
        ready=[tcp_probe(port)],
        ready_timeout_s=STARTUP_TIMEOUT_S,
    )
    url = f"memcached://127.0.0.1:{port}"
    settings.CACHES = {"default": cache_from_url(url, default_timeout=60, key_prefix="chowist-test")}
    try:
        yield process
    finally:
        process.stop(sig=signal.SIGKILL, timeout_s=STARTUP_TIMEOUT_S)


def test_memcached_url_parses_to_pymemcache() -> None:
    config = cache_from_url("memcached://10.0.0.1:11211,10.0.0.2:11212", default_timeout=60, key_prefix="c")
    assert config["BACKEND"] == "chowist.core.cache_backends.PyMemcacheCache"  # Django's, with the fault layers
    assert config["LOCATION"] == ["10.0.0.1:11211", "10.0.0.2:11212"]
    assert config["OPTIONS"]["timeout"] < 1  # a dead server must cost a miss, not a stalled request


@pytest.mark.parametrize("url", ["memcached://", "memcached://host", "memcached://host:port"])
def test_bad_memcached_urls_are_refused(url: str) -> None:
    with pytest.raises(ImproperlyConfigured, match="memcached"):
        cache_from_url(url, default_timeout=60, key_prefix="c")


@pytest.mark.django_db
def test_the_app_caches_through_a_real_memcached(client, memcached, settings) -> None:
    settings.POPULAR_CACHE = True
    cache.set("probe", {"a": 1})
    assert cache.get("probe") == {"a": 1}
    place = make_place(name="Memcached Diner")
    make_reviews(place, 2)
    detail = reverse("places:detail", kwargs={"pk": place.pk})
    # Every key the app builds must be a valid memcached key (Django raises InvalidCacheKey otherwise).
    for _ in range(2):
        assert client.get(detail).status_code == 200
        assert client.get(reverse("places:list")).status_code == 200
        assert client.get(reverse("marketing:home")).status_code == 200
    popular = reverse("interactions_api:popular")
    assert client.get(popular).status_code == 200
    assert client.get(popular).json()["cached"] is True


@pytest.mark.django_db
def test_a_dead_memcached_degrades_to_misses_not_500s(client, settings, memcached) -> None:
    settings.POPULAR_CACHE = True
    cache.set("probe", 1)
    assert cache.get("probe") == 1
    memcached.stop(sig=signal.SIGKILL, timeout_s=STARTUP_TIMEOUT_S)
    assert cache.get("probe") is None
    cache.set("dropped", 1)
    place = make_place(name="No Cache Cafe")
    assert client.get(reverse("places:detail", kwargs={"pk": place.pk})).status_code == 200
    response = client.get(reverse("interactions_api:popular"))
    assert response.status_code == 200
    assert response.json()["cached"] is False
