"""`promtool test rules` proofs that the recording rules compute the SLIs the contract describes.

Inputs are raw metrics as the app and consumer expose them (observability/METRICS.md); expected values
are computed here, or by an independent PromQL query over the range the window must cover.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from slo.tests.expectations import LAB_WINDOWS, RULE_FILES, SLOS, WINDOWS, budget, selector, slo_labels
from slo.tests.promtool import promtool_test, without_annotations

WINDOW_SETS = ("production", "lab")
APP = 'job="chowist-app",instance="127.0.0.1:9101"'
WORKER = 'job="chowist-worker",instance="127.0.0.1:9102"'


@pytest.fixture
def rule_files(tmp_path: Path) -> list[str]:
    return [
        str(without_annotations(path, tmp_path / f"{window_set}.rules.yml")) for window_set, path in RULE_FILES.items()
    ]


def _counter(series: str, per_step: int, steps: int) -> dict[str, str]:
    return {"series": series, "values": f"0+{per_step}x{steps}"}


def _labels(slo: str, window_set: str) -> str:
    return selector(slo_labels(slo, window_set))


def _query(slo: str, window_set: str) -> str:
    # window_set="" selects series without the label: production only.
    return selector({**slo_labels(slo, window_set), "window_set": "lab" if window_set == "lab" else ""})


def _record_sample(record: str, slo: str, window_set: str, value: float, *, eval_time: str) -> dict[str, Any]:
    return {
        "expr": f"round({record}{_query(slo, window_set)}, 0.000001)",
        "eval_time": eval_time,
        "exp_samples": [{"labels": _labels(slo, window_set), "value": value}],
    }


def _request_series(steps: int) -> list[dict[str, str]]:
    """User-facing traffic with a 10% 5xx ratio (4xx are not errors), plus traffic the SLO must ignore."""
    user = [
        _counter(
            f'django_http_responses_total_by_status_view_method_total{{{APP},view="places:detail",method="GET",status="200"}}',
            80,
            steps,
        ),
        _counter(
            f'django_http_responses_total_by_status_view_method_total{{{APP},view="places:detail",method="GET",status="404"}}',
            10,
            steps,
        ),
        _counter(
            f'django_http_responses_total_by_status_view_method_total{{{APP},view="places:detail",method="GET",status="500"}}',
            5,
            steps,
        ),
        _counter(
            f'django_http_responses_total_by_status_view_method_total{{{APP},view="api:place-list",method="GET",status="503"}}',
            5,
            steps,
        ),
    ]
    ignored = [
        _counter(
            f'django_http_responses_total_by_status_view_method_total{{{APP},view="core:healthz",method="GET",status="500"}}',
            1000,
            steps,
        ),
        _counter(
            f'django_http_responses_total_by_status_view_method_total{{{APP},view="core:readyz",method="GET",status="503"}}',
            1000,
            steps,
        ),
        _counter(
            f'django_http_responses_total_by_status_view_method_total{{{APP},view="<unnamed view>",method="GET",status="500"}}',
            1000,
            steps,
        ),
        _counter(
            'django_http_responses_total_by_status_view_method_total{job="other",instance="x:1",view="places:detail",method="GET",status="500"}',
            1000,
            steps,
        ),
    ]
    return user + ignored


def _latency_series(steps: int) -> list[dict[str, str]]:
    """5% of user-facing requests at or over 300 ms; an all-slow healthz must not count."""
    detail = f'{APP},view="places:detail",method="GET"'
    healthz = f'{APP},view="core:healthz",method="GET"'
    return [
        _counter(f"django_http_requests_latency_seconds_by_view_method_count{{{detail}}}", 100, steps),
        _counter(f'django_http_requests_latency_seconds_by_view_method_bucket{{{detail},le="0.25"}}', 90, steps),
        _counter(f'django_http_requests_latency_seconds_by_view_method_bucket{{{detail},le="0.3"}}', 95, steps),
        _counter(f'django_http_requests_latency_seconds_by_view_method_bucket{{{detail},le="+Inf"}}', 100, steps),
        _counter(f"django_http_requests_latency_seconds_by_view_method_count{{{healthz}}}", 100, steps),
        _counter(f'django_http_requests_latency_seconds_by_view_method_bucket{{{healthz},le="0.3"}}', 0, steps),
    ]


def _freshness_series(steps: int) -> list[dict[str, str]]:
    """2% of tasks started 5 s or more after enqueue. Buckets written as "5.0" (Python client) and "5"."""
    return [
        _counter(f'chowist_job_lag_seconds_count{{{WORKER},task="drain_interactions"}}', 50, steps),
        _counter(f'chowist_job_lag_seconds_bucket{{{WORKER},task="drain_interactions",le="5.0"}}', 49, steps),
        _counter(f'chowist_job_lag_seconds_count{{{WORKER},task="make_place_thumbnail"}}', 50, steps),
        _counter(f'chowist_job_lag_seconds_bucket{{{WORKER},task="make_place_thumbnail",le="5"}}', 49, steps),
        _counter('chowist_job_lag_seconds_count{job="other",instance="x:1",task="t"}', 1000, steps),
    ]


SLI_RATIOS = {"availability": 0.1, "latency": 0.05, "freshness": 0.02}


def test_sli_error_ratios_follow_the_contract_in_both_window_sets(tmp_path: Path, rule_files: list[str]) -> None:
    steps = 120  # 10 minutes of 5 s scrapes: every lab window below 30m and the production 5m are full.
    series = _request_series(steps) + _latency_series(steps) + _freshness_series(steps)
    checks = []
    for slo, ratio in SLI_RATIOS.items():
        checks.append(_record_sample("slo:sli_error:ratio_rate5m", slo, "production", ratio, eval_time="10m"))
        for window in ("5m", "30m", "1h", "2h"):
            checks.append(_record_sample(f"slo:sli_error:ratio_rate{window}", slo, "lab", ratio, eval_time="10m"))
    document = {
        "rule_files": rule_files,
        "evaluation_interval": "5s",
        "tests": [{"interval": "5s", "input_series": series, "promql_expr_test": checks}],
    }
    promtool_test(tmp_path, "sli-definitions", document)


def test_the_sli_burns_into_both_alerts_end_to_end(tmp_path: Path, rule_files: list[str]) -> None:
    """Raw metrics at a 10x/5x/2x burn -> records -> the lab and production alerts (annotations aside)."""
    steps = 120
    series = _request_series(steps) + _latency_series(steps) + _freshness_series(steps)
    tests = []
    for slo, (_, page, ticket) in SLOS.items():
        burn = SLI_RATIOS[slo] / budget(slo)  # 100x, 5x and 2x
        for window_set in WINDOW_SETS:
            # The ratio is constant from the first scrape, and a rate over partly filled windows is still
            # that ratio: after 10 minutes every window of both sets reads it, so the factors alone decide.
            labels = slo_labels(slo, window_set)
            page_fires = burn > 6
            ticket_fires = burn > 1
            tests += [
                {
                    "eval_time": "10m",
                    "alertname": page,
                    "exp_alerts": [{"exp_labels": {**labels, "severity": "page"}}] if page_fires else [],
                },
                {
                    "eval_time": "10m",
                    "alertname": ticket,
                    "exp_alerts": [{"exp_labels": {**labels, "severity": "ticket"}}] if ticket_fires else [],
                },
            ]
    merged: dict[str, list[dict[str, Any]]] = {}
    for test in tests:
        merged.setdefault(test["alertname"], []).extend(test["exp_alerts"])
    alert_tests = [{"eval_time": "10m", "alertname": name, "exp_alerts": alerts} for name, alerts in merged.items()]
    document = {
        "rule_files": rule_files,
        "evaluation_interval": "5s",
        "tests": [{"interval": "5s", "input_series": series, "alert_rule_test": alert_tests}],
    }
    promtool_test(tmp_path, "end-to-end", document)


def test_no_traffic_is_no_error_and_no_series_is_no_data(tmp_path: Path, rule_files: list[str]) -> None:
    flat = [
        # Counters that exist but stopped moving: 0/0, which must read as "no errors", not NaN.
        {
            "series": f'django_http_responses_total_by_status_view_method_total{{{APP},view="places:detail",method="GET",status="200"}}',
            "values": "500x120",
        },
        {
            "series": f'django_http_responses_total_by_status_view_method_total{{{APP},view="places:detail",method="GET",status="500"}}',
            "values": "3x120",
        },
        {
            "series": f'django_http_requests_latency_seconds_by_view_method_count{{{APP},view="places:detail",method="GET"}}',
            "values": "503x120",
        },
        {
            "series": f'django_http_requests_latency_seconds_by_view_method_bucket{{{APP},view="places:detail",method="GET",le="0.3"}}',
            "values": "400x120",
        },
    ]
    only_good = [
        # Traffic but never a 5xx: the error series does not exist at all, the ratio is still 0.
        _counter(
            f'django_http_responses_total_by_status_view_method_total{{{APP},view="places:detail",method="GET",status="200"}}',
            10,
            120,
        ),
    ]
    no_freshness = {
        "expr": "slo:sli_error:ratio_rate5m" + _query("freshness", "lab"),
        "eval_time": "10m",
        "exp_samples": [],
    }
    tests = [
        {
            "interval": "5s",
            "input_series": flat,
            "promql_expr_test": [
                *(
                    _record_sample(f"slo:sli_error:ratio_rate{window}", slo, window_set, 0, eval_time="10m")
                    for slo in ("availability", "latency")
                    for window_set in WINDOW_SETS
                    for window in ("5m", "30m")
                ),
                no_freshness,
            ],
        },
        {
            "interval": "5s",
            "input_series": only_good,
            "promql_expr_test": [
                _record_sample("slo:sli_error:ratio_rate5m", "availability", window_set, 0, eval_time="10m")
                for window_set in WINDOW_SETS
            ],
        },
    ]
    document = {"rule_files": rule_files, "evaluation_interval": "5s", "tests": tests}
    promtool_test(tmp_path, "no-traffic", document)


EDGE = 'job="edge",instance="127.0.0.1:3903"'


def test_availability_is_measured_at_the_edge_when_the_proxy_reports(tmp_path: Path, rule_files: list[str]) -> None:
    """nginx's responses (mtail over its access log) win over the app's: a 502 nginx answered itself (no
    instance listening) never reaches the app's metrics, which here show no 5xx at all. At the edge with
    traffic but no 5xx series yet, the ratio is 0, not the app's. An edge whose target is not up now (stopped, or
    gone between two lab variants) is no edge, though its samples are still inside the windows."""
    steps = 120
    app_clean = _counter(
        f'django_http_responses_total_by_status_view_method_total{{{APP},view="places:detail",method="GET",status="500"}}',
        0,
        steps,
    )
    app_errors = _counter(
        f'django_http_responses_total_by_status_view_method_total{{{APP},view="places:detail",method="GET",status="200"}}',
        50,
        steps,
    )
    edge_502 = [
        _counter(f'nginx_http_responses_total{{{EDGE},status="200"}}', 95, steps),
        _counter(f'nginx_http_responses_total{{{EDGE},status="404"}}', 3, steps),
        _counter(f'nginx_http_responses_total{{{EDGE},status="502"}}', 2, steps),
        # Another job's series of the same name (another proxy) is not the edge.
        _counter('nginx_http_responses_total{job="other",instance="x:1",status="502"}', 1000, steps),
    ]
    edge_clean = [_counter(f'nginx_http_responses_total{{{EDGE},status="200"}}', 100, steps)]
    edge_up = {"series": f"up{{{EDGE}}}", "values": f"1x{steps}"}
    # nginx (and mtail) ran for the first half, then the lab went on without them: the edge's samples are still
    # inside every window, but its target is gone, so the app's own counts are the SLI.
    half = steps // 2
    edge_gone = [
        {"series": f'nginx_http_responses_total{{{EDGE},status="200"}}', "values": f"0+100x{half} stale"},
        {"series": f"up{{{EDGE}}}", "values": f"1x{half} stale"},
    ]
    app_500s = _counter(
        f'django_http_responses_total_by_status_view_method_total{{{APP},view="places:detail",method="GET",status="503"}}',
        50,
        steps,
    )
    checks = {
        # 2 of 100 edge responses are 502s: 0.02, though the app counted no 5xx.
        "proxy-502s": ([app_clean, app_errors, *edge_502, edge_up], 0.02),
        # The edge is clean while the app's series say 50% 5xx: the edge's 0 is used, not the app's 0.5.
        "edge-clean": ([app_errors, app_500s, *edge_clean, edge_up], 0.0),
        # The same series, but the edge's target is down (mtail stopped, or never scraped): the app's 0.5.
        "edge-down": ([app_errors, app_500s, *edge_clean, {**edge_up, "values": f"0x{steps}"}], 0.5),
        # The edge stopped half-way: its stale samples do not outvote the app's 0.5.
        "edge-gone": ([app_errors, app_500s, *edge_gone], 0.5),
    }
    tests = [
        {
            "name": name,
            "interval": "5s",
            "input_series": series,
            "promql_expr_test": [
                _record_sample(f"slo:sli_error:ratio_rate{window}", "availability", window_set, ratio, eval_time="10m")
                for window_set, window in (("production", "5m"), ("lab", "5m"), ("lab", "30m"))
            ],
        }
        for name, (series, ratio) in checks.items()
    ]
    document = {"rule_files": rule_files, "evaluation_interval": "5s", "tests": tests}
    promtool_test(tmp_path, "edge-availability", document)


EDGE_LATENCY = "nginx_http_request_duration_seconds"


def _edge_latency(
    count: int, under_threshold: int, steps: int, *, stale_after: int | None = None
) -> list[dict[str, str]]:
    """The edge's histogram as mtail exports it: `count` requests per step, `under_threshold` of them within 300 ms."""
    series = {
        f'{EDGE_LATENCY}_count{{{EDGE},prog="nginx.mtail"}}': count,
        f'{EDGE_LATENCY}_bucket{{{EDGE},prog="nginx.mtail",le="0.25"}}': under_threshold,
        f'{EDGE_LATENCY}_bucket{{{EDGE},prog="nginx.mtail",le="0.3"}}': under_threshold,
        f'{EDGE_LATENCY}_bucket{{{EDGE},prog="nginx.mtail",le="+Inf"}}': count,
    }
    if stale_after is None:
        return [_counter(name, per_step, steps) for name, per_step in series.items()]
    return [{"series": name, "values": f"0+{per_step}x{stale_after} stale"} for name, per_step in series.items()]


