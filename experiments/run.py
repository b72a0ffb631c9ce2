"""`python -m experiments.run NAME`: run one catalogue experiment and write reports/<run-id>/.

Exit status: 0 when every expectation held, 1 when one failed, 2 when the experiment could not run.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from experiments.runner.catalogue import CatalogueError, experiment_list, experiment_load
from experiments.runner.config import RunnerConfig

EXIT_FAILED_EXPECTATION = 1
EXIT_ERROR = 2


def latest_link_update(reports_dir: Path, run_id: str) -> Path:
    """Point reports/latest at the newest run, replacing the old link atomically."""
    link = reports_dir / "latest"
    tmp = reports_dir / f".latest-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(run_id, target_is_directory=True)
    os.replace(tmp, link)
    return link


def catalogue_print() -> int:
    try:
        experiments = experiment_list()
    except CatalogueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    for e in experiments:
        variants = ", ".join(v.name for v in e.variants)
        if e.load.steps:
            s = e.load.steps
            shape = f"steps {s.start_users}..{s.max_users} users (+{s.step_users}) x {s.step_s:g} s"
        else:
            shape = f"{e.load.users} users x {e.load.duration_s:g} s" + (
                f" x {e.repeats} repeats" if e.repeats > 1 else ""
            )
        print(f"{e.name:<20} {e.profile:<9} {shape:<40} variants: {variants}")
        print(f"{'':<20} {e.description}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.run", description=__doc__.splitlines()[0])
    parser.add_argument("name", nargs="?", help="experiment name (a file in experiments/catalogue/)")
    parser.add_argument("--list", action="store_true", help="list the catalogue and exit")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=None,
        help="multiply every duration and schedule time (EXPERIMENT_TIME_SCALE)",
    )
    parser.add_argument(
        "--profile",
        choices=("embedded", "services"),
        help="run on this profile instead of the catalogue file's (variants that name their own keep it)",
    )
    lab_mode = parser.add_mutually_exclusive_group()
    lab_mode.add_argument("--keep-lab", action="store_true", help="leave the lab running afterwards")
    lab_mode.add_argument("--down", action="store_true", help="stop the lab afterwards even if it was running before")
    args = parser.parse_args(argv)
    if args.list or not args.name:
        return catalogue_print()
    try:
        config = RunnerConfig.from_env()
        scale = args.time_scale if args.time_scale is not None else config.time_scale
        if scale <= 0:
            raise ValueError(f"--time-scale must be positive, got {scale:g}")
        experiment = experiment_load(name=args.name).scaled(scale)
        if args.profile:
            experiment = dataclasses.replace(experiment, profile=args.profile)
    except (CatalogueError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return experiment_run(experiment, config=config, keep_lab=args.keep_lab, force_down=args.down)


def experiment_run(experiment, *, config: RunnerConfig, keep_lab: bool, force_down: bool) -> int:
    # Imported here so `--list` and catalogue errors answer without loading Locust and matplotlib.
    from experiments.lab import Lab, LabConfig, LabError
    from experiments.runner.execute import Runner
    from experiments.runner.plots import plots_write, staircase_write
    from experiments.runner.progress import ProgressDisplay
    from experiments.runner.prom import PrometheusError
    from experiments.runner.report import artefacts_copy, report_write, slowest_traces
    from experiments.runner.results import results_build, results_write

    display = ProgressDisplay(experiment=experiment.name)
    lab = Lab(LabConfig.from_env())
    was_up = any(s.healthy for s in lab.status().values())
    runner = Runner(experiment, config=config, lab=lab, display=display)
    started = time.time()
    try:
        runs = runner.execute()
        display.phase("querying Prometheus and writing the report")
        results = results_build(
            experiment=experiment,
            run_id=runner.run_id,
            started_at=datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
            duration_s=time.time() - started,
            runs=runs,
            reports_dir=config.reports_dir,
        )
        start, end = min(r.window.t0 for r in runs), max(r.window.t1 for r in runs)
        plots = plots_write(prom=runner.prom, runs=runs, out_dir=runner.report_dir / "plots")
        traces = slowest_traces(lab.spans_file, start=start, end=end)
        artefacts_copy(
            lab_logs=lab.log_paths, alerts_file=lab.alerts_file, report_dir=runner.report_dir, start=start, end=end
        )
        if results.get("journey"):
            staircase = staircase_write(journey=results["journey"], out_dir=runner.report_dir / "plots")
            results["staircase"] = f"plots/{staircase.name}"
        results["plots"] = [f"plots/{p.path.name}" for p in plots]
        results_write(results, runner.report_dir)
        report = report_write(
            experiment=experiment, results=results, runs=runs, plots=plots, traces=traces, report_dir=runner.report_dir
        )
        latest_link_update(config.reports_dir, runner.run_id)
    except (LabError, PrometheusError, RuntimeError, OSError) as exc:
        display.phase(f"error: {exc}")
        print(f"the lab's logs are in {lab.lab_dir}; partial output in {runner.report_dir}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        display.phase("interrupted")
        return EXIT_ERROR
    finally:
        if force_down or not (was_up or keep_lab):
            why = "--down" if force_down else "it was not running before; --keep-lab leaves it up"
            display.phase(f"stopping the lab ({why})")
            lab.down()
    display.phase(f"report: {report}")
    for x in results["expectations"]:
        display.phase(f"{'PASS' if x['passed'] else 'FAIL'}  {x['description']}")
    display.phase("PASSED" if results["passed"] else "FAILED: an expectation did not hold")
    return 0 if results["passed"] else EXIT_FAILED_EXPECTATION


if __name__ == "__main__":
    sys.exit(main())
