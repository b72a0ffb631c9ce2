"""A database that cannot be reached or written (server restarting, disk full) is a 503 with Retry-After.

It still counts against availability (a 5xx), but it tells clients and load balancers the truth: come
back shortly. Other exceptions stay 500s. The exception is logged with its traceback, as a 500 would be.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse

from chowist.core.views import error_response

logger = logging.getLogger(__name__)

UNAVAILABLE_STATUS = 503
RETRY_AFTER_S = 5


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        logger.error("database_unavailable path=%s", request.path, exc_info=exception)
        response = error_response(
            request, UNAVAILABLE_STATUS, "The database is unavailable for a moment; please try again shortly."
        )
        response["Retry-After"] = str(RETRY_AFTER_S)
        return response
