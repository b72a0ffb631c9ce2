"""results.json: the contract write-ups and regression checks rely on, built from the measured runs.

Top-level keys (issue 6): experiment, run_id, git_sha, profile, started_at, duration_s, dashboards,
variants, expectations, passed. Each variant: name, settings, requests, failures, throughput_rps,
latency_ms {p50, p95, p99}, error_ratio_5xx, job_lag_s {p50, p95, p99, max}, jobs_processed,
interactions_sent, interactions_recorded, loadgen_cpu_percent, slo {name: {sli, burn_rate_max,
budget_consumed}}, alerts_fired [{alertname, severity, first_seen_s}]. Extra keys only add detail.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from experiments.runner.catalogue import Expectation, Experiment, journey_step_of
from experiments.runner.config import LATENCY_AGREEMENT, ROOT
from experiments.runner.expectations import EXPECTATIONS, Evidence
from experiments.runner.measure import LatencyAgreement, RunMeasurement
from experiments.runner.resources import cpu_cores
from grafana import build as grafana_build
from monitoring.config import CONFIG
from observability import release
from slo.spec import slo_spec_list

CONTRACT_KEYS = (
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
)
VARIANT_KEYS = (
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
)
# A/B metrics compared between variants, and which direction is better.
COMPARED = {"throughput_rps": "higher", "p50_ms": "lower", "p95_ms": "lower", "p99_ms": "lower"}
# Capacity: a step breaks above this p95 unless the experiment's p95_below_ms says otherwise.
DEFAULT_STEP_P95_MS = 250.0


def dashboard_versions() -> dict[str, int]:
    """uid -> version of every dashboard, as grafana/versions.json lists them."""
    return {uid: board["version"] for uid, board in grafana_build.dashboard_versions().items()}


def step_limits(experiment: Experiment) -> tuple[float, float]:
    """(p95 in ms, 5xx ratio) above which a capacity step is broken."""
    p95 = next((x.params["value"] for x in experiment.expectations if x.type == "p95_below_ms"), DEFAULT_STEP_P95_MS)
    availability = next(s for s in slo_spec_list() if s.slo == CONFIG.slos.availability.name)
    return float(p95), availability.error_budget


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def variant_summary(name: str, settings: dict[str, str], runs: list[RunMeasurement]) -> dict[str, Any]:
    """One variant over its repeats: counts are summed, rates and percentiles averaged, maxima kept."""
    requests = sum(r.counters["requests"] for r in runs)
    slos: dict[str, dict[str, float]] = {}
    for slo in runs[0].slo:
        per = [r.slo[slo] for r in runs]
        slos[slo] = {
            "sli": round(_mean([p["sli"] for p in per]), 6),
            "objective": per[0]["objective"],
            "burn_rate_max": max(p["burn_rate_max"] for p in per),
            "budget_consumed": round(sum(p["budget_consumed"] for p in per), 6),
        }
    alerts: dict[str, dict] = {}
    for r in runs:
        for a in r.alerts_fired:
            alerts.setdefault(a["alertname"], a)
    return {
        "name": name,
        "settings": settings,
        "requests": sum(r.locust.requests for r in runs),
        "failures": sum(r.locust.failures for r in runs),
        "throughput_rps": round(_mean([r.locust.throughput_rps for r in runs]), 2),
        "latency_ms": {p: round(_mean([r.locust.latency_ms[p] for r in runs]), 1) for p in ("p50", "p95", "p99")},
        "error_ratio_5xx": round(sum(r.counters["requests_5xx"] for r in runs) / requests, 6) if requests else 0.0,
        "job_lag_s": {
            **{p: round(_mean([r.job_lag_s[p] for r in runs]), 3) for p in ("p50", "p95", "p99")},
            "max": round(max(r.job_lag_s["max"] for r in runs), 3),
        },
        "jobs_processed": round(sum(r.counters["jobs_processed"] for r in runs)),
        "interactions_sent": sum(r.locust.interactions_sent for r in runs),
        "interactions_recorded": round(sum(r.counters["interactions_recorded"] for r in runs)),
        "loadgen_cpu_percent": round(_mean([r.locust.cpu_percent for r in runs]), 1),
        "slo": slos,
        "alerts_fired": list(alerts.values()),
        # Detail beyond the contract.
        "users": runs[0].window.users,
        "interactions_accepted": round(sum(r.counters["interactions_accepted"] for r in runs)),
        "prometheus_agreement": [r.agreement.as_dict() for r in runs],
        "lab_rss_peak_mb": max(r.lab_rss_peak_mb for r in runs),
        "lab_rss_by_component_mb": max(runs, key=lambda r: r.lab_rss_peak_mb).lab_rss_by_component_mb,
        "drained": all(r.window.drained for r in runs),
        # The app instances restarted during a run (a deploy): the app's own counters cannot be differenced.
        "app_restarted": any(e.get("deploy") for r in runs for e in r.window.events),
        "edge": _edge_sum(runs),
        "runs": [run_summary(r) for r in runs],
        # The longest run's resource samples (RSS, open files, bounded files); the soak's evidence.
        "resource_samples": max(runs, key=lambda r: len(r.resource_samples)).resource_samples,
        "read_your_writes": _read_back_sum(runs),
        # The first run's database figures (per-run ones are in runs[]).
        "database": runs[0].database,
        # Per run: the latency SLI's share under the threshold against Locust's (measure.LatencyAgreement).
        "latency_agreement": [r.latency_agreement.as_dict() for r in runs if r.latency_agreement],
    }


def _edge_sum(runs: list[RunMeasurement]) -> dict[str, Any] | None:
    """nginx's responses and 5xx over the runs (mtail; None without a proxy): what the clients got, 502s too."""
    responses = round(sum(r.counters.get("edge_responses", 0.0) for r in runs))
    if not responses:
        return None
    errors = round(sum(r.counters.get("edge_responses_5xx", 0.0) for r in runs))
    return {"responses": responses, "responses_5xx": errors, "error_ratio_5xx": round(errors / responses, 6)}


