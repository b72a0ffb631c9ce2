"""The pack command: what it writes for someone's app, checked with the real promtool and amtool, and the lab's
own files written by the same path."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from grafana.panels import dashboards, render_promql, variable_defaults
from monitoring.config import CONFIG
from monitoring.pack_config import PackConfigError, config_from_overrides
from pack import cli
from pack.checks import config_warnings
from pack.files import lab_files, pack_files
from slo.tests.promtool import promtool_test, require_promtool, without_annotations

EXAMPLE = Path(__file__).resolve().parent / "example-pack.yaml"
AMTOOL = shutil.which("amtool")
SECTIONS = ("## What it means", "## Dashboard", "## First three checks", "## Mitigation")


@pytest.fixture
def pack_dir(tmp_path: Path) -> Path:
    out = tmp_path / "pack"
    assert cli.main(["--config", str(EXAMPLE), "--out", str(out)]) == 0
    return out


def _example_config():  # type: ignore[no-untyped-def]
    return config_from_overrides(yaml.safe_load(EXAMPLE.read_text()))


def test_the_pack_holds_rules_routing_dashboards_runbooks_and_manifests(pack_dir: Path) -> None:
    names = {str(path.relative_to(pack_dir)) for path in pack_dir.rglob("*") if path.is_file()}
    assert {
        "rules/slo-production.rules.yml",
        "alertmanager/routes.yml",
        "dashboards/service-overview.json",
        "dashboards/database-cache.json",
        "dashboards/slos.json",
        "kubernetes/prometheusrule.yaml",
        "kubernetes/dashboards.yaml",
    } <= names
    runbooks = {name for name in names if name.startswith("runbooks/")}
    alerts = {
        rule["alert"]
        for group in yaml.safe_load((pack_dir / "rules/slo-production.rules.yml").read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    assert runbooks == {f"runbooks/{alert}.md" for alert in alerts}


def test_the_generic_pack_carries_nothing_of_chowist(pack_dir: Path, tmp_path: Path) -> None:
    # Not the lab's SLOs, alerts, metrics, jobs, probe views or datasource uids: only what django-prometheus
    # exports, also for a config that sets nothing but the job.
    assert cli.main(["--job", "web", "--out", str(tmp_path / "minimal")]) == 0
    for path in [*pack_dir.rglob("*"), *(tmp_path / "minimal").rglob("*")]:
        if path.is_file():
            text = path.read_text().lower()
            assert "chowist" not in text and "core:healthz" not in text, path
    text = (pack_dir / "rules/slo-production.rules.yml").read_text()
    assert "freshness" not in text and "nginx" not in text and 'job="edge"' not in text


def test_the_rules_pass_promtool_and_read_only_the_apps_own_jobs(pack_dir: Path) -> None:
    promtool = require_promtool()
    rules = pack_dir / "rules/slo-production.rules.yml"
    result = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    document = yaml.safe_load(rules.read_text())
    target_down = [r for g in document["groups"] for r in g["rules"] if r.get("alert") == "ShopTargetDown"]
    assert [r["expr"] for r in target_down] == ['up{job=~"shop-web"} == 0\n']
    for group in document["groups"]:
        for rule in group["rules"]:
            assert set(re.findall(r'job=~?"([^"]*)"', rule["expr"])) <= {"shop-web"}, rule


def test_pack_alerts_fire_for_the_apps_job_only_and_when_it_is_missing(pack_dir: Path, tmp_path: Path) -> None:
    rules = str(without_annotations(pack_dir / "rules/slo-production.rules.yml", tmp_path / "pack.rules.yml"))
    series = [
        {"series": 'up{job="shop-web",instance="10.0.0.1:8000"}', "values": "1 0x40"},
        {"series": 'up{job="someone-else",instance="10.0.0.2:8000"}', "values": "0x40"},
    ]
    down = {"service": "shop", "severity": "page", "job": "shop-web", "instance": "10.0.0.1:8000"}
    document = {
        "rule_files": [rules],
        "evaluation_interval": "5s",
        "tests": [
            {
                "interval": "5s",
                "input_series": series,
                "alert_rule_test": [
                    {"eval_time": "200s", "alertname": "ShopTargetDown", "exp_alerts": [{"exp_labels": down}]},
                    {"eval_time": "200s", "alertname": "SLOConfigJobMissing", "exp_alerts": []},
                ],
            },
            {
                "interval": "5s",
                "input_series": [{"series": 'up{job="shop",instance="10.0.0.1:8000"}', "values": "1x40"}],
                "alert_rule_test": [
                    {
                        "eval_time": "200s",
                        "alertname": "SLOConfigJobMissing",
                        "exp_alerts": [{"exp_labels": {"service": "shop", "severity": "ticket", "job": "shop-web"}}],
                    }
                ],
            },
        ],
    }
    promtool_test(tmp_path, "pack-health", document)


def test_the_routing_snippet_is_a_valid_alertmanager_config_that_routes_by_severity(
    pack_dir: Path, tmp_path: Path
) -> None:
    if AMTOOL is None:
        pytest.skip("amtool is not installed (apt-get install --no-install-recommends prometheus-alertmanager)")
    snippet = yaml.safe_load((pack_dir / "alertmanager/routes.yml").read_text())
    # What the user's alertmanager.yml becomes once the snippet is merged in: a root route of their own.
    config = {
        "route": {"receiver": "default", "routes": [snippet["route"]]},
        "receivers": [{"name": "default"}, *snippet["receivers"]],
        "inhibit_rules": snippet["inhibit_rules"],
    }
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    check = subprocess.run([AMTOOL, "check-config", str(path)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    for labels, receiver in (
        (["service=shop", "severity=page", "alertname=AvailabilitySLOPageBurn"], "shop-page"),
        (["service=shop", "severity=ticket", "alertname=LatencySLOTicketBurn"], "shop-ticket"),
        (["service=billing", "severity=page", "alertname=AvailabilitySLOPageBurn"], "default"),
    ):
        routed = subprocess.run(
            [AMTOOL, "config", "routes", "test", f"--config.file={path}", *labels],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert routed.stdout.strip() == receiver, (labels, routed.stdout, routed.stderr)


def test_dashboards_name_their_datasource_by_variable_and_open_on_the_apps_job(pack_dir: Path) -> None:
    for path in sorted((pack_dir / "dashboards").glob("*.json")):
        board = json.loads(path.read_text())
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        for panel in board["panels"]:
            if panel["type"] == "row":
                continue
            refs = [panel["datasource"], *(t["datasource"] for t in panel["targets"])]
            assert all(ref["uid"] == "${datasource}" for ref in refs), (path.name, panel["title"])
        if "job" in variables:
            assert variables["job"]["current"]["value"] == "shop-web"
        assert board["uid"].startswith("shop-") and board["title"].startswith("Shop / ")
    slos = json.loads((pack_dir / "dashboards/slos.json").read_text())
    window_set = next(v for v in slos["templating"]["list"] if v["name"] == "window_set")
    # Production only by default, and the production series (no window_set label) are what "()" selects.
    assert window_set["current"]["value"] == "()"
    assert all(
        'window_set=~"$window_set"' in t["expr"]
        for p in slos["panels"]
        if p["type"] != "row"
        for t in p["targets"]
        if "slo:" in t["expr"]
    )


def test_every_pack_dashboard_query_parses_with_promtool(tmp_path: Path) -> None:
    promtool = require_promtool()
    boards = dashboards(_example_config())
    values = variable_defaults(boards)
    queries = [render_promql(q.expr, variables=values) for b in boards for p in b.panels for q in p.queries]
    assert not [q for q in queries if "$" in q], "every variable is substituted"
    rules = [{"record": f"pack:query_{n}", "expr": q} for n, q in enumerate(queries)]
    path = tmp_path / "queries.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "pack-dashboards", "rules": rules}]}, width=1000))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_database_and_cache_dashboard_follows_what_the_app_wires() -> None:
    config = _example_config()
    from dataclasses import replace

    titles = {b.title for b in dashboards(replace(config, database_metrics=False, cache_metrics=False))}
    assert titles == {"Shop / Service overview", "Shop / SLOs"}
    rows = {r.title for b in dashboards(replace(config, cache_metrics=False)) for r in b.rows}
    assert "Database" in rows and "Cache" not in rows


def test_runbooks_have_the_sections_and_promql_that_parses(pack_dir: Path, tmp_path: Path) -> None:
    promtool = require_promtool()
    queries = []
    for path in sorted((pack_dir / "runbooks").glob("*.md")):
        text = path.read_text()
        assert text.startswith(f"# {path.stem}\n")
        positions = [text.find(section) for section in SECTIONS]
        assert all(p >= 0 for p in positions) and positions == sorted(positions), path.name
        checks = text[positions[2] : positions[3]]
        assert len(re.findall(r"^\d\. ", checks, re.MULTILINE)) == 3, path.name
        queries += [" ".join(q.split()) for q in re.findall(r"```promql\n(.*?)```", text, re.DOTALL)]
    rules = [{"record": f"runbook:query_{n}", "expr": q} for n, q in enumerate(queries)]
    path = tmp_path / "runbooks.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "runbooks", "rules": rules}]}, width=1000))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_generator_warns_when_the_threshold_is_no_bucket(capsys: pytest.CaptureFixture[str]) -> None:
    base = {"job": "shop-web", "excluded_views": ["healthz"]}
    assert config_warnings(config_from_overrides(base | {"latency_buckets": [0.1, 0.25, 0.3, 0.5]})) == []
    (between,) = config_warnings(config_from_overrides(base | {"latency_buckets": [0.1, 0.25, 0.5]}))
    assert "between the buckets 0.25 and 0.5" in between
    (above,) = config_warnings(config_from_overrides(base | {"latency_buckets": [0.05, 0.1, float("inf")]}))
    assert "above every finite bucket" in above
    # No buckets given: django-prometheus's defaults have no 0.3.
    (default,) = config_warnings(config_from_overrides(base))
    assert "PROMETHEUS_LATENCY_BUCKETS" in default
    assert config_warnings(config_from_overrides(base | {"latency_threshold_s": 0.25})) == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({}, "job is required"),
        ({"job": "web", "jbo": "x"}, "unknown key"),
        ({"job": "web", "service": "My Shop"}, "service must be"),
        ({"job": "web", "objectives": {"availability": 99.9}}, "between 0 and 1"),
        ({"job": "web", "objectives": {"freshness": 0.99}}, "objectives maps"),
        ({"job": "web", "window_sets": ["staging"]}, "window_sets"),
        ({"job": "web", "latency_threshold_s": "fast"}, "must be a number"),
    ],
)
def test_a_bad_pack_config_is_refused_naming_the_key(
    tmp_path: Path, overrides: dict, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "pack.yaml"
    config.write_text(yaml.safe_dump(overrides))
    assert cli.main(["--config", str(config), "--out", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_config_errors_are_their_own_type() -> None:
    with pytest.raises(PackConfigError, match="job is required"):
        config_from_overrides({"service": "shop"})


def test_flags_override_the_config_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    argv = ["--config", str(EXAMPLE), "--job", "web-2", "--latency-objective", "0.95", "--out", str(out)]
    assert cli.main(argv) == 0
    text = (out / "rules/slo-production.rules.yml").read_text()
    assert 'job="web-2"' in text and 'job="shop-web"' not in text
    assert "Objective 95% over 30d" in text


def test_the_lab_files_are_current_and_written_by_the_same_path() -> None:
    # `make slo dashboards` run `python -m pack --lab`: the committed rule files and dashboards are its output.
    assert cli.main(["--lab", "--check"]) == 0
    files = lab_files()
    assert len([p for p in files if p.suffix == ".yml"]) == len(CONFIG.window_sets)
    # The same builder makes a pack from the lab's config: its rule files equal the committed ones.
    same = pack_files(CONFIG, source="`make slo` (python -m pack --lab) from monitoring/config.py and slo/")
    for window_set, name in (("production", "slo-production.rules.yml"), ("lab", "slo-lab.rules.yml")):
        committed = next(text for path, text in files.items() if path.name == name)
        assert same[f"rules/{name}"] == committed, window_set
