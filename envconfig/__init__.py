"""Typed readers for environment variables: the one parser for the app's settings, the lab, the runner and the tooling.

Each reader takes the variable's name and its default, and returns the typed value. One rule for all of them:
an unset or blank variable means the default (so `FOO=` in a compose file or a Makefile is the same as
leaving FOO out). A value that cannot be used raises `EnvError`, naming the variable and the value.

Stdlib only, importing nothing of the project: `chowist/settings.py` and `experiments/` both read through
it without either importing the other (the experiment runner talks to the app only over HTTP, the CLI and
Prometheus). Pass `environ=` to read from a mapping instead of `os.environ` (tests, `LabConfig.from_env`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

__all__ = ["EnvError", "env_bool", "env_choice", "env_float", "env_int", "env_list", "env_path", "env_str"]

TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off"})


class EnvError(ValueError):
    """An environment variable holds a value that cannot be used."""


def _raw(name: str, environ: Mapping[str, str] | None) -> str | None:
    """The variable's value, None when unset or blank."""
    value = (os.environ if environ is None else environ).get(name)
    return None if value is None or not value.strip() else value


def env_str(name: str, default: str, *, environ: Mapping[str, str] | None = None) -> str:
    raw = _raw(name, environ)
    return default if raw is None else raw


def env_bool(name: str, default: bool, *, environ: Mapping[str, str] | None = None) -> bool:
    raw = _raw(name, environ)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise EnvError(f"{name}={raw!r} is not a boolean (use on/off, true/false, yes/no, 1/0)")


def env_int(name: str, default: int, *, environ: Mapping[str, str] | None = None) -> int:
    raw = _raw(name, environ)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise EnvError(f"{name}={raw!r} is not a number (an integer is expected)") from exc


def env_float(name: str, default: float, *, environ: Mapping[str, str] | None = None) -> float:
    raw = _raw(name, environ)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise EnvError(f"{name}={raw!r} is not a number") from exc


def env_list(name: str, default: list[str], *, environ: Mapping[str, str] | None = None) -> list[str]:
    """Comma-separated; empty items are dropped."""
    raw = _raw(name, environ)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_choice(name: str, default: str, choices: tuple[str, ...], *, environ: Mapping[str, str] | None = None) -> str:
    """One of `choices`, compared in lower case."""
    raw = _raw(name, environ)
    value = default if raw is None else raw.strip().lower()
    if value not in choices:
        raise EnvError(f"{name}={value!r} must be one of {', '.join(choices)}")
    return value


def env_rate(name: str, default: str, *, environ: Mapping[str, str] | None = None) -> str:
    """A rate limit: "N/s", "N/m", "N/h", "N/d" (N a positive integer), or "off"."""
    value = env_str(name, default, environ=environ)
    if value != "off" and not re.fullmatch(r"[1-9][0-9]*/[smhd]", value):
        raise EnvError(f"{name} must look like 300/m or be off, got {value!r}")
    return value


def env_path(name: str, default: Path, *, environ: Mapping[str, str] | None = None, base: Path | None = None) -> Path:
    """An absolute path: `~` expanded, a relative value taken from `base` (default: the working directory).

    The default is returned as given.
    """
    raw = _raw(name, environ)
    if raw is None:
        return default
    path = Path(raw.strip()).expanduser()
    if not path.is_absolute() and base is not None:
        path = base / path
    return path.resolve()
