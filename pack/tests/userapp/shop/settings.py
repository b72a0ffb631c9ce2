import os
from pathlib import Path

BASE_DIR = Path(os.environ.get("SHOP_DATA_DIR", Path(__file__).resolve().parent.parent))
SECRET_KEY = "shop-test-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["django_prometheus"]
MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]
ROOT_URLCONF = "shop.urls"
DATABASES = {"default": {"ENGINE": "django_prometheus.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}}
CACHES = {"default": {"BACKEND": "django_prometheus.cache.backends.locmem.LocMemCache"}}
LOGGING = {"version": 1, "disable_existing_loggers": False}

if not os.environ.get("SHOP_WITHOUT_THRESHOLD_BUCKET"):
    # django-prometheus's default buckets plus the latency SLO's threshold, 0.3 s.
    PROMETHEUS_LATENCY_BUCKETS = (
        0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.3, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 25.0, 50.0, 75.0, float("inf"),
    )  # fmt: skip
