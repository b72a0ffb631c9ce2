"""The lock files say exactly what is installed, and agree with the ranges pyproject.toml declares."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from requirements.drift import Drift, canonical, drift_between, lock_pins

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "requirements"
LOCK = REQUIREMENTS / "lock.txt"
LOCK_FILES = sorted(REQUIREMENTS.glob("*.txt"))
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _requirements(*groups: list[str]) -> list[Requirement]:
    return [Requirement(line) for group in groups for line in group]


def _pins(path: Path) -> dict[str, str]:
    return lock_pins(text=path.read_text())


def test_every_declared_dependency_is_locked_within_its_range() -> None:
    pins = _pins(LOCK)
    extras = PYPROJECT["optional-dependencies"]
    for requirement in _requirements(PYPROJECT["dependencies"], extras["lab"], extras["dev"]):
        name = canonical(requirement.name)
        assert name in pins, f"{requirement} is declared in pyproject.toml but not locked: run `make lock`"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{name}=={pins[name]} in the lock is outside pyproject.toml's {requirement}: run `make lock`"
        )


def test_the_app_lock_is_the_full_lock_less_the_lab_and_test_tools() -> None:
    full, app = _pins(LOCK), _pins(REQUIREMENTS / "app.txt")
    assert {name: full.get(name) for name in app} == app
    for requirement in _requirements(PYPROJECT["dependencies"]):
        assert canonical(requirement.name) in app
    assert "pytest" not in app and "locust" not in app


@pytest.mark.parametrize("path", LOCK_FILES, ids=lambda p: p.name)
def test_every_pin_is_hash_checked_and_names_no_machine_local_index(path: Path) -> None:
    text = path.read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n\n", 1)[-1] if text.startswith("#") else text)
    pinned = [entry for entry in entries if "==" in entry.split("\n", 1)[0]]
    assert pinned, f"{path.name} pins nothing"
    for entry in pinned:
        assert "--hash=sha256:" in entry, f"{path.name}: {entry.splitlines()[0]} has no hash"
    assert not re.search(r"^--(extra-)?index-url|^--find-links|file://", text, re.MULTILINE), (
        f"{path.name} names an index or a local folder: `make lock` compiles from PyPI alone"
    )


def test_both_supported_sentry_sdk_majors_are_locked() -> None:
    declared = next(r for r in _requirements(PYPROJECT["dependencies"]) if r.name == "sentry-sdk")
    locked = Version(_pins(LOCK)["sentry-sdk"])
    other = Version(_pins(REQUIREMENTS / "sentry-sdk-2.txt")["sentry-sdk"])
    assert {locked.major, other.major} == {2, 3}
    assert declared.specifier.contains(str(locked)) and declared.specifier.contains(str(other))


def test_drift_names_what_differs_from_the_lock() -> None:
    locked = lock_pins(text="Django==5.2.20 \\\n    --hash=sha256:00\nsentry_sdk==2.76.0 \\\n    --hash=sha256:11\n")
    assert locked == {"django": "5.2.20", "sentry-sdk": "2.76.0"}
    installed = {"django": "5.2.20", "sentry-sdk": "3.0.1", "new-dependency": "1.0"}
    assert drift_between(locked=locked, installed=installed) == [
        Drift("new-dependency", "-", "1.0"),
        Drift("sentry-sdk", "2.76.0", "3.0.1"),
    ]
