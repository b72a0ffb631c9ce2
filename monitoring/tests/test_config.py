"""The monitoring config is the one place: a change to it reaches rules, dashboards, LogQL and reports."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest

from monitoring.config import CONFIG, ROOT, le_matcher

# Runs in a fresh interpreter: the one field is changed before any consumer is imported, exactly as an edit
# of monitoring/config.py would be seen.
_PROBE = """
import json, sys
from dataclasses import replace
import monitoring.config as m

threshold = float(sys.argv[1])
latency = replace(m.CONFIG.slos.latency, threshold_s=threshold)
m.CONFIG = replace(m.CONFIG, slos=replace(m.CONFIG.slos, latency=latency))

from experiments.runner import queries
from grafana.build import all_dashboards
from loki import queries as logql
from slo.generate import render_rules

report = {spec.slo: [total, errors] for spec, total, errors in queries.slo_sli_queries(600)}
print(json.dumps({
    "rules": render_rules(window_set="production") + render_rules(window_set="lab"),
    "dashboards": json.dumps(all_dashboards()),
    "logql": [q.expr for q in logql.ALL] + [q.title for q in logql.ALL],
    "report": report,
}))
"""


def _outputs(threshold_s: float) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, str(threshold_s)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_changing_the_latency_objective_in_one_place_changes_rules_dashboards_logql_and_reports() -> None:
    assert CONFIG.slos.latency.threshold_s == 0.3
    before, after = _outputs(0.3), _outputs(0.25)
    # Before: the committed threshold everywhere.
    assert 'le="0.3"' in before["rules"]
    assert "requests under 300 ms" in before["dashboards"]
    assert any("duration_ms > 300" in expr for expr in before["logql"])
    assert 'le="0.3"' in before["report"]["latency"][1]
    # After: the new one everywhere, and nothing left of the old.
    assert 'le="0.25"' in after["rules"] and 'le="0.3"' not in after["rules"]
    assert "served in under 250 ms" in after["rules"]
    assert "requests under 250 ms" in after["dashboards"] and "300 ms" not in after["dashboards"]
    assert any("duration_ms > 250" in expr for expr in after["logql"])
    assert not any("300" in text for text in after["logql"])
    assert 'le="0.25"' in after["report"]["latency"][1] and "0.3" not in after["report"]["latency"][1]
    # Only the latency SLO moved.
    assert after["report"]["availability"] == before["report"]["availability"]
    assert after["report"]["freshness"] == before["report"]["freshness"]


def test_thresholds_are_bucket_bounds_of_the_histograms_the_slis_read() -> None:
    # An SLI reading a bucket that does not exist counts every event as bad (or none): the bounds must exist.
    from django.conf import settings

    from workers.metrics import LAG_BUCKETS

    # django-prometheus's request histogram takes its buckets from this setting
    assert CONFIG.slos.latency.threshold_s in settings.PROMETHEUS_LATENCY_BUCKETS
    assert CONFIG.slos.freshness.threshold_s in LAG_BUCKETS


@pytest.mark.parametrize(
    ("threshold", "matcher"),
    [(0.3, 'le="0.3"'), (0.25, 'le="0.25"'), (5.0, 'le=~"5|5\\\\.0"'), (10, 'le=~"10|10\\\\.0"')],
)
def test_le_matcher_takes_both_spellings_of_whole_bounds(threshold: float, matcher: str) -> None:
    assert le_matcher(threshold) == matcher


def test_selectors_follow_their_fields() -> None:
    changed = replace(CONFIG, excluded_views=("core:healthz",), jobs=replace(CONFIG.jobs, app="web"))
    # django-prometheus's unrouted requests and its own metrics view are never user traffic, whatever is listed.
    assert changed.user_facing_selector == 'view!~"core:healthz|<unnamed view>|prometheus-django-metrics"'
    assert changed.app_selector == 'job="web"'
    assert changed.chowist_jobs_selector == 'job=~"web|chowist-worker"'
    assert [slo.name for slo in CONFIG.slos] == ["availability", "latency", "freshness"]
