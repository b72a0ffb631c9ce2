"""JSON endpoints for interactions: record one (202), read the popular ranking."""

from __future__ import annotations

import re

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from chowist.core.api import ApiError, api_view, int_param, parse_json_object
from chowist.core.db_routing import read_your_writes_exempt
from chowist.core.page_cache import POPULAR, page_cache_skip, page_cached
from chowist.core.ratelimit import rate_limit_check
from chowist.interactions import selectors, services

# Exactly the values the schema lists (chowist/openapi.py: 1d ... POPULAR_MAX_WINDOW_DAYS d): no leading zero.
_WINDOW = re.compile(r"^([1-9][0-9]{0,3})d$")


# No CSRF token: the body must be application/json, which a cross-site form cannot send without a CORS
# preflight that this app never answers, and the write is an anonymous-capable counter bump.
# The client never reads its interaction back (the inbox is counted later, into rankings cached for a minute):
# it must not pin the client's next pages to the primary (chowist/core/db_routing.py).
@read_your_writes_exempt
@csrf_exempt
@api_view("POST")
def record(request: HttpRequest, pk: int) -> JsonResponse:
    rate_limit_check(request, group="interactions", rate=settings.INTERACTIONS_RATE_LIMIT)
    payload = parse_json_object(request)
    kind = payload.get("kind")
    if not isinstance(kind, str):
        raise ApiError(400, 'body must be {"kind": "view" | "like" | "bookmark"}')
    try:
        interaction = services.interaction_record(place_id=pk, kind=kind, user=request.user)
    except services.UnknownKind as exc:
        raise ApiError(400, str(exc)) from exc
    except services.UnknownPlace as exc:
        raise ApiError(404, str(exc)) from exc
    return JsonResponse(
        {
            "id": interaction.pk,
            "place_id": pk,
            "kind": kind,
            "mode": settings.INTERACTIONS_MODE,
            "duplicate": interaction.duplicate,
        },
        status=202,
    )


def _popular_page_cache_on() -> bool:
    # POPULAR_CACHE=off must compute every answer (the cache experiment): no page cache in front of it either.
    return settings.PAGE_CACHE and settings.POPULAR_CACHE


@api_view("GET", "HEAD")
@page_cached(POPULAR, enabled=_popular_page_cache_on, ttl=lambda: settings.POPULAR_CACHE_TTL)
def popular(request: HttpRequest) -> JsonResponse:
    limit = int_param(
        request.GET.get("limit"),
        name="limit",
        default=settings.POPULAR_DEFAULT_LIMIT,
        minimum=1,
        maximum=settings.POPULAR_MAX_LIMIT,
    )
    window_days = _window_days(request.GET.get("window"))
    body = selectors.popular_items_get(limit=limit, window_days=window_days)
    response = JsonResponse({"limit": limit, **body})
    # Only an answer that came from the popular cache may be replayed: it says "cached": true.
    return response if body["cached"] else page_cache_skip(response)


def _window_days(raw: str | None) -> int:
    if raw is None:
        return settings.POPULAR_DEFAULT_WINDOW_DAYS
    match = _WINDOW.fullmatch(raw)
    days = int(match.group(1)) if match else 0
    if not 1 <= days <= settings.POPULAR_MAX_WINDOW_DAYS:
        raise ApiError(
            400, f"window must look like 7d, between 1d and {settings.POPULAR_MAX_WINDOW_DAYS}d, got {raw[:40]!r}"
        )
    return days
