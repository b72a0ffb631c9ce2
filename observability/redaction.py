"""Secrets in URLs kept out of the request log, Django's and gunicorn's warnings and the spans (all of which end up
in Loki/Tempo, readable by operators).

Django's password-reset link carries a working token in its path (/accounts/password/reset/<uidb64>/<token>/).
Two rules, so that redaction does not depend on the route outcome:

- a path that resolved to a route: the values of its secret parameters are replaced by REDACTED;
- a path that resolved to nothing (a 404, APPEND_SLASH's 301, a link mangled by a mail client): if it starts with
  the literal prefix of a route that has a secret parameter, everything after that prefix is replaced. The
  prefixes come from the URLconf itself, so a new secret-bearing route is covered without listing it here.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import Any

from django.http import HttpRequest
from django.urls import Resolver404, URLPattern, URLResolver, get_resolver, get_urlconf
from django.urls.resolvers import ResolverMatch, RoutePattern

REDACTED = "[redacted]"
# URL parameters whose values are credentials (Django's auth views name them so).
SECRET_URL_KWARGS = frozenset({"token", "uidb64"})
_PARAMETER = re.compile(r"<(?:\w+:)?(\w+)>")
_UNRESOLVED: Any = object()


def _walk(patterns: Iterable[Any], prefix: str) -> Iterator[str]:
    for pattern in patterns:
        route = str(pattern.pattern) if isinstance(pattern.pattern, RoutePattern) else None
        if route is None:  # regex routes (none of the secret-bearing ones is)
            continue
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + route)
        elif isinstance(pattern, URLPattern):
            full = prefix + route
            names = _PARAMETER.findall(full)
            if SECRET_URL_KWARGS.intersection(names):
                yield "/" + full[: full.index("<")]


@lru_cache(maxsize=4)
def _secret_prefixes(urlconf: str | None) -> tuple[str, ...]:
    """The literal path prefix of every route that has a secret parameter, e.g. ('/accounts/password/reset/',)."""
    return tuple(sorted(set(_walk(get_resolver(urlconf).url_patterns, "")), key=len, reverse=True))


def secret_prefixes() -> tuple[str, ...]:
    return _secret_prefixes(get_urlconf())


def _resolve(path: str) -> ResolverMatch | None:
    try:
        return get_resolver(get_urlconf()).resolve(path)
    except Resolver404:
        return None


def path_redact(path: str, match: ResolverMatch | None = _UNRESOLVED) -> str:
    """The path with every secret replaced by REDACTED; `match` is the path's route when already known."""
    if match is _UNRESOLVED:
        match = _resolve(path)
    if match is not None:
        for name, value in match.kwargs.items():
            if name in SECRET_URL_KWARGS and isinstance(value, str) and value:
                path = path.replace(f"/{value}/", f"/{REDACTED}/")
        return path
    # Slashes collapsed: "/accounts//password/reset/<token>" is a 404 that still carries the token.
    normalised = re.sub(r"/{2,}", "/", path)
    for prefix in secret_prefixes():
        if normalised.startswith(prefix) and len(normalised) > len(prefix):
            return prefix + REDACTED
    return path


def path_redacted(request: HttpRequest) -> str:
    """request.path with its secrets replaced by REDACTED, whether or not it matched a route."""
    return path_redact(request.path, getattr(request, "resolver_match", None))


def text_redacted(text: str) -> str:
    """Any secret-bearing path inside a log message ("Not Found: /accounts/password/reset/...") redacted."""
    try:
        prefixes = secret_prefixes()
    except Exception:  # the URLconf is not importable here (gunicorn's master): nothing can be matched yet
        return text
    for prefix in prefixes:
        if prefix not in text:
            continue
        pattern = re.compile(re.escape(prefix) + r"[^\s'\"?#]+")
        text = pattern.sub(lambda found: path_redact(found.group(0)), text)
    return text


class SecretPathFilter(logging.Filter):
    """On Django's and gunicorn's loggers: the paths they put in a message or in its `request` extra, redacted.

    A logger's filter runs before any handler (the JSON files, Sentry's breadcrumbs) sees the record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = text_redacted(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(text_redacted(arg) if isinstance(arg, str) else arg for arg in record.args)
        request = record.__dict__.get("request")
        if isinstance(request, HttpRequest):
            # Rendered as its repr, which carries the full path; the record keeps only the redacted form.
            record.request = f"<{type(request).__name__}: {request.method} {path_redacted(request)!r}>"
        return True


def sentry_event_redacted(event: dict[str, Any]) -> dict[str, Any]:
    """A Sentry event with the secret-bearing paths in its request URL and transaction name redacted."""
    request = event.get("request")
    if isinstance(request, dict) and isinstance(request.get("url"), str):
        scheme, sep, rest = request["url"].partition("://")
        host, slash, path = rest.partition("/")
        if sep and slash:
            request["url"] = f"{scheme}://{host}{text_redacted('/' + path)}"
        else:
            request["url"] = text_redacted(request["url"])
    if isinstance(event.get("transaction"), str):
        event["transaction"] = text_redacted(event["transaction"])
    return event
