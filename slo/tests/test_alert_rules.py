"""`promtool test rules` proofs for every alert of both window sets.

For each burn condition: silent while either window sits exactly at its threshold, firing once both
exceed it. For a uniform burn: which severities fire at 0.99x ... 14.5x (a 3x or 5.99x burn opens a ticket
and never pages). Plain alerts: silent one evaluation before their duration is reached, firing at it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from slo.tests.expectations import (
    BURN_POLICY,
    CONSUMER_STALLED_SECONDS,
    REPLICA_LAG_SECONDS,
    REPLICA_LAG_THRESHOLD_S,
    RULE_FILES,
    SERVICE,
    SLOS,
    TARGET_DOWN_FOR_SECONDS,
    WINDOWS,
    budget,
    selector,
    slo_labels,
    threshold,
)
from slo.tests.promtool import promtool_test, without_annotations

WINDOW_SETS = ("production", "lab")


@pytest.fixture
def rule_files(tmp_path: Path) -> dict[str, str]:
    return {
        window_set: str(without_annotations(path, tmp_path / f"{window_set}.rules.yml"))
        for window_set, path in RULE_FILES.items()
    }


def _alert_names(slo: str) -> dict[str, str]:
    _, page, ticket = SLOS[slo]
    return {"page": page, "ticket": ticket}


def _expect(slo: str, window_set: str, eval_minute: int, firing: set[str]) -> list[dict[str, Any]]:
    """alert_rule_test entries for both alerts of `slo` at one time: those in `firing` fire, the other is silent."""
    tests = []
    for severity, name in _alert_names(slo).items():
        labels = {**slo_labels(slo, window_set), "severity": severity}
        tests.append(
            {
                "eval_time": f"{eval_minute}m",
                "alertname": name,
                "exp_alerts": [{"exp_labels": labels}] if severity in firing else [],
            }
        )
    return tests


def _ratio_series(slo: str, window_set: str, values: dict[str, list[float]]) -> list[dict[str, str]]:
    labels = slo_labels(slo, window_set)
    return [
        {
            "series": f"slo:sli_error:ratio_rate{window}{selector(labels)}",
            "values": " ".join(repr(v) for v in values.get(window, [0.0] * len(next(iter(values.values()))))),
        }
        for window in WINDOWS
    ]


def _condition_cases(window_set: str) -> list[dict[str, Any]]:
    cases = []
    for slo in SLOS:
        for severity, conditions in BURN_POLICY.items():
            for factor, long_window, short_window in conditions:
                at = threshold(slo, factor)
                above = round(at * 1.01, 12)
                # minute 0: both at the threshold; 1: only the long window above; 2: only the short one;
                # 3: both above. "Above" is strict: at the threshold nothing fires.
                series = _ratio_series(
                    slo,
                    window_set,
                    {long_window: [at, above, at, above], short_window: [at, at, above, above]},
                )
                tests = [t for minute in (0, 1, 2) for t in _expect(slo, window_set, minute, set())]
                tests += _expect(slo, window_set, 3, {severity})
                cases.append({"interval": "1m", "input_series": series, "alert_rule_test": tests})
    return cases


# Uniform burn across every window, in multiples of the budget, and the severities that must fire.
UNIFORM_BURNS = [
    (0.99, set()),
    (1.01, {"ticket"}),
    (2.99, {"ticket"}),
    (3.01, {"ticket"}),
    (5.99, {"ticket"}),
    (6.01, {"page", "ticket"}),
    (14.5, {"page", "ticket"}),
]


def _uniform_cases(window_set: str) -> list[dict[str, Any]]:
    cases = []
    for slo in SLOS:
        ratios = [round(factor * budget(slo), 12) for factor, _ in UNIFORM_BURNS]
        series = _ratio_series(slo, window_set, {window: ratios for window in WINDOWS})
        tests = [
            t for minute, (_, firing) in enumerate(UNIFORM_BURNS) for t in _expect(slo, window_set, minute, firing)
        ]
        cases.append({"interval": "1m", "input_series": series, "alert_rule_test": tests})
    return cases


@pytest.mark.parametrize("window_set", WINDOW_SETS)
def test_each_burn_condition_fires_only_when_both_windows_exceed_it(
    tmp_path: Path, rule_files: dict[str, str], window_set: str
) -> None:
    document = {
        "rule_files": [rule_files[window_set]],
        "evaluation_interval": "1m",
        "tests": _condition_cases(window_set),
    }
    promtool_test(tmp_path, f"conditions-{window_set}", document)


@pytest.mark.parametrize("window_set", WINDOW_SETS)
def test_uniform_burn_pages_only_from_6x_and_tickets_from_1x(
    tmp_path: Path, rule_files: dict[str, str], window_set: str
) -> None:
    document = {
        "rule_files": [rule_files[window_set]],
        "evaluation_interval": "1m",
        "tests": _uniform_cases(window_set),
    }
    promtool_test(tmp_path, f"uniform-{window_set}", document)


def test_window_sets_never_read_each_others_series(tmp_path: Path, rule_files: dict[str, str]) -> None:
    """Both files loaded together: a burn in one set's series fires only that set's alerts."""
    tests = []
    for burning, quiet in (("production", "lab"), ("lab", "production")):
        for slo in SLOS:
            burn = round(20 * budget(slo), 12)
            series = _ratio_series(slo, burning, {window: [burn, burn] for window in WINDOWS})
            checks = _expect(slo, burning, 1, {"page", "ticket"}) + _expect(slo, quiet, 1, set())
            # Each alert name now has the burning set's alert only: the quiet set's expectation of
            # "nothing" is expressed by listing exactly the burning set's labels.
            merged: dict[str, list[dict[str, Any]]] = {}
            for check in checks:
                merged.setdefault(check["alertname"], []).extend(check["exp_alerts"])
            tests.append(
                {
                    "interval": "1m",
                    "input_series": series,
                    "alert_rule_test": [
                        {"eval_time": "1m", "alertname": name, "exp_alerts": alerts} for name, alerts in merged.items()
                    ],
                }
            )
    document = {
        "rule_files": [rule_files["production"], rule_files["lab"]],
        "evaluation_interval": "1m",
        "tests": tests,
    }
    promtool_test(tmp_path, "isolation", document)


def _extra(window_set: str) -> dict[str, str]:
    return {"window_set": "lab"} if window_set == "lab" else {}


def _seconds(value: int) -> str:
    return f"{value}s"


@pytest.mark.parametrize("window_set", WINDOW_SETS)
def test_target_down_fires_after_its_duration_page_for_app_ticket_for_exporter(
    tmp_path: Path, rule_files: dict[str, str], window_set: str
) -> None:
    hold = TARGET_DOWN_FOR_SECONDS[window_set]
    samples = hold // 5 + 10
    series = [
        # Down from t=5s: pending from the evaluation at 5s, so firing at 5s + hold and not one step before.
        {"series": 'up{job="chowist-app",instance="127.0.0.1:9101"}', "values": f"1 0x{samples}"},
        {"series": 'up{job="chowist-worker",instance="127.0.0.1:9102"}', "values": f"1x{samples}"},
        {"series": 'up{job="postgres",instance="127.0.0.1:9187"}', "values": f"1 0x{samples}"},
    ]
    base = {"service": SERVICE, **_extra(window_set)}
    firing = [
        {"exp_labels": {**base, "severity": "page", "job": "chowist-app", "instance": "127.0.0.1:9101"}},
        {"exp_labels": {**base, "severity": "ticket", "job": "postgres", "instance": "127.0.0.1:9187"}},
    ]
    tests = [
        {"eval_time": _seconds(hold), "alertname": "ChowistTargetDown", "exp_alerts": []},
        {"eval_time": _seconds(hold + 5), "alertname": "ChowistTargetDown", "exp_alerts": firing},
    ]
    document = {
        "rule_files": [rule_files[window_set]],
        "evaluation_interval": "5s",
        "tests": [{"interval": "5s", "input_series": series, "alert_rule_test": tests}],
    }
    promtool_test(tmp_path, f"target-down-{window_set}", document)


@pytest.mark.parametrize("window_set", WINDOW_SETS)
def test_consumer_stalled_fires_when_old_work_waits_and_nothing_finishes(
    tmp_path: Path, rule_files: dict[str, str], window_set: str
) -> None:
    stall = CONSUMER_STALLED_SECONDS[window_set]
    samples = 2 * stall // 5 + 10
    worker = 'job="chowist-worker",instance="127.0.0.1:9102"'
    # The oldest item's age grows with time (age = t), so it passes the limit between `stall` and `stall + 5s`.
    growing_age = f"0+5x{samples}"
    firing = [{"exp_labels": {"service": SERVICE, "severity": "page", **_extra(window_set)}}]

    def checks(fires: bool) -> list[dict[str, Any]]:
        return [
            {"eval_time": _seconds(stall), "alertname": "ChowistConsumerStalled", "exp_alerts": []},
            {
                "eval_time": _seconds(stall + 5),
                "alertname": "ChowistConsumerStalled",
                "exp_alerts": firing if fires else [],
            },
            {
                "eval_time": _seconds(2 * stall),
                "alertname": "ChowistConsumerStalled",
                "exp_alerts": firing if fires else [],
            },
        ]

    cases = [
        # Queue waiting, tasks finished long ago (the counter is flat).
        {
            "interval": "5s",
            "input_series": [
                {"series": f"chowist_queue_oldest_pending_age_seconds{{{worker}}}", "values": growing_age},
                {"series": f"chowist_inbox_oldest_pending_age_seconds{{{worker}}}", "values": f"0x{samples}"},
                {
                    "series": f'chowist_jobs_total{{{worker},task="drain_interactions",outcome="success"}}',
                    "values": f"7x{samples}",
                },
            ],
            "alert_rule_test": checks(fires=True),
        },
        # Inbox waiting and the consumer never finished a task: no chowist_jobs_total series at all.
        {
            "interval": "5s",
            "input_series": [
                {"series": f"chowist_queue_oldest_pending_age_seconds{{{worker}}}", "values": f"0x{samples}"},
                {"series": f"chowist_inbox_oldest_pending_age_seconds{{{worker}}}", "values": growing_age},
            ],
            "alert_rule_test": checks(fires=True),
        },
        # Old work, but tasks keep finishing: a busy consumer, not a stalled one.
        {
            "interval": "5s",
            "input_series": [
                {"series": f"chowist_queue_oldest_pending_age_seconds{{{worker}}}", "values": growing_age},
                {
                    "series": f'chowist_jobs_total{{{worker},task="drain_interactions",outcome="success"}}',
                    "values": f"0+1x{samples}",
                },
            ],
            "alert_rule_test": checks(fires=False),
        },
    ]
    document = {"rule_files": [rule_files[window_set]], "evaluation_interval": "5s", "tests": cases}
    promtool_test(tmp_path, f"consumer-stalled-{window_set}", document)


@pytest.mark.parametrize("window_set", WINDOW_SETS)
def test_replica_lagging_tickets_only_when_lag_stays_above_the_read_your_writes_window(
    tmp_path: Path, rule_files: dict[str, str], window_set: str
) -> None:
    hold = REPLICA_LAG_SECONDS[window_set]
    samples = hold // 5 + 10
    lagging = 'pg_replica_lag_seconds{job="postgres",instance="127.0.0.1:9187",server="127.0.0.1:5433"}'
    primary = 'pg_replica_lag_seconds{job="postgres",instance="127.0.0.1:9187",server="127.0.0.1:5432"}'
    over, under = REPLICA_LAG_THRESHOLD_S + 2, REPLICA_LAG_THRESHOLD_S - 1
    series = [
        # Above the threshold from t=5s; the primary always reports 0.
        {"series": lagging, "values": f"0 {over}x{samples}"},
        {"series": primary, "values": f"0x{samples + 1}"},
    ]
    firing = [
        {"exp_labels": {"service": SERVICE, "severity": "ticket", "server": "127.0.0.1:5433", **_extra(window_set)}}
    ]
    tests = [
        {"eval_time": _seconds(hold), "alertname": "ChowistReplicaLagging", "exp_alerts": []},
        {"eval_time": _seconds(hold + 5), "alertname": "ChowistReplicaLagging", "exp_alerts": firing},
    ]
    # Lag that stays within the window never alerts.
    quiet = [
        {"series": lagging, "values": f"0 {under}x{samples}"},
    ]
    quiet_tests = [{"eval_time": _seconds(hold + 20), "alertname": "ChowistReplicaLagging", "exp_alerts": []}]
    document = {
        "rule_files": [rule_files[window_set]],
        "evaluation_interval": "5s",
        "tests": [
            {"interval": "5s", "input_series": series, "alert_rule_test": tests},
            {"interval": "5s", "input_series": quiet, "alert_rule_test": quiet_tests},
        ],
    }
    promtool_test(tmp_path, f"replica-lag-{window_set}", document)


def test_target_down_never_fires_for_a_job_that_is_not_ours(tmp_path: Path, rule_files: dict[str, str]) -> None:
    # A shared Prometheus scrapes other teams' targets: their outage is not ours to page or ticket.
    samples = TARGET_DOWN_FOR_SECONDS["production"] // 5 + 10
    series = [
        {"series": 'up{job="someone-elses-app",instance="10.0.0.7:8080"}', "values": f"0x{samples}"},
        {"series": 'up{job="chowist-app",instance="127.0.0.1:9101"}', "values": f"1x{samples}"},
    ]
    tests = [{"eval_time": _seconds(samples * 5), "alertname": "ChowistTargetDown", "exp_alerts": []}]
    document = {
        "rule_files": [rule_files["production"]],
        "evaluation_interval": "5s",
        "tests": [{"interval": "5s", "input_series": series, "alert_rule_test": tests}],
    }
    promtool_test(tmp_path, "target-down-not-ours", document)


def _latency_series(buckets: tuple[str, ...], steps: int) -> list[dict[str, str]]:
    """Requests to one view, half of them under every bucket bound (counters grow 2 and 1 per step)."""
    base = 'job="chowist-app",instance="127.0.0.1:9101",view="places:detail",method="GET"'
    metric = "django_http_requests_latency_seconds_by_view_method"
    series = [{"series": f'{metric}_bucket{{{base},le="{le}"}}', "values": f"0+1x{steps}"} for le in buckets]
    series += [
        {"series": f'{metric}_bucket{{{base},le="+Inf"}}', "values": f"0+2x{steps}"},
        {"series": f"{metric}_count{{{base}}}", "values": f"0+2x{steps}"},
        {
            "series": f'django_http_responses_total_by_status_view_method_total{{{base},status="200"}}',
            "values": f"0+2x{steps}",
        },
        {"series": 'up{job="chowist-app",instance="127.0.0.1:9101"}', "values": f"1x{steps}"},
    ]
    return series


# django-prometheus's default buckets around the 0.3 s threshold, and buckets that all end below it.
BETWEEN_BUCKETS = ("0.1", "0.25", "0.5", "0.75", "1.0")
BELOW_BUCKETS = ("0.05", "0.1")


@pytest.mark.parametrize("window_set", WINDOW_SETS)
@pytest.mark.parametrize(
    ("buckets", "fires"),
    [(BETWEEN_BUCKETS, True), (BELOW_BUCKETS, True), (("0.25", "0.3", "0.5"), False)],
    ids=["threshold-between-buckets", "threshold-above-every-bucket", "threshold-bucket-present"],
)
def test_a_latency_threshold_without_its_bucket_leaves_the_sli_absent_and_alerts(
    tmp_path: Path, rule_files: dict[str, str], window_set: str, buckets: tuple[str, ...], fires: bool
) -> None:
    hold = TARGET_DOWN_FOR_SECONDS[window_set]
    steps = hold // 5 + 40
    labels = {"service": SERVICE, "severity": "ticket", "slo": "latency", **_extra(window_set)}
    sli = selector({**slo_labels("latency", window_set), "window_set": "lab" if window_set == "lab" else ""})
    end = _seconds(steps * 5)
    document = {
        "rule_files": [rule_files[window_set]],
        "evaluation_interval": "5s",
        "tests": [
            {
                "interval": "5s",
                "input_series": _latency_series(buckets, steps),
                "alert_rule_test": [
                    {"eval_time": _seconds(hold - 5), "alertname": "SLOConfigLatencyBucketMissing", "exp_alerts": []},
                    {
                        "eval_time": end,
                        "alertname": "SLOConfigLatencyBucketMissing",
                        "exp_alerts": [{"exp_labels": labels}] if fires else [],
                    },
                ],
                # Absent, never a perfect 0; with the bucket, half the requests are slow.
                "promql_expr_test": [
                    {
                        "expr": f"slo:sli_error:ratio_rate5m{sli}",
                        "eval_time": end,
                        "exp_samples": []
                        if fires
                        else [
                            {
                                "labels": f"slo:sli_error:ratio_rate5m{selector(slo_labels('latency', window_set))}",
                                "value": 0.5,
                            }
                        ],
                    }
                ],
            }
        ],
    }
    promtool_test(tmp_path, f"latency-bucket-{window_set}", document)


@pytest.mark.parametrize("window_set", WINDOW_SETS)
def test_a_job_with_no_target_leaves_the_slis_absent_and_alerts(
    tmp_path: Path, rule_files: dict[str, str], window_set: str
) -> None:
    hold = TARGET_DOWN_FOR_SECONDS[window_set]
    steps = hold // 5 + 40
    # The app is scraped, but under another job name than the rules read.
    other = 'job="django",instance="127.0.0.1:8000",view="places:detail",method="GET"'
    series = [
        {"series": 'up{job="django",instance="127.0.0.1:8000"}', "values": f"1x{steps}"},
        {
            "series": f'django_http_responses_total_by_status_view_method_total{{{other},status="200"}}',
            "values": f"0+10x{steps}",
        },
    ]
    firing = {"service": SERVICE, "severity": "ticket", "job": "chowist-app", **_extra(window_set)}
    end = _seconds(steps * 5)
    query = {**slo_labels("availability", window_set), "window_set": "lab" if window_set == "lab" else ""}
    document = {
        "rule_files": [rule_files[window_set]],
        "evaluation_interval": "5s",
        "tests": [
            {
                "interval": "5s",
                "input_series": series,
                "alert_rule_test": [
                    {"eval_time": _seconds(hold - 5), "alertname": "SLOConfigJobMissing", "exp_alerts": []},
                    {"eval_time": end, "alertname": "SLOConfigJobMissing", "exp_alerts": [{"exp_labels": firing}]},
                ],
                "promql_expr_test": [
                    {"expr": f"slo:sli_error:ratio_rate5m{selector(query)}", "eval_time": end, "exp_samples": []}
                ],
            },
            {
                "interval": "5s",
                "input_series": [{"series": 'up{job="chowist-app",instance="127.0.0.1:9101"}', "values": f"1x{steps}"}],
                "alert_rule_test": [{"eval_time": end, "alertname": "SLOConfigJobMissing", "exp_alerts": []}],
            },
        ],
    }
    promtool_test(tmp_path, f"job-missing-{window_set}", document)


@pytest.mark.parametrize("window_set", WINDOW_SETS)
def test_telemetry_degraded_tickets_while_a_process_runs_without_a_signal(
    tmp_path: Path, rule_files: dict[str, str], window_set: str
) -> None:
    base = 'chowist_telemetry_setup_failures_total{job="chowist-app",instance="127.0.0.1:9101",signal="%s"}'
    series = [
        # Error reporting failed in both workers at start-up; tracing started everywhere.
        {"series": base % "errors", "values": "2x20"},
        {"series": base % "tracing", "values": "0x20"},
    ]
    firing = [
        {
            "exp_labels": {
                "service": SERVICE,
                "severity": "ticket",
                "job": "chowist-app",
                "instance": "127.0.0.1:9101",
                "signal": "errors",
                **_extra(window_set),
            }
        }
    ]
    tests = [{"eval_time": "30s", "alertname": "ChowistTelemetryDegraded", "exp_alerts": firing}]
    healthy = [{"series": base % signal, "values": "0x20"} for signal in ("errors", "tracing", "metrics")]
    healthy_tests = [{"eval_time": "30s", "alertname": "ChowistTelemetryDegraded", "exp_alerts": []}]
    document = {
        "rule_files": [rule_files[window_set]],
        "evaluation_interval": "5s",
        "tests": [
            {"interval": "5s", "input_series": series, "alert_rule_test": tests},
            {"interval": "5s", "input_series": healthy, "alert_rule_test": healthy_tests},
        ],
    }
    promtool_test(tmp_path, f"telemetry-degraded-{window_set}", document)
