"""Percentiles of per-query latencies and their distribution-free confidence bounds.

A percentile is the nearest-rank order statistic (sorted sample number ``ceil(q n)``), as MLPerf's
LoadGen reports it. Its upper confidence bound is the order statistic ``X_(k)`` with the smallest
``k`` such that ``P(X_(k) >= true q-quantile) = P(Binomial(n, q) < k) >= confidence``, the
binomial argument MLPerf uses to size its query counts: it needs no model of the distribution,
so one slow neighbour widens the bound instead of failing the gate on its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import binom


@dataclass(frozen=True)
class Quantile:
    q: float
    estimate: float
    upper: float  # nan when there are too few samples for a bound at this confidence
    n: int


def nearest_rank(samples: np.ndarray, q: float) -> float:
    ordered = np.sort(samples)
    return float(ordered[max(1, math.ceil(q * len(ordered))) - 1])


def upper_bound_rank(n: int, q: float, confidence: float) -> int | None:
    """1-based rank of the smallest order statistic that bounds the q-quantile from above with
    ``confidence``; None if even the maximum does not (too few samples)."""
    k = int(binom.ppf(confidence, n, q)) + 1  # smallest k with cdf(k - 1) >= confidence
    while k > 1 and binom.cdf(k - 2, n, q) >= confidence:  # ppf is a float search; make it exact
        k -= 1
    while k <= n and binom.cdf(k - 1, n, q) < confidence:
        k += 1
    return k if k <= n else None


def queries_for_bound(q: float, confidence: float) -> int:
    """Fewest samples whose maximum bounds the q-quantile with ``confidence``: ``1 - q^n >= confidence``."""
    return math.ceil(math.log(1 - confidence) / math.log(q))


def quantile(samples: np.ndarray, q: float, confidence: float) -> Quantile:
    n = len(samples)
    rank = upper_bound_rank(n, q, confidence)
    upper = float(np.sort(samples)[rank - 1]) if rank is not None else float("nan")
    return Quantile(q, nearest_rank(samples, q), upper, n)


def median_lower_bound(values: np.ndarray, confidence: float) -> float:
    """A distribution-free lower confidence bound of the median (sign-test order statistic):
    the largest ``X_(k)`` with ``P(Binomial(n, 1/2) >= k) >= confidence``; nan if none."""
    n = len(values)
    ordered = np.sort(values)
    ks = np.nonzero(binom.sf(np.arange(n), n, 0.5) >= confidence)[0]  # P(Bin >= k) for k = 1..n, one call
    return float(ordered[ks[-1]]) if len(ks) else float("nan")
