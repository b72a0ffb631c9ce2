"""What the rule files must do, restated from the brief and observability/METRICS.md.

Deliberately independent of monitoring/config.py and slo/: a typo in the generator's inputs must fail a
test instead of being copied into it.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RULES_DIR = ROOT / "prometheus" / "rules"
RULE_FILES = {"production": RULES_DIR / "slo-production.rules.yml", "lab": RULES_DIR / "slo-lab.rules.yml"}
RUNBOOKS_DIR = ROOT / "slo" / "runbooks"

SERVICE = "chowist"
# slo -> (objective, page alert, ticket alert)
SLOS = {
    "availability": (0.999, "AvailabilitySLOPageBurn", "AvailabilitySLOTicketBurn"),
    "latency": (0.99, "LatencySLOPageBurn", "LatencySLOTicketBurn"),
    "freshness": (0.99, "FreshnessSLOPageBurn", "FreshnessSLOTicketBurn"),
}
PLAIN_ALERTS = (
    "ChowistTargetDown",
    "SLOConfigJobMissing",
    "SLOConfigLatencyBucketMissing",
    "ChowistConsumerStalled",
    "ChowistTelemetryDegraded",
    "ChowistReplicaLagging",
)
ALL_ALERTS = tuple(name for _, page, ticket in SLOS.values() for name in (page, ticket)) + PLAIN_ALERTS

WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
# SRE Workbook multiwindow, multi-burn-rate alerts: severity -> [(factor, long window, short window)].
BURN_POLICY = {
    "page": [(14.4, "1h", "5m"), (6, "6h", "30m")],
    "ticket": [(3, "1d", "2h"), (1, "3d", "6h")],
}
# Production window name -> the range it covers in the lab set (production / 12; 5 s scrapes).
LAB_WINDOWS = {
    "5m": "25s",
    "30m": "2m30s",
    "1h": "5m",
    "2h": "10m",
    "6h": "30m",
    "1d": "2h",
    "3d": "6h",
    "30d": "2d12h",
}
LAB_SCRAPE_SECONDS = 5
MIN_SCRAPES_PER_WINDOW = 4

RECORDS = (
    *(f"slo:sli_error:ratio_rate{w}" for w in WINDOWS),
    "slo:objective:ratio",
    "slo:error_budget:ratio",
    "slo:period_error_budget_remaining:ratio",
    "slo:current_burn_rate:ratio",
    # Availability and latency only: 1 while they read the proxy's series, 0 on the app's fallback.
    "slo:sli_source_edge:bool",
)

# Plain alerts: how long the condition must hold before firing, per window set.
TARGET_DOWN_FOR_SECONDS = {"production": 120, "lab": 15}
CONSUMER_STALLED_SECONDS = {"production": 600, "lab": 60}
REPLICA_LAG_SECONDS = {"production": 120, "lab": 15}
# Beyond the app's read-your-writes window (DB_READ_YOUR_WRITES_S, 5 s) a client may miss its own write.
REPLICA_LAG_THRESHOLD_S = 5


def budget(slo: str) -> float:
    return round(1 - SLOS[slo][0], 10)


def threshold(slo: str, factor: float) -> float:
    # Rounded to decimal precision, as the rule files write their thresholds.
    return round(factor * budget(slo), 10)


def slo_labels(slo: str, window_set: str) -> dict[str, str]:
    labels = {"service": SERVICE, "slo": slo}
    if window_set == "lab":
        labels["window_set"] = "lab"
    return labels


def selector(labels: dict[str, str]) -> str:
    return "{" + ",".join(f'{key}="{value}"' for key, value in sorted(labels.items())) + "}"
