"""The JSON API's shared plumbing: errors as `{"error": "..."}` with the right status, never a 500 for bad input."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

import orjson
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt

MAX_JSON_BODY_BYTES = 64 * 1024
# Every body this API accepts is a flat object; nesting deeper than this is an attack or a mistake.
MAX_JSON_DEPTH = 16


class ApiError(Exception):
    """Raised anywhere under an `api_view`; becomes a JSON error response."""

    def __init__(self, status: int, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


def json_error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def api_view(*methods: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Allow only `methods`; turn ApiError into its JSON response."""
    allowed = {m.upper() for m in methods}

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in allowed:
                response = json_error(405, f"method {request.method} not allowed; use {', '.join(sorted(allowed))}")
                response["Allow"] = ", ".join(sorted(allowed))
                return response
            try:
                return view(request, *args, **kwargs)
            except ApiError as exc:
                response = json_error(exc.status, exc.message)
                if exc.retry_after is not None:
                    response["Retry-After"] = str(exc.retry_after)
                return response

        # Read by the OpenAPI drift test (chowist/tests/test_openapi.py).
        wrapper.allowed_methods = frozenset(allowed)  # type: ignore[attr-defined]
        return wrapper

    return decorator


def csrf_checked_when_logged_in(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """CSRF checked only for a logged-in client, after the view's own log-in check for anyone else.

    A forged cross-site request rides the victim's session; a request without one has nothing to ride. Checked
    first (CsrfViewMiddleware), an anonymous upload was answered CSRF's 403 where the API's schema says 401.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.is_authenticated:
            rejection = CsrfViewMiddleware(_no_response).process_view(request, view, args, kwargs)
            if rejection is not None:
                return rejection
        return view(request, *args, **kwargs)

    return csrf_exempt(wrapper)


def _no_response(request: HttpRequest) -> HttpResponse:
    raise AssertionError("only CsrfViewMiddleware.process_view is used")


def parse_json_object(request: HttpRequest) -> dict[str, Any]:
    """The request body as a JSON object, or ApiError(4xx) saying what is wrong with it."""
    content_type = request.content_type or ""
    if content_type != "application/json":
        raise ApiError(415, f"Content-Type must be application/json, got {content_type or 'none'!r}")
    if len(request.body) > MAX_JSON_BODY_BYTES:
        raise ApiError(413, f"body larger than {MAX_JSON_BODY_BYTES} bytes")
    # orjson parses without recursion (the stdlib's json raises RecursionError on ~1,000 nested arrays).
    try:
        payload = orjson.loads(request.body or b"")
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"malformed JSON: {exc}") from exc
    if json_depth(payload) > MAX_JSON_DEPTH:
        raise ApiError(400, f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    if not isinstance(payload, dict):
        raise ApiError(400, "JSON body must be an object")
    return payload


def json_depth(value: Any) -> int:
    """How deeply containers nest in a parsed JSON value (a scalar is 0), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth + 1)
            stack.extend((child, depth + 1) for child in item)
    return deepest


def int_param(raw: str | None, *, name: str, default: int, minimum: int, maximum: int) -> int:
    """A bounded integer query parameter, or ApiError(400) naming it."""
    if raw is None:
        return default
    if raw == "":
        # Present but empty is not "absent": the schema (chowist/openapi.py) says an integer, so the server does too.
        raise ApiError(400, f"{name} must be an integer, got an empty value")
    try:
        value = int(raw)
    except ValueError as exc:
        raise ApiError(400, f"{name} must be an integer, got {raw[:40]!r}") from exc
    if not minimum <= value <= maximum:
        raise ApiError(400, f"{name} must be between {minimum} and {maximum}, got {value}")
    return value