def _read_back_sum(runs: list[RunMeasurement]) -> dict[str, Any] | None:
    """The read-your-writes checks of a variant's runs, added up (None when the experiment made none)."""
    checked = [r.read_back for r in runs if r.read_back is not None]
    if not checked:
        return None
    return {
        "checks": sum(c.checks for c in checked),
        "read_back": sum(c.read_back for c in checked),
        "pinned": sum(c.pinned for c in checked),
        "failures": [f for c in checked for f in c.failures][:5],
    }


def run_summary(r: RunMeasurement) -> dict[str, Any]:
    return {
        "repeat": r.repeat,
        "window": {
            "t0": r.window.t0,
            "t1": r.window.t1,
            "load_start": r.window.load_start,
            "load_end": r.window.load_end,
        },
        "requests": r.locust.requests,
        "throughput_rps": round(r.locust.throughput_rps, 2),
        "latency_ms": r.locust.latency_ms,
        "error_ratio_5xx": round(r.error_ratio_5xx, 6),
        "loadgen_cpu_percent": round(r.locust.cpu_percent, 1),
        "events": list(r.window.events),
        "by_name": r.locust.by_name,
        "database": r.database,
        "cpu_cores": cpu_cores(r.resource_samples),
        "jobs_by_task": r.jobs_by_task,
        # ms at the edge, in the app and queueing in front of Django (p50/p95/p99/mean), and the latency self-check.
        "latency_breakdown_ms": r.latency_breakdown_ms,
        "latency_agreement": r.latency_agreement.as_dict() if r.latency_agreement else None,
    }


def knee(experiment: Experiment, variants: list[dict]) -> dict[str, Any] | None:
    """Capacity: the last step that held (p95 and 5xx within limits) before the first that broke."""
    if not experiment.load.steps:
        return None
    p95_limit, error_limit = step_limits(experiment)
    held = None
    broke = None
    for v in variants:
        if v["latency_ms"]["p95"] <= p95_limit and v["error_ratio_5xx"] <= error_limit:
            held = v
        else:
            broke = v
            break
    return {
        "found": held is not None and broke is not None,
        "users": held["users"] if held else None,
        "throughput_rps": held["throughput_rps"] if held else None,
        "p95_ms": held["latency_ms"]["p95"] if held else None,
        "broke_at_users": broke["users"] if broke else None,
        "p95_limit_ms": p95_limit,
        "error_ratio_limit": error_limit,
    }


