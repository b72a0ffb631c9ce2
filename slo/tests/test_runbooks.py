"""Runbooks: one per alert, each with the sections on-call needs and PromQL that parses."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from slo.tests.expectations import ALL_ALERTS, RUNBOOKS_DIR
from slo.tests.promtool import require_promtool

SECTIONS = ("## What it means", "## Dashboard", "## First three checks", "## Mitigation")
DASHBOARDS = ("Service overview", "Database & cache", "Background jobs", "SLOs", "Logs")
_BLOCK = re.compile(r"```(promql|logql|shell)\n(.*?)```", re.DOTALL)


def _blocks(text: str, language: str) -> list[str]:
    return [" ".join(body.split()) for lang, body in _BLOCK.findall(text) if lang == language]


def test_there_is_exactly_one_runbook_per_alert() -> None:
    assert {path.stem for path in RUNBOOKS_DIR.glob("*.md")} == set(ALL_ALERTS)


@pytest.mark.parametrize("alert", ALL_ALERTS)
def test_runbook_has_every_section_a_dashboard_and_queries_logs_and_commands(alert: str) -> None:
    text = (RUNBOOKS_DIR / f"{alert}.md").read_text()
    assert text.startswith(f"# {alert}\n")
    positions = [text.find(section) for section in SECTIONS]
    assert all(position >= 0 for position in positions), f"{alert}: needs sections {SECTIONS}"
    assert positions == sorted(positions), f"{alert}: sections out of order"
    dashboard = text[positions[1] : positions[2]]
    assert any(f"**{name}**" in dashboard for name in DASHBOARDS), f"{alert}: name a dashboard in bold"
    checks = text[positions[2] : positions[3]]
    assert len(re.findall(r"^\d\. ", checks, re.MULTILINE)) == 3, f"{alert}: three numbered checks"
    for language in ("promql", "logql", "shell"):
        assert _blocks(checks, language), f"{alert}: the checks need a {language} block"


def test_every_promql_query_in_the_runbooks_parses(tmp_path: Path) -> None:
    promtool = require_promtool()
    queries = [q for path in sorted(RUNBOOKS_DIR.glob("*.md")) for q in _blocks(path.read_text(), "promql")]
    assert queries
    # promtool parses expressions as part of a rule file; each query becomes a recording rule.
    rules = [{"record": f"runbook:query_{index}", "expr": query} for index, query in enumerate(queries)]
    path = tmp_path / "runbook-queries.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "runbooks", "rules": rules}]}, width=1000))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_logql_searches_use_only_the_shippers_stream_labels() -> None:
    # loki/ ships two stream labels: service (app|worker) and level; anything else is parsed with | json.
    for path in sorted(RUNBOOKS_DIR.glob("*.md")):
        for query in _blocks(path.read_text(), "logql"):
            for selector in re.findall(r"\{([^}]*)\}", query):
                labels = {part.split("=")[0].strip().rstrip("!~") for part in selector.split(",") if part.strip()}
                assert labels <= {"service", "level"}, f"{path.name}: {query}"


def _chowist_metrics(text: str) -> set[str]:
    names = set(re.findall(r"\b(chowist_[a-z_]+)", text))
    return {re.sub(r"_(bucket|sum|count)$", "", name) for name in names}


def test_runbooks_name_only_metrics_of_the_monitoring_config() -> None:
    # A renamed metric (monitoring/config.py) must not leave a runbook query that finds nothing.
    from monitoring.config import CONFIG

    known = set(vars(CONFIG.metrics).values())
    for path in sorted(RUNBOOKS_DIR.glob("*.md")):
        stale = _chowist_metrics(path.read_text()) - known
        assert not stale, f"{path.name} queries metrics monitoring/config.py does not name: {sorted(stale)}"


def test_latency_runbooks_quote_the_configured_threshold() -> None:
    # The threshold lives in monitoring/config.py; a runbook quoting another one sends on-call the wrong way.
    from monitoring.config import CONFIG

    threshold_ms = f"{CONFIG.latency_threshold_ms:g}"
    for alert in (CONFIG.slos.latency.page_alert, CONFIG.slos.latency.ticket_alert):
        text = (RUNBOOKS_DIR / f"{alert}.md").read_text()
        quoted = set(re.findall(r"(\d+) ms\b", text)) | set(re.findall(r"duration_ms > (\d+)", text))
        assert quoted == {threshold_ms}, f"{alert}.md quotes {sorted(quoted)} ms; the latency SLO is {threshold_ms} ms"
