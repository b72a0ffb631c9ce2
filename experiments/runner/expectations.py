"""The expectation types a catalogue file may use: each once, with its required keys, its wording and its check.

The catalogue loader validates against `EXPECTATIONS` and words an expectation with it; results.py evaluates
with it. A new type is one `ExpectationType` here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from experiments.runner.resources import resource_growth

Params = dict[str, Any]
Variant = dict[str, Any]
Outcome = tuple[bool, str]


@dataclass(frozen=True)
class Evidence:
    """What an expectation is checked against: the variant summaries it applies to and the run's shape."""

    variants: list[Variant]
    # Seconds from the load's start to the first scheduled fault (0 without one).
    first_fault_s: float
    # Capacity experiments: the knee (results.knee); None otherwise.
    knee: dict[str, Any] | None


@dataclass(frozen=True)
class ExpectationType:
    name: str
    required: frozenset[str]
    words: Callable[[Params], str]
    check: Callable[[Params, Evidence], Outcome]
    # Keys holding durations, multiplied by EXPERIMENT_TIME_SCALE with the rest of the experiment.
    durations: frozenset[str] = frozenset()


# Optional on every type: which variant it applies to (default: all) and a description replacing the wording.
OPTIONAL_KEYS = frozenset({"variant", "description"})


def _each(vs: list[Variant], ok: Callable[[Variant], bool], say: Callable[[Variant], str]) -> Outcome:
    return all(ok(v) for v in vs), "; ".join(say(v) for v in vs)


def _slo_holds(p: Params, e: Evidence) -> Outcome:
    def slo(v: Variant) -> dict[str, float]:
        return v["slo"][p["slo"]]

    return _each(
        e.variants, lambda v: slo(v)["sli"] >= slo(v)["objective"], lambda v: f"{v['name']}: SLI {slo(v)['sli']:.4%}"
    )


def _alert_fires(p: Params, e: Evidence) -> Outcome:
    details, ok = [], True
    for v in e.variants:
        fired = next((a for a in v["alerts_fired"] if a["alertname"] == p["alert"]), None)
        if fired is None:
            ok = False
            details.append(f"{v['name']}: did not fire")
            continue
        if fired.get("firing_at_start"):
            ok = False
            details.append(f"{v['name']}: already firing when the window opened (left from an earlier run?)")
            continue
        after_fault = fired["first_seen_s"] - e.first_fault_s
        notified = fired.get("notified_s")
        ok = ok and after_fault <= p["within_s"]
        # No scheduled fault (overload: the load itself is the fault): the time counts from the load's start.
        when = (
            f"firing {after_fault:.1f} s after the fault ({fired['first_seen_s']:g} s into the load)"
            if e.first_fault_s
            else f"firing {fired['first_seen_s']:g} s into the load"
        )
        details.append(
            f"{v['name']}: {when}"
            + (f", webhook notified at {notified:g} s" if notified is not None else ", no webhook notification yet")
        )
    return ok, "; ".join(details)


def _alert_silent(p: Params, e: Evidence) -> Outcome:
    # An alert still firing from an earlier experiment when the window opened is not this run's doing.
    def fired(v: Variant) -> str:
        names = [
            a["alertname"] + (" (already firing at start)" if a.get("firing_at_start") else "")
            for a in v["alerts_fired"]
        ]
        return f"{v['name']}: fired " + (", ".join(names) or "none")

    return _each(
        e.variants,
        lambda v: p["alert"] not in {a["alertname"] for a in v["alerts_fired"] if not a.get("firing_at_start")},
        fired,
    )


def _p95_below_ms(p: Params, e: Evidence) -> Outcome:
    if e.knee:
        return (e.knee["p95_ms"] or 0) <= p["value"], f"knee p95 {e.knee['p95_ms']} ms"
    return _each(
        e.variants,
        lambda v: v["latency_ms"]["p95"] <= p["value"],
        lambda v: f"{v['name']}: p95 {v['latency_ms']['p95']:g} ms",
    )


def interactions_accounted(v: Variant) -> bool:
    """Every interaction the app accepted (202, counted on commit) was recorded exactly once, and Locust
    completed no more than were accepted. The exact comparison is server-side: a request still in flight when
    Locust stops is answered and counted by the app, never by Locust, so Locust's count is only a bound.

    Across a deploy the app's accepted counter restarts with each instance (and what an instance counted after
    its last scrape is never read), so it cannot be differenced; the clients' 202s are then the exact count:
    Locust finishes every request in flight before it stops, and each 202 must be recorded exactly once."""
    if v.get("app_restarted"):
        return v["interactions_sent"] == v["interactions_recorded"]
    return (
        v["interactions_accepted"] == v["interactions_recorded"]
        and v["interactions_sent"] <= v["interactions_accepted"]
    )


