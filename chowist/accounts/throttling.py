"""Login throttling (django-axes): what a locked-out client is told.

Axes counts failed logins per IP address and, separately, per username (settings.AXES_LOCKOUT_PARAMETERS);
past LOGIN_FAILURE_LIMIT either one is locked out for LOGIN_LOCKOUT_S seconds, on the site's login form
and the admin's alike. Every failure during a lockout restarts it, so the full cool-off is what is left.
"""

from __future__ import annotations

from typing import Any

from axes.helpers import get_cool_off
from django.http import HttpRequest, HttpResponse

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
