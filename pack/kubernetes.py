"""Kubernetes manifests of a pack, for a cluster running the Prometheus Operator and Grafana's dashboard sidecar.

A PrometheusRule (monitoring.coreos.com/v1) holding the production rule groups, and one ConfigMap per
dashboard labelled the way kube-prometheus-stack's Grafana sidecar looks for them (grafana_dashboard: "1").
The lab window set never goes here: its series must not reach a production Prometheus.
"""

from __future__ import annotations

import json
from typing import Any

from monitoring.config import MonitoringConfig

PROMETHEUS_RULE_API = "monitoring.coreos.com/v1"
# kube-prometheus-stack's Grafana sidecar default: ConfigMaps with this label become dashboards.
DASHBOARD_LABEL = {"grafana_dashboard": "1"}


def _labels(config: MonitoringConfig) -> dict[str, str]:
    return {"app.kubernetes.io/name": config.service, "app.kubernetes.io/component": "slo-pack"}


def prometheus_rule(config: MonitoringConfig, rule_groups: list[dict[str, Any]]) -> dict[str, Any]:
    """The PrometheusRule holding `rule_groups` (a production rule file's groups)."""
    return {
        "apiVersion": PROMETHEUS_RULE_API,
        "kind": "PrometheusRule",
        "metadata": {"name": f"{config.service}-slo", "labels": _labels(config)},
        "spec": {"groups": rule_groups},
    }


def dashboard_config_maps(config: MonitoringConfig, dashboards: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One ConfigMap per dashboard (file name -> dashboard JSON): each stays far below the 1 MiB object limit."""
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": f"{config.service}-dashboard-{name.removesuffix('.json')}",
                "labels": {**_labels(config), **DASHBOARD_LABEL},
            },
            "data": {name: json.dumps(board, indent=2, sort_keys=True) + "\n"},
        }
        for name, board in dashboards.items()
    ]
