"""Readiness probes: is a component answering, not merely running."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

PROBE_TIMEOUT_S = 2.0


def http_ok(url: str, *, timeout_s: float = PROBE_TIMEOUT_S) -> tuple[bool, str]:
    """(True, "") when `url` answers 200; otherwise (False, what went wrong)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - our own http://127.0.0.1 URLs
            return response.status == 200, f"{url} answered {response.status}"
    except urllib.error.HTTPError as exc:
        body = exc.read(300).decode(errors="replace").strip()
        return False, f"{url} answered {exc.code} {body}".strip()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, f"{url} unreachable: {reason}"


def tcp_ok(host: str, port: int, *, timeout_s: float = PROBE_TIMEOUT_S) -> tuple[bool, str]:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True, ""
    except OSError as exc:
        return False, f"{host}:{port} unreachable: {exc}"


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False
