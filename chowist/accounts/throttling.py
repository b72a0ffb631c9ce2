"""Login throttling (django-axes): who is locked out and what they are told; password-reset request limits.

Logins (the site's form and the admin's) are throttled on two counters, both django-axes' own records:
- per username *and* client address together (AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]):
  LOGIN_FAILURE_LIMIT failures lock that pair out for LOGIN_LOCKOUT_S. The same username from another address is
  not locked: a stranger's guesses cannot lock the owner out, and the right password from elsewhere still works.
- per client address, all usernames together: LOGIN_FAILURE_LIMIT_IP failures (looser, so that the users behind one
  NAT do not lock each other out) lock that address out. A client spraying usernames is stopped by this one.
Failures during a lockout do not restart it (AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT off): an attacker cannot
hold a lock on for ever. README.md ("Login throttling") compares this with django-axes' other options.
"""

from __future__ import annotations

from typing import Any

from axes.attempts import get_cool_off_threshold
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_cool_off
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse

from chowist.core.ratelimit import client_ip, rate_limit_retry_after
from chowist.core.views import error_response

LOCKOUT_STATUS = 429


class PairAndClientHandler(AxesDatabaseHandler):
    """django-axes' database handler, with the per-client cap beside its per-(username, address) limit."""

    def is_locked(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> bool:
        return super().is_locked(request, credentials) or (
            client_login_failures(request) >= settings.LOGIN_FAILURE_LIMIT_IP
        )


def client_login_failures(request: HttpRequest) -> int:
    """Failed logins from this request's client address within the lockout window, whatever the username."""
    address = getattr(request, "axes_ip_address", None) or client_ip(request)
    if not address:
        return 0
    recent = AccessAttempt.objects.filter(ip_address=address, attempt_time__gte=get_cool_off_threshold(request))
    return recent.aggregate(total=Sum("failures_since_start"))["total"] or 0


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