def _self_check_holds(p: Params, e: Evidence) -> Outcome:
    runs = [(v, a) for v in e.variants for a in v["prometheus_agreement"]]
    # The latency check (where the front door timed the run): the SLI's good share and Locust's within 1 point.
    latency = [(v, a) for v in e.variants for a in v.get("latency_agreement", [])]
    counts = "; ".join(
        f"{v['name']}: Prometheus {a['prometheus_requests']} vs Locust {a['locust_requests']} requests "
        f"(tolerance {a['tolerance']}), rates {a['rps_diff']:.2%} apart"
        for v, a in runs
    )
    shares = "; ".join(
        f"{v['name']}: latency SLI at the {a['source']} {_share(a['sli_share'])} vs Locust {_share(a['locust_share'])} "
        f"under {a['threshold_ms']:g} ms{'' if a['checked'] else ' (not checked: no front door)'}"
        for v, a in latency
    )
    passed = all(a["passed"] for _, a in runs) and all(a["passed"] for _, a in latency)
    return passed, "; ".join(part for part in (counts, shares) if part)


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def _read_your_writes(p: Params, e: Evidence) -> Outcome:
    def ok(v: Variant) -> bool:
        rb = v.get("read_your_writes")
        return bool(rb) and rb["checks"] > 0 and rb["read_back"] == rb["checks"]

    def say(v: Variant) -> str:
        rb = v.get("read_your_writes")
        if not rb:
            return f"{v['name']}: no check ran"
        failures = f" ({'; '.join(rb['failures'])})" if rb["failures"] else ""
        return (
            f"{v['name']}: {rb['read_back']}/{rb['checks']} writes read back at once, "
            f"{rb['pinned']} pinned to the primary by the write{failures}"
        )

    return _each(e.variants, ok, say)


def _knee_found(p: Params, e: Evidence) -> Outcome:
    knee = e.knee
    if knee and knee["found"]:
        return (
            True,
            f"knee at {knee['users']} users, {knee['throughput_rps']} req/s; broke at {knee['broke_at_users']} users",
        )
    if knee and knee["users"]:
        return False, "no step broke within the range (raise max_users)"
    return False, "the first step already broke"


def _rss_growth_below(p: Params, e: Evidence) -> Outcome:
    details, ok = [], True
    for v in e.variants:
        growth = resource_growth(v.get("resource_samples", []), from_s=p["from_s"])
        if not growth:
            ok = False
            details.append(f"{v['name']}: no resource samples")
            continue
        worst = max(growth["rss_growth_pct"].items(), key=lambda kv: kv[1], default=("none", 0.0))
        ok = ok and worst[1] < p["percent"]
        details.append(
            f"{v['name']}: RSS growth {growth['from_s']:g}-{growth['to_s']:g} s, worst {worst[0]} {worst[1]:+.1f} %"
            f" ({', '.join(f'{k} {g:+.1f} %' for k, g in growth['rss_growth_pct'].items())})"
        )
    return ok, "; ".join(details)


def _files_bounded(p: Params, e: Evidence) -> Outcome:
    details, ok = [], True
    for v in e.variants:
        growth = resource_growth(v.get("resource_samples", []), from_s=p["from_s"])
        if not growth:
            ok = False
            details.append(f"{v['name']}: no resource samples")
            continue
        fd_growth = max(growth["open_files_growth"].values(), default=0)
        mp = growth["multiproc_files_max"]
        ok = ok and fd_growth <= p["open_files_growth"] and mp <= p["multiproc_files"]
        details.append(
            f"{v['name']}: open files growth {fd_growth:+d} (max {growth['open_files_max']}), multiprocess files max {mp}"
        )
    return ok, "; ".join(details)


