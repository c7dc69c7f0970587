"""Intervals and paired tests for accuracies measured on the same images.

scipy does the distribution work; the paired drop interval is the exact
conditional one that goes with the exact McNemar test: given the ``m``
discordant images, the number the baseline got right and the variant got
wrong is Binomial(m, p), and the drop is ``m * (2p - 1) / n``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from scipy.stats import binomtest

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
    """Drop with an exact conditional interval and the exact McNemar p-value."""
    if reference_correct.shape != candidate_correct.shape:
        raise ValueError("paired comparisons need the same images in the same order")
    n = int(reference_correct.numel())
    lost = int((reference_correct & ~candidate_correct).sum())
    gained = int((~reference_correct & candidate_correct).sum())
    discordant = lost + gained
    drop = (lost - gained) / n
    if discordant == 0:
        return PairedDrop(0.0, 0.0, 0.0, 0, 0, n, 1.0, level)
    test = binomtest(lost, discordant, 0.5)
    ci = test.proportion_ci(confidence_level=level, method="exact")
    low = discordant * (2 * float(ci.low) - 1) / n
    high = discordant * (2 * float(ci.high) - 1) / n
    return PairedDrop(drop, low, high, lost, gained, n, float(test.pvalue), level)
