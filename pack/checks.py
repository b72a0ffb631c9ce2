"""What the generator can tell is wrong before any scrape: warnings for the user, never a silent pack."""

from __future__ import annotations

from monitoring.config import DJANGO_PROMETHEUS_DEFAULT_BUCKETS, MonitoringConfig


def _neighbours(threshold: float, buckets: tuple[float, ...]) -> str:
    below = max((b for b in buckets if b < threshold), default=None)
    above = min((b for b in buckets if threshold < b < float("inf")), default=None)
    if below is not None and above is not None:
        return f"between the buckets {below:g} and {above:g}"
    if below is not None:
        return f"above every finite bucket (the largest is {below:g})"
    return "below every bucket"


def config_warnings(config: MonitoringConfig) -> list[str]:
    """Problems the pack would only show at run time (as an absent SLI and a configuration alert)."""
    warnings = []
    threshold = config.slos.latency.threshold_s
    assert threshold is not None
    buckets = config.latency_buckets
    if buckets is None:
        if threshold not in DJANGO_PROMETHEUS_DEFAULT_BUCKETS:
            warnings.append(
                f"the latency threshold {threshold:g} s is not one of django-prometheus's default buckets "
                f"({_neighbours(threshold, DJANGO_PROMETHEUS_DEFAULT_BUCKETS)}): add {threshold:g} to "
                "PROMETHEUS_LATENCY_BUCKETS in your settings (and latency_buckets to the pack config to have "
                "it checked here), or the latency SLI stays absent and SLOConfigLatencyBucketMissing fires"
            )
    elif threshold not in buckets:
        warnings.append(
            f"the latency threshold {threshold:g} s is not among latency_buckets ({_neighbours(threshold, buckets)}): "
            "the latency SLI will be absent and SLOConfigLatencyBucketMissing fire until it is a bucket"
        )
    if not config.excluded_views:
        warnings.append(
            "excluded_views is empty: health and readiness probes will count as user traffic; list their URL names"
        )
    return warnings
