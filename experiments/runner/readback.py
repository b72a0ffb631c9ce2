"""The read-your-writes check of a run: a logged-in client writes and at once reads its write back, under load.

Runs beside Locust when the experiment expects `read_your_writes` (the read-replica experiment, both arms):
`cycles` times, the demo user edits their profile's bio to a fresh token (POST /accounts/profile/edit/) and
loads their profile page, which must show that token. With a replica the write's response pins the client to
the primary (cookie `chowist_primary`, chowist/core/db_routing.py); the check records whether it did, so the
report shows what made the read-back hold. Every request goes through the lab's front door (nginx when it
runs); the runner adds them to Locust's count for the Prometheus/Locust self-check.
"""

from __future__ import annotations

import re
import threading
import uuid
from dataclasses import dataclass, field

import requests

# A demo user of `manage.py seed_demo` (chowist/demo/demo_data.py: demo_username(0), DEMO_PASSWORD); Locust
# logs in as the editor, so this user's profile is the probe's alone.
USERNAME, PASSWORD = "demo00000", "chowist-demo"
PIN_COOKIE = "chowist_primary"
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
TIMEOUT_S = 10


@dataclass
class ReadBack:
    """What the probe saw: checks made, read back, pinned by the write's response, requests sent, failures."""

    checks: int = 0
    read_back: int = 0
    pinned: int = 0
    requests: int = 0
    failures: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "checks": self.checks,
            "read_back": self.read_back,
            "pinned": self.pinned,
            "requests": self.requests,
            "failures": self.failures[:5],
        }


class ReadBackProbe:
    """`cycles` write-then-read checks in a thread, the first after `delay_s`, then one every `interval_s`."""

    def __init__(self, base_url: str, *, cycles: int, delay_s: float, interval_s: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.cycles, self.delay_s, self.interval_s = cycles, delay_s, interval_s
        self.result = ReadBack()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="read-your-writes", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> ReadBack:
        self._stop.set()
        self._thread.join(timeout=TIMEOUT_S * 4)
        return self.result

    def _get(self, session: requests.Session, path: str, **kw: object) -> requests.Response:
        self.result.requests += 1
        return session.get(self.base_url + path, timeout=TIMEOUT_S, **kw)  # type: ignore[arg-type]

    def _post(self, session: requests.Session, path: str, data: dict[str, str]) -> requests.Response:
        self.result.requests += 1
        return session.post(self.base_url + path, data=data, timeout=TIMEOUT_S, allow_redirects=False)

    def _token(self, response: requests.Response) -> str:
        match = CSRF_INPUT.search(response.text)
        if match is None:
            raise RuntimeError(f"no CSRF token on {response.url} ({response.status_code})")
        return match.group(1)

    def _run(self) -> None:
        if self._stop.wait(self.delay_s):
            return
        session = requests.Session()
        try:
            login = self._get(session, "/accounts/login/")
            done = self._post(
                session,
                "/accounts/login/",
                {"username": USERNAME, "password": PASSWORD, "csrfmiddlewaretoken": self._token(login)},
            )
            if done.status_code != 302:
                raise RuntimeError(f"login as {USERNAME} answered {done.status_code}: was seed_demo run?")
        except (requests.RequestException, RuntimeError) as exc:
            self.result.failures.append(f"login: {exc}")
            return
        for n in range(self.cycles):
            if n and self._stop.wait(self.interval_s):
                return
            self._cycle(session)

    def _cycle(self, session: requests.Session) -> None:
        marker = f"read-your-writes {uuid.uuid4().hex}"
        self.result.checks += 1
        try:
            form = self._get(session, "/accounts/profile/edit/")
            session.cookies.pop(PIN_COOKIE, None)  # only this write's response may pin the read that follows
            saved = self._post(
                session, "/accounts/profile/edit/", {"bio": marker, "csrfmiddlewaretoken": self._token(form)}
            )
            if saved.status_code != 302:
                raise RuntimeError(f"profile edit answered {saved.status_code}")
            self.result.pinned += PIN_COOKIE in saved.cookies
            page = self._get(session, "/accounts/profile/")
            if page.status_code == 200 and marker in page.text:
                self.result.read_back += 1
            else:
                self.result.failures.append(f"profile page ({page.status_code}) without the bio just saved")
        except (requests.RequestException, RuntimeError) as exc:
            self.result.failures.append(str(exc))
