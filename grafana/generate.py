"""Write grafana/dashboards/*.json and grafana/versions.json from grafana.panels (`make dashboards`).

`python -m grafana.generate --check` writes nothing and exits 1 when a committed file is stale.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from grafana.build import all_dashboards, dashboard_versions

GRAFANA_DIR = Path(__file__).resolve().parent
DASHBOARDS_DIR = GRAFANA_DIR / "dashboards"
VERSIONS_FILE = GRAFANA_DIR / "versions.json"


def render(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True) + "\n"


def expected_files() -> dict[Path, str]:
    """Every generated path with the text it must hold."""
    files = {DASHBOARDS_DIR / name: render(board) for name, board in all_dashboards().items()}
    files[VERSIONS_FILE] = render(dashboard_versions())
    return files


def stale_files() -> list[Path]:
    """Generated files that are missing or differ, plus dashboard JSON no spec produces any more."""
    expected = expected_files()
    stale = [path for path, text in expected.items() if not path.exists() or path.read_text() != text]
    stale += sorted(path for path in DASHBOARDS_DIR.glob("*.json") if path not in expected)
    return stale


def write_all() -> list[Path]:
    DASHBOARDS_DIR.mkdir(parents=True, exist_ok=True)
    expected = expected_files()
    for orphan in DASHBOARDS_DIR.glob("*.json"):
        if orphan not in expected:
            orphan.unlink()
    for path, text in expected.items():
        path.write_text(text)
    return list(expected)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed files are not current")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        for path in stale:
            print(f"stale: {path.relative_to(GRAFANA_DIR.parent)} (run `make dashboards`)", file=sys.stderr)
        return 1 if stale else 0
    for path in write_all():
        print(f"wrote {path.relative_to(GRAFANA_DIR.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
