"""Percentiles and their distribution-free bounds, against their definitions and known distributions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binom

from robustgate.latency.percentiles import median_lower_bound, nearest_rank, quantile, queries_for_bound, upper_bound_rank

levels = st.sampled_from([0.5, 0.9, 0.95, 0.99])
confidences = st.sampled_from([0.8, 0.9, 0.95, 0.975, 0.99])


@given(samples=st.lists(st.floats(0.01, 1e3), min_size=1, max_size=300), q=levels)
def test_nearest_rank_is_the_ceil_q_n_order_statistic(samples: list[float], q: float) -> None:
    ordered = sorted(samples)
    assert nearest_rank(np.array(samples), q) == ordered[max(1, math.ceil(q * len(samples))) - 1]


@given(n=st.integers(1, 2000), q=levels, confidence=confidences)
def test_the_bound_rank_is_the_smallest_that_reaches_the_confidence(n: int, q: float, confidence: float) -> None:
    rank = upper_bound_rank(n, q, confidence)
    if rank is None:
        assert binom.cdf(n - 1, n, q) < confidence  # not even the maximum bounds it
        assert n < queries_for_bound(q, confidence)
    else:
        assert binom.cdf(rank - 1, n, q) >= confidence
        assert rank == 1 or binom.cdf(rank - 2, n, q) < confidence


@given(q=levels, confidence=confidences)
def test_queries_for_a_bound_is_the_fewest(q: float, confidence: float) -> None:
    n = queries_for_bound(q, confidence)
    assert 1 - q**n >= confidence - 1e-12 and 1 - q ** (n - 1) < confidence
    assert upper_bound_rank(n, q, confidence) is not None
    assert n == 1 or upper_bound_rank(n - 1, q, confidence) is None


@settings(max_examples=30, deadline=None)
@given(samples=st.lists(st.floats(0.01, 1e3), min_size=1, max_size=300), q=levels, confidence=confidences)
def test_the_upper_bound_is_a_sample_at_or_above_the_estimate(samples: list[float], q: float, confidence: float) -> None:
    result = quantile(np.array(samples), q, confidence)
    assert result.estimate in samples
    if not math.isnan(result.upper):
        assert result.upper in samples and result.upper >= result.estimate


@pytest.mark.parametrize(("q", "n"), [(0.5, 40), (0.9, 100), (0.99, 600)])
def test_upper_bounds_cover_the_true_quantile_of_a_known_distribution(q: float, n: int) -> None:
    # Latencies from a shifted exponential (a long right tail, like a busy machine's): the 95%
    # bound must sit above the true quantile in at least ~95% of repeated measurements.
    rng = np.random.default_rng(0)
    true = 2.0 - math.log(1 - q)
    covered = [quantile(2.0 + rng.exponential(1.0, n), q, 0.95).upper >= true for _ in range(600)]
    assert np.mean(covered) >= 0.93


def test_the_median_lower_bound_covers_a_known_median() -> None:
    rng = np.random.default_rng(1)
    covered = [median_lower_bound(rng.lognormal(0.5, 0.3, 60), 0.95) <= math.exp(0.5) for _ in range(600)]
    assert np.mean(covered) >= 0.93
    assert math.isnan(median_lower_bound(np.array([1.0, 2.0, 3.0]), 0.95))  # 3 pairs cannot reach 95%
