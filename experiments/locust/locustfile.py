"""Chowist traffic for Locust: one FastHttpUser whose task weights come from the experiment's mix.

The runner passes `--mix home=1,browse=3,...`, `--wait-ms MIN,MAX` and `--place-ids-file` (place ids
read from the database before the measured window, so no discovery request pollutes the window).
Request names group URLs by endpoint, so Locust's CSV and Prometheus's `view` label line up.
"""

from __future__ import annotations

import io
import random
import re
import uuid
from pathlib import Path
from typing import Any

from locust import FastHttpUser, events, task
from locust.env import Environment

SEARCH_TERMS = ("pizza", "sushi", "cafe", "bar", "grill", "taco", "noodle", "vegan", "bakery", "thai")
CATEGORIES = ("pizza", "sushi", "cafe", "bar", "mexican", "thai", "bakery", "vegan")
MAX_PAGE = 5
INTERACTION_KINDS = (("view", 6), ("like", 3), ("bookmark", 1))
# Request names (Locust groups its statistics by them); the runner counts "interact" as interactions sent.
INTERACT = "POST /api/places/[id]/interactions/"
# A logged-in user's repeat like or bookmark of the day is answered 202 with the first one ("duplicate": true) and
# not counted again: under its own name, so the runner's interactions sent are the ones the app accepts. A user
# logged in for uploads (the editor) meets it.
INTERACT_DUPLICATE = "POST /api/places/[id]/interactions/ (duplicate)"
UPLOAD = "POST /api/places/[id]/photo/"
UPLOAD_BAD = "POST /api/places/[id]/photo/ (bad)"
# The demo editor `manage.py seed_editor` creates (chowist/demo/demo_data.py: DEMO_EDITOR, DEMO_PASSWORD).
EDITOR = ("lab-editor", "chowist-demo")
PHOTO_SIDE_PX = 48
# A share of uploads is not an image: the app must refuse them with a 4xx, never a 5xx.
BAD_UPLOAD_SHARE = 0.1
# Files `collectstatic` always writes (Django's admin): served by nginx behind the proxy, by the app without it.
STATIC_ASSETS = ("/static/admin/css/base.css", "/static/admin/js/core.js", "/static/admin/img/icon-yes.svg")
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    parser.add_argument("--mix", type=str, default="detail=1", help="task=weight,... (experiments catalogue mix)")
    parser.add_argument("--wait-ms", type=str, default="0,0", help="think time between tasks, MIN,MAX in ms")
    parser.add_argument("--place-ids-file", type=str, default="", help="file with one place id per line")


_place_ids: list[int] = []


def _weights(spec: str) -> dict[str, int]:
    weights = {}
    for part in spec.split(","):
        name, _, weight = part.partition("=")
        weights[name.strip()] = int(weight or 1)
    return weights


