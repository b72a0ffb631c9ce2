"""The arithmetic of a report: A/B change against noise, the capacity knee, the self-check, previous runs."""

from __future__ import annotations

import json
from pathlib import Path

from experiments.run import latest_link_update
from experiments.runner.catalogue import experiment_load
from experiments.runner.config import ROOT
from experiments.runner.loadgen import LocustResult, _percentile
from experiments.runner.measure import Agreement, RunMeasurement, RunWindow
from experiments.runner.results import (
    ab_comparison,
    expectations_evaluate,
    knee,
    previous_comparison,
    previous_results,
    variant_summary,
)


def _run(variant: str, repeat: int, *, rps: float, p95: float, users: int = 10, errors: float = 0) -> RunMeasurement:
    requests = int(rps * 30)
    locust = LocustResult(
        requests=requests,
        failures=0,
        connection_errors=0,
        throughput_rps=rps,
        latency_ms={"p50": p95 / 3, "p95": p95, "p99": p95 * 1.5},
        active_s=30.0,
        started_at=0.0,
        ended_at=30.0,
        interactions_sent=5,
        cpu_percent=20.0,
    )
    slo = {"availability": {"sli": 1.0, "objective": 0.999, "burn_rate_max": 0.0, "budget_consumed": 0.0}}
    return RunMeasurement(
        window=RunWindow(variant, repeat, users, t0=0.0, t1=40.0, load_start=1.0, load_end=31.0),
        locust=locust,
        counters={
            "requests": requests,
            "requests_5xx": errors * requests,
            "interactions_accepted": 5,
            "interactions_recorded": 5,
            "jobs_processed": 5,
        },
        agreement=Agreement(requests, requests, users, rps, rps),
        job_lag_s={"p50": 0.01, "p95": 0.02, "p99": 0.03, "max": 0.05},
        slo=slo,
        alerts_fired=[],
        lab_rss_by_component_mb={"app": 300.0, "worker": 100.0},
    )


def test_a_change_beyond_the_noise_is_flagged_and_one_within_it_is_not() -> None:
    cache = experiment_load(name="cache")
    runs = [
        _run("cache-off", 1, rps=100, p95=50),
        _run("cache-on", 1, rps=200, p95=49),
        _run("cache-on", 2, rps=210, p95=51),
        _run("cache-off", 2, rps=104, p95=52),
    ]
    rows = {r["metric"]: r for r in ab_comparison(cache, runs)["rows"]}
    throughput = rows["throughput_rps"]
    assert throughput["change_pct"] == round(100 * (205 - 102) / 102, 1)
    assert throughput["noise_pct"] == round(100 * 10 / 205, 1)
    assert throughput["exceeds_noise"] is True and throughput["better"] is True
    p95 = rows["p95_ms"]
    assert p95["exceeds_noise"] is False


def test_a_single_run_per_variant_has_no_noise_estimate() -> None:
    cache = experiment_load(name="cache")
    rows = ab_comparison(cache, [_run("cache-off", 1, rps=100, p95=50), _run("cache-on", 1, rps=150, p95=40)])["rows"]
    assert all(r["noise_pct"] is None and r["exceeds_noise"] is None for r in rows)


def test_the_knee_is_the_last_step_before_p95_or_5xx_break() -> None:
    capacity = experiment_load(name="capacity")
    steps = [
        variant_summary("4 users", {}, [_run("4 users", 1, rps=200, p95=20, users=4)]),
        variant_summary("12 users", {}, [_run("12 users", 1, rps=500, p95=60, users=12)]),
        variant_summary("20 users", {}, [_run("20 users", 1, rps=520, p95=400, users=20)]),
    ]
    k = knee(capacity, steps)
    assert k["found"] and k["users"] == 12 and k["throughput_rps"] == 500 and k["broke_at_users"] == 20
    errors = [
        steps[0],
        variant_summary("12 users", {}, [_run("12 users", 1, rps=500, p95=60, users=12, errors=0.01)]),
    ]
    assert knee(capacity, errors)["users"] == 4


def test_the_self_check_allows_in_flight_requests_but_not_a_2_percent_rate_gap() -> None:
    assert Agreement(1000, 1003, 5, 50.0, 50.15).ok
    assert not Agreement(1000, 1010, 5, 50.0, 50.5).ok
    assert not Agreement(1000, 1000, 5, 50.0, 51.5).ok
    assert not Agreement(0, 0, 5, 0.0, 0.0).ok


def test_percentiles_match_locusts_definition() -> None:
    times = {1: 50, 2: 40, 10: 9, 100: 1}
    assert [_percentile(times, 100, q) for q in (0.5, 0.95, 0.99)] == [
        2.0,
        10.0,
        100.0,
    ]  # locust.stats.calculate_response_time_percentile gives 2, 10, 100
    assert _percentile({}, 0, 0.5) == 0.0


