"""The pack's Kubernetes manifests, validated offline against the parts of their schemas the API server and the
Prometheus Operator enforce (no cluster, no network): the PrometheusRule CRD's spec.groups (monitoring.coreos.com/v1)
and core/v1 ConfigMap, plus the Grafana sidecar's label and the 1 MiB object limit."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from pack import cli
from slo.tests.promtool import require_promtool

EXAMPLE = Path(__file__).resolve().parent / "example-pack.yaml"
# RFC 1123 subdomain (metadata.name), ConfigMap data keys, and the CRD's duration pattern for `for`.
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
CONFIG_MAP_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
DURATION = re.compile(r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$")
LABEL_NAME = re.compile(r"^([a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?/)?[a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?$")
MAX_OBJECT_BYTES = 1024 * 1024
# Rule fields the CRD declares (monitoring.coreos.com_prometheusrules.yaml, v1 Rule); any other is rejected.
RULE_FIELDS = {"record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
GROUP_FIELDS = {"name", "interval", "rules", "partial_response_strategy", "limit", "query_offset", "labels"}


def _str_map(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())


def _metadata_errors(doc: dict[str, Any]) -> list[str]:
    meta = doc.get("metadata", {})
    errors = []
    name = meta.get("name", "")
    if not (isinstance(name, str) and len(name) <= 253 and DNS_SUBDOMAIN.match(name)):
        errors.append(f"metadata.name {name!r} is not an RFC 1123 subdomain")
    labels = meta.get("labels", {})
    if not _str_map(labels) or not all(LABEL_NAME.match(k) and len(v) <= 63 for k, v in labels.items()):
        errors.append(f"metadata.labels {labels!r} are not valid labels")
    return errors


def prometheus_rule_errors(doc: dict[str, Any]) -> list[str]:
    errors = _metadata_errors(doc)
    if doc.get("apiVersion") != "monitoring.coreos.com/v1" or doc.get("kind") != "PrometheusRule":
        errors.append("apiVersion/kind must be monitoring.coreos.com/v1 PrometheusRule")
    groups = doc.get("spec", {}).get("groups")
    if not isinstance(groups, list) or not groups:
        return [*errors, "spec.groups must be a non-empty list"]
    names = [group.get("name") for group in groups]
    if len(set(names)) != len(names):
        errors.append("group names must be unique")
    for group in groups:
        if set(group) - GROUP_FIELDS or not isinstance(group.get("name"), str) or not group["name"]:
            errors.append(f"group {group.get('name')!r}: fields {sorted(group)}")
        for rule in group.get("rules", []):
            if set(rule) - RULE_FIELDS:
                errors.append(f"rule fields {sorted(set(rule) - RULE_FIELDS)} are not in the CRD")
            if ("record" in rule) == ("alert" in rule):
                errors.append(f"rule needs exactly one of record/alert: {rule}")
            if not isinstance(rule.get("expr"), str | int) or rule.get("expr") == "":
                errors.append(f"rule {rule.get('alert') or rule.get('record')}: expr is required")
            if "for" in rule and not DURATION.match(rule["for"]):
                errors.append(f"rule {rule.get('alert')}: for {rule['for']!r} is no duration")
            for key in ("labels", "annotations"):
                if key in rule and not _str_map(rule[key]):
                    errors.append(f"rule {rule.get('alert') or rule.get('record')}: {key} must map strings")
    return errors


def config_map_errors(doc: dict[str, Any]) -> list[str]:
    errors = _metadata_errors(doc)
    if doc.get("apiVersion") != "v1" or doc.get("kind") != "ConfigMap":
        errors.append("apiVersion/kind must be v1 ConfigMap")
    data = doc.get("data", {})
    if not _str_map(data) or not all(CONFIG_MAP_KEY.match(key) for key in data):
        errors.append(f"data keys {sorted(data)} must be strings matching {CONFIG_MAP_KEY.pattern}")
    if len(json.dumps(doc).encode()) >= MAX_OBJECT_BYTES:
        errors.append("a ConfigMap must stay under 1 MiB")
    return errors


@pytest.fixture(scope="module")
def manifests(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pack")
    assert cli.main(["--config", str(EXAMPLE), "--out", str(out)]) == 0
    return out / "kubernetes"


def test_the_prometheus_rule_fits_the_crd_and_holds_the_production_rule_file(manifests: Path, tmp_path: Path) -> None:
    (doc,) = list(yaml.safe_load_all((manifests / "prometheusrule.yaml").read_text()))
    assert prometheus_rule_errors(doc) == []
    rule_file = yaml.safe_load((manifests.parent / "rules/slo-production.rules.yml").read_text())
    assert doc["spec"]["groups"] == rule_file["groups"]
    # The operator hands spec.groups to Prometheus as a rule file: promtool must accept it as one.
    promtool = require_promtool()
    path = tmp_path / "from-manifest.rules.yml"
    path.write_text(yaml.safe_dump({"groups": doc["spec"]["groups"]}, width=1000))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "window_set" not in (manifests / "prometheusrule.yaml").read_text().replace('window_set=""', "")


def test_each_dashboard_is_a_config_map_the_grafana_sidecar_picks_up(manifests: Path) -> None:
    docs = list(yaml.safe_load_all((manifests / "dashboards.yaml").read_text()))
    dashboards = sorted(path.name for path in (manifests.parent / "dashboards").glob("*.json"))
    assert sorted(key for doc in docs for key in doc["data"]) == dashboards
    for doc in docs:
        assert config_map_errors(doc) == [], doc["metadata"]["name"]
        assert doc["metadata"]["labels"]["grafana_dashboard"] == "1"
        ((name, text),) = doc["data"].items()
        assert json.loads(text) == json.loads((manifests.parent / "dashboards" / name).read_text())


def test_the_checks_reject_what_the_api_server_would() -> None:
    # The validators themselves: a wrong name, an unknown rule field, a rule with both record and alert.
    bad_rule = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "Shop_SLO"},
        "spec": {"groups": [{"name": "g", "rules": [{"record": "a", "alert": "B", "expr": "1", "severity": "x"}]}]},
    }
    assert len(prometheus_rule_errors(bad_rule)) == 3
    bad_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a/b.json": "{}"}}
    assert len(config_map_errors(bad_map)) == 1
