import time

from django.core.cache import cache
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.urls import include, path

SLOW_S = 0.5


def menu(request):
    """A database query and a cache read."""
    cache.get_or_set("menu", "soup", 60)
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"menu": cache.get("menu")})


def report(request):
    time.sleep(SLOW_S)
    return JsonResponse({"report": "ready"})


def order(request):
    # The client chooses which requests fail, so it knows the error share it sent.
    if request.GET.get("fail"):
        raise RuntimeError("order failed")
    return JsonResponse({"order": "placed"})


def healthz(request):
    # A probe failing now and then must not touch the SLIs (it is an excluded view).
    return HttpResponse("ok" if not request.GET.get("fail") else "down", status=503 if request.GET.get("fail") else 200)


urlpatterns = [
    path("menu/", menu, name="menu"),
    path("report/", report, name="report"),
    path("order/", order, name="order"),
    path("healthz/", healthz, name="healthz"),
    # django-prometheus's metrics view on the app's own port: the scrape is never user traffic.
    path("", include("django_prometheus.urls")),
]