def _app_latency(count: int, under_threshold: int, steps: int) -> list[dict[str, str]]:
    """The app's histogram and its response counter (the latency SLI's events: each response once)."""
    detail = f'{APP},view="places:detail",method="GET"'
    return [
        _counter(f'django_http_responses_total_by_status_view_method_total{{{detail},status="200"}}', count, steps),
        _counter(f"django_http_requests_latency_seconds_by_view_method_count{{{detail}}}", count, steps),
        _counter(
            f'django_http_requests_latency_seconds_by_view_method_bucket{{{detail},le="0.3"}}', under_threshold, steps
        ),
    ]


def _edge_source(slo: str, window_set: str, value: int) -> dict[str, Any]:
    return _record_sample("slo:sli_source_edge:bool", slo, window_set, value, eval_time="10m")


def test_latency_is_measured_at_the_edge_and_queueing_the_app_never_sees_burns_the_budget(
    tmp_path: Path, rule_files: list[str]
) -> None:
    """The app timed every request under 300 ms (its histogram starts at Django's first middleware), but clients
    waited in the accept backlog and gunicorn's queues first: nginx saw 30 of every 100 take longer. The SLI is the
    edge's 0.3, which burns the lab's budget at 30x and pages; the app's own series would have said 0. With the edge
    target down, or gone half-way (its samples still inside the windows), the SLI falls back to the app's series
    and slo:sli_source_edge:bool says so."""
    steps = 120
    half = steps // 2
    app_fast = _app_latency(100, 100, steps)
    edge_up = {"series": f"up{{{EDGE}}}", "values": f"1x{steps}"}
    checks = {
        "queueing-at-the-edge": ([*app_fast, *_edge_latency(100, 70, steps), edge_up], 0.3, 1),
        # The same queueing, but the edge's target is down: the app's 0, and the source says "app".
        "edge-down": ([*app_fast, *_edge_latency(100, 70, steps), {**edge_up, "values": f"0x{steps}"}], 0.0, 0),
        # nginx and mtail ran for the first half only: their stale samples do not outvote the app's 0.05.
        "edge-gone": (
            [
                *_app_latency(100, 95, steps),
                *_edge_latency(100, 70, steps, stale_after=half),
                {"series": f"up{{{EDGE}}}", "values": f"1x{half} stale"},
            ],
            0.05,
            0,
        ),
    }
    tests = []
    for name, (series, ratio, at_edge) in checks.items():
        expr_tests = [
            _record_sample(f"slo:sli_error:ratio_rate{window}", "latency", window_set, ratio, eval_time="10m")
            for window_set, window in (("production", "5m"), ("lab", "5m"), ("lab", "30m"), ("lab", "1h"))
        ]
        expr_tests += [_edge_source(slo, ws, at_edge) for slo in ("latency", "availability") for ws in WINDOW_SETS]
        pages = [{"exp_labels": {**slo_labels("latency", ws), "severity": "page"}} for ws in WINDOW_SETS]
        tests.append(
            {
                "name": name,
                "interval": "5s",
                "input_series": series,
                "promql_expr_test": expr_tests,
                # 0.3 against a 1% budget is a 30x burn: the page (14.4x over the 1h and 5m windows, both sets: ten
                # minutes of data fill them alike) fires on the edge's numbers, and stays silent on the app's (0, 5x).
                "alert_rule_test": [
                    {
                        "eval_time": "10m",
                        "alertname": "LatencySLOPageBurn",
                        "exp_alerts": pages if name == "queueing-at-the-edge" else [],
                    }
                ],
            }
        )
    document = {"rule_files": rule_files, "evaluation_interval": "5s", "tests": tests}
    promtool_test(tmp_path, "edge-latency", document)