@events.init.add_listener
def _configure(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    if options is None:
        return
    if options.place_ids_file:
        _place_ids[:] = [int(line) for line in Path(options.place_ids_file).read_text().split() if line.strip()]
    low, _, high = options.wait_ms.partition(",")
    ChowistUser.wait_min_s = int(low) / 1000
    ChowistUser.wait_max_s = int(high or low) / 1000
    tasks = {name: getattr(ChowistUser, name) for name in ChowistUser.task_names}
    mix = _weights(options.mix)
    unknown = mix.keys() - tasks.keys()
    if unknown:
        raise SystemExit(f"unknown task(s) in --mix: {', '.join(sorted(unknown))}")
    ChowistUser.tasks = [tasks[name] for name, weight in mix.items() for _ in range(weight)]


class ChowistUser(FastHttpUser):
    task_names = (
        "home",
        "browse",
        "search",
        "detail",
        "detail_html",
        "random_place",
        "popular",
        "interact",
        "upload",
        "static",
    )
    wait_min_s = 0.0
    wait_max_s = 0.0

    def wait_time(self) -> float:
        return random.uniform(self.wait_min_s, self.wait_max_s)

    _csrf: str = ""

    def _place(self) -> int:
        return random.choice(_place_ids) if _place_ids else 1

    @task
    def home(self) -> None:
        self.client.get("/", name="GET /")

    @task
    def browse(self) -> None:
        # Stay within the pages the seed fills (page size is 15-25): a 404 here would be the scenario's fault.
        page = random.randint(1, max(1, min(MAX_PAGE, len(_place_ids) // 25)))
        if random.random() < 0.5:
            self.client.get(f"/places/?page={page}", name="GET /places/")
        else:
            self.client.get(f"/api/places/?page={page}", name="GET /api/places/")

    @task
    def search(self) -> None:
        if random.random() < 0.5:
            self.client.get(f"/api/places/?q={random.choice(SEARCH_TERMS)}", name="GET /api/places/?q=")
        else:
            self.client.get(f"/api/places/?category={random.choice(CATEGORIES)}", name="GET /api/places/?category=")

    @task
    def detail(self) -> None:
        self.client.get(f"/api/places/{self._place()}/", name="GET /api/places/[id]/")

    @task
    def detail_html(self) -> None:
        self.client.get(f"/places/{self._place()}/", name="GET /places/[id]/")

    @task
    def random_place(self) -> None:
        # The redirect target is a detail page: don't follow it, or one task would be two requests.
        with self.client.get(
            "/places/random/", name="GET /places/random/", allow_redirects=False, catch_response=True
        ) as r:
            if r.status_code in (301, 302, 303, 307, 308):
                r.success()

    @task
    def popular(self) -> None:
        window = random.choice(("1d", "7d", "30d"))
        self.client.get(f"/api/places/popular/?limit=10&window={window}", name="GET /api/places/popular/")

    @task
    def interact(self) -> None:
        kind = random.choices([k for k, _ in INTERACTION_KINDS], weights=[w for _, w in INTERACTION_KINDS])[0]
        with self.client.post(
            f"/api/places/{self._place()}/interactions/", json={"kind": kind}, name=INTERACT, catch_response=True
        ) as r:
            if r.status_code != 202:
                r.failure(f"expected 202, got {r.status_code}")
            elif b'"duplicate": true' in (r.content or b""):
                r.request_meta["name"] = INTERACT_DUPLICATE

    @task
    def static(self) -> None:
        self.client.get(random.choice(STATIC_ASSETS), name="GET /static/[asset]")

    @task
    def upload(self) -> None:
        """A small generated photo for a place, as the demo editor; the thumbnail job follows in the consumer."""
        if not self._csrf and not self._log_in():
            return
        bad = random.random() < BAD_UPLOAD_SHARE
        content = b"this is not an image" if bad else _photo()
        body, content_type = _multipart(field="photo", filename="bad.png" if bad else "photo.png", content=content)
        with self.client.post(
            f"/api/places/{self._place()}/photo/",
            data=body,
            headers={"Content-Type": content_type, "X-CSRFToken": self._csrf},
            name=UPLOAD_BAD if bad else UPLOAD,
            catch_response=True,
        ) as r:
            if bad and 400 <= r.status_code < 500:
                r.success()
            elif not bad and r.status_code != 202:
                r.failure(f"expected 202, got {r.status_code}")
            elif bad:
                r.failure(f"a bad upload must be a 4xx, got {r.status_code}")

    def _log_in(self) -> bool:
        with self.client.get("/accounts/login/", name="GET /accounts/login/", catch_response=True) as page:
            match = CSRF_INPUT.search(page.text or "")
            if match is None:
                page.failure("no CSRF token on the login page")
                return False
        username, password = EDITOR
        form = {"username": username, "password": password, "csrfmiddlewaretoken": match.group(1)}
        with self.client.post(
            "/accounts/login/", data=form, name="POST /accounts/login/", allow_redirects=False, catch_response=True
        ) as r:
            if r.status_code != 302:
                r.failure(f"editor login failed ({r.status_code}): was `manage.py seed_editor` run?")
                return False
            r.success()
        self._csrf = next((c.value for c in self.client.cookiejar if c.name == "csrftoken"), "")
        return bool(self._csrf)


def _photo() -> bytes:
    from PIL import Image

    image = Image.new("RGB", (PHOTO_SIDE_PX, PHOTO_SIDE_PX), tuple(random.randrange(256) for _ in range(3)))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _multipart(*, field: str, filename: str, content: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    return head + content + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"
