"""structlog JSON logs: one processor chain for structlog's own events and every stdlib logger
(Django, huey, gunicorn), so each line on stdout or in LOG_FILE is one JSON object.

Importable without Django settings: gunicorn's master loads `logging_config()` through logconfig_dict.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

import structlog
from opentelemetry import trace

REQUEST_ID_HEADER = "X-Request-ID"
# Anything else (too long, spaces, quotes, control characters) could forge or break log lines.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_state = {"service": "app", "configured": False}


def service_set(service: str) -> None:
    """Which process kind (`app`/`worker`) every log line says it came from."""
    _state["service"] = service


def request_id_from(header: str | None) -> str:
    """The caller's X-Request-ID when it is sane, a fresh one otherwise."""
    if header and _SANE_REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


def _add_service(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    event_dict.setdefault("service", _state["service"])
    return event_dict


def _add_trace_context(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    if "trace_id" not in event_dict:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            event_dict["trace_id"] = format(context.trace_id, "032x")
            event_dict["span_id"] = format(context.span_id, "016x")
    return event_dict


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        _add_service,
        _add_trace_context,
    ]


class JsonFormatter(structlog.stdlib.ProcessorFormatter):
    """The one formatter every handler uses (named in logging_config's dictConfig)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(
            *args,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(),
            ],
            foreign_pre_chain=[*_shared_processors(), structlog.stdlib.ExtraAdder()],
            **kwargs,
        )


def structlog_configure() -> None:
    """Route structlog through stdlib logging so both share handlers and the JSON formatter."""
    if _state["configured"]:
        return
    # The JSON lines never show caller, thread or process fields, so logging need not collect them for every
    # record (the "Optimization" section of the logging docs); it is a measurable part of each request's cost.
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    _state["configured"] = True


def logging_config(*, level: str, log_file: str) -> dict[str, Any]:
    """dictConfig for Django's LOGGING and gunicorn's logconfig_dict: JSON to stdout, and to log_file when set."""
    handlers: dict[str, dict[str, Any]] = {
        "stdout": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "json"},
    }
    if log_file:
        # Watched: logrotate (or a test) may move the file; the handler reopens it instead of writing into the void.
        handlers["file"] = {"class": "logging.handlers.WatchedFileHandler", "filename": log_file, "formatter": "json"}
    # Named loggers that ship their own handlers (Django's defaults, gunicorn's) are reset to propagate to root.
    propagate_only = {"handlers": [], "propagate": True, "level": level}
    loggers = {name: dict(propagate_only) for name in ("django", "django.server", "django.request", "gunicorn.error")}
    # run_huey adds its own plain-text handler to "huey" unless the logger already has one.
    loggers["huey"] = {"handlers": list(handlers), "propagate": False, "level": level}
    # The app's per-request event is the access log; gunicorn's own access line would be a second one.
    loggers["gunicorn.access"] = {"handlers": [], "propagate": True, "level": "WARNING"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "observability.logs.JsonFormatter"}},
        "handlers": handlers,
        "root": {"handlers": list(handlers), "level": level},
        "loggers": loggers,
    }
