"""The LogQL the dashboards use selects streams only by the labels the shipper sets."""

from __future__ import annotations

import re

import pytest

from loki import queries

SELECTOR = re.compile(r"\{([^{}]*)\}")
MATCHER = re.compile(r'^\s*(\w+)\s*(=~|!~|!=|=)\s*"[^"]*"\s*$')


@pytest.mark.parametrize("query", queries.ALL, ids=lambda q: q.title)
def test_stream_selectors_use_only_service_and_level(query: queries.LogQuery) -> None:
    selectors = SELECTOR.findall(query.expr)
    assert selectors, "every LogQL query starts from a stream selector"
    for selector in selectors:
        for matcher in selector.split(","):
            parsed = MATCHER.match(matcher)
            assert parsed, f"not a label matcher: {matcher!r}"
            assert parsed.group(1) in queries.STREAM_LABELS


@pytest.mark.parametrize("query", queries.ALL, ids=lambda q: q.title)
def test_queries_are_balanced_and_typed(query: queries.LogQuery) -> None:
    for pair in ("()", "[]", "{}"):
        assert query.expr.count(pair[0]) == query.expr.count(pair[1])
    assert query.kind in {"metric", "logs"}
    # Metric queries aggregate over a range; log queries return lines.
    assert ("count_over_time" in query.expr) == (query.kind == "metric")