EXPECTATIONS: dict[str, ExpectationType] = {
    t.name: t
    for t in (
        ExpectationType(
            "slo_holds",
            frozenset({"slo"}),
            lambda p: f"the {p['slo']} SLO holds over the run",
            _slo_holds,
        ),
        ExpectationType(
            "alert_fires",
            frozenset({"alert", "within_s"}),
            lambda p: f"{p['alert']} fires within {p['within_s']:g} s of the first fault",
            _alert_fires,
            durations=frozenset({"within_s"}),
        ),
        ExpectationType(
            "alert_silent",
            frozenset({"alert"}),
            lambda p: f"{p['alert']} does not fire",
            _alert_silent,
        ),
        ExpectationType(
            "no_interaction_lost",
            frozenset(),
            lambda p: "no interaction is lost or counted twice (accepted == recorded; Locust's 202s <= accepted)",
            lambda p, e: _each(
                e.variants,
                interactions_accounted,
                lambda v: (
                    f"{v['name']}: accepted {v['interactions_accepted']} (202s, server), recorded "
                    f"{v['interactions_recorded']}, Locust completed {v['interactions_sent']}"
                    + (
                        " (instances restarted: the app's accepted counter restarted with them; Locust's 202s are the count)"
                        if v.get("app_restarted")
                        else ""
                    )
                ),
            ),
        ),
        ExpectationType(
            "p95_below_ms",
            frozenset({"value"}),
            lambda p: f"p95 latency below {p['value']:g} ms",
            _p95_below_ms,
        ),
        ExpectationType(
            "error_ratio_below",
            frozenset({"value"}),
            lambda p: f"5xx ratio below {p['value']:g}",
            lambda p, e: _each(
                e.variants,
                lambda v: v["error_ratio_5xx"] < p["value"],
                lambda v: f"{v['name']}: {v['error_ratio_5xx']:.4%}",
            ),
        ),
        ExpectationType(
            # What the clients saw (Locust's failures, nginx's 502s included), not what the app counted: a
            # restarted instance's counters start again from 0, and the proxy's errors never reach the app.
            "client_failures_at_most",
            frozenset({"value"}),
            lambda p: f"at most {p['value']:g} requests failed as the clients saw them",
            lambda p, e: _each(
                e.variants,
                lambda v: v["failures"] <= p["value"],
                lambda v: f"{v['name']}: {v['failures']} of {v['requests']} failed",
            ),
        ),
        ExpectationType(
            "client_failures_at_least",
            frozenset({"value"}),
            lambda p: f"at least {p['value']:g} requests failed as the clients saw them",
            lambda p, e: _each(
                e.variants,
                lambda v: v["failures"] >= p["value"],
                lambda v: f"{v['name']}: {v['failures']} of {v['requests']} failed",
            ),
        ),
        ExpectationType(
            "no_5xx",
            frozenset(),
            lambda p: "no request is answered with a 5xx",
            lambda p, e: _each(
                e.variants,
                lambda v: v["error_ratio_5xx"] == 0,
                lambda v: f"{v['name']}: 5xx ratio {v['error_ratio_5xx']:.6%}",
            ),
        ),
        ExpectationType(
            "self_check_holds",
            frozenset(),
            lambda p: (
                "the lab's self-check holds (Prometheus and Locust counted the same requests, and agree on the "
                "share under the latency threshold)"
            ),
            _self_check_holds,
        ),
        ExpectationType(
            "job_lag_max_above_s",
            frozenset({"value"}),
            lambda p: f"job lag grows above {p['value']:g} s while the consumer is paused",
            lambda p, e: _each(
                e.variants,
                lambda v: v["job_lag_s"]["max"] > p["value"],
                lambda v: f"{v['name']}: max lag {v['job_lag_s']['max']:g} s",
            ),
        ),
        ExpectationType(
            "burn_rate_above",
            frozenset({"slo", "value"}),
            lambda p: f"the {p['slo']} SLO burns its budget faster than {p['value']:g}x at its peak",
            lambda p, e: _each(
                e.variants,
                lambda v: v["slo"][p["slo"]]["burn_rate_max"] > p["value"],
                lambda v: f"{v['name']}: max burn rate {v['slo'][p['slo']]['burn_rate_max']:g}",
            ),
        ),
        ExpectationType(
            "rss_growth_below",
            frozenset({"percent", "from_s"}),
            lambda p: (
                f"RSS of every lab component grows less than {p['percent']:g} % from {p['from_s']:g} s to the end"
            ),
            _rss_growth_below,
            durations=frozenset({"from_s"}),
        ),
        ExpectationType(
            "files_bounded",
            frozenset({"from_s", "open_files_growth", "multiproc_files"}),
            lambda p: (
                f"open files grow by at most {p['open_files_growth']} per component from {p['from_s']:g} s, "
                f"at most {p['multiproc_files']} multiprocess metric files"
            ),
            _files_bounded,
            durations=frozenset({"from_s"}),
        ),
        ExpectationType(
            # The runner's probe (readback.py) writes and reads back beside the load when this is expected.
            "read_your_writes",
            frozenset(),
            lambda p: "a client reads its own write at once (profile edited, then its page shows the edit), under load",
            _read_your_writes,
        ),
        ExpectationType(
            "knee_found",
            frozenset(),
            lambda p: "the capacity knee is found within the step range",
            _knee_found,
        ),
    )
}
