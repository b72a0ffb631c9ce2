"""Who a client is, for throttling, and the per-client rate limit of the anonymous write API (django-ratelimit).

Counts live in the default cache (shared by every worker: files, Redis or memcached). A cache outage lets
requests through (RATELIMIT_FAIL_OPEN): the limit protects the inbox, it must not become the outage.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import get_usage

from chowist.core.api import ApiError

RATE_LIMITED_STATUS = 429


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: behind the lab's nginx (BEHIND_PROXY) every REMOTE_ADDR is the proxy's, so the last
    X-Forwarded-For entry (the one nginx appended: its own peer) is used; a client can prepend entries but
    not change that one."""
    if settings.BEHIND_PROXY:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if forwarded:
            return forwarded[-1]
    return request.META.get("REMOTE_ADDR")


def client_key(group: str, request: HttpRequest) -> str:
    """A logged-in user is one client wherever they connect from; anyone else is their address."""
    if request.user.is_authenticated:
        return f"user:{request.user.pk}"
    return f"ip:{client_ip(request)}"


def rate_limit_check(request: HttpRequest, *, group: str, rate: str) -> None:
    """Count this request against the client's `rate` ("N/s|m|h|d", or "off"); ApiError(429) past it."""
    if rate == "off":
        return
    usage = get_usage(request, group=group, key=client_key, rate=rate, method=["POST"], increment=True)
    if usage is not None and usage["should_limit"]:
        retry_after = max(1, int(usage["time_left"]))
        raise ApiError(
            RATE_LIMITED_STATUS,
            f"rate limit of {rate} per client reached; retry in {retry_after} s",
            retry_after=retry_after,
        )


def rate_limit_retry_after(request: HttpRequest, *, group: str, rate: str, key: str) -> int:
    """Count this request under `key` in `group`; the seconds to wait when it is past `rate`, else 0."""
    if rate == "off":
        return 0
    usage = get_usage(request, group=group, key=lambda _group, _request: key, rate=rate, increment=True)
    if usage is not None and usage["should_limit"]:
        return max(1, int(usage["time_left"]))
    return 0
