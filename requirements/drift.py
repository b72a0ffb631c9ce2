"""`make test-latest`: the suite on the newest versions pyproject.toml allows, and the package that breaks it.

Run inside the venv that `make test-latest` filled with the newest allowed versions: prints which packages differ
from requirements/lock.txt, runs pytest, and when it fails, puts back one drifted package at a time at its locked
version and reruns only the failed tests (`--last-failed`): a package whose locked version makes them pass is
named as the break. The lock is never touched; `make lock PACKAGE=name` moves one package once it is supported.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")
# pytest's exit codes that mean "the tests ran and some failed" (1) and "nothing was collected" (5).
PYTEST_FAILED, PYTEST_NO_TESTS = 1, 5


@dataclass(frozen=True)
class Drift:
    name: str
    locked: str
    latest: str


def canonical(name: str) -> str:
    """PEP 503's normalised name: what pip and the lock agree on."""
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_pins(*, text: str) -> dict[str, str]:
    """name -> version of every `name==version` line of a pip-compile lock."""
    return {canonical(m.group(1)): m.group(2) for line in text.splitlines() if (m := _PIN.match(line))}


def drift_between(*, locked: dict[str, str], installed: dict[str, str]) -> list[Drift]:
    """Packages of the lock whose installed version differs, and packages the lock does not have at all."""
    names = sorted(set(locked) | set(installed))
    return [
        Drift(name, locked.get(name, "-"), installed.get(name, "-"))
        for name in names
        if locked.get(name) != installed.get(name) and name in installed
    ]


def installed_versions(*, python: Path) -> dict[str, str]:
    result = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=json"], capture_output=True, text=True, check=True
    )
    return {canonical(p["name"]): p["version"] for p in json.loads(result.stdout)}


def _pytest(python: Path, args: list[str], env: dict[str, str]) -> int:
    return subprocess.run([str(python), "-m", "pytest", *args], cwd=ROOT, env=env, check=False).returncode


def _pip_install(python: Path, requirement: str) -> None:
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", requirement], check=True)


def culprits(*, python: Path, drifts: list[Drift], env: dict[str, str]) -> list[Drift]:
    """Each drifted package whose locked version alone makes the failed tests pass again."""
    found = []
    for drift in drifts:
        if drift.locked == "-":
            continue
        print(f"\n--- does {drift.name} {drift.latest} break it? rerunning the failed tests with {drift.locked}")
        _pip_install(python, f"{drift.name}=={drift.locked}")
        try:
            if (
                _pytest(python, ["--last-failed", "--last-failed-no-failures=none", "-q", "-p", "no:randomly"], env)
                == 0
            ):
                found.append(drift)
        finally:
            _pip_install(python, f"{drift.name}=={drift.latest}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--venv", type=Path, required=True, help="the venv holding the newest allowed versions")
    parser.add_argument("--lock", type=Path, default=ROOT / "requirements" / "lock.txt")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    args = parser.parse_args(argv)

    python = (args.venv / "bin" / "python").absolute()
    drifts = drift_between(locked=lock_pins(text=args.lock.read_text()), installed=installed_versions(python=python))
    newer = [d for d in drifts if d.locked != "-"]
    print(f"{len(newer)} package(s) newer than {args.lock.name}:" if newer else f"every package as in {args.lock.name}")
    for drift in newer:
        print(f"  {drift.name:32} {drift.locked:>14} -> {drift.latest}")

    env = {**os.environ, "PATH": f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("VIRTUAL_ENV", None)
    status = _pytest(python, args.pytest_args, env)
    if status in (0, PYTEST_NO_TESTS) or not newer:
        print("\ntest-latest: " + ("PASSED" if status == 0 else f"pytest exited {status}"))
        return status
    if status != PYTEST_FAILED:
        print(f"\ntest-latest: pytest exited {status} (not test failures): see its output above")
        return status
    found = culprits(python=python, drifts=newer, env=env)
    print("\ntest-latest: FAILED with the newest allowed versions.")
    if found:
        for drift in found:
            print(f"  breaks the suite: {drift.name} {drift.latest} (locked: {drift.locked})")
    else:
        print("  no single package's locked version fixes the failed tests: several releases together, or a")
        print("  package the lock does not hold. Packages that differ are listed at the top.")
    return status


if __name__ == "__main__":
    sys.exit(main())
