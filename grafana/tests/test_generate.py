"""The committed dashboard JSON is exactly what the generator writes from grafana/panels.py."""

from __future__ import annotations

import json

from grafana import generate
from grafana.panels import DASHBOARDS


def test_committed_dashboards_are_current() -> None:
    stale = generate.stale_files()
    assert not stale, f"regenerate with `make dashboards`: {[str(p) for p in stale]}"


def test_generation_is_deterministic() -> None:
    assert generate.expected_files() == generate.expected_files()


def test_check_mode_exits_zero_when_current() -> None:
    assert generate.main(["--check"]) == 0


def test_versions_file_quotes_every_dashboard_version() -> None:
    versions = json.loads(generate.VERSIONS_FILE.read_text())
    assert versions == {d.uid: {"title": d.title, "version": d.version} for d in DASHBOARDS}
