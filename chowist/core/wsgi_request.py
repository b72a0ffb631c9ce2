"""The WSGI handler gunicorn runs: Django's, with a request that cannot fail while it is being built.

Django's `HttpRequest.encoding` setter tests `hasattr(self, "GET")`, which *parses* the query string. A
`Content-Type` with a charset makes `WSGIRequest.__init__` set the encoding, so a query string over
DATA_UPLOAD_MAX_NUMBER_FIELDS raised TooManyFieldsSent before any middleware existed to turn it into a 400:
gunicorn answered its own 500, which the request metrics never saw. Here the setter only drops what was
really parsed, so the query string is parsed lazily inside the middleware chain, where the same
TooManyFieldsSent becomes a counted 400.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.handlers.wsgi import LimitedStream, WSGIHandler, WSGIRequest
from django.http import HttpRequest, HttpResponse

# How much of a chunked body is read at a time.
CHUNK_BYTES = 64 * 1024


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


# gunicorn's request object for the request this thread is serving (bound by gunicorn.conf.py's pre_request).
_server_request: ContextVar[Any] = ContextVar("chowist_server_request", default=None)


def server_request_bind(req: Any) -> None:
    _server_request.set(req)


def body_unread(request: HttpRequest) -> bool:
    """Whether the view answered without reading the whole body it was sent."""
    if getattr(request, "_body_incomplete", False):
        return True
    if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        # Answered before ChunkedBodyMiddleware read it (a bad Host, a cached page): still on the socket.
        return not getattr(request, "_chunked_body_read", False)
    stream = getattr(request, "_stream", None)
    return isinstance(stream, LimitedStream) and stream._pos < stream.limit  # type: ignore[attr-defined]


class LazyWSGIHandler(WSGIHandler):
    """Django's handler; a response that leaves the body unread closes the connection and says so.

    A body rejected early (a 7 MB JSON document, a 200 KB multipart part header) is left on the socket. gunicorn
    drains at most 64 KB of it before the next request and closes the connection otherwise, after a response that
    already said `Connection: keep-alive`: the client's next request on it failed. Here gunicorn is told to close
    (its request's force_close), so its response says `Connection: close` and the client opens a new connection.
    """

    request_class = LazyWSGIRequest

    def get_response(self, request: HttpRequest) -> HttpResponse:
        response = super().get_response(request)
        if body_unread(request):
            server_request = _server_request.get()
            if server_request is not None:
                server_request.force_close()
            # What other servers (runserver) read; gunicorn drops hop-by-hop headers and writes its own.
            response["Connection"] = "close"
        return response


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


class ChunkedBodyMiddleware:
    """A body sent with `Transfer-Encoding: chunked` (no Content-Length) is read, not dropped.

    Django reads exactly CONTENT_LENGTH bytes of wsgi.input, 0 when the header is absent: a chunked POST reached
    the view with an empty body (`{"kind":"view"}` answered 400 "zero-length document"). gunicorn decodes the
    chunks and ends wsgi.input at the last one (it says so with `wsgi.input_terminated`), so the body is read
    here until EOF, bounded by DATA_UPLOAD_MAX_MEMORY_SIZE like any other body: one byte more is
    RequestDataTooBig, a 400. Then CONTENT_LENGTH is what was read, and the multipart parser sees it too.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        meta = request.META
        if (
            not meta.get("CONTENT_LENGTH")
            and "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower()
            and meta.get("wsgi.input_terminated")
        ):
            request_body_read_to_eof(request)
        return self.get_response(request)


def request_body_read_to_eof(request: HttpRequest) -> None:
    """Read wsgi.input until EOF into the request's stream; RequestDataTooBig past DATA_UPLOAD_MAX_MEMORY_SIZE."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    source = request.META["wsgi.input"]
    chunks: list[bytes] = []
    size = 0
    while chunk := source.read(min(CHUNK_BYTES, limit + 1 - size) if limit is not None else CHUNK_BYTES):
        chunks.append(chunk)
        size += len(chunk)
        if limit is not None and size > limit:
            request._body_incomplete = True  # type: ignore[attr-defined]
            raise RequestDataTooBig("Request body exceeded settings.DATA_UPLOAD_MAX_MEMORY_SIZE.")
    body = b"".join(chunks)
    request._chunked_body_read = True  # type: ignore[attr-defined]
    request.META["CONTENT_LENGTH"] = str(len(body))
    request._stream = LimitedStream(io.BytesIO(body), len(body))  # type: ignore[attr-defined]
