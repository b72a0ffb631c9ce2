import math

from workers.histogram import histogram_quantile


def test_interpolates_inside_a_bucket_like_promql():
    buckets = [(0.1, 50.0), (0.5, 90.0), (1.0, 100.0), (math.inf, 100.0)]
    assert histogram_quantile(0.5, buckets) == 0.1
    assert abs(histogram_quantile(0.7, buckets) - 0.3) < 1e-9
    assert histogram_quantile(0.99, buckets) == 0.95


def test_no_observations_is_none_and_overflow_is_the_last_edge():
    assert histogram_quantile(0.5, [(1.0, 0.0), (math.inf, 0.0)]) is None
    assert histogram_quantile(0.99, [(1.0, 1.0), (math.inf, 10.0)]) == 1.0
