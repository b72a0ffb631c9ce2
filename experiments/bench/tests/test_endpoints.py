"""The endpoint bench's arithmetic: callgrind dumps in order, ratios to the minimal view, goals met or not."""

from __future__ import annotations

from pathlib import Path

from experiments.bench.endpoints import ENDPOINTS, MINIMAL, dump_totals, table


def test_dumps_are_read_in_dump_order_not_name_order(tmp_path: Path) -> None:
    for number, total in ((1, 100), (2, 200), (10, 1000), (3, 300)):
        (tmp_path / f"callgrind.out.{number}").write_text(f"events: Ir\nsummary: {total}\ntotals: {total}\n")
    (tmp_path / "callgrind.out").write_text("events: Ir\n")
    assert dump_totals(tmp_path) == [100, 200, 300, 1000]


def test_every_goal_of_the_issue_is_checked_against_the_minimal_view() -> None:
    goals = {e.name: e.goal for e in ENDPOINTS if e.goal is not None}
    assert goals == {
        "popular (cached)": 1.6,
        "home": 1.5,
        "API detail": 2.5,
        "/places/<id>/": 2.5,
        "API list": 3.0,
        "/places/": 3.0,
    }
    counts = {MINIMAL: {MINIMAL: 1000.0}, "off": {e.name: 1000.0 * (e.goal or 9) for e in ENDPOINTS}}
    counts["off"]["home"] = 1501.0
    text, rows = table(counts=counts, rates={}, endpoints=list(ENDPOINTS))
    met = {r["endpoint"]: r["off"]["goal_met"] for r in rows if r["goal"] is not None}
    assert met == {name: name != "home" for name in goals}
    assert "goals met with off: 5/6" in text
