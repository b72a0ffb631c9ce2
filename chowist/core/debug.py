"""Development mode fails the way production does.

With DEBUG on, Django answers a SuspiciousOperation or BadRequest (1,001 query fields, a form body in UTF-16)
with its debug page at the right 4xx status. That page lists the request's GET and POST parameters, so it parsed
the same input again, raised the same error from inside the error handler, and every middleware layer tried the
page again on the way out: gunicorn's bare 500 after 3-11 s of worker time, seen by neither the metrics nor the
request log. This reporter (settings.DEFAULT_EXCEPTION_REPORTER) shows what cannot be parsed as empty instead.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, QueryDict
from django.utils.datastructures import MultiValueDict
from django.views.debug import ExceptionReporter


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
