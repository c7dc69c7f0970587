"""Intervals for means of per-image scores over several conditions (corruption x severity).

A corruption contract scores every image under K conditions, and the conditions of one image are
correlated (a hard image is hard under every corruption), so the n x K outcomes are not n x K
independent trials, nor as few as n: the information lies in between. An accuracy or a drop
takes the binomial score interval of n images (Wilson's; Newcombe's paired one for a drop, built
from the image-averaged table, so it keeps the pairing that an unpaired interval throws away) and
shrinks its distances from the estimate by sqrt(n / n_eff), with n_eff the effective number of
images (Kish's design effect, with a Korn & Graubard degrees-of-freedom correction, Survey
Methodology 1998, 24:193):

    n_eff = n * (binomial variance of one image's score) / (observed variance of the image scores)
            * (z / t_df)^2,  clipped to [n, n K]

The floor n is what images that behave alike under every condition carry (one Bernoulli per
image, the largest variance a score in [0, 1] can have at its mean); the ceiling n K is what
independent conditions carry. Images that all score the same (no variance to estimate) keep the
n-image interval: honest, never a point. Shrinking the n-image interval rather than recomputing it
at n_eff keeps its skew (a few images that lose a lot), which the upper end of a drop needs: at
n_eff it read 97.0-97.2% one-sided against 97.5% in benchmarks/bench_coverage.py.

A ratio of paired means (relative mCE, CE: the candidate's total over the baseline's, per image)
takes Fieller's interval (Fieller 1954; Franz 2007, arXiv:0710.2024) with Student's t: analytic,
and unbounded above when the denominator's mean is not clearly positive, because the data cannot
bound a ratio to a loss they cannot tell from zero. The percentile bootstrap it replaces read
93.7-94.7% one-sided against 97.5%, and a point when every image agreed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from robustgate.checks.stats import newcombe_paired_bounds, wilson_bounds

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Interval:
    estimate: np.ndarray
    low: np.ndarray
    high: np.ndarray


def effective_images(scores: np.ndarray, binomial: np.ndarray, conditions: int, level: float) -> np.ndarray:
    """Effective number of images from the per-image ``scores`` (..., n) and the variance ``binomial``
    one Bernoulli per image would have at their mean; n where it cannot be told.

    The correction (z / t_df)^2 pays for estimating the variance. Per-image scores are far from
    normal (mostly 0 for a drop, a few images lose a lot), so their sample variance is noisier than
    n - 1 degrees of freedom say: df = 2 / (2 / (n - 1) + excess kurtosis / n), the moment match of
    Satterthwaite's approximation, keeps the bound at its level where plain n - 1 fell short."""
    import numpy as np
    from scipy.stats import norm, t

    n = scores.shape[-1]
    centred = scores - scores.mean(axis=-1, keepdims=True)
    variance = (centred**2).sum(axis=-1) / max(n - 1, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        kurtosis = np.where(variance > 0, (centred**4).mean(axis=-1) / np.where(variance > 0, variance, 1.0) ** 2 - 3, 0.0)
    df = 2 / (2 / max(n - 1, 1) + np.maximum(kurtosis, 0.0) / n)
    correction = (norm.ppf((1 + level) / 2) / t.ppf((1 + level) / 2, df)) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = np.where(variance > 0, n * binomial / np.where(variance > 0, variance, 1.0) * correction, n * conditions)
    # no spread at all (every image alike) tells nothing about the correlation: one Bernoulli per image
    return np.where(binomial > 0, np.clip(raw, n, n * conditions), float(n))


def accuracy(correct: np.ndarray, level: float) -> Interval:
    """Mean accuracy of ``correct`` (..., conditions, n images), 0/1 or booleans."""
    import numpy as np

    conditions, n = correct.shape[-2:]
    scores = np.asarray(correct, dtype=np.float64).mean(axis=-2)  # (..., n)
    p = scores.mean(axis=-1)
    low, high = wilson_bounds(p * n, n, level)
    shrink = np.sqrt(n / effective_images(scores, p * (1 - p), conditions, level))
    return Interval(p, p - np.maximum(p - low, 0.0) * shrink, p + np.maximum(high - p, 0.0) * shrink)


def paired_drop(reference: np.ndarray, candidate: np.ndarray, level: float) -> Interval:
    """Reference accuracy minus candidate accuracy on the same images and conditions (..., conditions, n)."""
    import numpy as np

    conditions, n = reference.shape[-2:]
    ref, cand = np.asarray(reference, dtype=bool), np.asarray(candidate, dtype=bool)
    lost = (ref & ~cand).mean(axis=-2)  # per image: share of conditions the candidate loses
    gained = (~ref & cand).mean(axis=-2)
    both = (ref & cand).mean(axis=-2).mean(axis=-1)
    p_lost, p_gained = lost.mean(axis=-1), gained.mean(axis=-1)
    neither = np.maximum(1 - both - p_lost - p_gained, 0.0)
    low, high = newcombe_paired_bounds(both * n, p_lost * n, p_gained * n, neither * n, level)
    drop = p_lost - p_gained
    shrink = np.sqrt(n / effective_images(lost - gained, p_lost + p_gained - drop**2, conditions, level))
    return Interval(drop, drop - np.maximum(drop - low, 0.0) * shrink, drop + np.maximum(high - drop, 0.0) * shrink)


def fieller_ratio(numerator: np.ndarray, denominator: np.ndarray, level: float, resolution: float) -> Interval:
    """mean(numerator) / mean(denominator) over paired image scores (..., n), with Fieller's interval.

    ``resolution`` is the smallest change of one image's score (1 / conditions); two pseudo-images
    that differ by it, one each way, add ``2 resolution^2 / (n + 2)`` to the variance of the
    difference (the pseudo-count idea of Agresti & Caffo, and of Bonett & Price for paired counts),
    so images that agree everywhere give a narrow interval, never a point."""
    import numpy as np
    from scipy.stats import t

    n = numerator.shape[-1]
    a, b = np.asarray(numerator, dtype=np.float64), np.asarray(denominator, dtype=np.float64)
    mean_a, mean_b = a.mean(axis=-1), b.mean(axis=-1)
    ddof = 1 if n > 1 else 0
    da, db = a - mean_a[..., None], b - mean_b[..., None]
    s_aa = (da * da).sum(axis=-1) / (n - ddof) + 2 * resolution**2 / (n + 2)
    s_ab = (da * db).sum(axis=-1) / (n - ddof)
    s_bb = (db * db).sum(axis=-1) / (n - ddof)
    g = t.ppf((1 + level) / 2, max(n - 1, 1)) ** 2 / n
    qa, qb, qc = mean_b**2 - g * s_bb, mean_a * mean_b - g * s_ab, mean_a**2 - g * s_aa
    root = np.sqrt(np.maximum(qb**2 - qa * qc, 0.0))
    bounded = (qa > 0) & (mean_b > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        safe = np.where(bounded, qa, 1.0)
        low = np.where(bounded, (qb - root) / safe, -np.inf)
        high = np.where(bounded, (qb + root) / safe, np.inf)
        ratio = np.where(mean_b > 0, mean_a / np.where(mean_b > 0, mean_b, 1.0), np.where(mean_a <= 0, 1.0, np.inf))
    return Interval(ratio, np.minimum(low, ratio), np.maximum(high, ratio))
