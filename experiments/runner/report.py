"""report.md: what ran, the headline numbers, expectations, comparisons, plots and the slowest traces."""

from __future__ import annotations

import json
import os
import platform
import shutil
from pathlib import Path
from typing import Any

import psutil

from experiments.runner.catalogue import Experiment, journey_step_of
from experiments.runner.config import LATENCY_AGREEMENT, LOG_TAIL_BYTES, SLOWEST_TRACES
from experiments.runner.measure import RunMeasurement
from experiments.runner.plots import Plot
from monitoring.config import CONFIG

# Locust above this share of one core per process is saturated: the generator, not the app, is the limit.
LOADGEN_SATURATED_PERCENT = 90.0


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def slowest_traces(spans_file: Path, *, start: float, end: float, limit: int = SLOWEST_TRACES) -> list[dict]:
    """Root spans (no parent) that started inside the window, slowest first."""
    if not spans_file.is_file():
        return []
    lo, hi = int(start * 1e9), int(end * 1e9)
    roots = []
    with spans_file.open() as f:
        for line in f:
            try:
                span = json.loads(line)
            except ValueError:
                continue
            if span.get("parent_span_id") or not lo <= span.get("start_unix_nano", 0) <= hi:
                continue
            roots.append(span)
    roots.sort(key=lambda s: s.get("duration_ms", 0), reverse=True)
    return roots[:limit]


def artefacts_copy(*, lab_logs: dict[str, Path], alerts_file: Path, report_dir: Path, start: float, end: float) -> None:
    """The processes' logs (their tails) and the alert notifications received during the run."""
    logs = report_dir / "logs"
    logs.mkdir(exist_ok=True)
    for name, path in lab_logs.items():
        if not path.is_file():
            continue
        with path.open("rb") as src, (logs / f"{name}.log").open("wb") as dst:
            size = path.stat().st_size
            src.seek(max(0, size - LOG_TAIL_BYTES))
            shutil.copyfileobj(src, dst)
    lines = []
    if alerts_file.is_file():
        for line in alerts_file.read_text().splitlines():
            try:
                received = json.loads(line).get("received_at_unix", 0)
            except ValueError:
                continue
            if start <= received <= end:
                lines.append(line)
    (report_dir / "alerts.jsonl").write_text("".join(f"{line}\n" for line in lines))


def _edge_lines(r: dict[str, Any]) -> list[str]:
    """The 5xx ratio above is the app's; behind nginx, what the clients got is nginx's (its own 502s included)."""
    edged = [v for v in r["variants"] if v.get("edge")]
    if not edged:
        return []
    return [
        "At the edge (nginx's responses, mtail over its access log; the 5xx ratio above is the app's, which never "
        "sees nginx's own 502s): "
        + "; ".join(
            f"**{v['name']}** {v['edge']['responses_5xx']} 5xx of {v['edge']['responses']} "
            f"({v['edge']['error_ratio_5xx']:.4%})"
            for v in edged
        ),
        "",
    ]


def _jobs_section(runs: list[RunMeasurement]) -> list[str]:
    """Background jobs per task and run: outcomes and lag (the thumbnail job of uploads among them)."""
    rows = [
        [
            f"{m.variant} #{m.repeat}",
            task,
            ", ".join(f"{o} {n}" for o, n in sorted(t["outcomes"].items())),
            t.get("lag_p50_s", "—"),
            t.get("lag_p95_s", "—"),
            t.get("lag_p99_s", "—"),
        ]
        for m in runs
        for task, t in m.jobs_by_task.items()
    ]
    if not rows:
        return []
    return [
        "## Background jobs by task",
        "",
        "Executions over each run's window by outcome (success, retry, error) and lag from enqueue to start "
        "(chowist_jobs_total, chowist_job_lag_seconds). Uploads enqueue `make_place_thumbnail`; a bad upload is "
        "refused with a 4xx and enqueues nothing.",
        "",
        _table(["run", "task", "outcomes", "lag p50 s", "lag p95 s", "lag p99 s"], rows),
        "",
    ]


