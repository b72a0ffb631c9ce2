"""The Grafana datasources: the uids the lab provisions, and the variables the dashboards refer to them by.

grafana/provisioning/datasources/datasources.yaml provisions exactly these uids; a test keeps the two in step.
Dashboards never name a uid: their panels use the $datasource / $loki variables, which pick the lab's
provisioned default on its Grafana and whatever the user chooses on theirs.
"""

from __future__ import annotations

from grafana_foundation_sdk.models.dashboard import DataSourceRef

PROMETHEUS_UID = "chowist-prometheus"
LOKI_UID = "chowist-loki"
TEMPO_UID = "chowist-tempo"
ALERTMANAGER_UID = "chowist-alertmanager"

PROMETHEUS = DataSourceRef(type_val="prometheus", uid=PROMETHEUS_UID)
LOKI = DataSourceRef(type_val="loki", uid=LOKI_UID)

PROMETHEUS_VARIABLE = DataSourceRef(type_val="prometheus", uid="${datasource}")
LOKI_VARIABLE = DataSourceRef(type_val="loki", uid="${loki}")
