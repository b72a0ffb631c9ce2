"""PNG plots of the dashboards' own PromQL over the experiment's window, with runs and faults marked."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a display
import matplotlib.pyplot as plt

from experiments.runner.measure import RunMeasurement
from experiments.runner.prom import Prometheus, PrometheusError
from grafana.panels import DASHBOARDS, render_promql

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# Grafana's $__rate_interval is at least four scrape intervals; the lab scrapes every 5 s.
RATE_INTERVAL = "20s"
MAX_POINTS = 600
# The report's plots: (dashboard uid, panel title) of dashboard panels, plotted with their own PromQL.
REPORT_PANELS = (
    ("chowist-service-overview", "Total request rate and 5xx rate"),
    ("chowist-service-overview", "Latency p50 / p95 / p99 (user-facing views)"),
    # What clients waited (the edge) against the app's own time, and the queueing in between.
    ("chowist-service-overview", "Latency p95: at the front door, in the app, queueing in front of the app"),
    ("chowist-service-overview", "5xx ratio by view"),
    ("chowist-slos", "Current burn rate (5m) by SLO"),
    ("chowist-slos", "Burn rate by window: availability"),
    ("chowist-background-jobs", "Job lag p50 / p95 / p99 (enqueue to start)"),
    ("chowist-background-jobs", "Queue depth"),
    ("chowist-background-jobs", "Interactions inbox backlog"),
    # Where the CPU goes (2 cores for everything): what scale-out can and cannot buy.
    ("chowist-service-overview", "CPU by process group"),
    # The scaling levers: reads per database, the primary's and the replica's transactions, replication lag.
    ("chowist-database-cache", "Reads by database"),
    ("chowist-database-cache", "PostgreSQL transactions per second"),
    ("chowist-database-cache", "Replication lag"),
)


@dataclass(frozen=True)
class ReportPanel:
    """One plot: a title, a unit and PromQL expressions (legend -> expr) exactly as on the dashboard."""

    slug: str
    title: str
    unit: str
    exprs: dict[str, str]


@dataclass(frozen=True)
class Plot:
    slug: str
    title: str
    path: Path
    exprs: dict[str, str]


def report_panels() -> list[ReportPanel]:
    """The dashboard panels the report plots; a panel renamed or removed on a dashboard is an error here."""
    by_key = {(d.uid, p.title): (d, p) for d in DASHBOARDS for p in d.panels}
    missing = [f"{uid}: {title!r}" for uid, title in REPORT_PANELS if (uid, title) not in by_key]
    if missing:
        raise LookupError(f"the report plots panels no dashboard has (grafana/panels.py): {', '.join(missing)}")
    out = []
    for key in REPORT_PANELS:
        dashboard, panel = by_key[key]
        out.append(
            ReportPanel(
                slug=_slug(panel.title),
                title=f"{panel.title} ({dashboard.title})",
                unit=panel.unit,
                exprs={query.legend or f"series {i}": query.expr for i, query in enumerate(panel.queries)},
            )
        )
    return out


def _slug(title: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in title.lower()).split())


def _render(expr: str) -> str:
    return render_promql(expr, rate_interval=RATE_INTERVAL)


def _legend(template: str, labels: dict[str, str]) -> str:
    out = template
    for key, value in labels.items():
        out = out.replace("{{" + key + "}}", value)
    return out if "{{" not in out else ", ".join(f"{k}={v}" for k, v in labels.items() if k != "__name__") or "value"


def plots_write(*, prom: Prometheus, runs: list[RunMeasurement], out_dir: Path) -> list[Plot]:
    out_dir.mkdir(parents=True, exist_ok=True)
    start = min(r.window.t0 for r in runs) - 10
    end = max(r.window.t1 for r in runs) + 5
    step = max(1.0, math.ceil((end - start) / MAX_POINTS))
    plots = []
    for panel in report_panels():
        fig, ax = plt.subplots(figsize=(10, 4), dpi=100)
        drawn = 0
        errors = []
        for legend, expr in panel.exprs.items():
            try:
                series = prom.range(_render(expr), start=start, end=end, step=step)
            except PrometheusError as exc:
                errors.append(str(exc))
                continue
            for s in series:
                xs = [t - start for t, v in s.points if math.isfinite(v)]
                ys = [v for _, v in s.points if math.isfinite(v)]
                if xs:
                    ax.plot(xs, ys, label=_legend(legend, s.labels), linewidth=1.2)
                    drawn += 1
        _mark_runs(ax, runs, start)
        ax.set_title(panel.title, fontsize=10)
        ax.set_xlabel("seconds since the experiment window opened")
        ax.set_ylabel(panel.unit)
        ax.grid(True, alpha=0.3)
        if drawn:
            ax.legend(fontsize=7, loc="upper left", ncols=2)
        else:
            ax.text(
                0.5, 0.5, "no data" + (f": {errors[0][:80]}" if errors else ""), transform=ax.transAxes, ha="center"
            )
        path = out_dir / f"{panel.slug}.png"
        fig.tight_layout()
        fig.savefig(path, format="png")
        plt.close(fig)
        plots.append(Plot(panel.slug, panel.title, path, panel.exprs))
    resources = resources_plot(runs=runs, out_dir=out_dir)
    return [*plots, resources] if resources else plots


def resources_plot(*, runs: list[RunMeasurement], out_dir: Path) -> Plot | None:
    """RSS and open files of every lab component over the load (the soak's evidence), from the run's samples."""
    sampled = [r for r in runs if r.resource_samples]
    if not sampled:
        return None
    fig, (rss_ax, fds_ax) = plt.subplots(2, 1, figsize=(10, 6), dpi=100, sharex=True)
    for run in sampled:
        offset = run.window.load_start - min(r.window.load_start for r in sampled)
        samples = run.resource_samples
        for name in sorted({n for s in samples for n in s["rss_mb"]}):
            xs = [offset + s["t_s"] for s in samples if name in s["rss_mb"]]
            rss_ax.plot(xs, [s["rss_mb"][name] for s in samples if name in s["rss_mb"]], label=name, linewidth=1.2)
            fds_ax.plot(
                xs, [s["open_files"].get(name, 0) for s in samples if name in s["rss_mb"]], label=name, linewidth=1.2
            )
        fds_ax.plot(
            [offset + s["t_s"] for s in samples],
            [s["multiproc_files"] for s in samples],
            label="multiprocess metric files",
            linestyle="--",
            linewidth=1.2,
        )
    rss_ax.set_title("Lab RSS and open files (sampled every progress tick)", fontsize=10)
    rss_ax.set_ylabel("RSS (MiB)")
    fds_ax.set_ylabel("open files")
    fds_ax.set_xlabel("seconds since the load started")
    for ax in (rss_ax, fds_ax):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", ncols=3)
    path = out_dir / "lab-resources.png"
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return Plot(
        "lab-resources",
        "Lab RSS and open files",
        path,
        {"sampled": "psutil per component with its children (experiments/runner/resources.py), not PromQL"},
    )


def _mark_runs(ax: plt.Axes, runs: list[RunMeasurement], origin: float) -> None:
    for i, r in enumerate(runs):
        w = r.window
        ax.axvspan(w.load_start - origin, w.load_end - origin, color=f"C{i % 10}", alpha=0.08)
        ax.text(
            w.load_start - origin, 0.01, f" {w.variant}", transform=ax.get_xaxis_transform(), fontsize=7, va="bottom"
        )
        for e in w.events:
            ax.axvline(e["applied_unix"] - origin, color="red", linestyle="--", linewidth=0.8)
            ax.text(
                e["applied_unix"] - origin,
                0.9,
                f" {e['what']}",
                transform=ax.get_xaxis_transform(),
                fontsize=7,
                color="red",
            )


def png_valid(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(8) == PNG_MAGIC and path.stat().st_size > 1000


def staircase_write(*, journey: list[dict], out_dir: Path) -> Path:
    """The scaling journey as a staircase: one bar per step, its knee in req/s (users on top)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(10, 4.5), dpi=100)
    names = [s["step"] for s in journey]
    rps = [s["knee_rps"] for s in journey]
    bars = ax.bar(range(len(names)), rps, color="#4c78a8")
    for bar, step in zip(bars, journey, strict=True):
        ax.annotate(
            f"{step['knee_rps']:g} req/s\n{step['knee_users']} users",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("req/s at the knee (p95 within bound, no 5xx burn)")
    ax.set_title("Scaling journey: capacity after each lever", fontsize=10)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    path = out_dir / "staircase.png"
    fig.savefig(path, format="png")
    plt.close(fig)
    return path
