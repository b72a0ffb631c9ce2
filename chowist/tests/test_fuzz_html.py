"""A seeded, bounded fuzz of every HTML route and form (Django's test client): never a 5xx.

Each round picks a route from the URLconf (admin included), fills its path parameters with real ids, absent
ids, huge numbers and junk, a method, a query string and a form body built from the field names the app's
forms use plus random ones, with hostile values (NUL, surrogates, 10 KB strings, repeated keys, numbers
far out of range), as an anonymous visitor, a plain user and an editor. The seed and the round count are
fixed, so a failure replays exactly.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from chowist.places.tests.factories import PASSWORD, make_place

SEED = 20261204
ROUNDS = 1200
FIELD_NAMES = [
    "q", "category", "party", "page", "next", "rating", "comment", "username", "password", "password1",
    "password2", "email", "old_password", "new_password1", "new_password2", "name", "description", "address",
    "city", "phone", "categories", "min_party_size", "max_party_size", "bio", "display_name", "kind",
    "action", "_selected_action", "o", "p", "all", "e", "csrfmiddlewaretoken",
]  # fmt: skip
HOSTILE = [
    "", " ", "0", "-1", "1", "5", "6", "99999999999999999999999", "1e308", "NaN", "null", "true", "[]", "{}",
    "\x00", "a\x00b", "%ED%A0%80", "é" * 50, "x" * 10_000, "<script>alert(1)</script>", "' OR 1=1 --",
    "../../etc/passwd", "//evil.example.com", "http://evil.example.com/", "/accounts/login/", "%00", "%ff",
    "pizza", "a b", "-", "__proto__", "\r\nSet-Cookie: x=1",
]  # fmt: skip
METHODS = ["GET"] * 5 + ["POST"] * 4 + ["HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"]


def _routes(patterns: list[Any] | None = None, prefix: str = "") -> Iterator[str]:
    for entry in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(entry, URLResolver):
            yield from _routes(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern)


def _admin_regex_route(route: str) -> bool:
    # The admin's catch-all and regex routes (^...$): exercised through their concrete siblings instead.
    return route.startswith("^") or "(?P" in route or route.endswith("$")


def _fill(route: str, rng: random.Random, place_ids: list[int], user_ids: list[int]) -> str:
    def value(match: re.Match[str]) -> str:
        converter = match.group(1) or "str"
        if converter == "int":
            return str(rng.choice([*place_ids, *user_ids, 0, 987654, 10**12, 10**30]))
        if converter == "path":
            return rng.choice(["x", "a/b", "%2e%2e/%2e%2e"])
        return rng.choice(["x", "MQ", "set-password", "abc-def", "é", "0" * 300, "%00"])

    return "/" + re.sub(r"<(?:(\w+):)?\w+>", value, route)


def _params(rng: random.Random) -> list[tuple[str, str]]:
    params = []
    for _ in range(rng.randint(0, 6)):
        name = rng.choice([*FIELD_NAMES, rng.choice(HOSTILE)[:20] or "k"])
        params.append((name, rng.choice(HOSTILE)))
    return params


@pytest.mark.django_db
def test_fuzzed_html_routes_and_forms_never_answer_5xx():
    rng = random.Random(SEED)
    places = [make_place() for _ in range(3)]
    plain = User.objects.create_user(username="fuzz-plain", password=PASSWORD)
    editor = User.objects.create_user(username="fuzz-editor", password=PASSWORD, is_staff=True)
    editor.user_permissions.add(Permission.objects.get(codename="change_place", content_type__app_label="places"))
    clients = {"anonymous": Client(raise_request_exception=False)}
    for label, user in (("plain", plain), ("editor", editor)):
        clients[label] = Client(raise_request_exception=False)
        clients[label].force_login(user)
    routes = [r for r in _routes() if not r.startswith("api/") and not _admin_regex_route(r)]
    site_routes = [r for r in routes if not r.startswith("admin/")]
    admin_routes = [r for r in routes if r.startswith("admin/")]
    assert len(site_routes) > 15 and admin_routes, routes
    place_ids = [p.pk for p in places]
    user_ids = [plain.pk, editor.pk]
    failures = []
    statuses = []
    for round_no in range(ROUNDS):
        # The admin has far more routes than the site; most rounds go to the site's.
        route = rng.choice(admin_routes if rng.random() < 0.2 else site_routes)
        path = _fill(route, rng, place_ids, user_ids)
        method = rng.choice(METHODS)
        who = rng.choice(list(clients))
        query = _params(rng)
        body = _params(rng)
        client = clients[who]
        url = path + ("?" + "&".join(f"{k}={v}" for k, v in query) if query else "")
        if method == "POST":
            data: dict[str, list[str]] = {}
            for key, value in body:
                data.setdefault(key, []).append(value)
            response = client.post(url, data=data)
        else:
            response = client.generic(method, url)
        statuses.append(response.status_code)
        if response.status_code >= 500:
            failures.append((round_no, who, method, url[:200], response.status_code))
        # A lockout from the fuzzed log-ins must not mask everything after it.
        if response.status_code == 429:
            from axes.models import AccessAttempt

            AccessAttempt.objects.all().delete()
    assert not failures, failures[:10]
    # The harness reached the views and their forms, not only the method and log-in guards.
    counts = Counter(statuses)
    assert counts[200] > ROUNDS // 10 and counts[400] > 0, counts
