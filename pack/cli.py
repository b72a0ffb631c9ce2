"""`python -m pack`: write the SLO pack for a Django app, or the lab's own generated files.

    python -m pack --config my-pack.yaml --out monitoring/     # a user's app (keys: monitoring/pack_config.py)
    python -m pack --job shop-web --service shop --exclude-view healthz --out monitoring/
    python -m pack --lab                                        # this repo's rules and dashboards (make slo)
    python -m pack --lab --check                                # exit 1 when a committed file is stale

Flags override the config file's keys. Warnings (a latency threshold that is no bucket, no probe views) go
to stderr; the pack is still written, and at run time the same problems fire a configuration alert.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from monitoring.config import ROOT, WINDOW_SETS
from monitoring.pack_config import PackConfigError, config_from_overrides, load_overrides
from pack.checks import config_warnings
from pack.files import lab_files, pack_files
from slo.spec import SpecError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pack", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", type=Path, help="pack config file (YAML)")
    parser.add_argument("--out", type=Path, help="folder to write the pack into (created)")
    parser.add_argument("--lab", action="store_true", help="write this repo's own rule files and dashboards")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file differs")
    parser.add_argument("--job", help="the Prometheus job that scrapes the app")
    parser.add_argument("--service", help="the service label of the SLO series (default: django)")
    parser.add_argument("--exclude-view", action="append", dest="excluded_views", help="a probe's URL name")
    parser.add_argument("--availability-objective", type=float)
    parser.add_argument("--latency-objective", type=float)
    parser.add_argument("--latency-threshold", type=float, dest="latency_threshold_s", help="seconds")
    parser.add_argument("--window-set", action="append", dest="window_sets", choices=WINDOW_SETS)
    parser.add_argument("--no-database", action="store_false", dest="database", default=None)
    parser.add_argument("--no-cache", action="store_false", dest="cache", default=None)
    parser.add_argument("--runbook-base-url")
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides = load_overrides(args.config) if args.config else {}
    for key in ("job", "service", "excluded_views", "latency_threshold_s", "window_sets", "database", "cache"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    if args.runbook_base_url is not None:
        overrides["runbook_base_url"] = args.runbook_base_url
    objectives = dict(overrides.get("objectives") or {})
    for name in ("availability", "latency"):
        value = getattr(args, f"{name}_objective")
        if value is not None:
            objectives[name] = value
    if objectives:
        overrides["objectives"] = objectives
    return overrides


def _write(files: dict[Path, str], *, check: bool) -> int:
    stale = [path for path, text in files.items() if not path.exists() or path.read_text() != text]
    for path in files if not check else stale:
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        if check:
            print(f"stale: {shown}", file=sys.stderr)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[path])
        print(f"wrote {shown}")
    return 1 if check and stale else 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.lab:
        if args.config or args.out:
            parser.error("--lab writes this repo's own files: no --config or --out")
        return _write(lab_files(), check=args.check)
    if args.out is None:
        parser.error("--out is required (or --lab)")
    try:
        config = config_from_overrides(_overrides(args))
        files = pack_files(config, source=f"python -m pack ({config.service}, job {config.jobs.app})")
    except (PackConfigError, SpecError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for warning in config_warnings(config):
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    return _write({args.out / name: text for name, text in files.items()}, check=args.check)
