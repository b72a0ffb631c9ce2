"""The expectations registry: every type is checked both ways, worded, and is what the catalogue accepts."""

from __future__ import annotations

import pytest

from experiments.runner.catalogue import Expectation, experiment_list
from experiments.runner.expectations import EXPECTATIONS, Evidence


def _variant(**overrides: object) -> dict:
    variant = {
        "name": "a",
        "slo": {"availability": {"sli": 0.9995, "objective": 0.999, "burn_rate_max": 20.0}},
        "alerts_fired": [{"alertname": "AvailabilitySLOPageBurn", "first_seen_s": 40.0, "firing_at_start": False}],
        "interactions_sent": 10,
        "interactions_accepted": 10,
        "interactions_recorded": 10,
        "latency_ms": {"p95": 80.0},
        "error_ratio_5xx": 0.001,
        "job_lag_s": {"max": 12.0},
        "requests": 1000,
        "failures": 0,
        "prometheus_agreement": [
            {"passed": True, "prometheus_requests": 100, "locust_requests": 100, "tolerance": 4, "rps_diff": 0.0}
        ],
    }
    return {**variant, **overrides}


GOOD = _variant()
BAD = _variant(
    slo={"availability": {"sli": 0.99, "objective": 0.999, "burn_rate_max": 2.0}},
    alerts_fired=[{"alertname": "LatencySLOPageBurn", "first_seen_s": 5.0, "firing_at_start": False}],
    interactions_recorded=9,
    latency_ms={"p95": 400.0},
    error_ratio_5xx=0.2,
    job_lag_s={"max": 1.0},
    failures=3,
    prometheus_agreement=[
        {"passed": False, "prometheus_requests": 100, "locust_requests": 90, "tolerance": 4, "rps_diff": 0.1}
    ],
)


def _sample(t_s: float, app_mb: float, app_fds: int, multiproc: int) -> dict:
    return {
        "t_s": t_s,
        "rss_mb": {"app": app_mb, "consumer": 80.0},
        "open_files": {"app": app_fds, "consumer": 12},
        "multiproc_files": multiproc,
        "files_mb": {},
    }


# Warm-up growth before 300 s is not counted; after it, steady stays within 10 % and leaking does not.
SAMPLES_STEADY = [_sample(10, 100.0, 20, 4), _sample(300, 150.0, 30, 6), _sample(1800, 160.0, 32, 6)]
SAMPLES_LEAKING = [_sample(10, 100.0, 20, 4), _sample(300, 150.0, 30, 6), _sample(1800, 200.0, 90, 40)]
KNEE_FOUND = {"found": True, "users": 8, "throughput_rps": 300.0, "broke_at_users": 12, "p95_ms": 90.0}
KNEE_NONE = {"found": False, "users": None, "throughput_rps": None, "broke_at_users": 4, "p95_ms": None}

