"""What the runner asks of the native lab: the right profile and settings, seed data, faults, its memory."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from experiments.lab import Lab, LabError
from experiments.lab.config import DEFAULT_PROXY
from experiments.runner.catalogue import Event, Seed
from experiments.runner.progress import ProgressDisplay
from experiments.runner.resources import ResourceSample, resource_sample

SEED_TIMEOUT_S = 900
# Place ids the Locust users pick from; more than any seed in the catalogue gives them variety.
PLACE_IDS_LIMIT = 5000
_PLACE_IDS = (
    "from chowist.places.models import Place; "
    f"print('\\n'.join(str(i) for i in Place.objects.order_by('id').values_list('id', flat=True)[:{PLACE_IDS_LIMIT}]))"
)


class LabDriver:
    def __init__(self, lab: Lab, display: ProgressDisplay) -> None:
        self.lab = lab
        self.display = display
        self.layout: tuple[str, bool, str, int, bool] | None = None
        self.settings: dict[str, str] | None = None
        # The database is the profile's (and pgbouncer's): nginx, instances and the replica share it.
        self.seeded: set[str] = set()

    def ensure(
        self,
        *,
        profile: str,
        pgbouncer: bool,
        settings: dict[str, str],
        proxy: str = DEFAULT_PROXY,
        instances: int = 1,
        replica: bool = False,
    ) -> None:
        """The lab runs this layout (profile, pgbouncer, proxy, instances, replica) and the app and consumer run
        `settings`."""
        layout = (profile, pgbouncer, proxy, instances, replica)
        if self.layout != layout:
            fresh = not any(s.healthy for s in self.lab.status().values())
            shape = dict(profile=profile, pgbouncer=pgbouncer, proxy=proxy, app_instances=instances, replica=replica)
            described = " + ".join(
                [profile]
                + (["pgbouncer"] if pgbouncer else [])
                + ([proxy] if proxy != "none" else [])
                + ([f"{instances} app instances"] if instances > 1 else [])
                + (["read replica"] if replica else [])
            )
            self.display.phase(f"starting the lab: {described}")
            try:
                self.lab.up(app_env=settings, **shape)
            except LabError as exc:
                if "down" not in str(exc):
                    raise
                self.display.phase("the lab runs another layout: stopping it first")
                self.lab.down()
                self.lab.up(app_env=settings, **shape)
                fresh = True
            self.layout = layout
            self.settings = dict(settings) if fresh else None
        if self.settings != settings:
            shown = ", ".join(f"{k}={v}" for k, v in settings.items()) or "defaults"
            self.display.phase(f"restarting app and consumer with {shown}")
            for component in ("app", "worker"):
                self.lab.restart(component, app_env=settings)
            self.settings = dict(settings)
        self.check_running()

    def check_running(self) -> None:
        broken = [s.describe() for s in self.lab.status().values() if not s.healthy]
        if broken:
            raise LabError("lab components are not running:\n" + "\n".join(broken))

    def seed(self, seed: Seed) -> None:
        """Seed once per profile per invocation; seed_demo is idempotent, so a re-used database is fine."""
        if self.layout is not None and self.layout[0] in self.seeded:
            return
        self.display.phase(f"seeding (idempotent): {' '.join(seed.args())}")
        result = self.lab.manage("seed_demo", *seed.args(), check=False, timeout_s=SEED_TIMEOUT_S)
        if result.returncode != 0:
            raise LabError(f"manage.py seed_demo failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
        # The account the Locust `upload` task logs in with.
        result = self.lab.manage("seed_editor", check=False, timeout_s=SEED_TIMEOUT_S)
        if result.returncode != 0:
            raise LabError(f"manage.py seed_editor failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
        if self.layout is not None:
            self.seeded.add(self.layout[0])

    def place_ids(self, path: Path) -> Path:
        result = self.lab.manage("shell", "--no-imports", "-c", _PLACE_IDS, check=False, timeout_s=120)
        ids = [line for line in result.stdout.split() if line.isdigit()]
        if result.returncode != 0 or not ids:
            raise LabError(f"could not read place ids from the lab's database:\n{result.stderr[-2000:]}")
        path.write_text("\n".join(ids) + "\n")
        return path

    def fault(self, event: Event) -> None:
        if event.deploy:
            seconds = self.lab.rolling_restart(careless=event.deploy == "careless")
            self.display.phase(f"deploy ({event.deploy}) took {seconds:.1f} s")
            return
        if event.fault:
            args = ["fault", "set", event.fault]
            if event.value is not None:
                args += ["--value", f"{event.value:g}"]
            if event.views:
                args += ["--views", ",".join(event.views)]
        else:
            args = ["fault", "clear", str(event.clear)]
        result = self.lab.manage(*args, check=False, timeout_s=60)
        if result.returncode != 0:
            raise LabError(f"manage.py {' '.join(args)} failed:\n{result.stderr[-2000:]}")

    def faults_clear(self) -> None:
        self.lab.manage("fault", "clear-all", check=False, timeout_s=60)

    def resources(self, *, since: float) -> ResourceSample:
        """RSS and open files per lab component, the app's multiprocess files, the span file and the logs."""
        pids = {name: pid for name in self.lab.status() if (pid := self.lab.pid(name))}
        var_dir, lab_dir = self.lab.config.var_dir, self.lab.lab_dir
        return resource_sample(
            pids=pids,
            since=since,
            multiproc_dir=lab_dir / "metrics-multiproc" / "app",
            # lab_dir's top level holds every component's log.
            files={"spans": var_dir / "spans.jsonl", "lab_logs": lab_dir},
        )

    def rss_mb(self) -> dict[str, float]:
        """Resident memory of each lab component with its children (gunicorn workers, forks)."""
        out = {}
        for name in self.lab.status():
            pid = self.lab.pid(name)
            if not pid:
                continue
            try:
                root = psutil.Process(pid)
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
            total = 0
            for p in procs:
                try:
                    total += p.memory_info().rss
                except psutil.NoSuchProcess:
                    continue
            out[name] = total / 2**20
        return out


@dataclass
class Schedule:
    """Faults switched on and off at their seconds into the load, on timers so the load never waits."""

    driver: LabDriver
    events: tuple[Event, ...]
    applied: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _timers: list[threading.Timer] = field(default_factory=list)
    _origin: float = 0.0

    def start(self, origin: float) -> None:
        self._origin = origin
        for event in self.events:
            timer = threading.Timer(max(0.0, origin + event.at_s - time.time()), self._apply, args=(event,))
            timer.daemon = True
            timer.start()
            self._timers.append(timer)

    def _apply(self, event: Event) -> None:
        requested = time.time()
        try:
            self.driver.fault(event)
        except LabError as exc:
            self.errors.append(str(exc))
            return
        what = (
            f"{event.fault} on" if event.fault else (f"{event.deploy} deploy" if event.deploy else f"{event.clear} off")
        )
        if event.value is not None:
            what += f" ({event.value:g})"
        self.applied.append(
            {
                "at_s": event.at_s,
                "applied_s": round(time.time() - self._origin, 1),
                "requested_unix": requested,
                "applied_unix": time.time(),
                "what": what,
                # The app instances restart: their counters start again from 0 (results.py reads this).
                "deploy": event.deploy or "",
            }
        )
        self.driver.display.phase(f"schedule: {what} at {time.time() - self._origin:.0f} s")

    def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        for timer in self._timers:
            timer.join(timeout=60)
        if self.events:
            self.driver.faults_clear()
