"""The Alertmanager routing snippet of a pack: the service's alerts to a page and a ticket receiver."""

from __future__ import annotations

from typing import Any

from monitoring.config import MonitoringConfig
from prometheus.generate import SLO_INHIBIT_RULE


def receiver_names(config: MonitoringConfig) -> dict[str, str]:
    """severity -> the receiver the snippet routes it to (the user fills in how each one notifies)."""
    return {severity: f"{config.service}-{severity}" for severity in ("page", "ticket")}


def routing_snippet(config: MonitoringConfig) -> dict[str, Any]:
    """A child route (for the root route's `routes:`), the receivers it names, and the SLO inhibit rule.

    Matched on the service label, which every alert of the pack carries, so other teams' alerts never reach it.
    """
    receivers = receiver_names(config)
    return {
        "route": {
            "matchers": [f'service="{config.service}"'],
            "receiver": receivers["ticket"],
            "group_by": ["alertname", "severity"],
            "group_wait": config.group_wait,
            "group_interval": config.group_interval,
            "repeat_interval": config.repeat_interval,
            "routes": [{"matchers": ['severity="page"'], "receiver": receivers["page"]}],
        },
        "receivers": [{"name": name} for name in receivers.values()],
        "inhibit_rules": [dict(SLO_INHIBIT_RULE)],
    }


SNIPPET_HEADER = (
    "# Alertmanager routing for the SLO pack. Merge into your alertmanager.yml: `route` under your root route's\n"
    "# `routes:`, `receivers` into `receivers:` (add how each one notifies: pagerduty_configs, slack_configs, ...),\n"
    "# `inhibit_rules` into `inhibit_rules:`. Pages go to the page receiver, everything else to the ticket one.\n"
)