def test_objective_budget_burn_and_remaining_budget(tmp_path: Path, rule_files: list[str]) -> None:
    steps = 120
    series = [
        # 1 error in 2000 requests: half the 0.1% budget, a 0.5x burn, half the budget left.
        _counter(
            f'django_http_responses_total_by_status_view_method_total{{{APP},view="places:detail",method="GET",status="200"}}',
            1999,
            steps,
        ),
        _counter(
            f'django_http_responses_total_by_status_view_method_total{{{APP},view="places:detail",method="GET",status="500"}}',
            1,
            steps,
        ),
    ]
    checks = []
    for window_set in WINDOW_SETS:
        for record, value in (
            ("slo:objective:ratio", 0.999),
            ("slo:error_budget:ratio", 0.001),
            ("slo:current_burn_rate:ratio", 0.5),
            ("slo:period_error_budget_remaining:ratio", 0.5),
        ):
            checks.append(_record_sample(record, "availability", window_set, value, eval_time="10m"))
    document = {
        "rule_files": rule_files,
        "evaluation_interval": "5s",
        "tests": [{"interval": "5s", "input_series": series, "promql_expr_test": checks}],
    }
    promtool_test(tmp_path, "budget", document)


def _varying_counter(series: str, per_step: list[int]) -> dict[str, str]:
    values, total = [], 0
    for step in per_step:
        values.append(str(total))
        total += step
    return {"series": series, "values": " ".join(values)}


