"""Login throttling (django-axes): what a locked-out client is told; password-reset request limits.

Axes counts failed logins per IP address and, separately, per username (settings.AXES_LOCKOUT_PARAMETERS);
past LOGIN_FAILURE_LIMIT either one is locked out for LOGIN_LOCKOUT_S seconds, on the site's login form
and the admin's alike. Every failure during a lockout restarts it, so the full cool-off is what is left.
"""

from __future__ import annotations

from typing import Any

from axes.helpers import get_cool_off
from django.conf import settings
from django.http import HttpRequest, HttpResponse

from chowist.core.ratelimit import client_ip, rate_limit_retry_after
from chowist.core.views import error_response

LOCKOUT_STATUS = 429


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict[str, Any] | None = None
) -> HttpResponse:
    cool_off = get_cool_off(request)
    retry_after = int(cool_off.total_seconds()) if cool_off else 0
    message = "Too many failed log-in attempts."
    if retry_after:
        message += f" Try again in {max(1, retry_after // 60)} minute(s)."
    response = error_response(request, LOCKOUT_STATUS, message)
    if retry_after:
        response["Retry-After"] = str(retry_after)
    return response


def password_reset_retry_after(request: HttpRequest, *, email: str) -> int:
    """Count a reset request against its address and its client; the seconds to wait past either limit, else 0.

    Both counters move on every request, known address or not: the answer says nothing about the address, and a
    client spraying addresses is stopped by its own counter.
    """
    by_address = rate_limit_retry_after(
        request,
        group="password_reset_address",
        rate=settings.PASSWORD_RESET_RATE_LIMIT_ADDRESS,
        key=email.strip().lower(),
    )
    by_client = rate_limit_retry_after(
        request, group="password_reset_ip", rate=settings.PASSWORD_RESET_RATE_LIMIT_IP, key=str(client_ip(request))
    )
    return max(by_address, by_client)


def rate_limited_response(request: HttpRequest, *, what: str, retry_after: int) -> HttpResponse:
    response = error_response(
        request, LOCKOUT_STATUS, f"Too many {what}. Try again in {max(1, retry_after // 60)} minute(s)."
    )
    response["Retry-After"] = str(retry_after)
    return response
