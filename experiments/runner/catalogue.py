"""The experiment catalogue: one YAML file per experiment, loaded into typed, validated objects.

Validation is strict (unknown keys are errors) so a typo in a catalogue file fails `make experiments-list`
and the catalogue test instead of silently running a different experiment.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from experiments.lab.config import DEFAULT_PROXY
from experiments.runner.config import CATALOGUE_DIR
from experiments.runner.expectations import EXPECTATIONS, OPTIONAL_KEYS

TASKS = ("home", "browse", "search", "detail", "detail_html", "random_place", "popular", "interact", "upload", "static")
PROFILES = ("embedded", "services")
PROXIES = ("none", "nginx")
DEPLOYS = ("rolling", "careless")
FAULTS = ("http_5xx", "http_latency", "db_latency", "cache_down", "consumer_paused")
COMPONENTS = ("app", "worker")


JOURNEY_SEPARATOR = " @ "


def journey_run_name(variant: str, users: int) -> str:
    return f"{variant}{JOURNEY_SEPARATOR}{users} users"


def journey_step_of(run_name: str) -> str | None:
    """The journey variant a step run belongs to ("naive @ 12 users" -> "naive"); None outside a journey."""
    return run_name.split(JOURNEY_SEPARATOR, 1)[0] if JOURNEY_SEPARATOR in run_name else None


class CatalogueError(ValueError):
    """A catalogue file is malformed; the message names the file and the key."""


@dataclass(frozen=True)
class Seed:
    places: int = 200
    users: int = 50
    reviews: int = 1000
    interactions: int = 2000
    seed: int = 1

    def args(self) -> list[str]:
        return [
            f"--places={self.places}",
            f"--users={self.users}",
            f"--reviews={self.reviews}",
            f"--interactions={self.interactions}",
            f"--seed={self.seed}",
        ]


@dataclass(frozen=True)
class Steps:
    """Step load for capacity: each step is its own measured run; stop at the first step that breaks."""

    start_users: int
    step_users: int
    max_users: int
    step_s: float

    def users(self) -> list[int]:
        return list(range(self.start_users, self.max_users + 1, self.step_users))


@dataclass(frozen=True)
class Load:
    users: int
    spawn_rate: float
    duration_s: float
    mix: dict[str, int]
    wait_ms: tuple[int, int] = (0, 0)
    processes: int = 1
    warmup_requests: int = 40
    # Seconds of unmeasured load (the same users, mix and think time) before each measured run: caches then hold
    # what a site that has been serving holds, and the run measures its steady state, not its cold start.
    warmup_s: float = 0.0
    steps: Steps | None = None


@dataclass(frozen=True)
class Variant:
    name: str
    settings: dict[str, str] = field(default_factory=dict)
    profile: str | None = None
    pgbouncer: bool = False
    # The lab's layout (experiments/lab): nginx in front (the default: `proxy: none` is the direct path), app
    # instances behind it, a read replica.
    proxy: str = DEFAULT_PROXY
    instances: int = 1
    replica: bool = False


@dataclass(frozen=True)
class Event:
    """At `at_s` seconds into a measured run: switch a fault on (`fault`) or off (`clear`)."""

    at_s: float
    fault: str | None = None
    clear: str | None = None
    value: float | None = None
    views: tuple[str, ...] = ()
    # Restart every app instance: `rolling` (one at a time, graceful) or `careless` (SIGKILL all at once).
    deploy: str | None = None


@dataclass(frozen=True)
class Expectation:
    type: str
    params: dict[str, Any]
    variant: str | None = None
    text: str = ""

    @property
    def description(self) -> str:
        if self.text:
            return self.text
        where = f" [{self.variant}]" if self.variant else ""
        return EXPECTATIONS[self.type].words(self.params) + where

    def scaled(self, factor: float) -> Expectation:
        durations = EXPECTATIONS[self.type].durations
        return replace(self, params={k: v * factor if k in durations else v for k, v in self.params.items()})


@dataclass(frozen=True)
class Experiment:
    name: str
    description: str
    profile: str
    seed: Seed
    load: Load
    variants: tuple[Variant, ...]
    repeats: int
    schedule: tuple[Event, ...]
    expectations: tuple[Expectation, ...]
    path: Path

    @property
    def is_ab(self) -> bool:
        return len(self.variants) > 1 and self.load.steps is None

    def scaled(self, factor: float) -> Experiment:
        """The same experiment with every duration and schedule time multiplied by `factor`."""
        if factor == 1.0:
            return self
        steps = self.load.steps and replace(self.load.steps, step_s=self.load.steps.step_s * factor)
        load = replace(self.load, duration_s=self.load.duration_s * factor, steps=steps)
        schedule = tuple(replace(e, at_s=e.at_s * factor) for e in self.schedule)
        expectations = tuple(x.scaled(factor) for x in self.expectations)
        return replace(self, load=load, schedule=schedule, expectations=expectations)


def _keys(where: str, data: Any, required: set[str], optional: set[str]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise CatalogueError(f"{where}: expected a mapping, got {type(data).__name__}")
    missing = required - data.keys()
    unknown = data.keys() - required - optional
    if missing:
        raise CatalogueError(f"{where}: missing {', '.join(sorted(missing))}")
    if unknown:
        raise CatalogueError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    return data


def _positive(where: str, value: Any, *, integer: bool = False, allow_zero: bool = False) -> Any:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value < 0 or (value == 0 and not allow_zero):
        raise CatalogueError(
            f"{where}: expected a {'non-negative' if allow_zero else 'positive'} number, got {value!r}"
        )
    return value


def _settings(where: str, data: Any) -> dict[str, str]:
    data = data or {}
    if not isinstance(data, dict):
        raise CatalogueError(f"{where}: expected a mapping of setting names to values")
    out = {}
    for key, value in data.items():
        if not isinstance(key, str) or not key.isupper():
            raise CatalogueError(f"{where}: setting names are environment variable names (UPPER_CASE), got {key!r}")
        out[key] = ("on" if value else "off") if isinstance(value, bool) else str(value)
    return out


def _load(where: str, data: Any) -> Load:
    d = _keys(
        where,
        data,
        {"users", "spawn_rate", "duration_s", "mix"},
        {"wait_ms", "processes", "warmup_requests", "warmup_s", "steps"},
    )
    mix = d["mix"]
    if not isinstance(mix, dict) or not mix:
        raise CatalogueError(f"{where}.mix: expected a non-empty mapping of task to weight")
    for task, weight in mix.items():
        if task not in TASKS:
            raise CatalogueError(f"{where}.mix: unknown task {task!r} (tasks: {', '.join(TASKS)})")
        _positive(f"{where}.mix.{task}", weight, integer=True, allow_zero=True)
    if not any(mix.values()):
        raise CatalogueError(f"{where}.mix: every weight is 0")
    wait = d.get("wait_ms", [0, 0])
    if not (isinstance(wait, list) and len(wait) == 2 and 0 <= wait[0] <= wait[1]):
        raise CatalogueError(f"{where}.wait_ms: expected [min, max] with 0 <= min <= max, got {wait!r}")
    steps = None
    if "steps" in d:
        s = _keys(f"{where}.steps", d["steps"], {"start_users", "step_users", "max_users", "step_s"}, set())
        steps = Steps(
            start_users=_positive(f"{where}.steps.start_users", s["start_users"], integer=True),
            step_users=_positive(f"{where}.steps.step_users", s["step_users"], integer=True),
            max_users=_positive(f"{where}.steps.max_users", s["max_users"], integer=True),
            step_s=_positive(f"{where}.steps.step_s", s["step_s"]),
        )
        if steps.max_users < steps.start_users:
            raise CatalogueError(f"{where}.steps: max_users is below start_users")
    return Load(
        users=_positive(f"{where}.users", d["users"], integer=True),
        spawn_rate=_positive(f"{where}.spawn_rate", d["spawn_rate"]),
        duration_s=_positive(f"{where}.duration_s", d["duration_s"]),
        mix={k: int(v) for k, v in mix.items()},
        wait_ms=(int(wait[0]), int(wait[1])),
        processes=_positive(f"{where}.processes", d.get("processes", 1), integer=True),
        warmup_requests=_positive(
            f"{where}.warmup_requests", d.get("warmup_requests", 40), integer=True, allow_zero=True
        ),
        warmup_s=_positive(f"{where}.warmup_s", d.get("warmup_s", 0), allow_zero=True),
        steps=steps,
    )


def _event(where: str, data: Any) -> Event:
    d = _keys(where, data, {"at_s"}, {"fault", "clear", "value", "views", "deploy"})
    if "deploy" in d:
        if len(d) != 2:
            raise CatalogueError(f"{where}: a deploy event takes only at_s and deploy")
        if d["deploy"] not in DEPLOYS:
            raise CatalogueError(f"{where}.deploy: expected one of {', '.join(DEPLOYS)}")
        return Event(at_s=_positive(f"{where}.at_s", d["at_s"], allow_zero=True), deploy=d["deploy"])
    if ("fault" in d) == ("clear" in d):
        raise CatalogueError(f"{where}: give exactly one of fault (switch on), clear (switch off) or deploy")
    name = d.get("fault") or d.get("clear")
    if name not in FAULTS:
        raise CatalogueError(f"{where}: unknown fault {name!r} (faults: {', '.join(FAULTS)})")
    views = d.get("views", [])
    if not isinstance(views, list) or not all(isinstance(v, str) for v in views):
        raise CatalogueError(f"{where}.views: expected a list of view names")
    value = d.get("value")
    if value is not None:
        _positive(f"{where}.value", value)
    return Event(
        at_s=_positive(f"{where}.at_s", d["at_s"], allow_zero=True),
        fault=d.get("fault"),
        clear=d.get("clear"),
        value=value,
        views=tuple(views),
    )


def _expectation(where: str, data: Any, variant_names: set[str]) -> Expectation:
    if not isinstance(data, dict) or "type" not in data:
        raise CatalogueError(f"{where}: expected a mapping with a type")
    kind = data["type"]
    if kind not in EXPECTATIONS:
        raise CatalogueError(f"{where}: unknown expectation type {kind!r} (types: {', '.join(EXPECTATIONS)})")
    d = _keys(
        where, {k: v for k, v in data.items() if k != "type"}, set(EXPECTATIONS[kind].required), set(OPTIONAL_KEYS)
    )
    variant = d.pop("variant", None)
    if variant is not None and variant not in variant_names:
        raise CatalogueError(f"{where}.variant: {variant!r} is not one of the experiment's variants")
    text = d.pop("description", "")
    return Expectation(type=kind, params=d, variant=variant, text=text)


def experiment_from_dict(data: Any, *, path: Path) -> Experiment:
    where = path.name
    d = _keys(
        where,
        data,
        {"name", "description", "load"},
        {"profile", "seed", "variants", "repeats", "schedule", "expectations"},
    )
    if d["name"] != path.stem:
        raise CatalogueError(f"{where}: name {d['name']!r} must match the file name {path.stem!r}")
    profile = d.get("profile", "embedded")
    if profile not in PROFILES:
        raise CatalogueError(f"{where}.profile: expected one of {', '.join(PROFILES)}")
    seed_data = _keys(f"{where}.seed", d.get("seed", {}), set(), {"places", "users", "reviews", "interactions", "seed"})
    seed = Seed(**{k: _positive(f"{where}.seed.{k}", v, integer=True, allow_zero=True) for k, v in seed_data.items()})
    variants = []
    for i, v in enumerate(d.get("variants") or [{"name": "default"}]):
        vw = f"{where}.variants[{i}]"
        vd = _keys(vw, v, {"name"}, {"settings", "profile", "pgbouncer", "proxy", "instances", "replica"})
        if vd.get("profile", profile) not in PROFILES:
            raise CatalogueError(f"{vw}.profile: expected one of {', '.join(PROFILES)}")
        if vd.get("proxy", DEFAULT_PROXY) not in PROXIES:
            raise CatalogueError(f"{vw}.proxy: expected one of {', '.join(PROXIES)}")
        instances = _positive(f"{vw}.instances", vd.get("instances", 1), integer=True)
        if instances > 1 and vd.get("proxy", DEFAULT_PROXY) == "none":
            raise CatalogueError(f"{vw}.instances: more than one instance needs proxy: nginx in front")
        if vd.get("replica") and vd.get("profile", profile) != "services":
            raise CatalogueError(f"{vw}.replica: the read replica needs the services profile")
        variants.append(
            Variant(
                name=str(vd["name"]),
                settings=_settings(f"{vw}.settings", vd.get("settings")),
                profile=vd.get("profile"),
                pgbouncer=bool(vd.get("pgbouncer", False)),
                proxy=str(vd.get("proxy", DEFAULT_PROXY)),
                instances=instances,
                replica=bool(vd.get("replica", False)),
            )
        )
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise CatalogueError(f"{where}.variants: names must be unique")
    load = _load(f"{where}.load", d["load"])
    schedule = tuple(_event(f"{where}.schedule[{i}]", e) for i, e in enumerate(d.get("schedule") or []))
    horizon = load.steps.step_s if load.steps else load.duration_s
    for e in schedule:
        if e.at_s >= horizon:
            raise CatalogueError(f"{where}.schedule: event at {e.at_s:g} s is after the run ends ({horizon:g} s)")
    expectations = tuple(
        _expectation(f"{where}.expectations[{i}]", x, set(names)) for i, x in enumerate(d.get("expectations") or [])
    )
    return Experiment(
        name=d["name"],
        description=str(d["description"]).strip(),
        profile=profile,
        seed=seed,
        load=load,
        variants=tuple(variants),
        repeats=_positive(f"{where}.repeats", d.get("repeats", 1), integer=True),
        schedule=schedule,
        expectations=expectations,
        path=path,
    )


def experiment_load(*, name: str, directory: Path = CATALOGUE_DIR) -> Experiment:
    path = directory / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(p.stem for p in sorted(directory.glob("*.yaml")))
        raise CatalogueError(f"no experiment named {name!r} (catalogue: {known})")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise CatalogueError(f"{path.name}: not valid YAML: {exc}") from exc
    return experiment_from_dict(data, path=path)


def experiment_list(*, directory: Path = CATALOGUE_DIR) -> list[Experiment]:
    return [experiment_load(name=p.stem, directory=directory) for p in sorted(directory.glob("*.yaml"))]
