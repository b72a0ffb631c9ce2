"""`python -m experiments.lab up|down|status|restart`: the native lab from the command line."""

from __future__ import annotations

import argparse
import sys

from experiments.lab.config import PROFILES, PROXIES, LabConfig, LabConfigError
from experiments.lab.lab import RESTARTABLE, Lab, LabError

EXIT_NOT_HEALTHY = 1
EXIT_ERROR = 2


def _settings(pairs: list[str]) -> dict[str, str]:
    settings = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise argparse.ArgumentTypeError(f"--set expects KEY=VALUE, got {pair!r}")
        settings[key.strip()] = value
    return settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m experiments.lab", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the lab in the background and wait until it is ready")
    up.add_argument("--profile", choices=PROFILES, help="embedded (SQLite, default) or services (PostgreSQL + Redis)")
    up.add_argument(
        "--pgbouncer", action="store_true", default=None, help="services profile: connect through pgbouncer"
    )
    up.add_argument("--proxy", choices=PROXIES, help="nginx in front of the app instances (LAB_PROXY)")
    up.add_argument("--instances", type=int, help="app instances, each its own gunicorn (APP_INSTANCES; needs --proxy)")
    up.add_argument(
        "--replica", action="store_true", default=None, help="services profile: a streaming read replica (LAB_REPLICA)"
    )
    up.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE", help="app setting")
    commands.add_parser("down", help="stop every lab process")
    commands.add_parser("status", help="show each component; exit 1 when one is not running and ready")
    restart = commands.add_parser("restart", help="restart the app or the consumer, optionally with other settings")
    restart.add_argument("component", choices=RESTARTABLE)
    restart.add_argument("--set", dest="settings", action="append", default=None, metavar="KEY=VALUE")
    deploy = commands.add_parser("deploy", help="restart every app instance: one at a time, or --careless all at once")
    deploy.add_argument("--careless", action="store_true", help="SIGKILL every instance at once, then start them")
    return parser


def _print_status(lab: Lab) -> int:
    statuses = lab.status()
    for status in statuses.values():
        print(status.describe())
    bad = [s.name for s in statuses.values() if not s.healthy]
    if bad:
        print(f"not running: {', '.join(bad)}", file=sys.stderr)
        return EXIT_NOT_HEALTHY
    print(
        f"app {lab.app_url}  prometheus {lab.prometheus_url}  alertmanager {lab.alertmanager_url}  logs {lab.lab_dir}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        lab = Lab(LabConfig.from_env())
        if args.command == "up":
            lab.up(
                profile=args.profile,
                app_env=_settings(args.settings),
                pgbouncer=args.pgbouncer,
                proxy=args.proxy,
                app_instances=args.instances,
                replica=args.replica,
            )
            return _print_status(lab)
        if args.command == "deploy":
            print(
                f"restarted {', '.join(lab.app_instance_names())} in {lab.rolling_restart(careless=args.careless):.1f} s"
            )
            return 0
        if args.command == "down":
            stopped = lab.down()
            print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
            return 0
        if args.command == "status":
            return _print_status(lab)
        if args.command == "restart":
            settings = None if args.settings is None else _settings(args.settings)
            print(lab.restart(args.component, app_env=settings).describe())
            return 0
    except (LabError, LabConfigError, argparse.ArgumentTypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    parser.error(f"unknown command {args.command}")
    return EXIT_ERROR
