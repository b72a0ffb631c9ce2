"""Reading the consumer's own metrics endpoint (for queue_status: lag percentiles live in the consumer)."""

from __future__ import annotations

import urllib.request
from collections import defaultdict

from prometheus_client.parser import text_string_to_metric_families

from workers.histogram import histogram_quantile

SCRAPE_TIMEOUT_S = 2.0


def consumer_metrics_text(*, addr: str, port: int) -> str:
    url = f"http://{addr}:{port}/metrics"
    with urllib.request.urlopen(url, timeout=SCRAPE_TIMEOUT_S) as response:
        return response.read().decode()


def histogram_quantiles(*, text: str, metric: str, quantiles: tuple[float, ...]) -> dict[str, dict[str, object]]:
    """{task: {"count": n, "p50": seconds, ...}} for a histogram labelled by `task`."""
    buckets: dict[str, list[tuple[float, float]]] = defaultdict(list)
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != metric:
            continue
        for sample in family.samples:
            task = sample.labels.get("task", "")
            if sample.name == f"{metric}_bucket":
                buckets[task].append((float(sample.labels["le"]), sample.value))
            elif sample.name == f"{metric}_count":
                counts[task] = sample.value
    result: dict[str, dict[str, object]] = {}
    for task, pairs in sorted(buckets.items()):
        entry: dict[str, object] = {"count": int(counts.get(task, 0))}
        for q in quantiles:
            entry[f"p{round(q * 100):g}"] = histogram_quantile(q, pairs)
        result[task] = entry
    return result