@pytest.mark.parametrize(
    ("window_set", "interval_seconds"),
    # Production: 1-minute samples over 3 days (five per 5m window); lab: 5 s samples over 6 hours.
    [("production", 60), ("lab", 5)],
)
def test_every_window_covers_its_range(
    tmp_path: Path, rule_files: list[str], window_set: str, interval_seconds: int
) -> None:
    """Each ratio_rate<window> equals the error ratio over the range the window set maps it to.

    The error share changes every few steps, so windows of different lengths give different answers
    and a window of the wrong length cannot pass by luck.
    """
    seconds = {"production": 3 * 86400, "lab": 6 * 3600}[window_set]  # the longest window of each set
    steps = seconds // interval_seconds + 1
    errors = [(step * 7919) % 13 for step in range(steps)]
    good = [100 - e for e in errors]
    series = [
        _varying_counter(
            f'django_http_responses_total_by_status_view_method_total{{{APP},view="places:detail",method="GET",status="500"}}',
            errors,
        ),
        _varying_counter(
            f'django_http_responses_total_by_status_view_method_total{{{APP},view="places:detail",method="GET",status="200"}}',
            good,
        ),
    ]
    eval_time = f"{seconds}s"
    checks = []
    for window in WINDOWS:
        covered = window if window_set == "production" else LAB_WINDOWS[window]
        independent = (
            f'sum(rate(django_http_responses_total_by_status_view_method_total{{status="500"}}[{covered}]))'
            f" / sum(rate(django_http_responses_total_by_status_view_method_total[{covered}]))"
        )
        record = f"slo:sli_error:ratio_rate{window}{_query('availability', window_set)}"
        checks.append(
            {
                "expr": f"abs({record} - on() group_left() ({independent})) < bool 1e-12",
                "eval_time": eval_time,
                "exp_samples": [{"labels": _labels("availability", window_set), "value": 1}],
            }
        )
    document = {
        "rule_files": rule_files,
        # Rules are evaluated at whole hours only; the check runs at one of them, on fresh records.
        "evaluation_interval": "1h",
        "tests": [{"interval": f"{interval_seconds}s", "input_series": series, "promql_expr_test": checks}],
    }
    promtool_test(tmp_path, f"windows-{window_set}", document)
