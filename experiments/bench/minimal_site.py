"""The yardstick of `make bench-endpoints`: a minimal Django project answering one small JSON view.

Settings, URLconf and WSGI application in one module, with the middleware `django-admin startproject`
writes. The bench serves it exactly like the app (same WSGI handler in callgrind, same gunicorn shape under
wrk), so "cost relative to the minimal view" is Chowist's own work on top of what any Django request costs.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path

SECRET_KEY = "minimal-site-not-a-secret-0123456789-0123456789"  # noqa: S105 - a local benchmark
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = __name__
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
# Never queried by the view: there only because the startproject apps expect a database.
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
PATH = "/json"


def hello(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True, "items": list(range(10))})


urlpatterns = [path(PATH.lstrip("/"), hello)]


_handler: list = []


def application(environ: dict, start_response: object) -> object:
    """WSGI entry point, created on first use so importing the settings does not configure Django."""
    if not _handler:
        from django.core.wsgi import get_wsgi_application

        _handler.append(get_wsgi_application())
    return _handler[0](environ, start_response)
