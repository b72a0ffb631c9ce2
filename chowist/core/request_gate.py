"""The Host check in front of every answer the app can give.

Django checks the Host header against ALLOWED_HOSTS when something calls `request.get_host()`: CommonMiddleware
does, for every request, but a middleware in front of it that answers by itself never got there. The page cache
served a stored page to `Host: evil.example` (a 200 where Django answers 400), and WhiteNoise serves static files
the same way. This middleware sits in front of all of them (behind the observability ones, so the 400 is counted
and logged); SecurityMiddleware (the HTTPS redirect) sits right behind it for the same reason.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


class AllowedHostMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # DisallowedHost is a SuspiciousOperation: Django's handler answers handler400's 400 for it.
        request.get_host()
        return self.get_response(request)
