from django.http import HttpRequest, HttpResponse
from django.urls import include, path


class DeliberateError(RuntimeError):
    """Raised by the test view; its name makes the Bugsink issue easy to find."""


def boom(request: HttpRequest) -> HttpResponse:
    raise DeliberateError("raised on purpose by observability's error-reporting test")


urlpatterns = [
    path("boom/", boom, name="boom"),
    path("", include("chowist.urls")),
]
