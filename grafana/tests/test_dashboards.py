"""Every generated dashboard is structurally sound and points only at provisioned datasources."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from grafana import datasources
from grafana.build import version_tag
from grafana.generate import DASHBOARDS_DIR, GRAFANA_DIR
from grafana.panels import DASHBOARDS, promql_queries

DATASOURCES_YAML = GRAFANA_DIR / "provisioning" / "datasources" / "datasources.yaml"


def _boards() -> dict[Path, dict[str, Any]]:
    return {path: json.loads(path.read_text()) for path in sorted(DASHBOARDS_DIR.glob("*.json"))}


def _provisioned() -> dict[str, dict[str, Any]]:
    return {ds["uid"]: ds for ds in yaml.safe_load(DATASOURCES_YAML.read_text())["datasources"]}


def _panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in board["panels"] if p["type"] != "row"]


def test_one_file_per_dashboard_with_unique_uids_and_titles() -> None:
    boards = _boards()
    assert len(boards) == len(DASHBOARDS) >= 5
    uids = [b["uid"] for b in boards.values()]
    titles = [b["title"] for b in boards.values()]
    assert len(set(uids)) == len(uids)
    assert len(set(titles)) == len(titles)
    assert all(uid and len(uid) <= 40 for uid in uids), "Grafana uids are at most 40 characters"


def test_every_panel_has_a_unique_id_and_at_least_one_query() -> None:
    for path, board in _boards().items():
        ids = [p["id"] for p in board["panels"]]
        assert len(set(ids)) == len(ids), path
        for panel in _panels(board):
            targets = panel.get("targets") or []
            assert targets, f"{path.name}: panel {panel['title']!r} has no query"
            assert all(t.get("expr", "").strip() for t in targets), f"{path.name}: {panel['title']!r}"
            ref_ids = [t["refId"] for t in targets]
            assert all(ref_ids) and len(set(ref_ids)) == len(ref_ids), f"{path.name}: {panel['title']!r}"


def test_every_datasource_reference_is_a_datasource_variable_the_lab_can_resolve() -> None:
    """Dashboards import into any Grafana: panels name a datasource variable, never a uid; on the lab's Grafana
    each variable resolves to a provisioned datasource of its type (Prometheus: the default one)."""
    provisioned = _provisioned()
    provisioned_types = {ds["type"] for ds in provisioned.values()}
    default_types = {ds["type"] for ds in provisioned.values() if ds.get("isDefault")}
    for path, board in _boards().items():
        pickers = {v["name"]: v["query"] for v in board["templating"]["list"] if v["type"] == "datasource"}
        for panel in _panels(board):
            for ref in [panel["datasource"], *(t["datasource"] for t in panel["targets"])]:
                name = ref["uid"].removeprefix("${").removesuffix("}")
                assert ref["uid"] == f"${{{name}}}", f"{path.name}: {panel['title']!r} hard-codes {ref}"
                assert pickers.get(name) == ref["type"], f"{path.name}: {panel['title']!r} uses unknown {ref}"
                assert ref["type"] in provisioned_types, f"{path.name}: {panel['title']!r}"
        assert "prometheus" not in pickers.values() or "prometheus" in default_types
        text = path.read_text()
        assert not [uid for uid in provisioned if f'"{uid}"' in text], f"{path.name} names a provisioned uid"


def test_variables_on_import_select_the_configs_job_and_service() -> None:
    for path, board in _boards().items():
        variables = {v["name"]: v for v in board["templating"]["list"]}
        if "job" in variables:
            assert variables["job"]["current"]["value"] == "chowist-app", path.name
            assert variables["job"]["datasource"]["uid"] == "${datasource}", path.name
        if "service" in variables:
            assert variables["service"]["current"]["value"] == "chowist", path.name
    slos = next(board for board in _boards().values() if board["uid"] == "chowist-slos")
    window_set = next(v for v in slos["templating"]["list"] if v["name"] == "window_set")
    assert window_set["query"] == "production : (),lab : lab,both : .*"


def test_provisioning_matches_the_uids_the_generator_uses() -> None:
    provisioned = _provisioned()
    assert provisioned[datasources.PROMETHEUS_UID]["type"] == "prometheus"
    assert provisioned[datasources.LOKI_UID]["type"] == "loki"
    assert provisioned[datasources.TEMPO_UID]["type"] == "tempo"
    assert provisioned[datasources.ALERTMANAGER_UID]["type"] == "alertmanager"
    assert sum(1 for ds in provisioned.values() if ds.get("isDefault")) == 1


def test_loki_derives_a_trace_link_from_trace_id() -> None:
    import re

    loki = _provisioned()[datasources.LOKI_UID]
    (derived,) = loki["jsonData"]["derivedFields"]
    assert derived["datasourceUid"] == datasources.TEMPO_UID
    line = json.dumps({"event": "request_failed", "level": "error", "trace_id": "0af7651916cd43dd8448eb211c80319c"})
    match = re.search(derived["matcherRegex"], line)
    assert match and match.group(1) == "0af7651916cd43dd8448eb211c80319c"
    assert _provisioned()[datasources.TEMPO_UID]["jsonData"]["tracesToLogsV2"]["datasourceUid"] == datasources.LOKI_UID


@pytest.mark.parametrize("spec", DASHBOARDS, ids=lambda d: d.uid)
def test_each_dashboard_carries_its_version_as_field_and_tag(spec) -> None:
    board = next(b for b in _boards().values() if b["uid"] == spec.uid)
    assert board["version"] == spec.version
    assert version_tag(spec.version) in board["tags"]


def test_the_required_dashboards_exist() -> None:
    titles = {d.title.split(" / ", 1)[1] for d in DASHBOARDS}
    assert {"Service overview", "Database & cache", "Background jobs", "SLOs", "Logs"} <= titles


def test_promql_queries_lists_every_prometheus_target() -> None:
    targets = [
        t["expr"]
        for board in _boards().values()
        for panel in _panels(board)
        if panel["datasource"]["type"] == "prometheus"
        for t in panel["targets"]
    ]
    assert sorted(targets) == sorted(q.expr for q in promql_queries())


def test_the_logs_dashboard_shows_exactly_lokis_queries() -> None:
    from grafana.panels import LOGS
    from loki import queries

    exprs = {q.expr for panel in LOGS.panels for q in panel.queries}
    assert exprs == {q.expr for q in queries.ALL}