def _cpu_section(r: dict[str, Any]) -> list[str]:
    """Cores each lab component used during each run, from /proc (resources.cpu_cores): the app instances'
    gunicorn workers included, which the app's own metrics do not report in multiprocess mode."""
    rows = []
    for v in r["variants"]:
        for run in v["runs"]:
            cpu = run.get("cpu_cores") or {}
            if not cpu:
                continue
            comps = cpu["components"]
            app = sum(c for name, c in comps.items() if name == "app" or name.startswith("app-"))
            others = ", ".join(f"{n} {c:g}" for n, c in sorted(comps.items(), key=lambda kv: -kv[1]) if c >= 0.01)
            rows.append(
                [
                    f"{v['name']} #{run['repeat']}",
                    f"{app:.2f}",
                    others,
                    f"{run['loadgen_cpu_percent'] / 100:.2f}",
                    f"{cpu['machine']:.2f} of {cpu['machine_cores']}",
                ]
            )
    if not rows:
        return []
    return [
        "## CPU",
        "",
        "Cores used on average over the load, sampled from /proc: each lab component's process tree (the app "
        "instances' gunicorn workers included), the load generator, and the whole machine (everything on it: "
        "the lab, Locust, the shared PostgreSQL and Redis, anyone else's processes).",
        "",
        _table(["run", "app instances", "by component", "load generator", "machine busy"], rows),
        "",
    ]


def _database_section(runs: list[RunMeasurement]) -> list[str]:
    """Where each run's database work went: only when a read replica was routed to or a server was scraped."""
    shown = [m for m in runs if m.database.get("reads_routed") or m.database.get("commits_per_s")]
    if not shown:
        return []

    def pairs(values: dict[str, float]) -> str:
        return ", ".join(f"{k} {v:g}" for k, v in values.items()) or "—"

    return [
        "## Databases",
        "",
        "Queries the app ran per Django alias (`default` is the primary), the replica router's decisions for reads "
        "inside requests, commits in the lab's database per PostgreSQL server (prometheus-postgres-exporter) and "
        "the highest replication lag sampled; rates per second of load.",
        "",
        _table(
            ["run", "queries/s by alias", "reads routed", "replica share of reads", "commits/s by server", "lag max s"],
            [
                [
                    f"{m.variant} #{m.repeat}",
                    pairs(m.database.get("queries_per_s", {})),
                    pairs(m.database.get("reads_routed", {})),
                    f"{m.database.get('replica_read_share', 0.0):.1%}",
                    pairs(m.database.get("commits_per_s", {})),
                    m.database.get("replica_lag_max_s", "—"),
                ]
                for m in runs
            ],
        ),
        "",
    ]


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def _ms(values: dict[str, float] | None, key: str) -> str:
    return "—" if not values or key not in values else f"{values[key]:g}"


def _latency_section(runs: list[RunMeasurement]) -> list[str]:
    """What clients waited against what the front door and the app timed, and how much of it was queueing."""
    rows = []
    for m in runs:
        b = m.latency_breakdown_ms
        edge, queue = b.get("edge"), b.get("queue")
        # The mean is additive (a request's queueing is part of its edge time); quantiles are not.
        queue_share = f"{queue['mean'] / edge['mean']:.0%}" if edge and queue and edge.get("mean") else "—"
        a = m.latency_agreement
        rows.append(
            [
                f"{m.variant} #{m.repeat}",
                f"{m.locust.latency_ms['p95']:g}",
                _ms(edge, "p95"),
                _ms(b.get("app"), "p95"),
                _ms(queue, "p95"),
                queue_share,
                "—" if a is None else f"{a.source}: {_share(a.sli_share)}",
                "—" if a is None else _share(a.locust_share),
                "—" if a is None else ("yes" if a.ok and a.checked else ("not checked" if a.ok else "NO")),
            ]
        )
    if not rows:
        return []
    return [
        "## Where the time went: clients, front door, app, queueing",
        "",
        "p95 in ms as the clients (Locust), the front door (nginx's $request_time, through mtail), the app "
        "(django-prometheus, user-facing views) and the wait in front of Django (X-Request-Start to Django's first "
        "middleware) saw it; queueing's share of the mean edge time. Then the latency SLI's share of requests under "
        f"the {CONFIG.latency_threshold_ms:g} ms threshold against Locust's: they must agree within "
        f"{LATENCY_AGREEMENT:.0%} point when the front door timed the run. Without a proxy the app's series are all "
        "there is, and they cannot see queueing.",
        "",
        _table(
            [
                "run",
                "clients p95",
                "edge p95",
                "app p95",
                "queueing p95",
                "queueing share (mean)",
                "SLI good share",
                "Locust's share",
                "agree",
            ],
            rows,
        ),
        "",
    ]


