"""Every PromQL expression on every dashboard parses, checked by promtool (Prometheus's own parser)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from grafana.panels import promql_queries, render_promql

PROMTOOL = shutil.which("promtool")


def test_render_replaces_every_grafana_interval_variable() -> None:
    rendered = render_promql("rate(x[$__rate_interval]) + rate(y[$__interval]) + z[$__range]", rate_interval="30s")
    assert rendered == "rate(x[30s]) + rate(y[30s]) + z[30s]"
    assert all("$" not in render_promql(q.expr) for q in promql_queries())


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (apt-get install prometheus)")
def test_every_expression_parses_with_promtool(tmp_path: Path) -> None:
    queries = promql_queries()
    rules = [{"record": f"dashboard:expr_{i}", "expr": render_promql(q.expr)} for i, q in enumerate(queries)]
    rule_file = tmp_path / "dashboard_exprs.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run([PROMTOOL, "check", "rules", str(rule_file)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        # Name the panel: promtool only knows the rule index.
        failing = [
            f"{q.dashboard} / {q.panel}: {q.expr}"
            for i, q in enumerate(queries)
            if f'"dashboard:expr_{i}"' in result.stderr
        ]
        pytest.fail(f"promtool rejected dashboard PromQL:\n{result.stderr}\n" + "\n".join(failing))
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout
