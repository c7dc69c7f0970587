"""Intervals for accuracies, and for differences of accuracies on the same images (paired) or not.

scipy does the distribution work (Wilson intervals, the exact binomial test
behind exact McNemar). The interval of a paired drop is Newcombe's hybrid
score interval for the difference of paired proportions (Newcombe 1998,
Statistics in Medicine 17:2635, method 10, with the continuity-corrected phi
of Altman et al., *Statistics with Confidence*, p. 52). It is written here
because scipy and statsmodels have no paired version; unlike an interval
conditioned on the discordant pairs, it stays wide when all disagreements
point one way (6 lost, 0 gained still leaves room for a larger drop).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

DISPLAY_LEVEL = 0.95  # intervals shown when gates read point estimates


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
    from scipy.stats import binomtest  # scipy only when evaluating: validating a spec must not import it

    if n == 0:
        raise ValueError("an accuracy needs at least one image")
    ci = binomtest(successes, n).proportion_ci(confidence_level=level, method="wilson")
    return Proportion(successes / n, float(ci.low), float(ci.high), successes, n, level)


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
    n = both + lost + gained + neither
    p1, p2 = (both + lost) / n, (both + gained) / n  # reference and candidate accuracy
    r1 = wilson_interval(both + lost, n, level)
    r2 = wilson_interval(both + gained, n, level)
    margins = (both + lost) * (gained + neither) * (both + gained) * (lost + neither)
    cross = both * neither - lost * gained
    corrected = cross - n / 2 if cross > n / 2 else (cross if cross < 0 else 0.0)
    phi = corrected / math.sqrt(margins) if margins > 0 else 0.0
    d1_low, d1_high = p1 - r1.low, r1.high - p1
    d2_low, d2_high = p2 - r2.low, r2.high - p2
    drop = p1 - p2
    low = drop - math.sqrt(max(d1_low**2 - 2 * phi * d1_low * d2_high + d2_high**2, 0.0))
    high = drop + math.sqrt(max(d2_low**2 - 2 * phi * d2_low * d1_high + d1_high**2, 0.0))
    return max(low, -1.0), min(high, 1.0)


@dataclass(frozen=True)
class Difference:
    """``a - b`` for accuracies measured on different images, with its interval."""

    estimate: float
    low: float
    high: float
    level: float


def unpaired_difference(a: Proportion, b: Proportion) -> Difference:
    """Difference of two independent proportions with Newcombe's hybrid score interval (method 10 of
    Newcombe 1998, Statistics in Medicine 17:873), built from the two Wilson intervals at one level."""
    if a.level != b.level:
        raise ValueError("both proportions need intervals at the same level")
    d = a.estimate - b.estimate
    low = d - math.sqrt((a.estimate - a.low) ** 2 + (b.high - b.estimate) ** 2)
    high = d + math.sqrt((a.high - a.estimate) ** 2 + (b.estimate - b.low) ** 2)
    return Difference(d, max(low, -1.0), min(high, 1.0), a.level)
