"""The Grafana datasources the dashboards refer to: uid and plugin type, one place.

grafana/provisioning/datasources/datasources.yaml provisions exactly these uids; a test keeps the two in step.
"""

from __future__ import annotations

from grafana_foundation_sdk.models.dashboard import DataSourceRef

PROMETHEUS_UID = "chowist-prometheus"
LOKI_UID = "chowist-loki"
TEMPO_UID = "chowist-tempo"
ALERTMANAGER_UID = "chowist-alertmanager"

PROMETHEUS = DataSourceRef(type_val="prometheus", uid=PROMETHEUS_UID)
LOKI = DataSourceRef(type_val="loki", uid=LOKI_UID)