def test_previous_run_of_the_same_experiment_is_found_and_compared(tmp_path: Path) -> None:
    old = {"experiment": "smoke", "run_id": "20260101T000000Z-smoke", "variants": []}
    old["variants"] = [{"name": "default", "throughput_rps": 100, "latency_ms": {"p95": 40}, "error_ratio_5xx": 0}]
    for run_id, data in (("20260101T000000Z-smoke", old), ("20260102T000000Z-baseline", {"experiment": "baseline"})):
        (tmp_path / run_id).mkdir()
        (tmp_path / run_id / "results.json").write_text(json.dumps(data))
    previous = previous_results(tmp_path, "smoke", "20260103T000000Z-smoke")
    assert previous["run_id"] == "20260101T000000Z-smoke"
    assert previous_results(tmp_path, "smoke", "20260101T000000Z-smoke") is None
    current = {
        "variants": [{"name": "default", "throughput_rps": 110, "latency_ms": {"p95": 40}, "error_ratio_5xx": 0}]
    }
    rows = {r["metric"]: r for r in previous_comparison(current, previous)}
    assert rows["throughput_rps"]["change_pct"] == 10.0
    assert rows["error_ratio_5xx"]["change_pct"] is None


def test_latest_points_at_the_newest_run(tmp_path: Path) -> None:
    for run_id in ("a", "b"):
        (tmp_path / run_id).mkdir()
        latest_link_update(tmp_path, run_id)
    assert (tmp_path / "latest").resolve() == (tmp_path / "b").resolve()


def _alert_outcomes(alerts: list[dict]) -> dict[str, bool]:
    from experiments.runner.results import expectations_evaluate

    fault = experiment_load(name="fault-5xx")
    run = _run("default", 1, rps=50, p95=20)
    run.alerts_fired = alerts
    variants = [variant_summary("default", {}, [run])]
    return {x["description"]: x["passed"] for x in expectations_evaluate(fault, variants, [run], None)}


def test_an_alert_must_start_firing_after_the_fault_and_within_the_deadline() -> None:
    key = "AvailabilitySLOPageBurn fires within 60 s of the first fault"
    page = {"alertname": "AvailabilitySLOPageBurn", "severity": "page"}
    assert _alert_outcomes([{**page, "first_seen_s": 25.0, "firing_at_start": False}])[key]
    assert not _alert_outcomes([{**page, "first_seen_s": 75.0, "firing_at_start": False}])[key]
    assert not _alert_outcomes([{**page, "first_seen_s": -0.2, "firing_at_start": True}])[key]
    assert not _alert_outcomes([])[key]


def test_locust_runs_headless_with_csv_html_and_processes_when_asked(tmp_path: Path) -> None:
    from experiments.runner.loadgen import LocustProcess

    def command(processes: int) -> list[str]:
        return LocustProcess(
            host="http://127.0.0.1:1",
            users=4,
            spawn_rate=4,
            duration_s=10,
            mix={"detail": 2, "popular": 0},
            wait_ms=(0, 10),
            processes=processes,
            place_ids_file=tmp_path / "ids",
            out_dir=tmp_path,
            prefix="run",
        ).command

    one, four = command(1), command(4)
    assert {"--headless", "--csv", "--html", "--json-file"} <= set(one)
    assert "--processes" not in one
    assert four[four.index("--processes") + 1] == "4"
    assert one[one.index("--mix") + 1] == "detail=2"


def test_the_report_plots_panels_the_dashboards_have() -> None:
    from experiments.runner.plots import REPORT_PANELS, report_panels

    panels = report_panels()
    assert len(panels) == len(REPORT_PANELS)
    assert all(panel.exprs for panel in panels)


