"""The scaling journey: a step load per variant, a knee per step, and the gain each lever bought."""

from __future__ import annotations

from experiments.runner.catalogue import experiment_load, journey_run_name, journey_step_of
from experiments.runner.execute import runs_plan
from experiments.runner.results import journey


def _summary(name: str, users: int, rps: float, p95: float) -> dict:
    return {"name": name, "users": users, "throughput_rps": rps, "latency_ms": {"p95": p95}, "error_ratio_5xx": 0.0}


def test_every_step_of_the_journey_gets_the_whole_step_load() -> None:
    experiment = experiment_load(name="scaling-journey")
    plans = runs_plan(experiment)
    users = list(experiment.load.steps.users())
    assert len(plans) == len(experiment.variants) * len(users)
    assert [journey_step_of(p.variant.name) for p in plans[: len(users)]] == ["naive"] * len(users)
    assert plans[-1].variant.replica and plans[-1].variant.proxy == "nginx"
    assert journey_step_of("smoke") is None


def test_each_step_has_its_knee_and_its_gain_over_the_previous_step() -> None:
    experiment = experiment_load(name="scaling-journey")
    names = [v.name for v in experiment.variants]
    summaries = []
    for i, name in enumerate(names):
        # Step i holds up to 16 users at 100 + 50 i req/s, then breaks at 28.
        summaries += [
            _summary(journey_run_name(name, 4), 4, 40.0, 50),
            _summary(journey_run_name(name, 16), 16, 100.0 + 50 * i, 120),
            _summary(journey_run_name(name, 28), 28, 110.0 + 50 * i, 900),
        ]
    steps = journey(experiment, summaries)
    assert [s["step"] for s in steps] == names
    assert all(s["knee_users"] == 16 for s in steps)
    assert steps[0]["gain_rps"] == 100.0
    assert [s["gain_rps"] for s in steps[1:]] == [50.0] * (len(names) - 1)


def test_the_report_names_each_steps_settings_once_not_once_per_run() -> None:
    from experiments.runner.report import _settings_per_variant

    variants = [
        {"name": journey_run_name("naive", users), "settings": {"PAGE_CACHE": "off"}} for users in (4, 16, 28)
    ] + [{"name": journey_run_name("+ page cache", users), "settings": {"PAGE_CACHE": "on"}} for users in (4, 16)]
    assert _settings_per_variant(variants) == "**naive** `PAGE_CACHE=off`; **+ page cache** `PAGE_CACHE=on`"
    assert _settings_per_variant([{"name": "direct", "settings": {}}]) == "**direct** defaults"
