"""The generator: committed rule files are current, valid, labelled by window set and complete."""

from __future__ import annotations

import re
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from monitoring.config import CONFIG, MonitoringConfig
from slo import generate
from slo.policy import window_duration
from slo.spec import SpecError, slo_spec_list
from slo.tests.expectations import (
    ALL_ALERTS,
    LAB_SCRAPE_SECONDS,
    LAB_WINDOWS,
    MIN_SCRAPES_PER_WINDOW,
    RECORDS,
    ROOT,
    RULE_FILES,
    RULES_DIR,
    SLOS,
)
from slo.tests.promtool import require_promtool

_RANGE = re.compile(r"\[(\d+[smhd](?:\d+[smhd])*)\]")


def _rules(window_set: str) -> list[tuple[str, dict]]:
    document = yaml.safe_load(RULE_FILES[window_set].read_text())
    return [(group["name"], rule) for group in document["groups"] for rule in group["rules"]]


@pytest.mark.parametrize("window_set", ["production", "lab"])
def test_committed_rule_files_are_current(window_set: str) -> None:
    expected = generate.render_rules(window_set=window_set)
    assert RULE_FILES[window_set].read_text() == expected, "prometheus/rules is stale: run `make slo` and commit"


def test_every_rule_file_passes_promtool_check_rules() -> None:
    promtool = require_promtool()
    files = sorted(RULES_DIR.glob("*.yml"))
    assert {path.name for path in files} >= {path.name for path in RULE_FILES.values()}
    result = subprocess.run([promtool, "check", "rules", *map(str, files)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("window_set", ["production", "lab"])
def test_alert_and_record_names_are_the_contract(window_set: str) -> None:
    rules = _rules(window_set)
    assert {rule["alert"] for _, rule in rules if "alert" in rule} == set(ALL_ALERTS)
    assert {rule["record"] for _, rule in rules if "record" in rule} == set(RECORDS)
    for _, rule in rules:
        if "record" in rule:
            assert rule["labels"]["service"] == "chowist"
            assert rule["labels"]["slo"] in SLOS


@pytest.mark.parametrize("window_set", ["production", "lab"])
def test_every_alert_has_severity_annotations_and_an_existing_runbook(window_set: str) -> None:
    for _, rule in _rules(window_set):
        if "alert" not in rule:
            continue
        assert rule["labels"]["severity"] in {"page", "ticket"}
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"]
        assert annotations["runbook_url"] == f"slo/runbooks/{rule['alert']}.md"
        assert (ROOT / annotations["runbook_url"]).is_file()


def test_lab_rules_are_marked_lab_everywhere_and_production_rules_nowhere() -> None:
    # Checked as a word: "availability" contains "lab".
    for group, rule in _rules("lab"):
        assert "lab" in group.split("-")
        assert rule["labels"]["window_set"] == "lab"
    for group, rule in _rules("production"):
        assert "lab" not in group.split("-")
        assert "window_set" not in rule.get("labels", {})
        # Production alerts and records read only series without the label.
        assert 'window_set="lab"' not in rule["expr"]
    assert "LAB WINDOW SET" in RULE_FILES["lab"].read_text().splitlines()[1]


def _seconds(duration: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([smhd])", duration))


def test_lab_windows_are_the_documented_mapping_and_span_enough_scrapes() -> None:
    for _, rule in _rules("lab"):
        for found in _RANGE.findall(rule["expr"]):
            assert _seconds(found) >= MIN_SCRAPES_PER_WINDOW * LAB_SCRAPE_SECONDS, rule
        record = rule.get("record", "")
        if record.startswith("slo:sli_error:ratio_rate"):
            window = record.removeprefix("slo:sli_error:ratio_rate")
            assert set(_RANGE.findall(rule["expr"])) == {LAB_WINDOWS[window]}
        if record == "slo:period_error_budget_remaining:ratio":
            assert _RANGE.findall(rule["expr"]) == [LAB_WINDOWS["30d"]]


def test_production_windows_are_their_names() -> None:
    for _, rule in _rules("production"):
        record = rule.get("record", "")
        if record.startswith("slo:sli_error:ratio_rate"):
            assert set(_RANGE.findall(rule["expr"])) == {record.removeprefix("slo:sli_error:ratio_rate")}


def test_specs_carry_the_objectives_of_the_brief() -> None:
    specs = {spec.slo: spec for spec in slo_spec_list()}
    assert set(specs) == set(SLOS)
    for name, (objective, page, ticket) in SLOS.items():
        assert specs[name].objective == objective
        assert (specs[name].page_alert, specs[name].ticket_alert) == (page, ticket)
        assert specs[name].period == "30d"


def _config_with(**latency: object) -> MonitoringConfig:
    return replace(CONFIG, slos=replace(CONFIG.slos, latency=replace(CONFIG.slos.latency, **latency)))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"objective": 99.0}, "between 0 and 1"),
        ({"objective": True}, "between 0 and 1"),
        ({"page_alert": "not-an-alert"}, "page_alert"),
        ({"name": "Lat ency"}, "lower-case identifier"),
        ({"name": "throughput"}, "no SLI is defined"),
        ({"threshold_s": None}, "threshold_s"),
        ({"threshold_s": 0}, "threshold_s"),
    ],
)
def test_a_bad_slo_is_refused_with_a_message_naming_the_problem(change: dict, message: str) -> None:
    with pytest.raises(SpecError, match=re.escape(message)):
        slo_spec_list(config=_config_with(**change))


def test_duplicate_slos_are_refused() -> None:
    config = _config_with(name="availability")
    with pytest.raises(SpecError, match="more than once"):
        slo_spec_list(config=config)


def test_every_sli_query_has_the_window_placeholder_and_aggregates_to_one_series() -> None:
    for spec in slo_spec_list():
        for query in (spec.error_query, spec.total_query):
            assert "[{{window}}]" in query
            assert query.startswith("sum(") and " by " not in query


def test_cli_writes_the_chosen_set(tmp_path: Path) -> None:
    out = tmp_path / "lab.yml"
    assert generate.main(["--window-set", "lab", "--output", str(out)]) == 0
    assert out.read_text() == RULE_FILES["lab"].read_text()


def test_window_sets_refuse_windows_they_cannot_scale() -> None:
    assert window_duration("1h", window_set="lab") == "5m"
    with pytest.raises(ValueError, match="fewer than"):
        window_duration("1m", window_set="lab")
    with pytest.raises(ValueError, match="does not divide"):
        window_duration("7s", window_set="lab")
    with pytest.raises(ValueError, match="unknown window set"):
        window_duration("1h", window_set="staging")
