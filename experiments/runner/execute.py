"""Run one catalogue experiment: lab, seed, warm-up, measured Locust runs with their schedule, report."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import requests

from experiments.lab import Lab
from experiments.runner import queries as q
from experiments.runner.catalogue import Experiment, Variant, journey_run_name, journey_step_of
from experiments.runner.config import DRAIN_TIMEOUT_S, PROGRESS_INTERVAL_S, RunnerConfig
from experiments.runner.labdriver import LabDriver, Schedule
from experiments.runner.loadgen import LocustProcess
from experiments.runner.measure import RunMeasurement, RunWindow, counters_read, run_measure
from experiments.runner.progress import ProgressDisplay
from experiments.runner.prom import Prometheus, PrometheusError
from experiments.runner.readback import ReadBackProbe

# A scrape happens every few seconds; waiting for one after the lab went quiet takes at most this.
SCRAPE_WAIT_S = 30.0
# Write-then-read checks per run of an experiment that expects read_your_writes.
READ_BACK_CYCLES = 10
WARMUP_PATHS = ("/", "/places/", "/api/places/", "/api/places/?q=pizza", "/api/places/popular/?limit=10&window=7d")


@dataclass(frozen=True)
class RunPlan:
    variant: Variant
    repeat: int
    users: int
    duration_s: float


def runs_plan(experiment: Experiment) -> list[RunPlan]:
    """A/B variants interleaved and alternated (A B, B A, ...) so drift over time hits every variant alike."""
    load = experiment.load
    if load.steps and len(experiment.variants) > 1:
        # A journey: the step load for each variant in turn (each one lever more than the one before).
        return [
            RunPlan(replace(v, name=journey_run_name(v.name, users)), 1, users, load.steps.step_s)
            for v in experiment.variants
            for users in load.steps.users()
        ]
    if load.steps:
        base = experiment.variants[0]
        return [
            RunPlan(replace(base, name=f"{users} users"), 1, users, load.steps.step_s) for users in load.steps.users()
        ]
    plans = []
    for repeat in range(1, experiment.repeats + 1):
        order = experiment.variants if repeat % 2 else tuple(reversed(experiment.variants))
        plans += [RunPlan(v, repeat, load.users, load.duration_s) for v in order]
    return plans


def run_id_for(experiment: Experiment, now: datetime | None = None) -> str:
    return f"{(now or datetime.now(UTC)).strftime('%Y%m%dT%H%M%SZ')}-{experiment.name}"


class Runner:
    def __init__(self, experiment: Experiment, *, config: RunnerConfig, lab: Lab, display: ProgressDisplay) -> None:
        self.experiment = experiment
        self.config = config
        self.lab = lab
        self.display = display
        self.driver = LabDriver(lab, display)
        self.prom = Prometheus(lab.prometheus_url)
        self.run_id = run_id_for(experiment)
        self.report_dir = config.reports_dir / self.run_id
        self.started_at = datetime.now(UTC)

    def execute(self) -> list[RunMeasurement]:
        self.report_dir.mkdir(parents=True, exist_ok=True)
        plans = runs_plan(self.experiment)
        if any(plan.variant.replica for plan in plans):
            self.lab.replica_preflight()
        measurements: list[RunMeasurement] = []
        broken: set[str | None] = set()
        for index, plan in enumerate(plans, 1):
            journey_step = journey_step_of(plan.variant.name)
            if journey_step in broken:
                continue
            label = f"run {index}/{len(plans)} {plan.variant.name}" + (
                f" #{plan.repeat}" if self.experiment.repeats > 1 else ""
            )
            measurement = self._run_one(plan, label=label, index=index)
            measurements.append(measurement)
            if self.experiment.load.steps and _step_broke(self.experiment, measurement):
                self.display.phase(f"{label}: the step broke (p95 or 5xx SLO); stopping the step load")
                if journey_step is None:
                    break
                broken.add(journey_step)
        return measurements

    # --- one measured run ---------------------------------------------------------------------------
    def _run_one(self, plan: RunPlan, *, label: str, index: int) -> RunMeasurement:
        variant = plan.variant
        profile = variant.profile or self.experiment.profile
        self.driver.ensure(
            profile=profile,
            pgbouncer=variant.pgbouncer,
            settings=variant.settings,
            proxy=variant.proxy,
            instances=variant.instances,
            replica=variant.replica,
        )
        self.driver.seed(self.experiment.seed)
        self.driver.faults_clear()
        ids_file = self.driver.place_ids(self.report_dir / f"place-ids-{profile}.txt")
        if not self.prom.ready():
            raise PrometheusError(f"Prometheus at {self.prom.url} is not ready")
        self.display.phase(f"{label}: waiting for the consumer to drain earlier work")
        self._drain()
        self.display.phase(f"{label}: warming up ({self.experiment.load.warmup_requests} requests)")
        self._warm_up(ids_file, self.experiment.load.warmup_requests)
        if self.experiment.load.warmup_s:
            self._warm_up_load(plan, ids_file=ids_file, label=label, index=index)
        jobs = q.SCRAPED_JOBS
        quiet = time.time()
        t0 = self.prom.wait_scrape_after(jobs, quiet, timeout_s=SCRAPE_WAIT_S)
        before = counters_read(self.prom)
        locust = self._locust(plan, ids_file=ids_file, index=index, duration_s=plan.duration_s)
        schedule = Schedule(self.driver, self.experiment.schedule)
        probe = self._read_back_probe(plan)
        self.display.phase(f"{label}: load {plan.users} users for {plan.duration_s:g} s")
        load_start = time.time()
        locust.start()
        schedule.start(load_start)
        if probe is not None:
            probe.start()
        rss_peak: dict[str, float] = {}
        samples: list[dict] = []
        last_update = 0.0
        try:
            while locust.running():
                locust.sample_cpu()
                now = time.time()
                if now - last_update >= PROGRESS_INTERVAL_S:
                    last_update = now
                    sample = self.driver.resources(since=load_start)
                    samples.append(sample.as_dict())
                    rss = sample.rss_mb
                    if sum(rss.values()) > sum(rss_peak.values()):
                        rss_peak = rss
                    p = locust.progress()
                    self.display.update(
                        run=label,
                        elapsed_s=now - load_start,
                        total_s=plan.duration_s,
                        rps=p.rps,
                        requests=p.requests,
                        failures=p.failures,
                        users=p.users,
                        cpu_percent=100.0 * sum(locust._cpu.values()) / max(now - load_start, 1e-9),
                        note=f"lab RSS {sum(rss.values()):.0f} MiB",
                    )
                time.sleep(0.5)
            result = locust.wait()
        finally:
            locust.stop()
            schedule.stop()
            read_back = probe.stop() if probe is not None else None
        load_end = time.time()
        if schedule.errors:
            raise RuntimeError("the fault schedule failed:\n" + "\n".join(schedule.errors))
        self.display.phase(
            f"{label}: {result.requests} requests, {result.throughput_rps:.1f} req/s, p95 {result.latency_ms['p95']:.0f} ms; draining"
        )
        drained = self._drain(since=before, sent=result.interactions_sent)
        t1 = self.prom.wait_scrape_after(jobs, time.time(), timeout_s=SCRAPE_WAIT_S)
        after = counters_read(self.prom)
        window = RunWindow(
            variant=variant.name,
            repeat=plan.repeat,
            users=plan.users,
            t0=t0,
            t1=t1,
            load_start=load_start,
            load_end=load_end,
            drained=drained,
            events=tuple(schedule.applied),
        )
        return run_measure(
            prom=self.prom,
            window=window,
            before=before,
            after=after,
            locust=result,
            alerts_file=self.lab.alerts_file,
            window_set=self.lab.config.window_set,
            lab_rss_mb=rss_peak,
            resource_samples=samples,
            read_back=read_back,
            database_url=self.lab.config.services_database_url if profile == "services" else "",
        )

    def _read_back_probe(self, plan: RunPlan) -> ReadBackProbe | None:
        """The read-your-writes check (readback.py) when an expectation asks for it: its cycles spread over the
        middle of the load, after the users have spawned and before they stop."""
        wanted = [x for x in self.experiment.expectations if x.type == "read_your_writes"]
        if not any(x.variant in (None, plan.variant.name) for x in wanted):
            return None
        return ReadBackProbe(
            self.lab.app_url,
            cycles=READ_BACK_CYCLES,
            delay_s=plan.duration_s * 0.2,
            interval_s=plan.duration_s * 0.6 / (READ_BACK_CYCLES - 1),
        )

    def _warm_up(self, ids_file: Path, count: int) -> None:
        ids = ids_file.read_text().split()
        session = requests.Session()
        paths = [*WARMUP_PATHS, *(f"/api/places/{i}/" for i in ids[:5]), *(f"/places/{i}/" for i in ids[:5])]
        for n in range(count):
            path = paths[n % len(paths)] if n < len(paths) else random.choice(paths)
            try:
                session.get(self.lab.app_url + path, timeout=10)
            except requests.RequestException:
                continue

    def _locust(
        self, plan: RunPlan, *, ids_file: Path, index: int, duration_s: float, suffix: str = ""
    ) -> LocustProcess:
        """The experiment's load for this run, as a Locust process writing its files under the report's locust/."""
        load = self.experiment.load
        return LocustProcess(
            host=self.lab.app_url,
            users=plan.users,
            spawn_rate=load.spawn_rate,
            duration_s=duration_s,
            mix=load.mix,
            wait_ms=load.wait_ms,
            processes=load.processes,
            place_ids_file=ids_file,
            out_dir=self.report_dir / "locust",
            prefix=f"{index:02d}-{_slug(plan.variant.name)}-{plan.repeat}{suffix}",
        )

    def _warm_up_load(self, plan: RunPlan, *, ids_file: Path, label: str, index: int) -> None:
        """The experiment's own load for `warmup_s`, unmeasured (its Locust files are kept, marked warm-up)."""
        warmup_s = self.experiment.load.warmup_s
        self.display.phase(f"{label}: warm-up load, {plan.users} users for {warmup_s:g} s (not measured)")
        warm = self._locust(plan, ids_file=ids_file, index=index, duration_s=warmup_s, suffix="-warmup")
        warm.start()
        try:
            while warm.running():
                time.sleep(0.5)
            result = warm.wait()
        finally:
            warm.stop()
        self.display.phase(
            f"{label}: warm-up done: {result.requests} requests, {result.throughput_rps:.1f} req/s, "
            f"p95 {result.latency_ms['p95']:.0f} ms; draining"
        )
        self._drain()

    def _drain(self, *, since: dict[str, float] | None = None, sent: int = 0) -> bool:
        """Wait until the inbox and the queue are empty and, after a run, the interactions recorded since
        `since` reach the number the app accepted (its 202s; Locust's count is at most that). Returns False
        when that did not happen within DRAIN_TIMEOUT_S: the report then shows the shortfall."""
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        jobs = q.SCRAPED_JOBS
        while True:
            self.prom.wait_scrape_after(jobs, time.time(), timeout_s=SCRAPE_WAIT_S)
            backlog = self.prom.scalar(q.INBOX_BACKLOG) + self.prom.scalar(q.QUEUE_DEPTH)
            recorded = sent
            if since is not None:
                counters = counters_read(self.prom)
                recorded = counters["interactions_recorded"] - since["interactions_recorded"]
                sent = max(sent, round(counters["interactions_accepted"] - since["interactions_accepted"]))
            if backlog == 0 and recorded >= sent:
                return True
            if time.monotonic() > deadline:
                self.display.phase(
                    f"drain not finished after {DRAIN_TIMEOUT_S:g} s: backlog {backlog:g}, recorded {recorded:g} of {sent}"
                )
                return False


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")


def _step_broke(experiment: Experiment, m: RunMeasurement) -> bool:
    """A capacity step breaks when its p95 exceeds the experiment's p95 bound or 5xx exceed the SLO budget."""
    from experiments.runner.results import step_limits

    p95_limit_ms, error_limit = step_limits(experiment)
    return m.locust.latency_ms["p95"] > p95_limit_ms or m.error_ratio_5xx > error_limit
