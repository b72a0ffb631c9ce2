"""The catalogue: every file loads, names what the issue asks for, and malformed files fail clearly."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from experiments.runner.catalogue import CatalogueError, experiment_list, experiment_load
from experiments.runner.execute import runs_plan

REQUIRED = {
    "smoke",
    "baseline",
    "n-plus-one",
    "cache",
    "async-writes",
    "pooling",
    "sqlite-vs-postgres",
    "capacity",
    "fault-5xx",
    "worker-outage",
    "slow-db",
}


def test_every_catalogue_file_loads_and_the_required_experiments_exist() -> None:
    names = {e.name for e in experiment_list()}
    assert names >= REQUIRED


def test_smoke_is_short_and_on_the_embedded_profile() -> None:
    smoke = experiment_load(name="smoke")
    assert 30 <= smoke.load.duration_s <= 60
    assert smoke.profile == "embedded"
    assert any(x.type == "no_interaction_lost" for x in smoke.expectations)


def test_ab_experiments_interleave_and_alternate_their_variants() -> None:
    cache = experiment_load(name="cache")
    assert cache.is_ab and cache.repeats >= 2
    order = [p.variant.name for p in runs_plan(cache)]
    assert order == ["cache-off", "cache-on", "cache-on", "cache-off"]


def test_capacity_steps_become_one_run_per_step() -> None:
    capacity = experiment_load(name="capacity")
    plans = runs_plan(capacity)
    assert [p.users for p in plans] == capacity.load.steps.users()
    assert len(plans) > 3


def test_fault_experiments_schedule_faults_and_expect_alerts() -> None:
    fault = experiment_load(name="fault-5xx")
    assert fault.schedule[0].fault == "http_5xx"
    assert any(x.type == "alert_fires" and x.params["alert"] == "AvailabilitySLOPageBurn" for x in fault.expectations)
    outage = experiment_load(name="worker-outage")
    assert {e.fault or e.clear for e in outage.schedule} == {"consumer_paused"}


def test_time_scale_shrinks_durations_schedule_and_deadlines() -> None:
    fault = experiment_load(name="fault-5xx")
    half = fault.scaled(0.5)
    assert half.load.duration_s == fault.load.duration_s / 2
    assert half.schedule[0].at_s == fault.schedule[0].at_s / 2


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / f"{data.get('name', 'x')}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


GOOD = {
    "name": "x",
    "description": "d",
    "load": {"users": 1, "spawn_rate": 1, "duration_s": 5, "mix": {"detail": 1}},
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"load": {**GOOD["load"], "mix": {"teleport": 1}}}, "unknown task 'teleport'"),
        ({"load": {**GOOD["load"], "users": 0}}, "x.yaml.load.users"),
        ({"profile": "cloud"}, "x.yaml.profile"),
        ({"typo": 1}, "unknown key(s) typo"),
        ({"schedule": [{"at_s": 1, "fault": "http_5xx", "clear": "http_5xx"}]}, "exactly one of fault"),
        ({"schedule": [{"at_s": 99, "fault": "http_5xx"}]}, "after the run ends"),
        ({"schedule": [{"at_s": 1, "fault": "meteor"}]}, "unknown fault 'meteor'"),
        ({"expectations": [{"type": "vibes"}]}, "unknown expectation type 'vibes'"),
        ({"expectations": [{"type": "alert_fires", "alert": "X"}]}, "missing within_s"),
        (
            {"expectations": [{"type": "no_interaction_lost", "variant": "nope"}]},
            "not one of the experiment's variants",
        ),
        ({"variants": [{"name": "a", "settings": {"lower": 1}}]}, "UPPER_CASE"),
        ({"name": "y"}, "must match the file name"),
    ],
)
def test_malformed_files_fail_with_a_message_naming_the_key(tmp_path: Path, change: dict, message: str) -> None:
    data = {**GOOD, **change}
    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(CatalogueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        experiment_load(name="x", directory=tmp_path)


def test_an_unknown_experiment_lists_the_catalogue(tmp_path: Path) -> None:
    _write(tmp_path, GOOD)
    with pytest.raises(CatalogueError, match="no experiment named 'nope' \\(catalogue: x\\)"):
        experiment_load(name="nope", directory=tmp_path)
