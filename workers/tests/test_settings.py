"""The consumer configuration the README promises."""

from django.conf import settings

from workers import metrics


def test_idle_polling_is_capped_below_half_a_second():
    # huey's SQLite consumer backs off up to its max_delay when idle: that is the worst idle lag.
    assert settings.HUEY["consumer"]["max_delay"] < 0.5


def test_thread_workers_only():
    assert settings.HUEY["consumer"]["worker_type"] == "thread"


def test_lag_buckets_span_5ms_to_60s_with_the_freshness_threshold_as_an_edge():
    assert metrics.LAG_BUCKETS[0] == 0.005
    assert metrics.LAG_BUCKETS[-1] == 60.0
    assert 5.0 in metrics.LAG_BUCKETS
    assert list(metrics.LAG_BUCKETS) == sorted(metrics.LAG_BUCKETS)
