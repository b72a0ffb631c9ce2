"""A span exporter that appends finished spans as JSON lines (format in METRICS.md, read by the experiment report).

Several gunicorn workers and the consumer append to the same file: each batch is written under an
exclusive flock in one write, so lines from different processes never interleave.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult


def span_record(span: ReadableSpan) -> dict[str, Any]:
    context = span.get_span_context()
    start = span.start_time or 0
    end = span.end_time or start
    return {
        "trace_id": format(context.trace_id, "032x"),
        "span_id": format(context.span_id, "016x"),
        "parent_span_id": format(span.parent.span_id, "016x") if span.parent else None,
        "name": span.name,
        "kind": span.kind.name,
        "service": span.resource.attributes.get("service.name", ""),
        "start_unix_nano": start,
        "end_unix_nano": end,
        "duration_ms": (end - start) / 1e6,
        "status": span.status.status_code.name,
        "attributes": dict(span.attributes or {}),
    }


def rotated_path(path: Path) -> Path:
    """Where the previous span file goes when the current one is full (one generation is kept)."""
    return path.with_name(path.name + ".1")


class JsonLinesSpanExporter(SpanExporter):
    """Appends spans to `path`; once it would pass `max_bytes` it is renamed to `<path>.1` (replacing the previous
    one) and a new file is started, so the spans never take more than about twice `max_bytes` (0: no cap)."""

    def __init__(self, path: Path, *, max_bytes: int = 0) -> None:
        self._path = path
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        payload = b"".join(orjson.dumps(span_record(span), default=str) + b"\n" for span in spans)
        try:
            with self._lock, open(self._path, "ab") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                if self._max_bytes and handle.tell() and handle.tell() + len(payload) > self._max_bytes:
                    # Under the lock: another process waiting for it on the old file appends its batch there (to
                    # the rotated file), which loses nothing.
                    os.replace(self._path, rotated_path(self._path))
                    with open(self._path, "ab") as fresh:
                        fresh.write(payload)
                        fresh.flush()
                    return SpanExportResult.SUCCESS
                handle.write(payload)
                handle.flush()
        except OSError:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
