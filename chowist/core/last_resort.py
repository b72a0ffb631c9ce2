"""The answer when Django's own error handling fails.

Django turns a view's exception into handler500's page (or the debug page); if producing that page raises too,
the exception leaves Django and gunicorn answers its bare 500, outside the request metrics and the request log.
This middleware sits just inside the observability middleware: whatever escapes the rest becomes a plain 500
here, logged with its traceback, so the request log and the metrics outside it record it like any other 500.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseServerError

logger = logging.getLogger("chowist.errors")


class LastResortMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            return self.get_response(request)
        except Exception:
            logger.exception("error handling failed; answered a plain 500")
            return HttpResponseServerError(b"Server error\n", content_type="text/plain; charset=utf-8")
