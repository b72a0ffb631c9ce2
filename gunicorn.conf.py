"""gunicorn for Chowist: `gunicorn -c gunicorn.conf.py chowist.wsgi:application`.

Every value comes from chowist/settings.py (which reads the environment once). Metrics: workers write
prometheus-client multiprocess files; this master serves the merged view on METRICS_ADDR:APP_METRICS_PORT,
so `GET /metrics` on the public port is a plain 404. OpenTelemetry starts in post_fork, never in the master:
its exporter thread and sockets would not survive the fork.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chowist.settings")

# The settings module read as plain constants: Django itself is not set up in the master.
from chowist import settings as app
from observability.logs import logging_config

# prometheus-client picks its multiprocess value class from this variable when first imported, which
# happens in the workers after the fork: export it before any of them exists.
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(app.PROMETHEUS_MULTIPROC_DIR)

bind = f"{app.APP_HOST}:{app.APP_PORT}"
workers = app.GUNICORN_WORKERS
threads = app.GUNICORN_THREADS
worker_class = "gthread" if app.GUNICORN_THREADS > 1 else "sync"
timeout = app.GUNICORN_TIMEOUT_S
graceful_timeout = app.GUNICORN_GRACEFUL_TIMEOUT_S
keepalive = app.GUNICORN_KEEPALIVE_S
worker_connections = app.GUNICORN_WORKER_CONNECTIONS
# Loading the app in the master would initialise Django (and anything it starts) before the fork.
preload_app = False
# The app's own per-request JSON event is the access log.
accesslog = None
logger_class = "observability.gunicorn_logger.NoAccessLogLogger"
loglevel = app.LOG_LEVEL.lower()
logconfig_dict = logging_config(level=app.LOG_LEVEL, log_file=app.LOG_FILE)
proc_name = "chowist"
# gunicorn's default control socket is one per user: two labs (or tests) on one machine would share it.
control_socket = str(app.VAR_DIR / "gunicorn.ctl")


def on_starting(server):
    from observability.exposition import multiprocess_dir_reset

    multiprocess_dir_reset(path=app.PROMETHEUS_MULTIPROC_DIR)
    app.GUNICORN_READY_DIR.mkdir(parents=True, exist_ok=True)
    for stale in app.GUNICORN_READY_DIR.iterdir():
        stale.unlink(missing_ok=True)


def when_ready(server):
    from observability.exposition import metrics_server_start

    try:
        metrics_server_start(path=app.PROMETHEUS_MULTIPROC_DIR, addr=app.METRICS_ADDR, port=app.APP_METRICS_PORT)
    except OSError:
        # The app still serves: a metrics port that cannot be bound is telemetry, and Prometheus sees it as the
        # target down (ChowistTargetDown), the one place this failure can be counted.
        server.log.exception(
            "telemetry_setup_failed: metrics could not be served on %s:%s", app.METRICS_ADDR, app.APP_METRICS_PORT
        )
        return
    server.log.info("metrics served on http://%s:%s/metrics", app.METRICS_ADDR, app.APP_METRICS_PORT)


def post_fork(server, worker):
    from observability.setup import setup

    setup(service="app")


def post_worker_init(worker):
    # Called once the worker has imported the app, just before it accepts: the launcher's readiness mark.
    (app.GUNICORN_READY_DIR / str(worker.pid)).touch()


def worker_exit(server, worker):
    from observability.setup import shutdown

    shutdown()


def child_exit(server, worker):
    from observability.exposition import worker_dead_mark

    worker_dead_mark(pid=worker.pid, path=app.PROMETHEUS_MULTIPROC_DIR)
    (app.GUNICORN_READY_DIR / str(worker.pid)).unlink(missing_ok=True)


def pre_request(worker, req):
    # The app closes the connection after a response that left the body unread (chowist/core/wsgi_request.py).
    from chowist.core.wsgi_request import server_request_bind

    server_request_bind(req)
