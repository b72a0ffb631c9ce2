"""structlog JSON logs: one processor chain for structlog's own events and every stdlib logger
(Django, huey, gunicorn), so each line on stdout or in LOG_FILE is one JSON object.

Two doors, one chain. Stdlib records go through `JsonFormatter` (structlog's ProcessorFormatter), whose
pre-chain is `_enrich`. structlog events (the app's own, above all the per-request event) run
the same processor natively and are then written straight to the stdlib handlers' streams: the
stdlib route would build two LogRecords and render each line once per handler, and measured under gunicorn
it was half of all the instrumentation's cost. Both doors end in the same renderer, so a line looks the same
whichever door it came through. Warnings and errors from structlog still go through stdlib logging, as a
record carrying the rendered line, so handlers that are not plain streams (Sentry's logging integration,
a test's capture) see them.

Importable without Django settings: gunicorn's master loads `logging_config()` through logconfig_dict.
"""

from __future__ import annotations

import contextvars
import json
import logging
import logging.handlers
import random
import re
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog
from opentelemetry import trace

REQUEST_ID_HEADER = "X-Request-ID"
# Anything else (too long, spaces, quotes, control characters) could forge or break log lines.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
# The attribute of a LogRecord that carries a line structlog has already rendered.
RENDERED_LINE_ATTR = "chowist_line"
# Handlers whose emit() is "format, write to self.stream, flush": the rendered line can be written directly.
_STREAM_HANDLERS = (logging.StreamHandler, logging.FileHandler, logging.handlers.WatchedFileHandler)
_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_UTC_Z
_state = {"service": "app", "configured": False}


def service_set(service: str) -> None:
    """Which process kind (`app`/`worker`) every log line says it came from."""
    _state["service"] = service


def request_id_from(header: str | None) -> str:
    """The caller's X-Request-ID when it is sane, a fresh one (32 hex digits) otherwise."""
    if header and _SANE_REQUEST_ID.fullmatch(header):
        return header
    # Not a secret, only unique: the Mersenne Twister (reseeded in every forked worker) instead of
    # os.urandom, whose getrandom() call releases the GIL and so hands it to another busy thread.
    return f"{random.getrandbits(128):032x}"


# The request's own fields (request_id, trace_id, span_id) in one context variable: one set() per request,
# where structlog's bind_contextvars() would set one variable per key and clearing would reset each again.
_request_fields: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "chowist_request_log_fields", default=None
)

# structlog's registry of the context variables bind_contextvars() made (a private name: when a release drops
# it, the public merge and clear functions take over, slower but the same result).
_STRUCTLOG_VARS: dict[str, contextvars.ContextVar[Any]] | None = getattr(structlog.contextvars, "_CONTEXT_VARS", None)
_PREFIX_LEN = len(structlog.contextvars.STRUCTLOG_KEY_PREFIX)
_LEVEL_NAMES = {"warn": "warning", "exception": "error"}


def request_fields_bind(**fields: Any) -> None:
    """Give every log line of this request (in this thread) these fields, replacing the last request's."""
    _request_fields.set(fields)


def request_fields_add(**fields: Any) -> None:
    """Add fields to this request's (the trace ids, once tracing knows them)."""
    current = _request_fields.get()
    if current is None:
        _request_fields.set(fields)
    else:
        current.update(fields)


def log_context() -> dict[str, Any]:
    """The fields this thread's log lines carry now: the request's, overridden by anything bound with structlog."""
    return {**(_request_fields.get() or {}), **structlog.contextvars.get_contextvars()}


def log_context_clear() -> None:
    """Forget the request's fields and structlog's context variables (without scanning every context variable)."""
    _request_fields.set(None)
    if _STRUCTLOG_VARS is None:
        structlog.contextvars.clear_contextvars()
        return
    for var in tuple(_STRUCTLOG_VARS.values()):
        if var.get(Ellipsis) is not Ellipsis:
            var.set(Ellipsis)


