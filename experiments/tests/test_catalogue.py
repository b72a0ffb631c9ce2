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
    "users-2000",
    "capacity-users",
    "page-cache",
}


def test_every_catalogue_file_loads_and_the_required_experiments_exist() -> None:
    names = {e.name for e in experiment_list()}
    assert names >= REQUIRED


def test_smoke_is_short_and_on_the_embedded_profile() -> None:
    smoke = experiment_load(name="smoke")
    assert 30 <= smoke.load.duration_s <= 60
    assert smoke.profile == "embedded"
    assert any(x.type == "no_interaction_lost" for x in smoke.expectations)


def test_users_2000_is_the_issues_load_on_the_full_demo_data() -> None:
    users = experiment_load(name="users-2000")
    baseline = experiment_load(name="baseline")
    assert (users.load.users, users.load.spawn_rate, users.load.wait_ms, users.load.processes) == (
        2000,
        100,
        (1000, 3000),
        1,
    )
    assert users.load.mix == baseline.load.mix and users.profile == "embedded"
    seed = users.seed
    assert (seed.places, seed.users, seed.reviews, seed.interactions) == (10000, 2000, 200000, 1000000)
    expected = {(x.type, x.params.get("value")) for x in users.expectations}
    assert expected == {
        ("p95_below_ms", 250),
        ("no_5xx", None),
        ("no_interaction_lost", None),
        ("self_check_holds", None),
    }


def test_capacity_in_users_thinks_and_steps_past_2000_users() -> None:
    capacity = experiment_load(name="capacity-users")
    assert capacity.load.wait_ms[0] >= 1000
    assert max(p.users for p in runs_plan(capacity)) > 2000
    assert any(x.type == "knee_found" for x in capacity.expectations)


def test_experiments_that_measure_the_database_turn_the_page_cache_off() -> None:
    for name in ("n-plus-one", "slow-db", "pooling", "sqlite-vs-postgres"):
        assert all(v.settings.get("PAGE_CACHE") == "off" for v in experiment_load(name=name).variants), name
    page_cache = experiment_load(name="page-cache")
    assert [v.settings["PAGE_CACHE"] for v in page_cache.variants] == ["off", "on"] and page_cache.repeats >= 2


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
        ({"load": {**GOOD["load"], "warmup_s": -5}}, "x.yaml.load.warmup_s"),
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