def journey(experiment: Experiment, variants: list[dict]) -> list[dict[str, Any]] | None:
    """A step load per variant: each step's knee, and what it gained over the step before."""
    if not experiment.load.steps or len(experiment.variants) < 2:
        return None
    steps = []
    previous_rps = 0.0
    for v in experiment.variants:
        runs = [s for s in variants if journey_step_of(s["name"]) == v.name]
        k = knee(experiment, runs) if runs else None
        rps = (k or {}).get("throughput_rps") or 0.0
        steps.append(
            {
                "step": v.name,
                "settings": v.settings,
                "layout": {"profile": v.profile or experiment.profile, "pgbouncer": v.pgbouncer, "proxy": v.proxy},
                "knee": k,
                "knee_rps": rps,
                "knee_users": (k or {}).get("users") or 0,
                "gain_rps": round(rps - previous_rps, 1),
            }
        )
        previous_rps = rps
    return steps


def _applies(x: Expectation, variants: list[dict]) -> list[dict]:
    return [v for v in variants if x.variant in (None, v["name"])]


def expectations_evaluate(
    experiment: Experiment, variants: list[dict], runs: list[RunMeasurement], knee_info: dict | None
) -> list[dict[str, Any]]:
    first_fault = min((e.at_s for e in experiment.schedule if e.fault or e.deploy), default=0.0)
    out = []
    for x in experiment.expectations:
        evidence = Evidence(variants=_applies(x, variants), first_fault_s=first_fault, knee=knee_info)
        passed, detail = EXPECTATIONS[x.type].check(x.params, evidence)
        out.append({"description": x.description, "passed": bool(passed), "detail": detail})
    # The lab checks itself in every run, except across a deploy: a restarted instance's counters start again
    # from 0 and the requests it served after its last scrape never reach Prometheus, so no count can agree.
    agreement = [r.agreement for r in runs]
    if any(e.deploy for e in experiment.schedule):
        out.append(
            {
                "description": "Prometheus/Locust agreement not checked: the app instances restart during the run",
                "passed": True,
                "detail": "; ".join(
                    f"{r.variant}#{r.repeat}: Locust {a.locust_requests} / Prometheus {a.prometheus_requests} requests"
                    for r, a in zip(runs, agreement, strict=True)
                ),
            }
        )
        return out
    out.append(
        {
            "description": "Prometheus counts the same requests as Locust, and throughput agrees within 2%",
            "passed": all(a.ok for a in agreement),
            "detail": "; ".join(
                f"{r.variant}#{r.repeat}: Locust {a.locust_requests} / Prometheus {a.prometheus_requests} requests, "
                f"{a.locust_rps:.1f} / {a.prometheus_rps:.1f} req/s"
                for r, a in zip(runs, agreement, strict=True)
            ),
        }
    )
    latency = [(r, r.latency_agreement) for r in runs if r.latency_agreement is not None]
    if latency:
        out.append(
            {
                "description": (
                    f"The latency SLI's share of requests under {CONFIG.latency_threshold_ms:g} ms agrees with Locust's "
                    f"within {LATENCY_AGREEMENT:.0%} point (checked where the front door timed the run)"
                ),
                "passed": all(a.ok for _, a in latency),
                "detail": "; ".join(_latency_agreement_words(r, a) for r, a in latency),
            }
        )
    return out


def _latency_agreement_words(r: RunMeasurement, a: LatencyAgreement) -> str:
    def share(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.2%}"

    checked = "" if a.checked else " (not checked: no front door, the app cannot see its queueing)"
    return (
        f"{r.variant}#{r.repeat}: SLI at the {a.source} {share(a.sli_share)} / Locust {share(a.locust_share)}{checked}"
    )


