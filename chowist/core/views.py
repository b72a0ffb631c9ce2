"""Error pages (HTML, or JSON under /api/) and the health endpoints."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.template import loader
from django.views.decorators.cache import never_cache

from chowist.core.api import api_view, json_error
from chowist.core.readiness import readiness_report_cached

API_PREFIX = "/api/"

DEFAULT_MESSAGES = {
    400: "The request could not be understood.",
    403: "You do not have permission to do that.",
    404: "There is nothing at this address.",
    405: "That method is not allowed here.",
    429: "Too many requests; please slow down.",
    503: "The service is unavailable for a moment; please try again shortly.",
    500: "Something went wrong on our side. It has been logged; please try again in a moment.",
}
TITLES = {
    400: "Bad request",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    429: "Too many requests",
    500: "Server error",
    503: "Unavailable",
}


def is_api_request(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def error_response(request: HttpRequest, status: int, message: str | None = None) -> HttpResponse:
    """The one way the app answers with an error: JSON under /api/, an HTML page elsewhere."""
    text = message or DEFAULT_MESSAGES.get(status, "Error")
    if is_api_request(request):
        return json_error(status, text)
    # A status gets its own template only when its page says more than the generic one (403: log in).
    template = loader.select_template([f"{status}.html", "error.html"])
    context = {"status": status, "title": TITLES.get(status, "Error"), "message": text}
    return HttpResponse(template.render(context, request), status=status)


def _exception_message(exception: Exception | None) -> str | None:
    # Only messages our own views wrote are shown; Resolver404 carries a dict of tried patterns.
    if isinstance(exception, Http404) and exception.args and isinstance(exception.args[0], str):
        return exception.args[0]
    return None


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    # The exception here is usually SuspiciousOperation; its text is for the logs, not the client.
    return error_response(request, 400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(request, 403)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    # Django's default is a bare HTML page, even under /api/ where every error is {"error": ...}.
    return error_response(request, 403, f"CSRF verification failed ({reason}); reload the page and try again.")


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(request, 404, _exception_message(exception))


def server_error(request: HttpRequest) -> HttpResponse:
    # No request context: the database or a context processor may be what failed.
    if is_api_request(request):
        return json_error(500, DEFAULT_MESSAGES[500])
    html = loader.get_template("500.html").render(
        {"status": 500, "title": TITLES[500], "message": DEFAULT_MESSAGES[500]}
    )
    return HttpResponse(html, status=500)


@never_cache
@api_view("GET", "HEAD")
def healthz(request: HttpRequest) -> HttpResponse:
    """The process is alive and serving: no database, cache or queue I/O."""
    return JsonResponse({"status": "ok"})


@never_cache
@api_view("GET", "HEAD")
def readyz(request: HttpRequest) -> HttpResponse:
    ready, results = readiness_report_cached()
    failed = sorted(name for name, result in results.items() if result != "ok")
    # The error text names hosts and drivers: staff see it, anyone else only which check failed (it is logged).
    checks = (
        results if request.user.is_staff else {name: "ok" if r == "ok" else "failed" for name, r in results.items()}
    )
    body = {"status": "ok" if ready else "unavailable", "checks": checks, "failed": failed}
    return JsonResponse(body, status=200 if ready else 503)
