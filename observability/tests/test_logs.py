"""The log pipeline: request ids, and every stdlib logger rendered as one JSON object a line."""

from __future__ import annotations

import json
import logging
import logging.config
import re

import structlog

from observability.logs import log_context, log_context_clear, logging_config, request_fields_bind, request_id_from
from observability.tests.helpers import json_log_lines


def test_request_id_from_accepts_sane_values_only() -> None:
    assert request_id_from("trace-1.2_3") == "trace-1.2_3"
    for bad in (None, "", "a b", "x" * 129, "<script>", "é"):
        assert re.fullmatch(r"[0-9a-f]{32}", request_id_from(bad))
    assert request_id_from(None) != request_id_from(None)


def test_stdlib_loggers_share_the_processor_chain_and_context() -> None:
    with json_log_lines() as lines:
        with structlog.contextvars.bound_contextvars(request_id="r-1"):
            logging.getLogger("workers.consumer").warning("worker %s stopped", "w1", extra={"task_id": "t-9"})
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("django.request").exception("failed")
    worker_line, django_line = lines
    assert worker_line["event"] == "worker w1 stopped"
    assert worker_line["logger"] == "workers.consumer"
    assert worker_line["level"] == "warning"
    assert worker_line["request_id"] == "r-1"
    assert worker_line["task_id"] == "t-9"
    assert "ValueError: boom" in django_line["exception"]


def test_logging_config_writes_json_to_the_log_file(tmp_path) -> None:
    log_file = tmp_path / "app.log"
    config = logging_config(level="INFO", log_file=str(log_file))
    # gunicorn's access line would duplicate the app's per-request event.
    assert config["loggers"]["gunicorn.access"]["level"] == "WARNING"
    # django-axes' INFO lines per login attempt are noise; its warnings stay, a quieter LOG_LEVEL wins.
    assert config["loggers"]["axes"]["level"] == "WARNING"
    assert logging_config(level="ERROR", log_file="")["loggers"]["axes"]["level"] == "ERROR"
    assert all(config["loggers"][name]["propagate"] for name in ("gunicorn.error", "django", "django.server"))
    # huey's run_huey adds a plain-text handler to a "huey" logger that has none.
    assert config["loggers"]["huey"]["handlers"] == ["stdout", "file"]
    handler = logging.config.DictConfigurator(config).configure_handler(dict(config["handlers"]["file"]))
    assert handler.baseFilename == str(log_file)
    formatter = logging.config.DictConfigurator(config).configure_formatter(dict(config["formatters"]["json"]))
    handler.setFormatter(formatter)
    handler.emit(logging.LogRecord("gunicorn.error", logging.INFO, __file__, 1, "Booting worker", None, None))
    handler.close()
    line = json.loads(log_file.read_text())
    assert line["event"] == "Booting worker"
    assert line["logger"] == "gunicorn.error"


def test_request_fields_reach_every_line_and_later_binds_win() -> None:
    log = structlog.get_logger("chowist.request")
    with json_log_lines() as lines:
        request_fields_bind(request_id="req-1", trace_id="a" * 32, span_id="b" * 16)
        log.warning("request line", status=500)
        logging.getLogger("django.request").warning("Not Found: /x")
        # A task run inside the request binds its own span: its lines name the task's span, not the request's.
        with structlog.contextvars.bound_contextvars(span_id="c" * 16, task_name="t"):
            assert log_context() == {"request_id": "req-1", "trace_id": "a" * 32, "span_id": "c" * 16, "task_name": "t"}
            log.warning("task line", span_id="d" * 16)
        log_context_clear()
        log.warning("after the request")
    request_line, django_line, task_line, after = lines
    for line in (request_line, django_line, task_line):
        assert (line["request_id"], line["trace_id"]) == ("req-1", "a" * 32)
    assert request_line["span_id"] == django_line["span_id"] == "b" * 16
    assert task_line["span_id"] == "d" * 16  # what the call passed wins over every bound value
    assert task_line["task_name"] == "t"
    assert request_line["status"] == 500 and request_line["level"] == "warning"
    assert "request_id" not in after and log_context() == {}
