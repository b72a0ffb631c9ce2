"""`make stack-test`: the compose stack built, started and checked for real (podman here, Docker where it runs).

    python -m compose.stack_test [--keep] [--scale N]

A project of its own (`chowist-stacktest`), free host ports and throwaway secrets, so it runs beside a user's
stack and a native lab. Each check prints one line; the first failure stops the run with its reason. The
containers and volumes it made are removed at the end (kept with --keep, for a look: `--keep` prints how).

Checks, in order:
1. the app answers through nginx (a page, its static file);
2. the consumer drains an interaction posted through nginx (chowist_interactions_recorded_total rises);
3. the replica streams from the primary (pg_stat_replication, pg_is_in_recovery) and the app reads from it
   (chowist_db_read_routes_total{database="replica"});
4. Prometheus scrapes every job it is configured with, each target up == 1, and has loaded every group of the
   generated rule files;
5. a burst of requests through nginx is counted exactly by the edge SLI's source (mtail) and the app's;
6. stopped app and consumer containers fire the availability page alert and ChowistTargetDown (the consumer's)
   in Alertmanager;
7. `down` keeps the named volumes, and a second `up` finds the data;
and with --scale 2 or more, before 6: a rolling restart of the app replicas serves no 5xx through nginx.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

from compose import stack
from experiments.lab.procs import free_port
from monitoring.config import CONFIG, RULES_DIR

PROJECT = "chowist-stacktest"
STATE_DIR = stack.ROOT / "var" / "stack-test"
BURST = 300
BURST_PATH = "/"
# How long nginx keeps its answer for `app` (compose/nginx/nginx.conf's `resolver ... valid=`).
NGINX_DNS_VALID_S = int(
    re.search(r"^\s*resolver \S+ valid=(\d+)s", (stack.COMPOSE_DIR / "nginx" / "nginx.conf").read_text(), re.M).group(1)
)


class CheckFailed(AssertionError):
    pass


@dataclass(frozen=True)
class Ports:
    nginx: int
    prometheus: int
    alertmanager: int


def _http(url: str, data: bytes | None = None, timeout: float = 10) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"} if data is not None else {}
    request = urllib.request.Request(url, data=data, headers=headers)  # noqa: S310 - our own http://127.0.0.1 URLs
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _until(what: str, probe: Callable[[], object], timeout_s: float, period_s: float = 1.0) -> object:
    """probe() until it returns something truthy; CheckFailed naming `what` and its last answer otherwise."""
    deadline = time.monotonic() + timeout_s
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except (OSError, ValueError, KeyError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(period_s)
    raise CheckFailed(f"{what}: not within {timeout_s:.0f} s (last: {last!r})")


class StackTest:
    def __init__(self, engine: stack.Engine, scale: int, reuse: bool = False) -> None:
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        env_file = STATE_DIR / "test.env"
        if not reuse:
            self._write_env_file(env_file)
        settings = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
        self.ports = Ports(
            int(settings["NGINX_PORT"]), int(settings["PROMETHEUS_PORT"]), int(settings["ALERTMANAGER_PORT"])
        )
        self.scale = scale
        self.stack = stack.Stack(engine, PROJECT, env_file)
        self.nginx = f"http://127.0.0.1:{self.ports.nginx}"
        self.prometheus = f"http://127.0.0.1:{self.ports.prometheus}"
        self.alertmanager = f"http://127.0.0.1:{self.ports.alertmanager}"

    @staticmethod
    def _write_env_file(path: Path) -> None:
        """compose/.env.example with throwaway secrets for every change-me and free host ports."""
        ports = {
            name: str(free_port()) for name in ("NGINX_PORT", "PROMETHEUS_PORT", "ALERTMANAGER_PORT", "GRAFANA_PORT")
        }
        lines = []
        for line in (stack.COMPOSE_DIR / ".env.example").read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and not line.startswith("#"):
                if "change-me" in value and key != "EMAIL_URL":
                    value = secrets.token_hex(16)
                value = ports.get(key, value)
            lines.append(f"{key}{sep}{value}" if sep else line)
        path.write_text("\n".join(lines) + "\n")

    # --- helpers ----------------------------------------------------------------------------------------
    def exec(self, service: str, *argv: str) -> str:
        result = self.stack.compose("exec", "-T", service, *argv, capture=True, timeout=300)
        if result.returncode != 0:
            raise CheckFailed(f"{service}: {' '.join(argv)} failed: {result.stdout}{result.stderr}")
        return result.stdout.strip()

    def psql(self, service: str, sql: str) -> str:
        # Over the unix socket, which pg_hba.conf trusts (the network needs the password).
        return self.exec(service, "psql", "-U", "chowist", "-d", "chowist", "-tAc", sql)

    def query(self, expr: str) -> float | None:
        """The value of a scalar-like PromQL expression (None when it has no sample)."""
        url = f"{self.prometheus}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
        status, body = _http(url)
        if status != 200:
            raise CheckFailed(f"Prometheus answered {status} to {expr}: {body[:300]!r}")
        result = json.loads(body)["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    def ok(self, message: str) -> None:
        print(f"ok   {message}", flush=True)

    # --- checks -----------------------------------------------------------------------------------------
    def app_through_nginx(self) -> None:
        status, body = _http(f"{self.nginx}{BURST_PATH}")
        if status != 200:
            raise CheckFailed(f"GET {BURST_PATH} through nginx: {status} {body[:300]!r}")
        status, _ = _http(f"{self.nginx}/static/admin/css/base.css")
        if status != 200:
            raise CheckFailed(f"a static file through nginx (collectstatic's output on the shared volume): {status}")
        self.ok(f"the app answers through nginx on 127.0.0.1:{self.ports.nginx} (a page and a static file)")

    def seed(self) -> int:
        """A few demo places on the primary; returns one place's id."""
        self.exec("app", "python", "manage.py", "seed_demo", "--places", "5", "--users", "3", "--reviews", "5")
        return int(self.psql("postgres", "SELECT min(id) FROM places_place"))

    def consumer_drains(self, place_id: int) -> None:
        metric = f"sum({CONFIG.metrics.interactions_recorded})"
        before = self.query(metric) or 0.0
        status, body = _http(f"{self.nginx}/api/places/{place_id}/interactions/", data=b'{"kind": "like"}')
        if status != 202:
            raise CheckFailed(f"POST an interaction through nginx: {status} {body[:300]!r}")
        _until("the consumer records the interaction", lambda: (self.query(metric) or 0.0) > before, 60)
        self.ok("the consumer drained an interaction posted through nginx (chowist_interactions_recorded_total)")

    def replica_streams(self) -> None:
        streaming = self.psql("postgres", "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
        if streaming != "1":
            raise CheckFailed(f"pg_stat_replication on the primary: {streaming} streaming standbys, not 1")
        if self.psql("postgres-replica", "SELECT pg_is_in_recovery()") != "t":
            raise CheckFailed("postgres-replica is not in recovery (not a standby)")
        primary = self.psql("postgres", "SELECT count(*) FROM places_place")
        _until(
            "the replica has the primary's rows",
            lambda: self.psql("postgres-replica", "SELECT count(*) FROM places_place") == primary,
            30,
        )
        routes = f'sum({CONFIG.metrics.db_read_routes}{{database="replica"}})'
        for _ in range(20):
            _http(f"{self.nginx}/places/")
        _until("the app reads from the replica", lambda: (self.query(routes) or 0.0) > 0, 30)
        self.ok(
            "the replica streams from the primary (pg_stat_replication, pg_is_in_recovery) and the app reads from it"
        )

    def prometheus_up(self) -> None:
        config = yaml.safe_load((stack.ROOT / "prometheus" / "prometheus.compose.yml").read_text())
        jobs = {job["job_name"] for job in config["scrape_configs"]}

        def all_up() -> dict[str, list[str]] | None:
            _, body = _http(f"{self.prometheus}/api/v1/targets")
            targets = json.loads(body)["data"]["activeTargets"]
            by_job: dict[str, list[str]] = {}
            for target in targets:
                by_job.setdefault(target["labels"]["job"], []).append(target["health"])
            if set(by_job) == jobs and all(h == "up" for healths in by_job.values() for h in healths):
                return by_job
            return None

        by_job = _until("every scrape job up", all_up, 90, period_s=2)
        down = self.query("count(up == 0)")
        if down:
            raise CheckFailed(f"{down:.0f} targets have up == 0")
        _, body = _http(f"{self.prometheus}/api/v1/rules")
        loaded = {(group["file"].rsplit("/", 1)[-1], group["name"]) for group in json.loads(body)["data"]["groups"]}
        expected = {
            (path.name, group["name"])
            for path in sorted(RULES_DIR.glob("*.yml"))
            for group in yaml.safe_load(path.read_text())["groups"]
        }
        if missing := expected - loaded:
            raise CheckFailed(f"rule groups Prometheus has not loaded: {sorted(missing)}")
        counts = ", ".join(f"{job} {len(healths)}" for job, healths in sorted(by_job.items()))
        self.ok(f"Prometheus: every target up ({counts}); {len(expected)} generated rule groups loaded")

    def burst_counts_agree(self) -> None:
        edge = f"sum({CONFIG.metrics.edge_responses}{{{CONFIG.edge_selector}}})"
        app = f"sum({CONFIG.metrics.http_requests}{{{CONFIG.app_selector},{CONFIG.user_facing_selector}}})"
        time.sleep(2 * 5)  # earlier requests scraped: the baseline is settled
        before = (self.query(edge) or 0.0, self.query(app) or 0.0)

        def one(_: int) -> int:
            return _http(f"{self.nginx}{BURST_PATH}")[0]

        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(one, range(BURST)))
        took = time.monotonic() - started
        answered = {code: statuses.count(code) for code in sorted(set(statuses))}
        if answered != {200: BURST}:
            raise CheckFailed(f"the burst's answers: {answered}")

        def counted() -> tuple[float, float] | None:
            now = (self.query(edge) or 0.0) - before[0], (self.query(app) or 0.0) - before[1]
            return now if now == (BURST, BURST) else None

        try:
            _until("the edge and the app count the burst", counted, 40, period_s=2)
        except CheckFailed as exc:
            got = ((self.query(edge) or 0.0) - before[0], (self.query(app) or 0.0) - before[1])
            raise CheckFailed(f"client sent {BURST}; edge (mtail) and app counted {got}") from exc
        self.ok(f"a burst of {BURST} requests ({BURST / took:.0f}/s): the edge (mtail) and the app count {BURST} each")

    def rolling_restart_serves_no_5xx(self) -> None:
        """Restart the app replicas one at a time under steady traffic through nginx, each back to healthy and
        in nginx's view of `app` (its DNS answer expired) before the next: no 5xx (nginx hands a refused connection
        to the next replica)."""
        tool = "podman" if self.stack.engine.podman else "docker"
        ids = self.stack.compose("ps", "-q", "app", capture=True).stdout.split()
        if len(ids) < 2:
            raise CheckFailed(f"a rolling restart needs two app replicas or more, found {len(ids)}")
        statuses: list[int] = []
        stop = threading.Event()

        def load() -> None:
            while not stop.is_set():
                try:
                    statuses.append(_http(f"{self.nginx}{BURST_PATH}", timeout=30)[0])
                except OSError:
                    statuses.append(0)
                time.sleep(0.02)

        threads = [threading.Thread(target=load, daemon=True) for _ in range(2)]
        for thread in threads:
            thread.start()
        try:
            for container in ids:
                stack._run([tool, "restart", "-t", "30", container], env=self.stack.env, capture_output=True)
                self.stack.wait_healthy(deadline=time.monotonic() + 120)
                # nginx re-resolves `app` once its answer expires: until then it may know only the replica restarted
                # next (the other one was out of DNS while it restarted), and a refused connection has no next.
                time.sleep(NGINX_DNS_VALID_S + 2)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=60)
        failed = {code: statuses.count(code) for code in set(statuses) if code == 0 or code >= 500}
        if failed:
            raise CheckFailed(f"rolling restart of {len(ids)} replicas: {failed} of {len(statuses)} requests failed")
        self.ok(f"rolling restart of {len(ids)} app replicas: {len(statuses)} requests through nginx, no 5xx")

    def stopped_containers_alert(self) -> None:
        """The app and the consumer stopped: the availability page alert (nginx's 502s at the edge) and
        ChowistTargetDown for the consumer. Prometheus finds the app's replicas through DNS (`--scale`), so a
        stopped replica leaves the target list instead of reading up == 0; the consumer is a static target."""
        tool = "podman" if self.stack.engine.podman else "docker"
        for service in ("app", "worker"):
            ids = self.stack.compose("ps", "-q", service, capture=True).stdout.split()
            stack._run([tool, "stop", "-t", "5", *ids], env=self.stack.env, capture_output=True)
        wanted = {("ChowistTargetDown", CONFIG.jobs.worker), (CONFIG.slos.availability.page_alert, None)}
        seen: set[tuple[str, str | None]] = set()

        def fired() -> bool:
            for _ in range(10):  # traffic nginx answers with 502 while no replica is up
                _http(f"{self.nginx}{BURST_PATH}")
            _, body = _http(f"{self.alertmanager}/api/v2/alerts?active=true")
            for alert in json.loads(body):
                seen.add((alert["labels"]["alertname"], alert["labels"].get("job")))
            return wanted <= seen

        started = time.monotonic()
        _until(f"Alertmanager receives {sorted(wanted, key=str)}", fired, 150, period_s=2)
        names = ", ".join(f"{name}{f'{{job={job}}}' if job else ''}" for name, job in sorted(wanted, key=str))
        self.ok(f"app and consumer stopped: {names} active in Alertmanager after {time.monotonic() - started:.0f} s")

    def volumes_keep_data(self) -> None:
        before = self.psql("postgres", "SELECT count(*) FROM places_place")
        self.stack.down(volumes=False)
        listed = stack._run(
            ["podman" if self.stack.engine.podman else "docker", "volume", "ls", "-q"],
            env=self.stack.env,
            capture_output=True,
        ).stdout.split()
        if f"{PROJECT}_postgres-data" not in listed:
            raise CheckFailed(f"`down` removed the postgres-data volume: {listed}")
        took = self.stack.up(scale=self.scale)
        after = self.psql("postgres", "SELECT count(*) FROM places_place")
        if after != before:
            raise CheckFailed(f"places after down and up: {after}, before: {before}")
        self.app_through_nginx()
        self.ok(f"down kept the named volumes; the second up ({took:.0f} s) found the {before} places")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compose.stack_test", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=1, help="app replicas (default 1)")
    parser.add_argument("--keep", action="store_true", help="leave the stack running at the end")
    parser.add_argument("--reuse", action="store_true", help="check the stack a --keep run left (no build, no up)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        engine = stack.Engine(podman=False) if stack.docker_reachable() else stack.start_serve(STATE_DIR)
        test = StackTest(engine, args.scale, reuse=args.reuse)
        if not args.reuse:
            test.stack.down(volumes=True)  # what an interrupted run left
            build_started = time.monotonic()
            test.stack.build()
            print(f"images built in {time.monotonic() - build_started:.0f} s", flush=True)
            took = test.stack.up(scale=args.scale)
            test.ok(
                f"stack up and healthy in {took:.0f} s ({'podman' if engine.podman else 'Docker'}, app x{args.scale})"
            )
        test.app_through_nginx()
        place = test.seed()
        test.consumer_drains(place)
        test.replica_streams()
        test.prometheus_up()
        test.burst_counts_agree()
        if args.scale >= 2:
            test.rolling_restart_serves_no_5xx()
        test.stopped_containers_alert()
        test.volumes_keep_data()
    except (CheckFailed, stack.StackError) as exc:
        print(f"FAIL {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        if "test" in locals():
            if args.keep:
                print(f"kept: {' '.join(test.stack.engine.compose_argv(PROJECT, test.stack.env_file))} ps")
            else:
                test.stack.down(volumes=True)
        if not args.keep and "engine" in locals() and engine.podman:
            stack.stop_serve(STATE_DIR)
        print(f"stack test took {time.monotonic() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
