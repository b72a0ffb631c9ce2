"""The live progress line: phase, elapsed/total, current requests/s, errors, load generator CPU."""

from __future__ import annotations

import sys
import time
from typing import TextIO

# Without a terminal (CI, make's log) a progress line every few seconds would flood the log.
LOGGED_INTERVAL_S = 10.0


class ProgressDisplay:
    def __init__(self, *, experiment: str, stream: TextIO | None = None) -> None:
        self.experiment = experiment
        self.stream = stream or sys.stdout
        # A terminal gets one line rewritten in place; a log file gets one line per update.
        self.inline = self.stream.isatty()
        self._open = False
        self._last_logged = 0.0

    def phase(self, message: str) -> None:
        self._end_line()
        self.stream.write(f"[{self.experiment}] {time.strftime('%H:%M:%S')} {message}\n")
        self.stream.flush()

    def update(
        self,
        *,
        run: str,
        elapsed_s: float,
        total_s: float,
        rps: float,
        requests: int,
        failures: int,
        users: int,
        cpu_percent: float,
        note: str = "",
    ) -> None:
        line = (
            f"[{self.experiment}] {run}: load {elapsed_s:5.0f}/{total_s:.0f} s  {rps:7.1f} req/s  "
            f"{requests} requests  {failures} errors  {users} users  loadgen CPU {cpu_percent:4.0f}%"
        )
        if note:
            line += f"  {note}"
        if self.inline:
            self.stream.write("\r" + line + "\x1b[K")
            self._open = True
        elif time.monotonic() - self._last_logged >= LOGGED_INTERVAL_S:
            self._last_logged = time.monotonic()
            self.stream.write(line + "\n")
        self.stream.flush()

    def _end_line(self) -> None:
        if self._open:
            self.stream.write("\n")
            self._open = False
