"""A database that cannot be reached or written (server restarting, disk full) is a 503 with Retry-After.

It still counts against availability (a 5xx), but it tells clients and load balancers the truth: come
back shortly. Other exceptions stay 500s.

During an outage every request fails the same way, so the error is logged (with its traceback) at most once
per DATABASE_ERROR_LOG_INTERVAL_S per process, and that line says how many 503s since the last one went
unlogged: a traceback per request was ~200 multi-kilobyte lines a second (found by the fault matrix), which
buries everything else and can fill the log volume the outage may be about. Metrics still count every 503.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse

from chowist.core.log_throttle import LogThrottle
from chowist.core.views import error_response

log = structlog.get_logger(__name__)

UNAVAILABLE_STATUS = 503
RETRY_AFTER_S = 5
# As cache_backends' CACHE_ERROR_LOG_INTERVAL_S: one line per interval says the outage is still on.
DATABASE_ERROR_LOG_INTERVAL_S = 5.0


_throttle = LogThrottle(DATABASE_ERROR_LOG_INTERVAL_S)


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        suppressed = _throttle.allow()
        if suppressed is not None:
            log.error("database_unavailable", path=request.path, suppressed=suppressed, exc_info=exception)
        response = error_response(
            request, UNAVAILABLE_STATUS, "The database is unavailable for a moment; please try again shortly."
        )
        response["Retry-After"] = str(RETRY_AFTER_S)
        return response