def _table(header: list[str], rows: list[list[Any]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1f}%"


def report_write(
    *,
    experiment: Experiment,
    results: dict[str, Any],
    runs: list[RunMeasurement],
    plots: list[Plot],
    traces: list[dict],
    report_dir: Path,
) -> Path:
    r = results
    load = experiment.load
    lines = [
        f"# Experiment `{r['experiment']}` — {'PASSED' if r['passed'] else 'FAILED'}",
        "",
        experiment.description,
        "",
        "## What ran",
        "",
        _table(
            ["", ""],
            [
                ["run id", f"`{r['run_id']}`"],
                ["git sha", f"`{r['git_sha']}`"],
                ["profile", r["profile"]],
                ["started", r["started_at"]],
                ["duration (wall, all runs)", f"{r['duration_s']} s"],
                [
                    "load",
                    f"{load.users} users (spawn {load.spawn_rate:g}/s), {load.duration_s:g} s per run, think time {load.wait_ms[0]}-{load.wait_ms[1]} ms, "
                    f"{load.processes} Locust process(es), FastHttpUser"
                    + (f"; each run after {load.warmup_s:g} s of the same load, not measured" if load.warmup_s else ""),
                ],
                ["mix", ", ".join(f"{k} {v}" for k, v in load.mix.items() if v)],
                ["dashboards", ", ".join(f"{k} v{v}" for k, v in r["dashboards"].items()) or "n/a"],
                ["machine", ", ".join(f"{k} {v}" for k, v in machine().items())],
                ["catalogue file", f"`experiments/catalogue/{experiment.path.name}`"],
            ],
        ),
        "",
        "Settings per variant: " + _settings_per_variant(r["variants"]),
        "",
        "## Headline",
        "",
        _table(
            [
                "variant",
                "requests",
                "req/s",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "5xx ratio",
                "job lag p95 / max s",
                "jobs",
                "interactions sent / accepted / recorded",
                "loadgen CPU",
                "lab RSS peak",
            ],
            [
                [
                    v["name"],
                    v["requests"],
                    v["throughput_rps"],
                    v["latency_ms"]["p50"],
                    v["latency_ms"]["p95"],
                    v["latency_ms"]["p99"],
                    f"{v['error_ratio_5xx']:.4%}",
                    f"{v['job_lag_s']['p95']} / {v['job_lag_s']['max']}",
                    v["jobs_processed"],
                    f"{v['interactions_sent']} / {v['interactions_accepted']} / {v['interactions_recorded']}",
                    f"{v['loadgen_cpu_percent']}%",
                    f"{v['lab_rss_peak_mb']} MiB",
                ]
                for v in r["variants"]
            ],
        ),
        "",
        *_edge_lines(r),
        _loadgen_note(r, load.processes),
        "",
        "## Expectations",
        "",
        *[
            f"- {'✅ PASS' if x['passed'] else '❌ FAIL'} — {x['description']} ({x.get('detail', '')})"
            for x in r["expectations"]
        ],
        "",
        "## The lab checks itself: Prometheus against Locust",
        "",
        "Counters are read at a scrape after the lab went quiet before the load and at a scrape after the load stopped "
        "and the consumer drained; only Locust sends user-facing traffic in between (probes are excluded by view; static files, which no view answers, are left out of Locust's count). "
        "Both rates divide by Locust's active interval.",
        "",
        _table(
            [
                "run",
                "Locust requests",
                "Prometheus requests",
                "connection errors",
                "tolerance",
                "Locust req/s",
                "Prometheus req/s",
                "diff",
                "ok",
            ],
            [
                [
                    f"{m.variant} #{m.repeat}",
                    m.agreement.locust_requests,
                    m.agreement.prometheus_requests,
                    m.agreement.connection_errors,
                    m.agreement.tolerance,
                    f"{m.agreement.locust_rps:.2f}",
                    f"{m.agreement.prometheus_rps:.2f}",
                    f"{m.agreement.rps_diff:.2%}",
                    "yes" if m.agreement.ok else "NO",
                ]
                for m in runs
            ],
        ),
        "",
    ]
    lines += _latency_section(runs)
    lines += _database_section(runs)
    lines += _cpu_section(r)
    lines += _jobs_section(runs)
    lines += _comparison_section(r)
    lines += _journey_section(r)
    lines += _knee_section(r)
    lines += [
        "## SLOs over each variant's window",
        "",
        _table(
            ["variant", "SLO", "SLI", "objective", "max burn rate", "budget consumed"],
            [
                [
                    v["name"],
                    name,
                    f"{s['sli']:.4%}",
                    f"{s['objective']:.2%}",
                    s["burn_rate_max"],
                    f"{s['budget_consumed']:.4%}",
                ]
                for v in r["variants"]
                for name, s in v["slo"].items()
            ],
        ),
        "",
        "Budget consumed: the share of the (lab-compressed) period's error budget the window spent.",
        "",
        "## Alerts",
        "",
    ]
    alerts = [(v["name"], a) for v in r["variants"] for a in v["alerts_fired"]]
    lines += (
        [
            _table(
                [
                    "variant",
                    "alert",
                    "severity",
                    "first seen firing (s after load start)",
                    "webhook notified (s)",
                    "note",
                ],
                [
                    [
                        n,
                        a["alertname"],
                        a["severity"],
                        a["first_seen_s"],
                        a.get("notified_s", "—"),
                        "already firing when the window opened" if a.get("firing_at_start") else "",
                    ]
                    for n, a in alerts
                ],
            )
        ]
        if alerts
        else ["No alert fired."]
    )
    events = [(m.variant, e) for m in runs for e in m.window.events]
    if events:
        lines += [
            "",
            "## Schedule",
            "",
            _table(
                ["variant", "planned (s)", "applied (s)", "what"],
                [[n, e["at_s"], e["applied_s"], e["what"]] for n, e in events],
            ),
        ]
    lines += [
        "",
        "## Plots",
        "",
        "The dashboards' own PromQL, over the experiment's window; shaded spans are the measured runs.",
        "",
    ]
    for p in plots:
        lines += [f"### {p.title}", "", f"![{p.title}](plots/{p.path.name})", ""]
        lines += [
            "<details><summary>PromQL</summary>",
            "",
            *[f"    {e}" for e in p.exprs.values()],
            "",
            "</details>",
            "",
        ]
    lines += ["## Slowest traces", ""]
    lines += (
        [
            _table(
                ["trace id", "root span", "duration ms", "status", "route / path"],
                [
                    [
                        f"`{t.get('trace_id', '')}`",
                        t.get("name", ""),
                        round(t.get("duration_ms", 0), 1),
                        t.get("status", ""),
                        (t.get("attributes") or {}).get("http.route")
                        or (t.get("attributes") or {}).get("http.target", ""),
                    ]
                    for t in traces
                ],
            )
        ]
        if traces
        else ["No spans in the span file for this window (is OTEL_SPANS_FILE written?)."]
    )
    lines += ["", "## Compared with the previous run", ""]
    prev = r.get("previous")
    if prev and prev["rows"]:
        lines += [
            f"Previous run: `{prev['run_id']}`.",
            "",
            _table(
                ["variant", "metric", "previous", "now", "change"],
                [[x["variant"], x["metric"], x["previous"], x["current"], _pct(x["change_pct"])] for x in prev["rows"]],
            ),
        ]
    else:
        lines += ["No earlier run of this experiment in this reports directory."]
    lines += [
        "",
        "## Files",
        "",
        "- `results.json` — the machine-readable results (contract in experiments/README.md)",
        "- `locust/` — Locust's CSV (`*_stats.csv`, `*_stats_history.csv`, `*_failures.csv`), HTML reports, JSON and logs, one set per run",
        "- `alerts.jsonl` — the Alertmanager notifications the webhook received during the experiment",
        "- `logs/` — the tail of each lab process's log",
        "- `plots/` — the PNGs above",
        "",
    ]
    path = report_dir / "report.md"
    path.write_text("\n".join(lines))
    return path


def _loadgen_note(r: dict[str, Any], processes: int) -> str:
    cpu = max(v["loadgen_cpu_percent"] for v in r["variants"])
    if cpu >= LOADGEN_SATURATED_PERCENT * processes:
        return (
            f"⚠️ The load generator used {cpu}% CPU with {processes} Locust process(es): it was saturated, so the "
            "throughput above is the generator's limit, not the app's. Use `processes:` in the catalogue file."
        )
    return f"Load generator CPU peaked at {cpu}% ({processes} Locust process(es), {os.cpu_count()} cores shared with the lab): not the bottleneck."


def _comparison_section(r: dict[str, Any]) -> list[str]:
    c = r.get("comparison")
    if not c:
        return []
    return [
        f"## A/B comparison (against `{c['baseline']}`)",
        "",
        "Variants were interleaved and alternated (A B, B A, ...). Noise is the largest spread between repeats of one variant; "
        "a change within it is not a finding.",
        "",
        _table(
            ["variant", "metric", "baseline", "variant value", "change", "noise", "beyond noise", "better"],
            [
                [
                    x["variant"],
                    x["metric"],
                    x["baseline_value"],
                    x["variant_value"],
                    _pct(x["change_pct"]),
                    "n/a" if x["noise_pct"] is None else f"±{x['noise_pct']}%",
                    {True: "**yes**", False: "no", None: "n/a (1 run)"}[x["exceeds_noise"]],
                    {True: "better", False: "worse", None: "same"}[x["better"]],
                ]
                for x in c["rows"]
            ],
        ),
        "",
    ]


def _settings_per_variant(variants: list[dict[str, Any]]) -> str:
    """One entry per variant; a stepped variant's runs ("naive @ 4 users", "naive @ 16 users", ...) share one."""
    entries: dict[str, str] = {}
    for v in variants:
        name = journey_step_of(v["name"]) or v["name"]
        entries.setdefault(name, ", ".join(f"`{k}={val}`" for k, val in v["settings"].items()) or "defaults")
    return "; ".join(f"**{name}** {settings}" for name, settings in entries.items())


def _journey_section(r: dict[str, Any]) -> list[str]:
    steps = r.get("journey")
    if not steps:
        return []
    best = max(steps[1:], key=lambda s: s["gain_rps"], default=None)
    rows = [
        [
            s["step"],
            s["knee_users"],
            s["knee_rps"],
            (s["knee"] or {}).get("p95_ms"),
            f"{s['gain_rps']:+g}",
            ", ".join(f"{k}={v}" for k, v in s["settings"].items()) or "defaults",
        ]
        for s in steps
    ]
    verdict = (
        f"**The lever that bought the most: `{best['step']}`, {best['gain_rps']:+g} req/s at the knee.**"
        if best and best["gain_rps"] > 0
        else "No lever raised the knee beyond the noise of one run each."
    )
    return [
        "## The scaling journey (a knee per step, each step one lever more)",
        "",
        verdict,
        "",
        _table(["step", "knee users", "knee req/s", "knee p95 ms", "gain req/s", "settings"], rows),
        "",
        "![staircase](plots/staircase.png)",
        "",
        "One capacity run per step on a shared 2-core box: differences of a few percent are noise.",
        "",
    ]


def _knee_section(r: dict[str, Any]) -> list[str]:
    k = r.get("knee")
    if not k:
        return []
    head = (
        f"**Knee: {k['users']} concurrent users, {k['throughput_rps']} req/s** (p95 {k['p95_ms']} ms); "
        f"the next step ({k['broke_at_users']} users) broke p95 > {k['p95_limit_ms']:g} ms or 5xx > {k['error_ratio_limit']:.2%}."
        if k["found"]
        else "No knee found: "
        + ("every step held (raise max_users)." if k["users"] else "the first step already broke.")
    )
    steps = [
        [
            v["users"],
            v["throughput_rps"],
            v["latency_ms"]["p95"],
            f"{v['error_ratio_5xx']:.3%}",
            f"{v['loadgen_cpu_percent']}%",
        ]
        for v in r["variants"]
    ]
    return [
        "## Capacity",
        "",
        head,
        "",
        _table(["users", "req/s", "p95 ms", "5xx", "loadgen CPU"], steps),
        "",
    ]