def test_results_json_keys_are_the_contract(tmp_path: Path) -> None:
    """Write-ups and regression checks read these keys: adding is fine, renaming or dropping is not."""
    from experiments.runner.results import results_build

    smoke = experiment_load(name="smoke")
    results = results_build(
        experiment=smoke,
        run_id="20260101T000000Z-smoke",
        started_at="2026-01-01T00:00:00+00:00",
        duration_s=60.0,
        runs=[_run("default", 1, rps=50, p95=20)],
        reports_dir=tmp_path,
    )
    assert list(results) == [
        "experiment",
        "run_id",
        "git_sha",
        "profile",
        "started_at",
        "duration_s",
        "dashboards",
        "variants",
        "expectations",
        "passed",
        "previous",
    ]
    variant = results["variants"][0]
    assert list(variant) == [
        "name",
        "settings",
        "requests",
        "failures",
        "throughput_rps",
        "latency_ms",
        "error_ratio_5xx",
        "job_lag_s",
        "jobs_processed",
        "interactions_sent",
        "interactions_recorded",
        "loadgen_cpu_percent",
        "slo",
        "alerts_fired",
        "users",
        "interactions_accepted",
        "prometheus_agreement",
        "lab_rss_peak_mb",
        "lab_rss_by_component_mb",
        "drained",
        "app_restarted",
        "edge",
        "runs",
        "resource_samples",
        "read_your_writes",
        "database",
        "latency_agreement",
    ]
    assert list(variant["latency_ms"]) == ["p50", "p95", "p99"]
    assert list(variant["job_lag_s"]) == ["p50", "p95", "p99", "max"]
    assert list(variant["slo"]["availability"]) == ["sli", "objective", "burn_rate_max", "budget_consumed"]
    assert list(variant["runs"][0]) == [
        "repeat",
        "window",
        "requests",
        "throughput_rps",
        "latency_ms",
        "error_ratio_5xx",
        "loadgen_cpu_percent",
        "events",
        "by_name",
        "database",
        "cpu_cores",
        "jobs_by_task",
        "latency_breakdown_ms",
        "latency_agreement",
    ]
    assert list(variant["runs"][0]["window"]) == ["t0", "t1", "load_start", "load_end"]
    assert variant["lab_rss_peak_mb"] == 400.0 and variant["drained"] is True
    assert list(results["expectations"][0]) == ["description", "passed", "detail"]
    versions = json.loads((ROOT / "grafana" / "versions.json").read_text())
    assert results["dashboards"] == {uid: board["version"] for uid, board in versions.items()}
    assert results["git_sha"] and results["git_sha"] != "unknown"


def test_a_lost_or_double_counted_interaction_fails_the_run_and_in_flight_ones_do_not() -> None:
    smoke = experiment_load(name="smoke")
    key = next(x.description for x in smoke.expectations if x.type == "no_interaction_lost")

    def outcome(*, accepted: int, recorded: int, sent: int) -> bool:
        from experiments.runner.results import expectations_evaluate

        run = _run("default", 1, rps=10, p95=50)
        run.counters.update(interactions_accepted=accepted, interactions_recorded=recorded)
        run.locust.interactions_sent = sent
        variants = [variant_summary("default", {}, [run])]
        return {x["description"]: x["passed"] for x in expectations_evaluate(smoke, variants, [run], None)}[key]

    assert outcome(accepted=100, recorded=100, sent=100)
    # Answered by the app after Locust stopped waiting: the app counted them, Locust did not.
    assert outcome(accepted=100, recorded=100, sent=97)
    assert not outcome(accepted=100, recorded=99, sent=99)  # lost
    assert not outcome(accepted=100, recorded=101, sent=100)  # counted twice
    assert not outcome(accepted=100, recorded=100, sent=101)  # Locust saw a 202 the app never counted


def test_the_self_check_covers_latency_where_the_front_door_timed_the_run() -> None:
    """The latency SLI's share under the threshold (counted at the edge over the window) must agree with the share
    of Locust's response-time distribution under it within 1 point; on the direct path it is shown, not checked."""
    from experiments.runner.measure import latency_agreement

    locust = _run("default", 1, rps=50, p95=20).locust
    # Locust: 970 of 1000 at or under 300 ms (its 300 ms key holds 295-304 ms), 30 above.
    locust.response_times = {12: 600, 250: 300, 300: 70, 310: 20, 2000: 10}
    assert locust.share_within_ms(300) == 0.97
    agree = latency_agreement({"edge_latency_total": 1000, "edge_latency_good": 975}, locust)
    assert agree.source == "edge" and agree.checked and agree.ok
    apart = latency_agreement({"edge_latency_total": 1000, "edge_latency_good": 985}, locust)
    assert not apart.ok and apart.as_dict()["passed"] is False
    # No edge: the app's series, blind to queueing, are shown but cannot fail the run.
    direct = latency_agreement({"app_latency_total": 1000, "app_latency_good": 1000}, locust)
    assert direct.source == "app" and not direct.checked and direct.ok

    smoke = experiment_load(name="smoke")
    run = _run("default", 1, rps=50, p95=20)
    run.locust.response_times = locust.response_times
    run.latency_agreement = apart
    checks = {c["description"]: c for c in expectations_evaluate(smoke, [], [run], None)}
    latency = next(c for d, c in checks.items() if d.startswith("The latency SLI's share"))
    assert latency["passed"] is False and "edge 98.50% / Locust 97.00%" in latency["detail"]
