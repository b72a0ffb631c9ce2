"""Run compose/docker-compose.yml for real: with Docker as it is, or with podman configured for this machine.

    python -m compose.stack up [--profile ui] [--scale N]   # make stack-up
    python -m compose.stack down [--volumes]               # make stack-down (named volumes kept unless --volumes)
    python -m compose.stack build                          # the images only

With a Docker engine reachable, `up` runs `docker-compose up -d --build`. Without one, podman (Debian's 4.3) stands
in for it through its Docker-compatible API, which Debian's docker-compose talks to. Four things make that work on
a machine like this one, each done here rather than by hand:

- a containers.conf (var/stack/containers.conf, pointed to by CONTAINERS_CONF): no default ulimits (setting
  RLIMIT_NOFILE/NPROC is denied), runc (crun refuses cgroups in hybrid mode), the cgroupfs manager (no systemd);
- the base image `debian:bookworm-slim` every Dockerfile starts from, made from Debian's packages by mmdebstrap
  when no registry provides it;
- the images built by `podman build` from the compose file's own `build:` sections, the app's from a wheelhouse
  of requirements/app.txt downloaded on the host (pip inside a build has no CA bundle for the index here);
- one background process (`serve`) running podman's API socket and, because podman schedules healthchecks with
  systemd timers and there is no systemd here, running every container's healthcheck itself
  (`podman healthcheck run`), so `depends_on: condition: service_healthy` and the health states mean what they do
  under Docker.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

COMPOSE_DIR = Path(__file__).resolve().parent
ROOT = COMPOSE_DIR.parent
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
STATE_DIR = ROOT / "var" / "stack"
WHEELS_DIR = COMPOSE_DIR / "wheels"
# The app's lock, and what Debian 12's Python needs beyond it (compose/Dockerfile installs both).
APP_LOCKS = (ROOT / "requirements" / "app.txt", ROOT / "requirements" / "debian-python.txt")
BASE_IMAGE = "docker.io/library/debian:bookworm-slim"
# The release the Dockerfiles name; mmdebstrap builds it from deb.debian.org when no registry has the image.
BASE_SUITE = "bookworm"
# What podman needs beyond itself: docker-compose to drive its API, mmdebstrap for the base image, the dnsname CNI
# plugin so containers find each other by service name.
PODMAN_PACKAGES = ("podman", "runc", "docker-compose", "mmdebstrap", "golang-github-containernetworking-plugin-dnsname")
CNI_DNSNAME = Path("/usr/lib/cni/dnsname")
CONTAINERS_CONF = """# Written by compose/stack.py: podman on a machine without systemd whose kernel refuses rlimit changes.
[containers]
default_ulimits = []

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
"""
# How often `serve` runs the healthchecks: the shortest interval compose gives one (5 s) would do; 3 s lets a
# dependency chain start sooner.
HEALTH_PERIOD_S = 3.0


class StackError(RuntimeError):
    """A step of bringing the stack up or down failed; the message says which and why."""


@dataclass
class Engine:
    """How docker-compose reaches a container engine: Docker as configured, or the podman service of `serve`."""

    podman: bool
    env: dict[str, str] = field(default_factory=dict)

    def compose_argv(self, project: str, env_file: Path) -> list[str]:
        compose = shutil.which("docker-compose")
        if compose is None:
            raise StackError("docker-compose not found: apt-get install --no-install-recommends docker-compose")
        return [
            compose,
            "--project-directory",
            str(COMPOSE_DIR),
            "--project-name",
            project,
            "--env-file",
            str(env_file),
            "-f",
            str(COMPOSE_FILE),
        ]


def _run(argv: Sequence[str], env: dict[str, str] | None = None, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), env=env, text=True, check=False, **kwargs)


def docker_reachable() -> bool:
    docker = shutil.which("docker")
    return docker is not None and _run([docker, "info"], capture_output=True, timeout=30).returncode == 0


def podman_env(state_dir: Path = STATE_DIR) -> dict[str, str]:
    """The environment podman and docker-compose run in: the containers.conf written, DOCKER_HOST at `serve`'s
    socket."""
    state_dir.mkdir(parents=True, exist_ok=True)
    conf = state_dir / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    return {
        **os.environ,
        "CONTAINERS_CONF": str(conf),
        "DOCKER_HOST": f"unix://{socket_path(state_dir)}",
        # docker-compose 1.29 would try BuildKit's CLI for `build`; the images are built by podman anyway.
        "COMPOSE_DOCKER_CLI_BUILD": "0",
    }


def socket_path(state_dir: Path = STATE_DIR) -> Path:
    return state_dir / "podman.sock"


def check_podman_prerequisites() -> None:
    missing = [name for name in ("podman", "runc", "docker-compose", "mmdebstrap") if shutil.which(name) is None]
    if not CNI_DNSNAME.exists():
        missing.append("the dnsname CNI plugin")
    if missing:
        raise StackError(
            f"podman cannot run the stack here: missing {', '.join(missing)}.\n"
            f"       apt-get install --no-install-recommends {' '.join(PODMAN_PACKAGES)}"
        )


def ensure_base_image(env: dict[str, str]) -> None:
    """`debian:bookworm-slim` from a registry when one answers, else from Debian's packages (mmdebstrap)."""
    if _run(["podman", "image", "exists", BASE_IMAGE], env=env).returncode == 0:
        return
    with tempfile.TemporaryDirectory(prefix="chowist-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs.tar"
        print(f"building {BASE_IMAGE} with mmdebstrap (about a minute)", flush=True)
        built = _run(["mmdebstrap", "--variant=minbase", "--include=ca-certificates", BASE_SUITE, str(rootfs)], env=env)
        if built.returncode != 0:
            raise StackError(f"mmdebstrap could not build the {BASE_SUITE} root file system")
        imported = _run(["podman", "import", str(rootfs), BASE_IMAGE], env=env, capture_output=True)
        if imported.returncode != 0:
            raise StackError(f"podman import failed: {imported.stderr.strip()}")


def download_wheels(dest: Path = WHEELS_DIR) -> None:
    """The wheels of the app's locks for the image's Python (Debian 12's 3.11 on x86-64), hash-checked."""
    argv = [sys.executable, "-m", "pip", "download", "--quiet", "--require-hashes", "--no-deps"]
    argv += ["--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp", "--dest", str(dest)]
    for platform in ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64", "any"):
        argv += ["--platform", platform]
    for lock in APP_LOCKS:
        result = _run([*argv, "-r", str(lock)], capture_output=True)
        if result.returncode != 0:
            raise StackError(f"pip download of {lock.name} failed:\n{result.stderr[-2000:]}")


@dataclass(frozen=True)
class ImageBuild:
    image: str
    context: Path
    dockerfile: Path


def image_builds(compose_config: dict[str, Any]) -> list[ImageBuild]:
    """One build per image the compose file builds (app, worker and migrate share one), in file order."""
    builds: dict[str, ImageBuild] = {}
    for service in compose_config["services"].values():
        build = service.get("build")
        if build and service["image"] not in builds:
            context = Path(build["context"])
            builds[service["image"]] = ImageBuild(
                service["image"], context, context / build.get("dockerfile", "Dockerfile")
            )
    return list(builds.values())


def build_images(engine: Engine, compose_config: dict[str, Any]) -> None:
    for build in image_builds(compose_config):
        argv = ["podman", "build", "--quiet", "--layers", "-t", build.image, "-f", str(build.dockerfile)]
        ignore = build.dockerfile.with_name(build.dockerfile.name + ".dockerignore")
        if ignore.exists():
            argv += ["--ignorefile", str(ignore)]
        started = time.monotonic()
        result = _run([*argv, str(build.context)], env=engine.env, capture_output=True)
        if result.returncode != 0:
            raise StackError(f"building {build.image} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
        print(f"built {build.image} in {time.monotonic() - started:.0f} s", flush=True)


# --- the podman service and its healthchecks --------------------------------------------------------------


def run_healthchecks(env: dict[str, str], last_run: dict[str, float]) -> None:
    """One round of podman's systemd timers: each running container's healthcheck, every HEALTH_PERIOD_S while it
    is starting and at its own interval once it is healthy or unhealthy."""
    ids = _run(["podman", "ps", "-q", "--no-trunc"], env=env, capture_output=True).stdout.split()
    if not ids:
        return
    inspected = _run(["podman", "inspect", *ids], env=env, capture_output=True)
    now = time.monotonic()
    for container in json.loads(inspected.stdout or "[]"):
        check = container.get("Config", {}).get("Healthcheck") or {}
        if not check.get("Test") or check["Test"][0] == "NONE":
            continue
        status = (container["State"].get("Health") or container["State"].get("Healthcheck") or {}).get("Status")
        interval_s = (check.get("Interval") or 30_000_000_000) / 1e9 if status != "starting" else HEALTH_PERIOD_S
        if now - last_run.get(container["Id"], 0.0) >= interval_s:
            last_run[container["Id"]] = now
            _run(["podman", "healthcheck", "run", container["Id"]], env=env, capture_output=True, timeout=60)


def serve(state_dir: Path = STATE_DIR) -> None:
    """podman's API on the socket docker-compose uses, and the healthcheck loop, until SIGTERM/SIGINT."""
    env = podman_env(state_dir)
    sock = socket_path(state_dir)
    sock.unlink(missing_ok=True)
    service = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{sock}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(state_dir / "podman-service.log").open("ab"),
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    last_run: dict[str, float] = {}
    try:
        while not stop.wait(HEALTH_PERIOD_S) and service.poll() is None:
            try:
                run_healthchecks(env, last_run)
            except (subprocess.SubprocessError, ValueError) as exc:
                print(f"healthcheck round failed: {exc}", file=sys.stderr, flush=True)
    finally:
        service.terminate()
        try:
            service.wait(timeout=10)
        except subprocess.TimeoutExpired:
            service.kill()


def _serve_pid(state_dir: Path) -> int | None:
    try:
        pid = int((state_dir / "serve.pid").read_text())
    except (OSError, ValueError):
        return None
    try:
        # Reap it first when it is this process's child (the stack test's): a zombie still answers kill(pid, 0).
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return None
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except OSError:
        return None
    return pid


def start_serve(state_dir: Path = STATE_DIR) -> Engine:
    """`serve` in the background (once per state directory); returns when podman's socket answers."""
    check_podman_prerequisites()
    env = podman_env(state_dir)
    if _serve_pid(state_dir) is None:
        log = (state_dir / "serve.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "compose.stack", "serve", "--state-dir", str(state_dir)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        (state_dir / "serve.pid").write_text(str(process.pid))
    deadline = time.monotonic() + 30
    while _run(["podman", "--remote", "--url", env["DOCKER_HOST"], "info"], env=env, capture_output=True).returncode:
        if time.monotonic() > deadline:
            raise StackError(f"podman's API did not answer on {socket_path(state_dir)}: see {state_dir}/serve.log")
        time.sleep(0.5)
    return Engine(podman=True, env=env)


def stop_serve(state_dir: Path = STATE_DIR) -> None:
    pid = _serve_pid(state_dir)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while _serve_pid(state_dir) is not None and time.monotonic() < deadline:
            time.sleep(0.2)
    (state_dir / "serve.pid").unlink(missing_ok=True)


# --- up and down ----------------------------------------------------------------------------------------


@dataclass
class Stack:
    """One compose project on one engine."""

    engine: Engine
    project: str
    env_file: Path
    profiles: tuple[str, ...] = ()
    overrides: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        env = {**(self.engine.env or os.environ), **self.overrides}
        if self.profiles:
            env["COMPOSE_PROFILES"] = ",".join(self.profiles)
        elif "OTEL_EXPORTER_OTLP_ENDPOINT" not in self.overrides:
            # No collector without profile `ui`: the app and consumer write spans to their span file instead of
            # failing to export them.
            env["OTEL_EXPORTER_OTLP_ENDPOINT"] = ""
        return env

    def compose(
        self, *args: str, capture: bool = False, timeout: float | None = None
    ) -> subprocess.CompletedProcess[str]:
        argv = [*self.engine.compose_argv(self.project, self.env_file), *args]
        return _run(argv, env=self.env, capture_output=capture, timeout=timeout)

    def config(self) -> dict[str, Any]:
        result = self.compose("config", capture=True)
        if result.returncode != 0:
            raise StackError(f"docker-compose config failed:\n{result.stderr}")
        return yaml.safe_load(result.stdout)

    def build(self) -> None:
        if not self.engine.podman:
            if self.compose("build").returncode != 0:
                raise StackError("docker-compose build failed")
            return
        ensure_base_image(self.engine.env)
        # pip skips the wheels already there: a changed lock adds its new ones.
        download_wheels()
        build_images(self.engine, self.config())

    def up(self, scale: int = 1, timeout_s: float = 600) -> float:
        """Start the built images and wait until every service is healthy (one-shot ones exited 0); returns the
        seconds that took."""
        started = time.monotonic()
        result = self.compose("up", "-d", "--no-build", "--scale", f"app={scale}", timeout=timeout_s)
        if result.returncode != 0:
            raise StackError(f"docker-compose up failed (exit {result.returncode}): see its output above")
        self.wait_healthy(deadline=started + timeout_s)
        return time.monotonic() - started

    def containers(self) -> list[dict[str, Any]]:
        """`docker inspect` of this project's containers (podman's compatible API answers the same)."""
        ids = self.compose("ps", "-q", capture=True).stdout.split()
        if not ids:
            return []
        tool = ["podman"] if self.engine.podman else ["docker"]
        inspected = _run([*tool, "inspect", *ids], env=self.env, capture_output=True)
        return json.loads(inspected.stdout or "[]")

    def wait_healthy(self, deadline: float) -> None:
        while True:
            pending = []
            for container in self.containers():
                state = container["State"]
                name = container["Name"].lstrip("/")
                health = (state.get("Health") or state.get("Healthcheck") or {}).get("Status")
                if state.get("Status") == "exited":
                    if state.get("ExitCode") != 0:
                        raise StackError(f"{name} exited with {state.get('ExitCode')}: docker-compose logs")
                elif health not in (None, "healthy"):
                    pending.append(f"{name} ({health})")
            if not pending:
                return
            if time.monotonic() > deadline:
                raise StackError(f"not healthy in time: {', '.join(sorted(pending))}")
            time.sleep(2)

    def down(self, volumes: bool = False) -> None:
        args = ["down", "--remove-orphans", *(["--volumes"] if volumes else [])]
        if self.compose(*args, timeout=300).returncode != 0:
            raise StackError("docker-compose down failed")


def default_engine() -> Engine:
    if docker_reachable():
        return Engine(podman=False)
    return start_serve()


def default_env_file(command: str) -> Path:
    """compose/.env; `down` and `build` make do with the example (they start nothing that keeps a secret)."""
    env_file = COMPOSE_DIR / ".env"
    if env_file.exists():
        return env_file
    if command in ("down", "build"):
        return COMPOSE_DIR / ".env.example"
    raise StackError("compose/.env is missing: cp compose/.env.example compose/.env and set real secrets")


@contextmanager
def _reporting() -> Iterator[None]:
    try:
        yield
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from exc


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m compose.stack", description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", default="chowist", help="compose project name (default: chowist)")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="build the images and start the stack, waiting until it is healthy")
    up.add_argument("--scale", type=int, default=int(os.environ.get("APP_REPLICAS", "2")), help="app replicas")
    up.add_argument("--profile", action="append", default=[], help="also start a profile's services (ui)")
    down = sub.add_parser("down", help="stop the stack (named volumes are kept)")
    down.add_argument("--volumes", action="store_true", help="also remove the named volumes")
    sub.add_parser("build", help="build the images only")
    sub.add_parser("wheels", help="download requirements/app.txt's wheels into compose/wheels/")
    serve_cmd = sub.add_parser("serve", help="(internal) podman's API socket and the healthcheck loop")
    serve_cmd.add_argument("--state-dir", type=Path, default=STATE_DIR)
    args = parser.parse_args(argv)

    with _reporting():
        if args.command == "serve":
            serve(args.state_dir)
            return
        if args.command == "wheels":
            download_wheels()
            return
        profiles = tuple(p for value in getattr(args, "profile", []) for p in value.split(",") if p)
        profiles = profiles or tuple(p for p in os.environ.get("PROFILES", "").split(",") if p)
        env_file = default_env_file(args.command)
        engine = default_engine()
        stack = Stack(engine, args.project, env_file, profiles=profiles)
        if args.command == "build":
            stack.build()
        elif args.command == "up":
            stack.build()
            took = stack.up(scale=args.scale)
            print(f"stack up and healthy in {took:.0f} s ({'podman' if engine.podman else 'Docker'})")
            settings = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
            for name, variable, default in (
                ("app (via nginx)", "NGINX_PORT", 8080),
                ("Prometheus", "PROMETHEUS_PORT", 9090),
            ):
                print(f"{name}: http://127.0.0.1:{stack.env.get(variable) or settings.get(variable) or default}")
        elif args.command == "down":
            stack.down(volumes=args.volumes)
            if engine.podman:
                stop_serve()


if __name__ == "__main__":
    main()
