"""Knobs of observability's lab tooling (Bugsink), read from the environment once, with their defaults."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUGSINK_PORT = int(os.environ.get("BUGSINK_PORT") or 8010)
# Bugsink pins its own Django and gunicorn, so it lives in a virtualenv of its own.
BUGSINK_DIR = Path(os.environ.get("BUGSINK_DIR") or ROOT / "var" / "bugsink").resolve()
BUGSINK_VERSION_SPEC = "bugsink>=2.6,<3"
BUGSINK_START_TIMEOUT_S = 60.0
