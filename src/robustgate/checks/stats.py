"""Intervals for accuracies, and for differences of accuracies on the same images (paired) or not.

scipy does the distribution work (normal quantiles, the exact binomial test
behind exact McNemar); Wilson's interval is its closed form, vectorised so that
the coverage benchmark runs the same code on thousands of tables. The interval of a paired drop is Newcombe's hybrid
score interval for the difference of paired proportions (Newcombe 1998,
Statistics in Medicine 17:2635, method 10, with the continuity-corrected phi
of Altman et al., *Statistics with Confidence*, p. 52). It is written here
because scipy and statsmodels have no paired version; unlike an interval
conditioned on the discordant pairs, it stays wide when all disagreements
point one way (6 lost, 0 gained still leaves room for a larger drop).

A relative drop (1 - candidate accuracy / reference accuracy) is bounded by the asymptotic score
interval of a ratio of paired proportions (see :func:`relative_drop_high`): it carries the reference
accuracy's own uncertainty, which dividing a drop's bound by the reference's point estimate ignores.

A gate reads one end of a two-sided interval at the spec's confidence c: a one-sided bound at
(1 + c) / 2, and :func:`bound_name` says so ("one-sided 97.5% lower bound").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import torch

DISPLAY_LEVEL = 0.95  # intervals shown when gates read point estimates


def bound_name(level: float, side: str) -> str:
    """How a gate reads one end of a two-sided interval at ``level``: ``one-sided 97.5% lower bound``."""
    return f"one-sided {round(100 * (1 + level) / 2, 6):g}% {side} bound"


def wilson_bounds(successes: np.ndarray | float, n: np.ndarray | float, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval, vectorised; counts may be fractional (an effective sample size)."""
    import numpy as np
    from scipy.stats import norm

    z = float(norm.ppf((1 + level) / 2))
    x, n = np.asarray(successes, dtype=np.float64), np.asarray(n, dtype=np.float64)
    p = x / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(np.maximum(p * (1 - p), 0.0) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


@dataclass(frozen=True)
class Proportion:
    estimate: float
    low: float
    high: float
    successes: int
    n: int
    level: float


def wilson_interval(successes: int, n: int, level: float) -> Proportion:
    """Accuracy with its Wilson score interval (good coverage even near 0 or 1, unlike the normal one)."""
    if n == 0:
        raise ValueError("an accuracy needs at least one image")
    low, high = wilson_bounds(successes, n, level)
    return Proportion(successes / n, min(float(low), successes / n), max(float(high), successes / n), successes, n, level)


@dataclass(frozen=True)
class PairedDrop:
    """How much accuracy a candidate loses against a reference on the same images."""

    drop: float  # reference accuracy minus candidate accuracy
    low: float
    high: float
    lost: int  # reference right, candidate wrong
    gained: int  # reference wrong, candidate right
    n: int
    p_value: float  # exact McNemar, two-sided
    level: float


def paired_drop(reference_correct: torch.Tensor, candidate_correct: torch.Tensor, level: float) -> PairedDrop:
    """Drop (reference accuracy minus candidate accuracy) with Newcombe's paired interval
    and the exact McNemar p-value."""
    from scipy.stats import binomtest

    if reference_correct.shape != candidate_correct.shape:
        raise ValueError("paired comparisons need the same images in the same order")
    n = int(reference_correct.numel())
    both = int((reference_correct & candidate_correct).sum())
    lost = int((reference_correct & ~candidate_correct).sum())
    gained = int((~reference_correct & candidate_correct).sum())
    neither = n - both - lost - gained
    drop = (lost - gained) / n
    low, high = _newcombe_paired(both, lost, gained, neither, level)
    p_value = 1.0 if lost + gained == 0 else float(binomtest(lost, lost + gained, 0.5).pvalue)
    return PairedDrop(drop, low, high, lost, gained, n, p_value, level)


def _newcombe_paired(both: int, lost: int, gained: int, neither: int, level: float) -> tuple[float, float]:
    low, high = newcombe_paired_bounds(both, lost, gained, neither, level)
    return float(low), float(high)


def newcombe_paired_bounds(both: np.ndarray | float, lost: np.ndarray | float, gained: np.ndarray | float,
                           neither: np.ndarray | float, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Newcombe's paired interval for the drop (reference minus candidate accuracy), vectorised;
    counts may be fractional (an effective number of images, see :mod:`robustgate.checks.clustered`)."""
    import numpy as np

    both, lost, gained, neither = (np.asarray(c, dtype=np.float64) for c in (both, lost, gained, neither))
    n = both + lost + gained + neither
    p1, p2 = (both + lost) / n, (both + gained) / n  # reference and candidate accuracy
    low1, high1 = wilson_bounds(both + lost, n, level)
    low2, high2 = wilson_bounds(both + gained, n, level)
    phi = _newcombe_phi(both, lost, gained, neither)
    d1_low, d1_high = p1 - low1, high1 - p1
    d2_low, d2_high = p2 - low2, high2 - p2
    drop = p1 - p2
    low = drop - np.sqrt(np.maximum(d1_low**2 - 2 * phi * d1_low * d2_high + d2_high**2, 0.0))
    high = drop + np.sqrt(np.maximum(d2_low**2 - 2 * phi * d2_low * d1_high + d1_high**2, 0.0))
    return np.maximum(low, -1.0), np.minimum(high, 1.0)


def relative_drop_high(both: np.ndarray | float, lost: np.ndarray | float, gained: np.ndarray | float,
                       neither: np.ndarray | float, level: float) -> np.ndarray:
    """Upper end of the relative drop 1 - p_candidate / p_reference on the same images, vectorised.

    One minus the lower end of the asymptotic score interval for the ratio of paired proportions
    (Nam & Blackwelder 2002, Statistics in Medicine 21:689; Tang, Tang & Chan 2003, Statistics in
    Medicine 22:1217), which Fagerland, Lydersen & Laake (2014, Statistics in Medicine 33:2850)
    recommend. The score statistic at a ratio phi uses the multinomial maximum likelihood under
    phi, so the reference's own uncertainty counts (dividing the drop's bound by the reference's
    point estimate ignores it). In benchmarks/bench_coverage.py it keeps 97.5% one-sided where
    Bonett & Price's (2006) hybrid interval read 96.6-97.0% (models that rarely disagree) and a
    MOVER ratio read 95.3% (large drops, n = 30). 1 (no bound) when either model gets no image right."""
    import numpy as np
    from scipy.stats import norm

    both, lost, gained, neither = (np.asarray(c, dtype=np.float64) for c in (both, lost, gained, neither))
    n = both + lost + gained + neither
    candidate, reference, informative = both + gained, both + lost, both + lost + gained
    z = float(norm.ppf((1 + level) / 2))
    defined = (candidate > 0) & (reference > 0)
    candidate_, reference_ = np.where(defined, candidate, 1.0), np.where(defined, reference, 1.0)

    def score(phi: np.ndarray) -> np.ndarray:  # decreasing in phi, 0 at the estimate
        a = n * (1 + phi)
        b = reference_ * phi**2 - (candidate_ + 2 * lost)
        c = lost * (1 - phi) * informative / n
        p_lost = (-b + np.sqrt(np.maximum(b * b - 4 * a * c, 0.0))) / (2 * a)  # MLE of P(lost) under phi
        variance = n * (1 + phi) * p_lost + informative * (phi - 1)
        return (candidate_ - reference_ * phi) / np.sqrt(np.maximum(variance, 1e-300))

    # bisection on log(phi) between 1e-12 and the estimate, every table at once
    low, high = np.full(n.shape, np.log(1e-12)), np.log(candidate_ / reference_)
    for _ in range(60):
        mid = (low + high) / 2
        above = score(np.exp(mid)) > z
        low, high = np.where(above, mid, low), np.where(above, high, mid)
    ratio_low = np.where(score(np.exp(low)) > z, np.exp((low + high) / 2), 0.0)
    return np.where(defined, np.minimum(1 - ratio_low, 1.0), 1.0)


def _newcombe_phi(both: np.ndarray, lost: np.ndarray, gained: np.ndarray, neither: np.ndarray) -> np.ndarray:
    """Newcombe's continuity-corrected phi between the two accuracies of a paired table."""
    import numpy as np

    n = both + lost + gained + neither
    margins = (both + lost) * (gained + neither) * (both + gained) * (lost + neither)
    cross = both * neither - lost * gained
    corrected = np.where(cross > n / 2, cross - n / 2, np.minimum(cross, 0.0))
    return np.where(margins > 0, corrected / np.sqrt(np.where(margins > 0, margins, 1.0)), 0.0)


@dataclass(frozen=True)
class Difference:
    """``a - b`` for accuracies measured on different images, with its interval."""

    estimate: float
    low: float
    high: float
    level: float


def unpaired_difference(a: Proportion, b: Proportion) -> Difference:
    """Difference of two independent proportions with Newcombe's hybrid score interval (method 10 of
    Newcombe 1998, Statistics in Medicine 17:873), built from the two Wilson intervals at one level: MOVER
    (:func:`mover_difference`) with no correlation."""
    if a.level != b.level:
        raise ValueError("both proportions need intervals at the same level")
    d, low, high = mover_difference((a.estimate, a.low, a.high), (b.estimate, b.low, b.high), 0.0)
    return Difference(float(d), max(float(low), -1.0), min(float(high), 1.0), a.level)


def mover_difference(
    a: tuple[Any, Any, Any], b: tuple[Any, Any, Any], correlation: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``a - b`` with its MOVER interval from each one's (estimate, low, high) and their correlation
    (Zou 2008), vectorised: the widths each interval allows on the side that moves the difference,
    combined as for a normal difference, so each keeps its own (asymmetric) shape."""
    import numpy as np

    (a_est, a_low, a_high), (b_est, b_low, b_high) = ((np.asarray(v, dtype=np.float64) for v in side) for side in (a, b))
    r = np.asarray(correlation, dtype=np.float64)
    estimate = a_est - b_est
    down_a, up_b = a_est - a_low, b_high - b_est
    up_a, down_b = a_high - a_est, b_est - b_low
    low = estimate - np.sqrt(np.maximum(down_a**2 + up_b**2 - 2 * r * down_a * up_b, 0.0))
    high = estimate + np.sqrt(np.maximum(up_a**2 + down_b**2 - 2 * r * up_a * down_b, 0.0))
    return estimate, np.maximum(low, -2.0), np.minimum(high, 2.0)
