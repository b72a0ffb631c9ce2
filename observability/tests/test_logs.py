"""The log pipeline: request ids, and every stdlib logger rendered as one JSON object a line."""

from __future__ import annotations

import json
import logging
import logging.config
import re

import structlog

from observability.logs import logging_config, request_id_from
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
