"""Development mode fails the way production does.

With DEBUG on, Django answers a SuspiciousOperation or BadRequest (1,001 query fields, a form body in UTF-16)
with its debug page at the right 4xx status. That page lists the request's GET and POST parameters, so it parsed
the same input again, raised the same error from inside the error handler, and every middleware layer tried the
page again on the way out: gunicorn's bare 500 after 3-11 s of worker time, seen by neither the metrics nor the
request log. This reporter (settings.DEFAULT_EXCEPTION_REPORTER) shows what cannot be parsed as empty instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, QueryDict
from django.utils.datastructures import MultiValueDict
from django.views.debug import ExceptionReporter

from chowist.core.views import error_response, is_api_request


def request_input_neutralise(request: HttpRequest) -> None:
    """Replace the request's query and body parameters by empty ones when parsing them raises."""
    try:
        request.GET  # noqa: B018 -- parsed here, so that a failure is caught here
    except Exception:
        request.GET = QueryDict()
    try:
        request.POST  # noqa: B018
        request.FILES  # noqa: B018
    except Exception:
        request._post = QueryDict()  # type: ignore[attr-defined]
        request._files = MultiValueDict()  # type: ignore[attr-defined]


class InputSafeExceptionReporter(ExceptionReporter):
    def __init__(self, request: HttpRequest | None, *args: Any, **kwargs: Any) -> None:
        if request is not None:
            request_input_neutralise(request)
        super().__init__(request, *args, **kwargs)


class ApiDebugNotFoundMiddleware:
    """With DEBUG on, a 404 under /api/ is the API's JSON error, not Django's HTML debug page.

    Django renders its technical 404 page for an unmatched URL (/api/places/-1/) in development: a JSON client got
    HTML where the schema and production answer `{"error": ...}`. In production handler404 already answers JSON there.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code == 404
            and is_api_request(request)
            and response.get("Content-Type", "").startswith("text/html")
        ):
            return error_response(request, 404)
        return response
