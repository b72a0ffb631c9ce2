"""Small helpers shared by observability's tests."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import REGISTRY

from observability.logs import JsonFormatter


def sample(name: str, **labels: str) -> float:
    """A sample of the in-process registry, 0 when the series does not exist yet."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextmanager
def json_log_lines() -> Iterator[list[dict]]:
    """Every log record emitted in the block, rendered by the production JSON formatter and parsed back."""
    handler = _ListHandler()
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.INFO)
    parsed: list[dict] = []
    try:
        yield parsed
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
        parsed.extend(json.loads(line) for line in handler.lines)