def _enrich(logger: Any, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Every field a line gets besides its own, in one processor (each processor is a call per line).

    In order: structlog's context variables, then the request's fields (what the call passed wins, then what
    was bound later, e.g. a task run inside the request), `level`, `logger`, `timestamp`, `service`, and the
    current span's trace_id/span_id when nothing bound them.
    The same as structlog's merge_contextvars + add_log_level + add_logger_name, plus ours, but the
    context merge reads only structlog's own variables, not all 27 of a Django request thread.
    """
    if _STRUCTLOG_VARS is None:
        structlog.contextvars.merge_contextvars(logger, method_name, event_dict)
    elif _STRUCTLOG_VARS:
        # A snapshot: another thread may add a variable (a first bind of a new key) while this one iterates.
        for name, var in tuple(_STRUCTLOG_VARS.items()):
            value = var.get(Ellipsis)
            if value is not Ellipsis:
                event_dict.setdefault(name[_PREFIX_LEN:], value)
    fields = _request_fields.get()
    if fields:
        for key, value in fields.items():
            event_dict.setdefault(key, value)
    event_dict["level"] = _LEVEL_NAMES.get(method_name, method_name)
    record = event_dict.get("_record")
    event_dict["logger"] = logger.name if record is None else record.name
    # A datetime, not a string: the renderer writes it as ISO 8601 UTC ("...Z") in C, faster than isoformat().
    event_dict["timestamp"] = datetime.now(UTC)
    event_dict.setdefault("service", _state["service"])
    if "trace_id" not in event_dict:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            event_dict["trace_id"] = format(context.trace_id, "032x")
            event_dict["span_id"] = format(context.span_id, "016x")
    return event_dict


def _fallback(value: Any) -> Any:
    """What the JSON encoder does with a value it does not know: structlog's convention, else repr()."""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if hasattr(value, "resolver_match") and hasattr(value, "get_full_path"):
        # A Django request in a record's extra (django.request, django.security.*): its repr carries the full path,
        # a reset token included. Imported here: settings import this module before Django is set up.
        from observability.redaction import path_redacted

        return f"<{type(value).__name__}: {value.method} {path_redacted(value)!r}>"
    structlog_repr = getattr(value, "__structlog__", None)
    return structlog_repr() if structlog_repr is not None else repr(value)


def render_json(_logger: Any, _method: str, event_dict: dict[str, Any]) -> str:
    """The last processor of both doors: one compact JSON object (orjson; json for what orjson refuses)."""
    try:
        return orjson.dumps(event_dict, default=_fallback, option=_ORJSON_OPTIONS).decode()
    except TypeError:  # e.g. an int wider than 64 bits
        return json.dumps(event_dict, default=_fallback, separators=(",", ":"))


class JsonFormatter(structlog.stdlib.ProcessorFormatter):
    """The one formatter every handler uses (named in logging_config's dictConfig)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(
            *args,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                render_json,
            ],
            foreign_pre_chain=[_enrich, structlog.stdlib.ExtraAdder()],
            **kwargs,
        )

    def format(self, record: logging.LogRecord) -> str:
        line = record.__dict__.get(RENDERED_LINE_ATTR)
        return line if line is not None else super().format(record)


def _filter_by_level(logger: HandlerWriter, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Drop events below the stdlib level of the logger's name (LOGGING decides, as for every other logger)."""
    if logger.is_enabled_for(structlog.stdlib.NAME_TO_LEVEL[method_name]):
        return event_dict
    raise structlog.DropEvent


class HandlerWriter:
    """structlog's output end: writes a rendered line to the handlers stdlib logging would use for `name`."""

    __slots__ = ("_logger", "name")

    def __init__(self, name: str = "chowist") -> None:
        self.name = name
        self._logger = logging.getLogger(name)

    def is_enabled_for(self, level: int) -> bool:
        return self._logger.isEnabledFor(level)

    def _handlers(self, level: int) -> list[logging.Handler] | None:
        """The handlers a record would reach, or None when one of them needs a real record."""
        handlers: list[logging.Handler] = []
        logger: logging.Logger | None = self._logger
        while logger is not None:
            for handler in logger.handlers:
                if level < handler.level:
                    continue
                if type(handler) not in _STREAM_HANDLERS or handler.filters:
                    return None
                handlers.append(handler)
            logger = logger.parent if logger.propagate else None
        return handlers

    def _emit(self, level: int, line: str) -> None:
        handlers = self._handlers(level) if level < logging.WARNING else None
        if handlers is None:
            record = self._logger.makeRecord(self.name, level, "(structlog)", 0, line, None, None)
            setattr(record, RENDERED_LINE_ATTR, line)
            self._logger.handle(record)
            return
        for handler in handlers:
            _stream_write(handler, line)  # type: ignore[arg-type]

    def debug(self, line: str) -> None:
        self._emit(logging.DEBUG, line)

    def info(self, line: str) -> None:
        self._emit(logging.INFO, line)

    def warning(self, line: str) -> None:
        self._emit(logging.WARNING, line)

    def error(self, line: str) -> None:
        self._emit(logging.ERROR, line)

    def critical(self, line: str) -> None:
        self._emit(logging.CRITICAL, line)

    msg = info
    warn = warning
    exception = error
    fatal = critical


def _stream_write(handler: logging.StreamHandler, line: str) -> None:
    """StreamHandler.emit for a line that is already formatted, under the handler's own lock."""
    handler.acquire()
    try:
        if isinstance(handler, logging.handlers.WatchedFileHandler):
            handler.reopenIfNeeded()
        if handler.stream is None:  # a FileHandler with delay=True, before its first record
            handler.stream = handler._open()  # type: ignore[attr-defined]
        handler.stream.write(line + handler.terminator)
        handler.stream.flush()
    except Exception:  # logging must never break the request; stdlib reports it the same way
        record = logging.makeLogRecord({"msg": line, "levelno": logging.INFO, "levelname": "INFO"})
        handler.handleError(record)
    finally:
        handler.release()


def structlog_configure() -> None:
    """structlog natively (see the module doc), writing through the same handlers as stdlib logging."""
    if _state["configured"]:
        return
    # The JSON lines never show caller, thread or process fields, so logging need not collect them for every
    # record (the "Optimization" section of the logging docs).
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    structlog.configure(
        processors=[
            _filter_by_level,
            _enrich,
            structlog.processors.format_exc_info,
            render_json,
        ],
        logger_factory=HandlerWriter,
        # Levels are the stdlib loggers' (see _filter_by_level), so LOGGING stays the one place that sets them.
        wrapper_class=structlog.make_filtering_bound_logger(logging.NOTSET),
        cache_logger_on_first_use=True,
    )
    _state["configured"] = True


def _at_least(level: str, floor: str) -> str:
    """The higher (quieter) of two level names."""
    return level if logging.getLevelName(level) > logging.getLevelName(floor) else floor


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
    # The loggers that print request paths ("Not Found: <path>", "Error handling request <path>") redact the
    # secrets in them whatever the route outcome (observability/redaction.py).
    for name in ("django.server", "django.request", "gunicorn.error"):
        loggers[name]["filters"] = ["secret_paths"]
    # run_huey adds its own plain-text handler to "huey" unless the logger already has one.
    loggers["huey"] = {"handlers": list(handlers), "propagate": False, "level": level}
    # The app's per-request event is the access log; gunicorn's own access line would be a second one.
    loggers["gunicorn.access"] = {"handlers": [], "propagate": True, "level": "WARNING"}
    # django-axes logs 3-4 INFO lines per login attempt, success or failure, whatever AXES_VERBOSE says (clean-ups,
    # resets, "successful login by <user, IP, user agent>"); the request log already has the attempt. Its warnings
    # (a login failure recorded, a lockout) stay, unless LOG_LEVEL asks for less.
    loggers["axes"] = {"handlers": [], "propagate": True, "level": _at_least(level, "WARNING")}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "observability.logs.JsonFormatter"}},
        "filters": {"secret_paths": {"()": "observability.redaction.SecretPathFilter"}},
        "handlers": handlers,
        "root": {"handlers": list(handlers), "level": level},
        "loggers": loggers,
    }
