"""SLO specs: the YAML files under slo/specs/, loaded and checked."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from slo.policy import PERIOD_NAME, duration_seconds

SPECS_DIR = Path(__file__).resolve().parent / "specs"
WINDOW_PLACEHOLDER = "{{window}}"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_ALERT_NAME = re.compile(r"^[A-Z][A-Za-z0-9]*$")
_REQUIRED = ("service", "slo", "title", "objective", "period", "description", "sli", "alerts")


class SpecError(ValueError):
    """A spec file that cannot become rules; the message names the file and the field."""


@dataclass(frozen=True)
class SloSpec:
    service: str
    slo: str
    title: str
    objective: float
    period: str
    description: str
    error_query: str
    total_query: str
    page_alert: str
    ticket_alert: str
    source: Path

    @property
    def error_budget(self) -> float:
        # Rounded so 1 - 0.999 is written as 0.001, not 0.0010000000000000009.
        return round(1 - self.objective, 10)

    def error_query_for(self, window: str) -> str:
        return self.error_query.replace(WINDOW_PLACEHOLDER, window)

    def total_query_for(self, window: str) -> str:
        return self.total_query.replace(WINDOW_PLACEHOLDER, window)


def slo_spec_load(*, path: Path) -> SloSpec:
    """Read and validate one spec file."""
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise SpecError(f"{path}: expected a mapping at the top level")
    missing = [key for key in _REQUIRED if key not in data]
    if missing:
        raise SpecError(f"{path}: missing {', '.join(missing)}")
    for key in ("service", "slo"):
        if not isinstance(data[key], str) or not _NAME.match(data[key]):
            raise SpecError(f"{path}: {key} must be a lower-case identifier, got {data[key]!r}")
    objective = data["objective"]
    if isinstance(objective, bool) or not isinstance(objective, int | float) or not 0 < objective < 1:
        raise SpecError(f"{path}: objective must be a ratio between 0 and 1 (0.999 for 99.9%), got {objective!r}")
    if data["period"] != PERIOD_NAME:
        # The burn-rate factors of the policy are derived for a 30-day period.
        raise SpecError(f"{path}: period must be {PERIOD_NAME}, the period the burn-rate policy is built for")
    duration_seconds(data["period"])
    sli, alerts = data["sli"], data["alerts"]
    if not isinstance(sli, dict) or not isinstance(alerts, dict):
        raise SpecError(f"{path}: sli and alerts must be mappings")
    queries = {}
    for key in ("error_query", "total_query"):
        query = sli.get(key)
        if not isinstance(query, str) or WINDOW_PLACEHOLDER not in query:
            raise SpecError(f"{path}: sli.{key} must be a PromQL string using {WINDOW_PLACEHOLDER} as its range")
        queries[key] = " ".join(query.split())
    names = {}
    for key in ("page", "ticket"):
        name = alerts.get(key)
        if not isinstance(name, str) or not _ALERT_NAME.match(name):
            raise SpecError(f"{path}: alerts.{key} must be a CamelCase alert name, got {name!r}")
        names[key] = name
    return SloSpec(
        service=data["service"],
        slo=data["slo"],
        title=str(data["title"]),
        objective=float(objective),
        period=data["period"],
        description=" ".join(str(data["description"]).split()),
        error_query=queries["error_query"],
        total_query=queries["total_query"],
        page_alert=names["page"],
        ticket_alert=names["ticket"],
        source=path,
    )


def slo_spec_list(*, specs_dir: Path = SPECS_DIR) -> list[SloSpec]:
    """Every spec in `specs_dir`, in file-name order; SLO names must be unique."""
    specs = [slo_spec_load(path=path) for path in sorted(specs_dir.glob("*.yaml"))]
    if not specs:
        raise SpecError(f"{specs_dir}: no *.yaml SLO specs found")
    seen: dict[tuple[str, str], Path] = {}
    for spec in specs:
        key = (spec.service, spec.slo)
        if key in seen:
            raise SpecError(f"{spec.source}: SLO {spec.service}/{spec.slo} is already defined in {seen[key]}")
        seen[key] = spec.source
    return specs
