"""A small Prometheus HTTP API client: instant and range queries, and waiting for a fresh scrape."""

from __future__ import annotations

import time
from dataclasses import dataclass

import requests

TIMEOUT_S = 10.0


class PrometheusError(RuntimeError):
    pass


@dataclass(frozen=True)
class Series:
    labels: dict[str, str]
    points: list[tuple[float, float]]


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.session = requests.Session()

    def _get(self, path: str, params: dict[str, str | float]) -> dict:
        try:
            response = self.session.get(f"{self.url}{path}", params=params, timeout=TIMEOUT_S)
        except requests.RequestException as exc:
            raise PrometheusError(f"Prometheus at {self.url} is unreachable: {exc}") from exc
        try:
            body = response.json()
        except ValueError as exc:
            raise PrometheusError(f"Prometheus answered {response.status_code} without JSON") from exc
        if body.get("status") != "success":
            raise PrometheusError(f"query failed: {body.get('error', body)} (params {params})")
        return body["data"]

    def vector(self, query: str, *, at: float | None = None) -> list[tuple[dict[str, str], float]]:
        params: dict[str, str | float] = {"query": query}
        if at is not None:
            params["time"] = at
        data = self._get("/api/v1/query", params)
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        return [(item["metric"], float(item["value"][1])) for item in data["result"]]

    def scalar(self, query: str, *, at: float | None = None, default: float = 0.0) -> float:
        """The single value of `query`; `default` when it returns nothing (no such series yet)."""
        result = self.vector(query, at=at)
        if not result:
            return default
        value = result[0][1]
        return default if value != value else value  # NaN (e.g. 0/0) reads as "no data"

    def range(self, query: str, *, start: float, end: float, step: float) -> list[Series]:
        data = self._get("/api/v1/query_range", {"query": query, "start": start, "end": end, "step": step})
        return [
            Series(labels=item["metric"], points=[(float(t), float(v)) for t, v in item["values"]])
            for item in data["result"]
        ]

    def ready(self) -> bool:
        try:
            return self.session.get(f"{self.url}/-/ready", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def last_scrape(self, job: str) -> float:
        """Timestamp of the newest scrape of `job` (0 when it has none)."""
        return self.scalar(f'max(timestamp(up{{job="{job}"}}))')

    def scrape_interval(self, job: str) -> float:
        """The configured scrape interval of `job` in seconds (from the config Prometheus runs)."""
        data = self._get("/api/v1/targets", {"state": "active"})
        for target in data.get("activeTargets", []):
            if target.get("labels", {}).get("job") == job:
                return _duration_s(target.get("scrapeInterval", "15s"))
        raise PrometheusError(f"Prometheus has no active target for job {job!r}")

    def wait_scrape_after(self, jobs: tuple[str, ...], after: float, *, timeout_s: float) -> float:
        """Wait until every job has been scraped after `after`; returns the newest of those scrape times.

        Used to bracket a measured window: a counter read at that scrape includes everything that
        happened before `after`, and nothing sent later than the scrape.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            stamps = [self.last_scrape(job) for job in jobs]
            if all(s > after for s in stamps):
                return max(stamps)
            if time.monotonic() > deadline:
                late = [j for j, s in zip(jobs, stamps, strict=True) if s <= after]
                raise PrometheusError(f"no scrape of {', '.join(late)} within {timeout_s:g} s: is the target up?")
            time.sleep(0.2)


def _duration_s(text: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for suffix in ("ms", "s", "m", "h"):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * units[suffix]
    return float(text)
