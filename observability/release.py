"""Which code is running: the one git sha computation, for the app's build info, Sentry's release and the
experiment reports. A plain module (no Django), so the experiment runner shares it."""

from __future__ import annotations

import subprocess
from pathlib import Path

# Enough to be unique in this repository, short enough for a label and a report table.
SHA_LENGTH = 12


def git_sha(root: Path, *, configured: str = "") -> str:
    """`configured` (GIT_SHA) when set; else HEAD of the checkout at `root`, with "-dirty" when tracked files
    differ from it; "" without git (e.g. an image built without .git)."""
    if configured:
        return configured
    try:
        sha = subprocess.run(
            ["git", "rev-parse", f"--short={SHA_LENGTH}", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return f"{sha}-dirty" if dirty else sha
