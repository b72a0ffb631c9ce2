"""The README's configuration table is the user's only map of the knobs: it must list every variable read."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ["chowist", "workers", "observability", "slo", "grafana", "experiments", "gunicorn.conf.py"]
# env_str("NAME", ...), os.environ.get("NAME"), os.environ["NAME"], os.getenv("NAME")
READ_PATTERNS = [
    re.compile(r"""\benv_\w+\(\s*["']([A-Z][A-Z0-9_]+)["']"""),
    re.compile(r"""os\.environ\.get\(\s*["']([A-Z][A-Z0-9_]+)["']"""),
    re.compile(r"""os\.getenv\(\s*["']([A-Z][A-Z0-9_]+)["']"""),
    re.compile(r"""os\.environ\[\s*["']([A-Z][A-Z0-9_]+)["']\s*\]"""),
]
# Read by libraries or the platform, not settings the lab defines.
NOT_OURS = {"DJANGO_SETTINGS_MODULE", "PATH", "HOME", "CI", "PYTHONPATH", "USER"}


def _variables_read() -> dict[str, str]:
    found: dict[str, str] = {}
    for entry in SCANNED:
        base = ROOT / entry
        files = [base] if base.is_file() else sorted(base.rglob("*.py"))
        for path in files:
            if "tests" in path.parts or "migrations" in path.parts:
                continue
            text = path.read_text()
            for pattern in READ_PATTERNS:
                for name in pattern.findall(text):
                    found.setdefault(name, str(path.relative_to(ROOT)))
    return {name: where for name, where in found.items() if name not in NOT_OURS}


def _documented() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\|\s*`([A-Z][A-Z0-9_]+)`", section, flags=re.MULTILINE))


def test_every_environment_variable_is_in_the_readme_table() -> None:
    missing = {name: where for name, where in _variables_read().items() if name not in _documented()}
    assert not missing, f"add these to README.md's configuration table: {missing}"


def test_the_readme_table_lists_nothing_that_is_not_read() -> None:
    stale = _documented() - set(_variables_read())
    assert not stale, f"README.md documents variables nothing reads: {sorted(stale)}"


def test_the_two_commands_are_in_the_quick_start() -> None:
    quick_start = (ROOT / "README.md").read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "make experiment" in quick_start
    assert "make test" in quick_start