# type -> (params, evidence that passes, evidence that fails)
CASES = {
    "slo_holds": ({"slo": "availability"}, Evidence([GOOD], 0.0, None), Evidence([BAD], 0.0, None)),
    "alert_fires": (
        {"alert": "AvailabilitySLOPageBurn", "within_s": 30},
        Evidence([GOOD], 20.0, None),
        Evidence([GOOD], 5.0, None),
    ),
    "alert_silent": ({"alert": "AvailabilitySLOPageBurn"}, Evidence([BAD], 0.0, None), Evidence([GOOD], 0.0, None)),
    "no_interaction_lost": ({}, Evidence([GOOD], 0.0, None), Evidence([GOOD, BAD], 0.0, None)),
    "p95_below_ms": ({"value": 100}, Evidence([GOOD], 0.0, None), Evidence([BAD], 0.0, None)),
    "error_ratio_below": ({"value": 0.01}, Evidence([GOOD], 0.0, None), Evidence([BAD], 0.0, None)),
    "client_failures_at_most": ({"value": 0}, Evidence([GOOD], 0.0, None), Evidence([BAD], 0.0, None)),
    "client_failures_at_least": ({"value": 1}, Evidence([BAD], 0.0, None), Evidence([GOOD], 0.0, None)),
    "no_5xx": ({}, Evidence([_variant(error_ratio_5xx=0.0)], 0.0, None), Evidence([GOOD], 0.0, None)),
    "self_check_holds": ({}, Evidence([GOOD], 0.0, None), Evidence([GOOD, BAD], 0.0, None)),
    "job_lag_max_above_s": ({"value": 5}, Evidence([GOOD], 0.0, None), Evidence([BAD], 0.0, None)),
    "burn_rate_above": (
        {"slo": "availability", "value": 14.4},
        Evidence([GOOD], 0.0, None),
        Evidence([BAD], 0.0, None),
    ),
    "knee_found": ({}, Evidence([], 0.0, KNEE_FOUND), Evidence([], 0.0, KNEE_NONE)),
    "read_your_writes": (
        {},
        Evidence([_variant(read_your_writes={"checks": 10, "read_back": 10, "pinned": 10, "failures": []})], 0.0, None),
        # One stale read fails it, and so does a variant where no check ran.
        Evidence(
            [
                _variant(read_your_writes={"checks": 10, "read_back": 9, "pinned": 0, "failures": ["stale"]}),
                _variant(read_your_writes=None),
            ],
            0.0,
            None,
        ),
    ),
    "rss_growth_below": (
        {"percent": 10, "from_s": 300},
        Evidence([_variant(resource_samples=SAMPLES_STEADY)], 0.0, None),
        Evidence([_variant(resource_samples=SAMPLES_LEAKING)], 0.0, None),
    ),
    "files_bounded": (
        {"from_s": 300, "open_files_growth": 10, "multiproc_files": 12},
        Evidence([_variant(resource_samples=SAMPLES_STEADY)], 0.0, None),
        Evidence([_variant(resource_samples=SAMPLES_LEAKING)], 0.0, None),
    ),
}


def test_every_registered_type_has_cases_here() -> None:
    assert set(CASES) == set(EXPECTATIONS)


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_type_passes_and_fails_with_its_numbers_in_the_detail(name: str) -> None:
    params, good, bad = CASES[name]
    kind = EXPECTATIONS[name]
    assert set(params) == kind.required
    passed, detail = kind.check(params, good)
    assert passed is True and detail
    failed, why = kind.check(params, bad)
    assert failed is False and why
    assert kind.words(params)


def test_the_knee_overrides_per_variant_p95() -> None:
    p95 = EXPECTATIONS["p95_below_ms"]
    assert p95.check({"value": 100}, Evidence([BAD], 0.0, KNEE_FOUND)) == (True, "knee p95 90.0 ms")


def test_wording_and_time_scale_come_from_the_registry() -> None:
    x = Expectation(type="alert_fires", params={"alert": "A", "within_s": 60}, variant="b")
    assert x.description == "A fires within 60 s of the first fault [b]"
    assert x.scaled(0.5).params == {"alert": "A", "within_s": 30.0}
    assert Expectation(type="p95_below_ms", params={"value": 250}).scaled(0.5).params == {"value": 250}


def test_the_catalogue_uses_only_registered_types() -> None:
    used = {x.type for e in experiment_list() for x in e.expectations}
    assert used <= set(EXPECTATIONS)


def test_across_a_deploy_every_client_202_is_recorded_once() -> None:
    # The app's accepted counter restarted with the instances (6 left of 10): the clients' 202s are the count.
    check = EXPECTATIONS["no_interaction_lost"].check
    restarted = _variant(app_restarted=True, interactions_accepted=6)
    assert check({}, Evidence([restarted], 0.0, None))[0] is True
    assert check({}, Evidence([{**restarted, "interactions_recorded": 11}], 0.0, None))[0] is False
    assert check({}, Evidence([{**restarted, "interactions_recorded": 9}], 0.0, None))[0] is False
    assert "restarted" in check({}, Evidence([restarted], 0.0, None))[1]