def ab_comparison(experiment: Experiment, runs: list[RunMeasurement]) -> dict[str, Any] | None:
    """Each variant against the first: change in % and whether it exceeds the run-to-run noise.

    Noise is the largest relative spread (max - min) / mean between repeats of the same variant.
    """
    if not experiment.is_ab:
        return None
    per_variant: dict[str, dict[str, list[float]]] = {}
    for r in runs:
        values = per_variant.setdefault(r.variant, {m: [] for m in COMPARED})
        values["throughput_rps"].append(r.locust.throughput_rps)
        for p in ("p50", "p95", "p99"):
            values[f"{p}_ms"].append(r.locust.latency_ms[p])
    noise = {}
    for metric in COMPARED:
        spreads = [
            (max(v[metric]) - min(v[metric])) / _mean(v[metric])
            for v in per_variant.values()
            if len(v[metric]) > 1 and _mean(v[metric])
        ]
        noise[metric] = max(spreads) if spreads else None
    names = [v.name for v in experiment.variants if v.name in per_variant]
    base = names[0]
    rows = []
    for name in names[1:]:
        for metric, better in COMPARED.items():
            a, b = _mean(per_variant[base][metric]), _mean(per_variant[name][metric])
            change = (b - a) / a if a else 0.0
            n = noise[metric]
            rows.append(
                {
                    "metric": metric,
                    "baseline": base,
                    "variant": name,
                    "baseline_value": round(a, 2),
                    "variant_value": round(b, 2),
                    "change_pct": round(100 * change, 1),
                    "noise_pct": None if n is None else round(100 * n, 1),
                    "exceeds_noise": None if n is None else abs(change) > n,
                    "better": (change > 0) == (better == "higher") if change else None,
                }
            )
    return {"baseline": base, "rows": rows, "values": per_variant}


def previous_results(reports_dir: Path, experiment: str, run_id: str) -> dict[str, Any] | None:
    """The newest earlier results.json of the same experiment (run ids sort by time)."""
    candidates = sorted(
        (p for p in reports_dir.glob(f"*-{experiment}/results.json") if p.parent.name < run_id),
        key=lambda p: p.parent.name,
    )
    for path in reversed(candidates):
        try:
            data = json.loads(path.read_text())
        except ValueError:
            continue
        if data.get("experiment") == experiment:
            return data
    return None


def previous_comparison(current: dict[str, Any], previous: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not previous:
        return []
    before = {v["name"]: v for v in previous.get("variants", [])}
    rows = []
    for v in current["variants"]:
        old = before.get(v["name"])
        if not old:
            continue
        for metric, get in (
            ("throughput_rps", lambda x: x["throughput_rps"]),
            ("p95_ms", lambda x: x["latency_ms"]["p95"]),
            ("error_ratio_5xx", lambda x: x["error_ratio_5xx"]),
        ):
            a, b = get(old), get(v)
            rows.append(
                {
                    "variant": v["name"],
                    "metric": metric,
                    "previous": a,
                    "current": b,
                    "change_pct": round(100 * (b - a) / a, 1) if a else None,
                }
            )
    return rows


def results_build(
    *,
    experiment: Experiment,
    run_id: str,
    started_at: str,
    duration_s: float,
    runs: list[RunMeasurement],
    reports_dir: Path,
) -> dict[str, Any]:
    grouped: dict[str, list[RunMeasurement]] = {}
    for r in runs:
        grouped.setdefault(r.variant, []).append(r)
    settings = {v.name: v.settings for v in experiment.variants}
    base_settings = experiment.variants[0].settings
    variants = [
        variant_summary(name, settings.get(journey_step_of(name) or name, base_settings), rs)
        for name, rs in grouped.items()
    ]
    journey_info = journey(experiment, variants)
    # A journey's knee is its last step's: everything switched on.
    knee_info = journey_info[-1]["knee"] if journey_info else knee(experiment, variants)
    expectations = expectations_evaluate(experiment, variants, runs, knee_info)
    profiles = sorted({v.profile or experiment.profile for v in experiment.variants})
    results: dict[str, Any] = {
        "experiment": experiment.name,
        "run_id": run_id,
        "git_sha": release.git_sha(ROOT) or "unknown",
        "profile": profiles[0] if len(profiles) == 1 else "+".join(profiles),
        "started_at": started_at,
        "duration_s": round(duration_s, 1),
        "dashboards": dashboard_versions(),
        "variants": variants,
        "expectations": expectations,
        "passed": all(x["passed"] for x in expectations),
    }
    comparison = ab_comparison(experiment, runs)
    if comparison:
        results["comparison"] = {k: v for k, v in comparison.items() if k != "values"}
    if knee_info:
        results["knee"] = knee_info
    if journey_info:
        results["journey"] = journey_info
    previous = previous_results(reports_dir, experiment.name, run_id)
    results["previous"] = (
        {"run_id": previous["run_id"], "rows": previous_comparison(results, previous)} if previous else None
    )
    return results


def results_write(results: dict[str, Any], report_dir: Path) -> Path:
    path = report_dir / "results.json"
    path.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    return path
