"""A real native lab (gunicorn app, huey consumer, Prometheus with the repo's configs and lab rules, Alertmanager,
alert recorder) under a temporary directory on free ports, with a short mixed load already sent."""

from __future__ import annotations

import json
import random
import shutil
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import free_port

# Long enough for several 5 s scrapes and rule evaluations to see traffic, short enough for CI.
LOAD_SECONDS = 12.0
LOAD_THREADS = 4
SEED_PLACES = 30
HTTP_TIMEOUT_S = 10.0
REQUIRED_BINARIES = ("prometheus", "prometheus-alertmanager")


@dataclass
class LoadResult:
    sent: int
    statuses: dict[int, int]


@dataclass
class LiveLab:
    prometheus_url: str
    app_url: str
    log_paths: dict[str, Path]
    load: LoadResult


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """/places/random/ answers a redirect: count it as one request, as a browser's first hop."""

    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _request(url: str, *, body: dict | None = None) -> int:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if body is not None else "GET")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with _OPENER.open(request, timeout=HTTP_TIMEOUT_S) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def mixed_load(app_url: str, place_ids: list[int], *, seconds: float, threads: int) -> LoadResult:
    """Pages, API reads, the popular ranking (twice per window, so its cache hits), interactions and probes."""
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def one_user(seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < deadline:
            place = rng.choice(place_ids)
            for path, body in (
                ("/", None),
                ("/places/", None),
                (f"/places/{place}/", None),
                ("/api/places/?page=1", None),
                (f"/api/places/{place}/", None),
                ("/api/places/popular/?limit=10&window=7d", None),
                ("/api/places/popular/?limit=10&window=7d", None),
                (f"/api/places/{place}/interactions/", {"kind": rng.choice(("view", "like", "bookmark"))}),
                ("/places/random/", None),
                ("/healthz", None),
            ):
                status = _request(app_url + path, body=body)
                with lock:
                    statuses[status] = statuses.get(status, 0) + 1

    workers = [threading.Thread(target=one_user, args=(i,), daemon=True) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return LoadResult(sent=sum(statuses.values()), statuses=statuses)


@pytest.fixture(scope="module")
def live_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveLab]:
    missing = [name for name in REQUIRED_BINARIES if shutil.which(name) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (make system-deps): the live dashboard test needs them")
    try:
        from experiments.lab import Lab, LabConfig
    except ImportError as exc:  # the lab is another folder's; say so rather than erroring obscurely
        pytest.skip(f"experiments.lab is not importable: {exc}")

    base = tmp_path_factory.mktemp("grafana-live")
    ports = {name: free_port() for name in LabConfig.port_fields()}
    config = LabConfig.from_env(
        lab_dir=base / "lab",
        var_dir=base / "var",
        profile="embedded",
        window_set="lab",
        database_url="",
        redis_url="",
        pgbouncer=False,
        **ports,
    )
    lab = Lab(config)
    try:
        lab.up(profile="embedded")
        lab.manage("seed_demo", "--places", str(SEED_PLACES), timeout_s=300)
        place_ids = _place_ids(lab.app_url)
        load = mixed_load(lab.app_url, place_ids, seconds=LOAD_SECONDS, threads=LOAD_THREADS)
        yield LiveLab(prometheus_url=lab.prometheus_url, app_url=lab.app_url, log_paths=dict(lab.log_paths), load=load)
    finally:
        lab.down()


def _place_ids(app_url: str) -> list[int]:
    with urllib.request.urlopen(f"{app_url}/api/places/?page=1", timeout=HTTP_TIMEOUT_S) as response:
        payload = json.load(response)
    items = payload.get("results") or payload.get("places") or payload.get("items") or []
    ids = [int(item["id"]) for item in items if "id" in item]
    assert ids, f"the seeded lab lists no places: {str(payload)[:300]}"
    return ids
