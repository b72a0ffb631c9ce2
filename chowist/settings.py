"""Chowist settings: the one place that reads the environment.

Every environment variable the app understands is read here, once, with its default. The README's
configuration table lists the same variables; `chowist/tests/test_settings.py` keeps the two in step.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from chowist.dburl import cache_from_url, database_from_url, redis_url_with_timeout, sqlite_database
from envconfig import env_bool, env_choice, env_float, env_int, env_list, env_path, env_rate, env_str
from monitoring.config import CONFIG as MONITORING
from observability.logs import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = env_path("VAR_DIR", BASE_DIR / "var")
VAR_DIR.mkdir(parents=True, exist_ok=True)

# --- environment -----------------------------------------------------------------------------------
DJANGO_ENV = env_choice("DJANGO_ENV", "development", ("development", "production", "test"))
IS_PRODUCTION = DJANGO_ENV == "production"
DEBUG = DJANGO_ENV == "development" and env_bool("DEBUG", True)

_DEV_SECRET = "dev-insecure-secret-key-not-for-production-use-0123456789"  # noqa: S105
SECRET_KEY = env_str("SECRET_KEY", "" if IS_PRODUCTION else _DEV_SECRET)
if IS_PRODUCTION and (not SECRET_KEY or SECRET_KEY == _DEV_SECRET):
    raise ImproperlyConfigured("SECRET_KEY must be set to a real secret when DJANGO_ENV=production")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if IS_PRODUCTION else ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
CSRF_FAILURE_VIEW = "chowist.core.views.csrf_failure"
GIT_SHA = env_str("GIT_SHA", "")
APP_VERSION = env_str("APP_VERSION", "0.1.0")

# --- behind a reverse proxy (nginx, experiments/lab/nginx.py) ---------------------------------------
# Only behind a proxy that sets them: a client could otherwise claim any host, port or scheme.
BEHIND_PROXY = env_bool("BEHIND_PROXY", False)
USE_X_FORWARDED_HOST = BEHIND_PROXY
USE_X_FORWARDED_PORT = BEHIND_PROXY
if env_bool("SECURE_PROXY_SSL", IS_PRODUCTION or BEHIND_PROXY):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", IS_PRODUCTION)
# /healthz and /readyz are probed over plain HTTP from inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", IS_PRODUCTION)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", IS_PRODUCTION)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if IS_PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
# On in production so `check --deploy` is clean (security.W021); set SECURE_HSTS_PRELOAD=off for a domain
# that must not be submitted to the browsers' preload list.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", IS_PRODUCTION)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Metrics, traces and the request log (observability/README.md); off only to measure what they cost.
OBSERVABILITY = env_bool("OBSERVABILITY", True)

# --- apps ------------------------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "huey.contrib.djhuey",
    "axes",
    "chowist.core",
    "chowist.accounts",
    "chowist.places",
    "chowist.interactions",
    "chowist.marketing",
    "chowist.demo",
    "workers",
    "observability",
]

MIDDLEWARE = [
    # Whatever Django's error handling could not answer becomes a 500 here, inside the observability middleware
    # (inserted in front below), which counts and logs it (chowist/core/last_resort.py).
    "chowist.core.last_resort.LastResortMiddleware",
    # Then the checks every answer must pass, cached or not: the Host header against ALLOWED_HOSTS, then the
    # HTTPS redirect (chowist/core/request_gate.py). Before them, a stored page was served to any Host over HTTP.
    "chowist.core.request_gate.AllowedHostMiddleware",
    # Under /api/, an HTML 404 (Django's debug page in development) becomes the API's JSON 404 (core/debug.py).
    "chowist.core.debug.ApiDebugNotFoundMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Then a cached anonymous page is answered before the rest runs (chowist/core/page_cache.py).
    "chowist.core.page_cache.PageCacheMiddleware",
    "chowist.core.wsgi_request.QueryStringLimitMiddleware",
    # A chunked body (no Content-Length) is read to its end, bounded like any other (chowist/core/wsgi_request.py).
    "chowist.core.wsgi_request.ChunkedBodyMiddleware",
    # Turns a view's OperationalError (database restarting, disk full) into a 503 with Retry-After.
    "chowist.core.unavailable.DatabaseUnavailableMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Turns a login that django-axes refused into chowist.accounts.throttling's 429.
    "axes.middleware.AxesMiddleware",
    # Last, so the observability middleware around it measures the failures it injects.
    "chowist.core.fault_injection.FaultMiddleware",
]

# The debug page must not re-parse the input that made the request fail (chowist/core/debug.py).
DEFAULT_EXCEPTION_REPORTER = "chowist.core.debug.InputSafeExceptionReporter"

ROOT_URLCONF = "chowist.urls"
WSGI_APPLICATION = "chowist.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "chowist" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database --------------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", "")
DB_BUSY_TIMEOUT_S = env_float("DB_BUSY_TIMEOUT_S", 20.0)
DB_POOL = env_bool("DB_POOL", False)
DB_PGBOUNCER = env_bool("DB_PGBOUNCER", False)
if DATABASE_URL:
    DATABASES = {
        "default": database_from_url(
            DATABASE_URL,
            conn_max_age=env_int("DB_CONN_MAX_AGE", 600),
            pool=DB_POOL,
            pool_min=env_int("DB_POOL_MIN", 2),
            pool_max=env_int("DB_POOL_MAX", 8),
            pgbouncer=DB_PGBOUNCER,
            busy_timeout_s=DB_BUSY_TIMEOUT_S,
            metered=OBSERVABILITY,
        )
    }
else:
    DATABASES = {
        "default": sqlite_database(VAR_DIR / "chowist.sqlite3", busy_timeout_s=DB_BUSY_TIMEOUT_S, metered=OBSERVABILITY)
    }
    DATABASES["default"]["CONN_MAX_AGE"] = env_int("DB_CONN_MAX_AGE", 600)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = DATABASES["default"].get("CONN_HEALTH_CHECKS", True)
# A PostgreSQL streaming replica for reads (chowist/core/db_routing.py): writes, transactions, the consumer and a
# client's reads for DB_READ_YOUR_WRITES_S after it wrote stay on the primary; an unreachable replica is skipped
# for DB_REPLICA_RETRY_S.
DATABASE_REPLICA_URL = env_str("DATABASE_REPLICA_URL", "")
DB_READ_YOUR_WRITES_S = env_float("DB_READ_YOUR_WRITES_S", 5.0)
DB_REPLICA_RETRY_S = env_float("DB_REPLICA_RETRY_S", 5.0)
if DATABASE_REPLICA_URL:
    if not DATABASE_URL or DATABASE_URL.startswith("sqlite:"):
        raise ImproperlyConfigured("DATABASE_REPLICA_URL needs a PostgreSQL DATABASE_URL (the primary)")
    DATABASES["replica"] = database_from_url(
        DATABASE_REPLICA_URL,
        conn_max_age=env_int("DB_CONN_MAX_AGE", 600),
        pool=False,
        pool_min=0,
        pool_max=0,
        pgbouncer=False,
        busy_timeout_s=DB_BUSY_TIMEOUT_S,
        metered=OBSERVABILITY,
    )
    DATABASES["replica"]["CONN_HEALTH_CHECKS"] = True
    # Tests use the primary's test database through this alias rather than creating another one.
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
    DATABASE_ROUTERS = ["chowist.core.db_routing.PrimaryReplicaRouter"]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- cache -----------------------------------------------------------------------------------------
CACHE_URL = env_str("CACHE_URL", f"file://{VAR_DIR / 'cache'}")
CACHES = {
    "default": cache_from_url(
        CACHE_URL, default_timeout=env_int("CACHE_DEFAULT_TTL", 300), key_prefix="chowist", metered=OBSERVABILITY
    )
}
PLACE_FRAGMENT_CACHE_TTL = env_int("PLACE_FRAGMENT_CACHE_TTL", 600)
# Whole responses to anonymous GETs (chowist/core/page_cache.py): retired by writes, not by the clock; the TTL
# only bounds what no write announces (a renamed author). Off measures the uncached paths (page-cache experiment).
PAGE_CACHE = env_bool("PAGE_CACHE", True)
PAGE_CACHE_TTL = env_int("PAGE_CACHE_TTL", 300)

# --- the two scaling workloads ---------------------------------------------------------------------
INTERACTIONS_MODE = env_choice("INTERACTIONS_MODE", "queued", ("sync", "queued"))
INTERACTIONS_DRAIN_BATCH = env_int("INTERACTIONS_DRAIN_BATCH", 500)
# The drain an interaction asks for starts this long after the first interaction of a window, so one drain counts
# the whole window: with 0 (a drain at once) a loaded consumer drained once per 1.3 interactions and used 0.23-0.3
# of the box's 2 cores doing it (scaling-journey). huey's scheduler looks once a second: a drain starts 1-2 s after
# the interaction that asked for it. Ignored when HUEY_IMMEDIATE is on (no scheduler runs there).
INTERACTIONS_DRAIN_DELAY_S = env_float("INTERACTIONS_DRAIN_DELAY_S", 1.0)
# Counted inbox rows older than this are deleted by the hourly prune_inbox task (pending rows never are).
INTERACTIONS_RETENTION_DAYS = env_int("INTERACTIONS_RETENTION_DAYS", 7)
# Per-client limit on POST /api/places/<id>/interactions/ ("N/s", "N/m", "N/h" or "off"; chowist/core/ratelimit.py).
# On by default in production only: the lab's load generator and benchmarks are one client from 127.0.0.1.
INTERACTIONS_RATE_LIMIT = env_rate("INTERACTIONS_RATE_LIMIT", "300/m" if IS_PRODUCTION else "off")
# A cache outage lets requests through rather than answering every client 429.
RATELIMIT_FAIL_OPEN = True
# SQLite: fsync the 202-acknowledged inbox write (synchronous=FULL for that commit); chowist/core/durability.py.
INTERACTIONS_DURABLE_COMMIT = env_bool("INTERACTIONS_DURABLE_COMMIT", True)
POPULAR_CACHE = env_bool("POPULAR_CACHE", True)
POPULAR_CACHE_TTL = env_int("POPULAR_CACHE_TTL", 60)
POPULAR_DEFAULT_LIMIT = 10
POPULAR_MAX_LIMIT = 100
POPULAR_MAX_WINDOW_DAYS = 90
POPULAR_DEFAULT_WINDOW_DAYS = 7
PLACES_PAGE_SIZE = 15
# The n-plus-one experiment turns this off: the detail page then loads categories and review authors lazily.
PLACES_DETAIL_PREFETCH = env_bool("PLACES_DETAIL_PREFETCH", True)

# --- background jobs (huey) ------------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "")
HUEY_SQLITE_PATH = env_path("HUEY_SQLITE_PATH", VAR_DIR / "huey.sqlite3")
HUEY_WORKERS = env_int("HUEY_WORKERS", 2)
# Threads only: the consumer's metrics live in one process's registry (workers/README.md, "Metrics").
HUEY_WORKER_TYPE = env_choice("HUEY_WORKER_TYPE", "thread", ("thread",))
# huey's SQLite consumer backs off up to 10 s when idle; capped so an idle queue still starts a job < 0.5 s.
HUEY_MAX_DELAY_S = env_float("HUEY_MAX_DELAY_S", 0.25)
HUEY_IMMEDIATE = env_bool("HUEY_IMMEDIATE", False)
# A thumbnail or confirmation e-mail still missing this long after its photo/review is presumed lost (its task
# dequeued by a consumer that was SIGKILLed) and queued again by places.requeue_lost_jobs (every 5 minutes and
# at consumer start). Longer than the e-mail's whole retry schedule (5 + 10 + 20 + 40 + 80 s).
JOBS_LOST_AFTER_S = env_float("JOBS_LOST_AFTER_S", 600.0)
# Several labs (or test runs) can share one Redis: the queue's keys are named after this.
HUEY_QUEUE_NAME = env_str("HUEY_QUEUE_NAME", "chowist")
HUEY_REDIS_TIMEOUT_S = env_float("HUEY_REDIS_TIMEOUT_S", 3.0)
HUEY = {
    # huey's classes, with a consumer that stops gracefully on SIGTERM too and serves the worker metrics.
    "huey_class": "workers.consumer.RedisHuey" if REDIS_URL else "workers.consumer.SqliteHuey",
    "name": HUEY_QUEUE_NAME,
    "immediate": HUEY_IMMEDIATE,
    "results": False,
    "utc": True,
    # A stalled Redis must not hold a request (enqueue) or the consumer forever; longer than huey's 1 s BRPOP wait.
    # In the URL: huey refuses a url beside connection parameters, and redis-py reads these from the query.
    "connection": {"url": redis_url_with_timeout(REDIS_URL, timeout_s=HUEY_REDIS_TIMEOUT_S)}
    if REDIS_URL
    else {"filename": str(HUEY_SQLITE_PATH)},
    "consumer": {
        "workers": HUEY_WORKERS,
        "worker_type": HUEY_WORKER_TYPE,
        "initial_delay": 0.05,
        "backoff": 1.15,
        "max_delay": HUEY_MAX_DELAY_S,
        "periodic": True,
        "check_worker_health": True,
    },
}

# --- e-mail ----------------------------------------------------------------------------------------
EMAIL_URL = env_str("EMAIL_URL", "" if IS_PRODUCTION else "console://")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Chowist <noreply@chowist.local>")
# console:// prints password-reset links (working tokens) into the log; locmem:// silently drops every e-mail.
if IS_PRODUCTION and not EMAIL_URL.startswith(("smtp:", "smtps:")):
    raise ImproperlyConfigured(
        f"EMAIL_URL must be smtp:// or smtps:// when DJANGO_ENV=production, got {EMAIL_URL.split(':', 1)[0] or 'nothing'}"
    )
if EMAIL_URL.startswith("console:"):
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
elif EMAIL_URL.startswith("locmem:"):
    EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
elif EMAIL_URL.startswith(("smtp:", "smtps:")):
    from urllib.parse import urlparse as _urlparse

    _mail = _urlparse(EMAIL_URL)
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = _mail.hostname or "localhost"
    EMAIL_PORT = _mail.port or 25
    EMAIL_HOST_USER = _mail.username or ""
    EMAIL_HOST_PASSWORD = _mail.password or ""
    EMAIL_USE_SSL = _mail.scheme == "smtps"
else:
    raise ImproperlyConfigured("EMAIL_URL must start with console://, locmem://, smtp:// or smtps://")

# --- uploads ---------------------------------------------------------------------------------------
MEDIA_ROOT = env_path("MEDIA_ROOT", VAR_DIR / "media")
MEDIA_URL = "/media/"
PHOTO_MAX_BYTES = env_int("PHOTO_MAX_BYTES", 5 * 1024 * 1024)
# Width x height an upload may declare (checked from the header, before decoding): 24 MP covers phone cameras.
PHOTO_MAX_PIXELS = env_int("PHOTO_MAX_PIXELS", 24_000_000)
DATA_UPLOAD_MAX_MEMORY_SIZE = PHOTO_MAX_BYTES + 1024 * 1024

# --- static ----------------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
# Without a proxy in front, the app serves `collectstatic`'s output itself (WhiteNoise); behind nginx, nginx
# does and these requests never reach the app.
SERVE_STATIC = env_bool("SERVE_STATIC", True)
if SERVE_STATIC:
    # Empty until `collectstatic` runs; WhiteNoise warns about a missing directory on every start.
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
    MIDDLEWARE.insert(
        MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
        "whitenoise.middleware.WhiteNoiseMiddleware",
    )

# --- auth ------------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out client before the password is even checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Login throttling (django-axes), site and admin (chowist/accounts/throttling.py): failures counted per username and
# client address together, and per client address with a looser cap. Never per username alone: anyone could then
# lock anyone out.
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
LOGIN_FAILURE_LIMIT_IP = env_int("LOGIN_FAILURE_LIMIT_IP", 30)
LOGIN_LOCKOUT_S = env_int("LOGIN_LOCKOUT_S", 900)
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(seconds=LOGIN_LOCKOUT_S)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_HANDLER = "chowist.accounts.throttling.PairAndClientHandler"
# A failure during a lockout does not restart it: the lock ends LOGIN_LOCKOUT_S after it began.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "chowist.accounts.throttling.lockout_response"
AXES_CLIENT_IP_CALLABLE = "chowist.core.ratelimit.client_ip"
# Failures are logged by the app's own request log; axes' per-success access log would be a write per login.
AXES_DISABLE_ACCESS_LOG = True
AXES_VERBOSE = False
# Password-reset requests (chowist/accounts/throttling.py): per address asked for, and per client address. Past
# either, a 429 with Retry-After; both count known and unknown addresses alike.
PASSWORD_RESET_RATE_LIMIT_ADDRESS = env_rate("PASSWORD_RESET_RATE_LIMIT_ADDRESS", "3/h")
PASSWORD_RESET_RATE_LIMIT_IP = env_rate("PASSWORD_RESET_RATE_LIMIT_IP", "20/h")
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "places:list"
LOGOUT_REDIRECT_URL = "marketing:home"
if DJANGO_ENV == "test":
    # Hashing cost is not what the tests measure.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- health -----------------------------------------------------------------------------------------
# /readyz reuses its last result for this long in each process: probes from several balancers stay cheap.
READINESS_CACHE_S = env_float("READINESS_CACHE_S", 2.0)

# --- fault injection -------------------------------------------------------------------------------
FAULTS_FILE = env_path("FAULTS_FILE", VAR_DIR / "faults.json")
FAULTS_ALLOW_IN_PRODUCTION = env_bool("FAULTS_ALLOW_IN_PRODUCTION", False)

# --- observability ---------------------------------------------------------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOG_FILE = env_str("LOG_FILE", "")
APP_METRICS_PORT = env_int("APP_METRICS_PORT", 9101)
CONSUMER_METRICS_PORT = env_int("CONSUMER_METRICS_PORT", 9102)
# The app's multiprocess metric files; gunicorn.conf.py empties it at start and exports it to the workers.
PROMETHEUS_MULTIPROC_DIR = env_path("PROMETHEUS_MULTIPROC_DIR", VAR_DIR / "prometheus" / "app")
# One empty file per gunicorn worker that has loaded the app (named by its pid): forked is not ready, and
# the launcher waits for these before it sends the first request.
GUNICORN_READY_DIR = env_path("GUNICORN_READY_DIR", VAR_DIR / "gunicorn-ready")
METRICS_ADDR = env_str("METRICS_ADDR", "127.0.0.1")
OTEL_EXPORTER_OTLP_ENDPOINT = env_str("OTEL_EXPORTER_OTLP_ENDPOINT", "")
# Share of traces recorded (parent-based: a sampled caller's trace is always kept). Recording every request
# costs ~5-15% of a worker's CPU on this app (experiments/bench/overhead.py); a tenth keeps plenty of traces.
OTEL_TRACES_SAMPLER_RATIO = env_float("OTEL_TRACES_SAMPLER_RATIO", 0.1)
# Whether a client's `traceparent` is honoured (its trace joined, its "sampled" flag obeyed). Off in production: a
# client sending sampled=1 on every request would force every span to be recorded. Behind a proxy you trust to
# set or strip it (the lab's nginx, another service of yours), turn it on.
OTEL_TRUST_TRACEPARENT = env_bool("OTEL_TRUST_TRACEPARENT", not IS_PRODUCTION)
# The HTTP attribute names of the current semantic conventions (http.request.method, http.response.status_code).
OTEL_SEMCONV_STABILITY_OPT_IN = env_str("OTEL_SEMCONV_STABILITY_OPT_IN", "http")
OTEL_SPANS_FILE = env_path("OTEL_SPANS_FILE", VAR_DIR / "spans.jsonl")
# Past this size the span file is rotated to <file>.1 (one generation kept): at most about twice this on disk.
OTEL_SPANS_FILE_MAX_MB = env_int("OTEL_SPANS_FILE_MAX_MB", 100)
OTEL_SERVICE_NAME = env_str("OTEL_SERVICE_NAME", "chowist")
SENTRY_DSN = env_str("SENTRY_DSN", "")
SENTRY_ENVIRONMENT = env_str("SENTRY_ENVIRONMENT", DJANGO_ENV)
SENTRY_TRACES_SAMPLE_RATE = env_float("SENTRY_TRACES_SAMPLE_RATE", 0.0)
SENTRY_SAMPLE_RATE = env_float("SENTRY_SAMPLE_RATE", 1.0)
SENTRY_SEND_DEFAULT_PII = env_bool("SENTRY_SEND_DEFAULT_PII", False)
if DATABASE_REPLICA_URL:
    # Outside the session middleware, so session and user look-ups are routed within the request too.
    MIDDLEWARE.insert(1, "chowist.core.db_routing.ReadYourWritesMiddleware")
# django-prometheus's histograms (request latency, query duration). The latency SLO's threshold
# (monitoring/config.py) is always one of the edges: the SLI counts the requests in the bucket it bounds.
PROMETHEUS_LATENCY_BUCKETS = tuple(
    sorted(
        {
            0.005,
            0.01,
            0.025,
            0.05,
            0.1,
            0.25,
            0.5,
            1.0,
            2.5,
            5.0,
            10.0,
            float("inf"),
            MONITORING.slos.latency.threshold_s,
        }
    )
)
# Every request series django-prometheus has, not only those the lab reads (observability/prometheus.py).
PROMETHEUS_EXPORT_ALL_REQUEST_METRICS = env_bool("PROMETHEUS_EXPORT_ALL_REQUEST_METRICS", False)
# Probes answer often and say nothing about users: no server span for them (the metrics still count them).
OTEL_PYTHON_DJANGO_EXCLUDED_URLS = env_str("OTEL_PYTHON_DJANGO_EXCLUDED_URLS", "healthz,readyz")
if OBSERVABILITY:
    INSTALLED_APPS.insert(0, "django_prometheus")
    # django-prometheus's pair, then the request log (request id, the JSON access line), around everything else;
    # OpenTelemetry's Django middleware is put third by DjangoInstrumentor (observability.tracing). The "after"
    # middleware sits in front of the page cache, not last as the library's docs place it: a page-cache hit
    # never reaches the middleware behind the cache, and must still be counted and timed under its view. Its
    # latency series therefore includes Django's middleware, as a user waits for it.
    MIDDLEWARE.insert(0, "observability.prometheus.PrometheusBeforeMiddleware")
    MIDDLEWARE.insert(1, "observability.middleware.RequestLogMiddleware")
    MIDDLEWARE.insert(2, "observability.prometheus.PrometheusAfterMiddleware")
LOGGING = logging_config(level=LOG_LEVEL, log_file=LOG_FILE)

# --- serving (gunicorn.conf.py) --------------------------------------------------------------------
APP_HOST = env_str("APP_HOST", "127.0.0.1")
APP_PORT = env_int("APP_PORT", 8000)
# 2 workers x 2 threads, chosen by measurement: users-2000 (2,000 users, warm page cache, Locust on the same 2
# cores) gave 2 x 2: 882 req/s, p95 170 ms; 2 x 4: 856 req/s, p95 260 ms; 3 x 2: 806 req/s, p95 710 ms. More
# threads than a worker's one GIL can feed only trade the CPU for switches; a process more than the cores, the same.
GUNICORN_WORKERS = env_int("GUNICORN_WORKERS", 2)
GUNICORN_THREADS = env_int("GUNICORN_THREADS", 2)
GUNICORN_TIMEOUT_S = env_int("GUNICORN_TIMEOUT_S", 30)
GUNICORN_GRACEFUL_TIMEOUT_S = env_int("GUNICORN_GRACEFUL_TIMEOUT_S", 20)
GUNICORN_KEEPALIVE_S = env_int("GUNICORN_KEEPALIVE_S", 5)
# gthread: open connections one worker holds (gunicorn's default). A worker accepts greedily, so with keep-alive
# one worker can end up owning every client connection while the other idles; a cap spreads them.
GUNICORN_WORKER_CONNECTIONS = env_int("GUNICORN_WORKER_CONNECTIONS", 1000)
