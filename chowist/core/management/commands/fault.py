"""`manage.py fault list|set NAME [--value V] [--views v1,v2] [--status 503]|clear [NAME]|clear-all`."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from chowist.core import faults


class Command(BaseCommand):
    help = "List, switch on and switch off the fault flags the app and consumer re-read at runtime."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        listing = actions.add_parser("list", help="every fault, on or off")
        listing.add_argument("--json", action="store_true", help="machine-readable output")
        on = actions.add_parser("set", help="switch a fault on (or change its value)")
        on.add_argument("name", choices=list(faults.SPECS))
        on.add_argument("--value", type=float, help="fraction for http_5xx, milliseconds for the latencies")
        on.add_argument("--views", default="", help="comma-separated URL names, e.g. places:detail,api:place-list")
        on.add_argument("--status", type=int, default=500, choices=faults.HTTP_5XX_STATUSES, help="http_5xx only")
        off = actions.add_parser("clear", help="switch one fault off (all of them when no name is given)")
        off.add_argument("name", nargs="?", choices=list(faults.SPECS))
        actions.add_parser("clear-all", help="switch every fault off")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        try:
            if action == "list":
                self._list(as_json=options["json"])
            elif action == "set":
                views = [v for v in options["views"].split(",") if v.strip()]
                fault = faults.fault_set(
                    name=options["name"], value=options["value"], views=views, status=options["status"]
                )
                self.stdout.write(f"on   {_describe(fault)}")
            elif action == "clear" and options["name"]:
                was_on = faults.fault_clear(name=options["name"])
                self.stdout.write(f"off  {options['name']}" + ("" if was_on else " (was not on)"))
            else:
                cleared = faults.faults_clear_all()
                self.stdout.write(f"off  {', '.join(cleared)}" if cleared else "no fault was on")
        except (faults.FaultError, faults.FaultsRefused) as exc:
            raise CommandError(str(exc)) from exc

    def _list(self, *, as_json: bool) -> None:
        active = faults.faults_reload()
        if as_json:
            payload = {name: (active[name].as_dict() if name in active else None) for name in faults.SPECS}
            self.stdout.write(json.dumps({"file": str(faults.faults_path()), "faults": payload}, indent=2))
            return
        for name, spec in faults.SPECS.items():
            if name in active:
                self.stdout.write(f"on   {_describe(active[name])}  (since {active[name].set_at})")
            else:
                self.stdout.write(f"off  {name:<16} {spec.description}")
        if not faults.faults_enabled():
            self.stdout.write("fault injection is refused in production (FAULTS_ALLOW_IN_PRODUCTION is off)")


def _describe(fault: faults.Fault) -> str:
    spec = faults.SPECS[fault.name]
    parts = [f"{fault.name:<16}"]
    if fault.value is not None:
        parts.append(f"value={fault.value:g}{' ' + spec.unit if spec.unit != 'fraction' else ''}")
    if fault.name == faults.HTTP_5XX:
        parts.append(f"status={fault.status}")
    if spec.takes_views:
        parts.append(f"views={','.join(fault.views) if fault.views else 'all (except health probes)'}")
    return " ".join(parts)
