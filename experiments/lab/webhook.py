"""Records Alertmanager webhook notifications: one JSON line per notification, with `received_at`.

`python -m experiments.lab.webhook --port 9095 --out var/lab/alerts.jsonl`. Any POST path is accepted (the
Alertmanager config names the receiver in the path); `GET /healthz` is the readiness probe and
`GET /alerts` returns what was recorded, for a quick look.

With `--cap-logs DIR --log-max-bytes N` it also keeps every `DIR/*.log` under N bytes while it runs (checked every
LOG_CAP_INTERVAL_S; `procs.log_cap`): it is the one long-lived process of the lab's own, and the app's request log
alone grows by megabytes a minute under load.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from experiments.lab.procs import log_cap

# Alertmanager payloads are a few KiB; anything far bigger is not a notification.
MAX_BODY_BYTES = 1024 * 1024
# At a few MB a minute (the app's log under load), a log overshoots its cap by at most about a megabyte.
LOG_CAP_INTERVAL_S = 10.0


class AlertRecorder(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], out: Path) -> None:
        super().__init__(address, _Handler)
        self.out = out
        self.lock = threading.Lock()
        out.parent.mkdir(parents=True, exist_ok=True)

    def record(self, payload: dict, path: str) -> None:
        entry = {
            "received_at": datetime.now(UTC).isoformat(),
            "received_at_unix": time.time(),
            "path": path,
            "payload": payload,
        }
        line = json.dumps(entry, sort_keys=True) + "\n"
        with self.lock, self.out.open("a") as handle:
            handle.write(line)
            handle.flush()


class _Handler(BaseHTTPRequestHandler):
    server: AlertRecorder

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self._reply(400, {"error": "Content-Length must be an integer"})
            return
        if length <= 0:
            self._reply(400, {"error": "empty body; expected an Alertmanager JSON payload"})
            return
        if length > MAX_BODY_BYTES:
            self._reply(413, {"error": f"body larger than {MAX_BODY_BYTES} bytes"})
            return
        try:
            payload = json.loads(self.rfile.read(length))
        except (ValueError, UnicodeDecodeError) as exc:
            self._reply(400, {"error": f"malformed JSON: {exc}"})
            return
        if not isinstance(payload, dict):
            self._reply(400, {"error": "JSON body must be an object"})
            return
        self.server.record(payload, self.path)
        self._reply(200, {"status": "recorded"})

    def do_GET(self) -> None:
        if self.path == "/healthz":
            self._reply(200, {"status": "ok"})
        elif self.path == "/alerts":
            self._reply(200, {"notifications": read_alerts(self.server.out)})
        else:
            self._reply(404, {"error": "not found; POST a payload to any path, GET /healthz or /alerts"})

    def _reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        print(json.dumps({"event": "webhook_request", "line": format % args}), flush=True)


def read_alerts(path: Path) -> list[dict]:
    """The recorded notifications, oldest first; a torn last line (writer mid-append) is skipped."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    notifications = []
    for line in lines:
        try:
            notifications.append(json.loads(line))
        except ValueError:
            continue
    return notifications


def logs_cap_forever(
    directory: Path, max_bytes: int, *, interval_s: float = LOG_CAP_INTERVAL_S, stop: threading.Event | None = None
) -> None:
    """Cap every `directory/*.log` now and every `interval_s` until `stop` is set (never, by default)."""
    stop = stop or threading.Event()
    while True:
        for path in sorted(directory.glob("*.log")):
            try:
                if log_cap(path, max_bytes):
                    print(json.dumps({"event": "log_capped", "log": str(path), "max_bytes": max_bytes}), flush=True)
            except OSError as exc:  # a log removed or unreadable mid-way: try again next round
                print(json.dumps({"event": "log_cap_failed", "log": str(path), "error": str(exc)}), flush=True)
        if stop.wait(interval_s):
            return


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cap-logs", type=Path, help="keep every *.log in this directory under --log-max-bytes")
    parser.add_argument("--log-max-bytes", type=int, default=0, help="0: never capped")
    args = parser.parse_args(argv)
    server = AlertRecorder((args.host, args.port), args.out)
    if args.cap_logs is not None and args.log_max_bytes > 0:
        threading.Thread(
            target=logs_cap_forever, args=(args.cap_logs, args.log_max_bytes), name="log-cap", daemon=True
        ).start()
    print(json.dumps({"event": "webhook_listening", "port": args.port, "out": str(args.out)}), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
