"""gunicorn serves every page and endpoint over real HTTP, against seeded demo data."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import pytest

from conftest import free_port
from experiments.lab.appserver import gunicorn_start

ROOT = Path(__file__).resolve().parents[2]
SEED = ["--places", "40", "--users", "10", "--reviews", "200", "--interactions", "500", "--seed", "5"]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()), NoRedirect())


def fetch(client, url: str, data: dict | None = None) -> tuple[int, str, dict]:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    try:
        with client.open(url, data=body, timeout=10) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), dict(exc.headers)


@pytest.fixture
def server(child_env, tmp_path):
    subprocess.run([sys.executable, "manage.py", "seed_demo", *SEED], cwd=ROOT, env=child_env, check=True, timeout=120)
    env = {**child_env, "PROMETHEUS_MULTIPROC_DIR": str(Path(child_env["VAR_DIR"]) / "prom")}
    server = gunicorn_start(
        env=env,
        app_port=free_port(),
        metrics_port=free_port(),
        log_path=tmp_path / "gunicorn.log",
        workers=1,
        threads=None,
    )
    try:
        yield server.app_url
    finally:
        server.stop(timeout_s=30)


@pytest.mark.slow
def test_every_page_is_served_with_seeded_data(server):
    client = opener()
    place_id = json.loads(fetch(client, server + "/api/places/")[1])["results"][0]["id"]
    for path, status in [
        ("/", 200),
        ("/places/", 200),
        ("/places/?q=a&category=pizza&party=2&page=1", 200),
        (f"/places/{place_id}/", 200),
        ("/places/random/", 302),
        (f"/api/places/{place_id}/", 200),
        ("/api/places/?page=2", 200),
        ("/accounts/login/", 200),
        ("/accounts/signup/", 200),
        ("/accounts/password/reset/", 200),
        ("/healthz", 200),
        ("/readyz", 200),
        ("/places/999999/", 404),
        ("/api/places/?page=x", 400),
    ]:
        code, body, _ = fetch(client, server + path)
        assert code == status, (path, code, body[:300])

    # Log in as a demo user through the real form (CSRF and session cookies included).
    login_page = fetch(client, server + "/accounts/login/")[1]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page).group(1)
    credentials = {"username": "demo00001", "password": "chowist-demo", "csrfmiddlewaretoken": token}
    code, _, headers = fetch(client, server + "/accounts/login/", credentials)
    assert code == 302, "demo login failed"
    for path in ["/accounts/profile/", "/accounts/profile/edit/", "/accounts/password/change/", f"/places/{place_id}/"]:
        code, body, _ = fetch(client, server + path)
        assert code == 200, (path, code, body[:300])
    detail = fetch(client, server + f"/places/{place_id}/")[1]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', detail).group(1)
    code, _, headers = fetch(
        client, server + f"/places/{place_id}/review/", {"rating": "5", "csrfmiddlewaretoken": token}
    )
    assert code == 302 and headers["Location"].endswith(f"/places/{place_id}/")
    assert fetch(client, server + f"/places/{place_id}/edit/")[0] == 403
