"""The WSGI handler gunicorn runs: Django's, with a request that cannot fail while it is being built.

Django's `HttpRequest.encoding` setter tests `hasattr(self, "GET")`, which *parses* the query string. A
`Content-Type` with a charset makes `WSGIRequest.__init__` set the encoding, so a query string over
DATA_UPLOAD_MAX_NUMBER_FIELDS raised TooManyFieldsSent before any middleware existed to turn it into a 400:
gunicorn answered its own 500, which the request metrics never saw. Here the setter only drops what was
really parsed, so the query string is parsed lazily inside the middleware chain, where the same
TooManyFieldsSent becomes a counted 400.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.handlers.wsgi import WSGIHandler, WSGIRequest
from django.http import HttpRequest, HttpResponse


class LazyWSGIRequest(WSGIRequest):
    @property
    def encoding(self) -> str | None:
        return self._encoding

    @encoding.setter
    def encoding(self, value: str | None) -> None:
        self._encoding = value
        # GET is a cached_property (in __dict__ once parsed); _post is set once the body is parsed.
        self.__dict__.pop("GET", None)
        if hasattr(self, "_post"):
            del self._post


class LazyWSGIHandler(WSGIHandler):
    request_class = LazyWSGIRequest


class QueryStringLimitMiddleware:
    """Parse the query string before any view runs, so every route answers an over-long one alike: a 400.

    Without it a view that never reads request.GET would answer 200 to 1,001 fields while one that does
    answers 400. In process_view (run innermost, once the URL resolved), so the 400 passes back through every
    middleware, the request metrics' included, and is counted like any other response.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Callable[..., Any], view_args: Any, view_kwargs: Any
    ) -> None:
        # TooManyFieldsSent is a SuspiciousOperation: Django's handler turns it into handler400's answer.
        request.GET  # noqa: B018
