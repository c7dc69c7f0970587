"""Coverage of every interval robustgate gates on, by simulation, and its width against a reference method.

A gate at confidence c reads one end of a two-sided c interval: a one-sided bound at (1 + c) / 2
(97.5% at the default 0.95). For each interval kind and n, this draws >= 2,000 datasets from a
realistic generating model, computes the bound with the package's own functions, and counts how
often it holds the true value on the side the gates read. A cell passes when its coverage is
within two Monte Carlo standard errors of nominal, or above it. Widths are the median distance
from estimate to bound, divided by the same for a reference method (named in the table). The
reference's own coverage is printed too: the 1.5x width target is read only against a reference
that keeps the level itself (a shorter interval that misses it is not a better method, only a
shorter one), and a cell whose reference falls short says so.

Generating models (parameters drawn per dataset from the ranges below):
- accuracy: n Bernoulli(p) images, p ~ U(0.6, 0.99);
- paired (drop, relative drop): a latent per-image difficulty z ~ N(0, 1) shared by both models,
  each model right when z + sigma e > its threshold (e ~ N(0, 1) its own), reference accuracy
  ~ U(0.75, 0.98), sigma ~ U(0.02, 0.2) and a candidate threshold shifted by U(-0.02, 0.1):
  models disagree on ~1-7% of images, as compressed models do; "large drops" is an attack's:
  reference (robust) accuracy ~ U(0.2, 0.6), sigma ~ U(0.1, 0.6), the candidate's threshold U(0.2, 0.8) higher;
- corruptions: 3 corruptions x 5 severities + clean; an image's ability is z + eta_c + xi_cs
  (difficulty, its corruption's effect on it, the condition's), shared by both models, plus each
  model's own noise; thresholds rise with severity, and the candidate gets more fragile with it;
- latency: per-query times lognormal (sigma ~ U(0.05, 0.6)) with a U(0, 5%) share of Pareto(1.5)
  stragglers; speed-ups: ratios of block means (5 queries each) of two such models.

    .venv/bin/python benchmarks/bench_coverage.py [--quick] [--datasets N] [--seed S]
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq
from scipy.special import betainc
from scipy.stats import beta, norm, t

from robustgate.checks import clustered
from robustgate.checks.stats import newcombe_paired_bounds, relative_drop_high, wilson_bounds
from robustgate.latency.percentiles import median_lower_bound, quantile

LEVEL = 0.95  # the spec's default confidence
NOMINAL = (1 + LEVEL) / 2  # what one end of its two-sided interval promises
NS = (30, 60, 100, 359, 1000)
CORRUPTIONS, SEVERITIES = 3, 5


@dataclass
class Cell:
    covered: np.ndarray  # bool per dataset (nan-free)
    distance: np.ndarray  # |bound - estimate| of the method
    reference: np.ndarray  # the same for the reference method
    note: str = ""
    reference_covered: np.ndarray | None = None  # bool per dataset: the reference's own bound held


@dataclass(frozen=True)
class Kind:
    name: str
    side: str  # the end gates read
    method: str
    reference: str
    run: Callable[[int, int, np.random.Generator], Cell]


def _z() -> float:
    return float(norm.ppf(NOMINAL))


# --- accuracy ---------------------------------------------------------------------------------


def wilson_cell(n: int, d: int, rng: np.random.Generator) -> Cell:
    p = rng.uniform(0.6, 0.99, d)
    k = rng.binomial(n, p)
    low, _ = wilson_bounds(k, n, LEVEL)  # what wilson_interval computes
    cp = np.where(k > 0, beta.ppf(1 - NOMINAL, np.maximum(k, 1), n - k + 1), 0.0)  # Clopper-Pearson
    return Cell(low <= p, k / n - low, k / n - cp)


# --- paired drop and relative drop ------------------------------------------------------------


def _paired(n: int, d: int, rng: np.random.Generator, large: bool = False) -> tuple[np.ndarray, ...]:
    """(both, lost, gained, neither) counts and the true reference and candidate accuracies; ``large``:
    the drops of an attack (reference robust accuracy U(0.2, 0.6), the candidate far below it)."""
    p_ref = rng.uniform(0.2, 0.6, d) if large else rng.uniform(0.75, 0.98, d)
    sigma = rng.uniform(0.1, 0.6, d) if large else rng.uniform(0.02, 0.2, d)
    s = np.sqrt(1 + sigma**2)
    tau_ref = -norm.ppf(p_ref) * s
    tau_cand = tau_ref + (rng.uniform(0.2, 0.8, d) if large else rng.uniform(-0.02, 0.1, d))
    counts = np.zeros((4, d))
    for start in range(0, d, 200):  # chunks keep memory flat at n = 1000
        sl = slice(start, start + 200)
        z = rng.standard_normal((len(p_ref[sl]), n))
        ref = z + sigma[sl, None] * rng.standard_normal(z.shape) > tau_ref[sl, None]
        cand = z + sigma[sl, None] * rng.standard_normal(z.shape) > tau_cand[sl, None]
        counts[:, sl] = [(ref & cand).sum(1), (ref & ~cand).sum(1), (~ref & cand).sum(1), (~ref & ~cand).sum(1)]
    both, lost, gained, neither = counts
    return both, lost, gained, neither, norm.sf(tau_ref / s), norm.sf(tau_cand / s)


def paired_drop_cell(n: int, d: int, rng: np.random.Generator) -> Cell:
    both, lost, gained, neither, p_ref, p_cand = _paired(n, d, rng)
    _, high = newcombe_paired_bounds(both, lost, gained, neither, LEVEL)  # what paired_drop computes
    drop = (lost - gained) / n
    # Bonett & Price (2012) Laplace-adjusted Wald, recommended by Fagerland et al. (2014)
    pl, pg = (lost + 1) / (n + 2), (gained + 1) / (n + 2)
    bp = pl - pg + _z() * np.sqrt((pl + pg - (pl - pg) ** 2) / (n + 2))
    disagree = np.percentile((lost + gained) / n, [5, 95])
    return Cell(high >= p_ref - p_cand, high - drop, bp - drop, f"models disagree on {disagree[0]:.1%}-{disagree[1]:.1%} (5-95%)")


def _bonett_price_margins(both: np.ndarray, lost: np.ndarray, gained: np.ndarray) -> tuple[np.ndarray, ...]:
    """The candidate's and reference's counts over the informative images, and Bonett & Price's adjusted z
    at which each gets its own Wilson interval (so the ratio of their ends has the paired level)."""
    cand, ref, informative = both + gained, both + lost, both + lost + gained
    a = np.sqrt((lost + gained + 2) / ((cand + 1) * (ref + 1)))
    b = np.sqrt((1 - (cand + 1) / (informative + 2)) / (cand + 1))
    c = np.sqrt((1 - (ref + 1) / (informative + 2)) / (ref + 1))
    return cand, ref, informative, a / (b + c) * _z()


def bonett_price_ratio_low(both: np.ndarray, lost: np.ndarray, gained: np.ndarray) -> np.ndarray:
    """Lower end of Bonett & Price's (2006, Statistics in Medicine 25:3039) hybrid Wilson score interval
    for p_candidate / p_reference, which Fagerland, Lydersen & Laake (2014) recommend for paired ratios."""
    cand, ref, informative, zz = _bonett_price_margins(both, lost, gained)
    m = np.maximum(informative, 1)
    low_c = (2 * cand + zz**2 - zz * np.sqrt(zz**2 + 4 * cand * (1 - cand / m))) / (2 * (m + zz**2))
    high_r = (2 * ref + zz**2 + zz * np.sqrt(zz**2 + 4 * ref * (1 - ref / m))) / (2 * (m + zz**2))
    return low_c / high_r


def _wilson_cc(x: np.ndarray, m: np.ndarray, z: np.ndarray, side: str) -> np.ndarray:
    """Continuity-corrected Wilson bound of x / m (Newcombe 1998, method 4), as contingencytables writes it."""
    x, m = x.astype(float), np.maximum(m.astype(float), 1.0)
    if side == "low":
        root = np.sqrt(np.maximum(z**2 - 2 - 1 / m + 4 * (x / m) * (m - x + 1), 0.0))
        return np.where(x <= 0, 0.0, np.clip((2 * x + z**2 - 1 - z * root) / (2 * (m + z**2)), 0.0, 1.0))
    root = np.sqrt(np.maximum(z**2 + 2 - 1 / m + 4 * (x / m) * (m - x - 1), 0.0))
    return np.where(x >= m, 1.0, np.clip((2 * x + z**2 + 1 + z * root) / (2 * (m + z**2)), 0.0, 1.0))


def bonett_price_cc_ratio_low(both: np.ndarray, lost: np.ndarray, gained: np.ndarray) -> np.ndarray:
    """Bonett & Price's hybrid interval with continuity correction, the form Fagerland, Lydersen & Laake
    (2014) recommend for small samples (contingencytables' BonettPrice_hybrid_Wilson_score_CI_CC_paired_2x2:
    0.7475 on Cavo et al.'s table, as there). Unlike the uncorrected form it keeps 97.5% one-sided here."""
    cand, ref, informative, zz = _bonett_price_margins(both, lost, gained)
    return _wilson_cc(cand, informative, zz, "low") / _wilson_cc(ref, informative, zz, "high")


def relative_drop_cell(n: int, d: int, rng: np.random.Generator, large: bool = False) -> Cell:
    both, lost, gained, neither, p_ref, p_cand = _paired(n, d, rng, large)
    high = relative_drop_high(both, lost, gained, neither, LEVEL)  # what add_drop_gates reads
    estimate = (lost - gained) / np.maximum(both + lost, 1)
    bp = 1 - bonett_price_cc_ratio_low(both, lost, gained)
    truth = 1 - p_cand / p_ref
    return Cell(high >= truth, high - estimate, bp - estimate, reference_covered=bp >= truth)


def relative_drop_large_cell(n: int, d: int, rng: np.random.Generator) -> Cell:
    return relative_drop_cell(n, d, rng, large=True)


def relative_drop_retired(n: int, d: int, rng: np.random.Generator) -> Cell:
    """The bound robustgate read before: the drop's bound over the baseline's point estimate."""
    both, lost, gained, neither, p_ref, p_cand = _paired(n, d, rng)
    _, high = newcombe_paired_bounds(both, lost, gained, neither, LEVEL)
    base = (both + lost) / n
    estimate = (lost - gained) / n / base
    bp = 1 - bonett_price_cc_ratio_low(both, lost, gained)
    return Cell(high / base >= 1 - p_cand / p_ref, high / base - estimate, bp - estimate)


def relative_drop_bonett_price(n: int, d: int, rng: np.random.Generator, large: bool = False) -> Cell:
    """Bonett & Price (2006) without continuity correction: short of 97.5% one-sided on an attack's large
    drops (94.7% at n = 30), so it is no reference for width; shown against the corrected form."""
    both, lost, gained, neither, p_ref, p_cand = _paired(n, d, rng, large)
    bp = 1 - bonett_price_ratio_low(both, lost, gained)
    cc = 1 - bonett_price_cc_ratio_low(both, lost, gained)
    estimate = (lost - gained) / (both + lost)
    return Cell(bp >= 1 - p_cand / p_ref, bp - estimate, cc - estimate)


def relative_drop_bonett_price_large(n: int, d: int, rng: np.random.Generator) -> Cell:
    return relative_drop_bonett_price(n, d, rng, large=True)


# --- corruptions ------------------------------------------------------------------------------


def _corrupted(n: int, d: int, rng: np.random.Generator):
    """Per-condition correctness (d, 1 + C*S, n) of both models (condition 0 clean) and the truths."""
    k = CORRUPTIONS * SEVERITIES
    clean = rng.uniform(0.8, 0.98, d)
    tau, omega = rng.uniform(0.3, 1.0, d), 0.5
    sigma = rng.uniform(0.05, 0.3, d)
    slope = rng.uniform(0.1, 0.4, (d, CORRUPTIONS))  # how much each severity level hurts
    fragile = rng.uniform(0.0, 0.4, d)  # the candidate's extra threshold at severity 5
    severity = np.arange(1, SEVERITIES + 1)
    spread_clean = np.sqrt(1 + sigma**2)
    theta0 = -norm.ppf(clean) * spread_clean
    theta = theta0[:, None, None] + slope[:, :, None] * severity  # (d, C, S)
    extra = np.broadcast_to(fragile[:, None, None] * severity / SEVERITIES, theta.shape)
    spread = np.sqrt(1 + tau**2 + omega**2 + sigma**2)[:, None, None]
    truth_ref = np.concatenate([norm.sf(theta0 / spread_clean)[:, None], norm.sf(theta / spread).reshape(d, k)], 1)
    truth_cand = np.concatenate([norm.sf(theta0 / spread_clean)[:, None], norm.sf((theta + extra) / spread).reshape(d, k)], 1)
    ref = np.empty((d, k + 1, n), dtype=bool)
    cand = np.empty_like(ref)
    for start in range(0, d, 100):
        sl = slice(start, min(start + 100, d))
        m = sl.stop - sl.start
        z = rng.standard_normal((m, 1, n))
        eta = np.repeat(tau[sl, None, None] * rng.standard_normal((m, CORRUPTIONS, n)), SEVERITIES, axis=1)
        ability = np.concatenate([z, z + eta + omega * rng.standard_normal((m, k, n))], axis=1)
        th = np.concatenate([theta0[sl, None], theta[sl].reshape(m, k)], 1)[..., None]
        ex = np.concatenate([np.zeros((m, 1)), extra[sl].reshape(m, k)], 1)[..., None]
        s = sigma[sl, None, None]
        ref[sl] = ability + s * rng.standard_normal(ability.shape) > th
        cand[sl] = ability + s * rng.standard_normal(ability.shape) > th + ex
    return ref, cand, truth_ref, truth_cand


def _student(scores: np.ndarray) -> np.ndarray:
    """Distance from the mean to Student's t bound on per-image scores (the usual reference for a mean)."""
    n = scores.shape[-1]
    return t.ppf(NOMINAL, n - 1) * scores.std(axis=-1, ddof=1) / math.sqrt(n)


def corruption_accuracy_cell(n: int, d: int, rng: np.random.Generator) -> Cell:
    _, cand, _, truth = _corrupted(n, d, rng)
    got = clustered.accuracy(cand[:, 1:], LEVEL)
    return Cell(got.low <= truth[:, 1:].mean(1), got.estimate - got.low, _student(cand[:, 1:].mean(1)))


def corruption_drop_cell(n: int, d: int, rng: np.random.Generator) -> Cell:
    ref, cand, truth_ref, truth_cand = _corrupted(n, d, rng)
    got = clustered.paired_drop(ref[:, 1:], cand[:, 1:], LEVEL)
    true_drop = truth_ref[:, 1:].mean(1) - truth_cand[:, 1:].mean(1)
    per_image = ref[:, 1:].mean(1) - cand[:, 1:].mean(1)
    return Cell(got.high >= true_drop, got.high - got.estimate, _student(per_image))


def _losses(correct: np.ndarray, conditions: slice) -> np.ndarray:
    """Per image: mean error over ``conditions`` minus clean error (what relative CE sums)."""
    wrong = ~correct
    return wrong[:, conditions].mean(1) - wrong[:, 0]


def _ratio_cell(n: int, d: int, rng: np.random.Generator, conditions: slice) -> Cell:
    ref, cand, truth_ref, truth_cand = _corrupted(n, d, rng)
    a, b = _losses(cand, conditions), _losses(ref, conditions)
    k = len(range(*conditions.indices(ref.shape[1])))
    got = clustered.fieller_ratio(a, b, LEVEL, 1 / k)
    true_a = (1 - truth_cand[:, conditions]).mean(1) - (1 - truth_cand[:, 0])
    true_b = (1 - truth_ref[:, conditions]).mean(1) - (1 - truth_ref[:, 0])
    r = got.estimate
    finite = np.isfinite(r) & (b.mean(1) > 0)
    with np.errstate(invalid="ignore", divide="ignore"):  # the delta method has no bound where the ratio is not finite
        spread = (a - np.where(finite, r, 0.0)[:, None] * b).std(axis=1, ddof=1)
        delta = np.where(finite, t.ppf(NOMINAL, n - 1) * spread / math.sqrt(n) / b.mean(1), np.inf)
    unbounded = np.isinf(got.high).mean()
    truth = np.percentile(true_a / true_b, [5, 95])
    with np.errstate(invalid="ignore"):
        distance = np.where(np.isfinite(got.high), got.high - np.where(np.isfinite(r), r, 0.0), np.inf)
    return Cell(got.high >= true_a / true_b, distance, delta,
                f"true ratio {truth[0]:.2f}-{truth[1]:.2f} (5-95%), unbounded {unbounded:.1%}",
                reference_covered=np.where(finite, r, np.inf) + delta >= true_a / true_b)


def relative_mce_bootstrap(n: int, d: int, rng: np.random.Generator) -> Cell:
    """What robustgate read before: a percentile bootstrap of the ratio of total losses (1000 resamples)."""
    d = min(d, 1000)  # resampling is the slow part; 1000 datasets show the shortfall
    ref, cand, truth_ref, truth_cand = _corrupted(n, d, rng)
    a, b = _losses(cand, slice(1, None)), _losses(ref, slice(1, None))
    index = rng.integers(0, n, (1000, n))
    high = np.empty(d)
    with np.errstate(divide="ignore", invalid="ignore"):
        for start in range(0, d, 20):
            ratios = a[start:start + 20][:, index].mean(-1) / b[start:start + 20][:, index].mean(-1)
            high[start:start + 20] = np.nanpercentile(ratios, 100 * NOMINAL, axis=1)
    true_a = (1 - truth_cand[:, 1:]).mean(1) - (1 - truth_cand[:, 0])
    true_b = (1 - truth_ref[:, 1:]).mean(1) - (1 - truth_ref[:, 0])
    fieller = clustered.fieller_ratio(a, b, LEVEL, 1 / (ref.shape[1] - 1)).high
    r = a.mean(1) / b.mean(1)
    return Cell(high >= true_a / true_b, high - r, fieller - r)


def relative_mce_cell(n: int, d: int, rng: np.random.Generator) -> Cell:
    return _ratio_cell(n, d, rng, slice(1, None))


def relative_ce_cell(n: int, d: int, rng: np.random.Generator) -> Cell:
    return _ratio_cell(n, d, rng, slice(1, 1 + SEVERITIES))  # one corruption's five severities


# --- latency ----------------------------------------------------------------------------------


def _latencies(n: int, d: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    sigma, share = rng.uniform(0.05, 0.6, d), rng.uniform(0.0, 0.05, d)
    body = np.exp(sigma[:, None] * rng.standard_normal((d, n)))
    straggler = 2 * rng.pareto(1.5, (d, n)) + 2  # Pareto(1.5) from twice the typical time
    times = np.where(rng.random((d, n)) < share[:, None], straggler, body)
    return times, sigma, share


def _true_quantile(q: float, sigma: np.ndarray, share: np.ndarray) -> np.ndarray:
    """Invert the mixture's CDF by bisection, for every dataset at once."""
    lo, hi = np.full_like(sigma, 1e-6), np.full_like(sigma, 1e9)
    for _ in range(200):
        mid = np.sqrt(lo * hi)
        pareto = np.where(mid > 2, 1 - (mid / 2) ** -1.5, 0.0)
        cdf = (1 - share) * norm.cdf(np.log(mid) / sigma) + share * pareto
        lo, hi = np.where(cdf < q, mid, lo), np.where(cdf < q, hi, mid)
    return np.sqrt(lo * hi)


def _fractional_rank(n: int, q: float, confidence: float, upper: bool) -> float | None:
    """Hutson (1999) fractional order statistic: the real rank r with P(U_(r) >= q) = confidence
    (upper) or P(U_(r) <= q) = confidence (lower); interpolating between order statistics makes
    this bound exact where an integer rank must overshoot."""

    def excess(r: float) -> float:
        below = betainc(r, n + 1 - r, q)  # P(U_(r) <= q)
        return (1 - below if upper else below) - confidence

    ends = (1.0, float(n)) if upper else (1.0, float(n))
    if excess(ends[0]) * excess(ends[1]) > 0:
        return None
    return brentq(excess, *ends)


def _interpolated(ordered: np.ndarray, r: float) -> np.ndarray:
    k = int(math.floor(r))
    upper = ordered[:, min(k, ordered.shape[1] - 1)]
    return ordered[:, k - 1] + (r - k) * (upper - ordered[:, k - 1])


def percentile_cell(q: float) -> Callable[[int, int, np.random.Generator], Cell]:
    def run(n: int, d: int, rng: np.random.Generator) -> Cell | None:
        times, sigma, share = _latencies(n, d, rng)
        found = [quantile(row, q, NOMINAL) for row in times]  # the gate's own bound, per dataset
        upper = np.array([f.upper for f in found])
        if np.isnan(upper).any():
            return None  # too few queries for a bound: the contract raises its query count
        estimate = np.array([f.estimate for f in found])
        r = _fractional_rank(n, q, NOMINAL, upper=True)
        reference = _interpolated(np.sort(times, axis=1), r) if r is not None else upper
        return Cell(upper >= _true_quantile(q, sigma, share), upper - estimate, reference - estimate)

    return run


_SPEEDUP_TRUTH: dict[tuple[float, float], float] = {}


def _block_ratios(shape: tuple[int, int], sigma: float, share: float, speedup: float, rng: np.random.Generator) -> np.ndarray:
    def blocks(scale: float) -> np.ndarray:
        body = np.exp(sigma * rng.standard_normal((*shape, 5)))
        straggler = 2 * rng.pareto(1.5, (*shape, 5)) + 2
        return scale * np.where(rng.random((*shape, 5)) < share, straggler, body).mean(axis=-1)

    return blocks(1.0) / blocks(1 / speedup)


def speedup_cell(n: int, d: int, rng: np.random.Generator) -> Cell:
    configs = [(0.1, 0.0, 2.0), (0.3, 0.02, 1.3), (0.6, 0.05, 4.0), (0.2, 0.01, 1.05)]
    covered, distance, reference = [], [], []
    r = _fractional_rank(n, 0.5, NOMINAL, upper=False)
    for i, (sigma, share, speedup) in enumerate(configs):
        key = (sigma, share)
        if key not in _SPEEDUP_TRUTH:  # the median ratio of the generating model, from 10^6 pairs
            _SPEEDUP_TRUTH[key] = float(np.median(_block_ratios((1000, 1000), sigma, share, 1.0, np.random.default_rng(99))))
        m = d // len(configs) + (i < d % len(configs))
        ratios = _block_ratios((m, n), sigma, share, speedup, rng)
        low = np.array([median_lower_bound(row, NOMINAL) for row in ratios])
        estimate = np.median(ratios, axis=1)
        covered.append(low <= _SPEEDUP_TRUTH[key] * speedup)
        distance.append(estimate - low)
        reference.append(estimate - _interpolated(np.sort(ratios, axis=1), r))
    return Cell(np.concatenate(covered), np.concatenate(distance), np.concatenate(reference))


KINDS = [
    Kind("accuracy (Wilson)", "lower", "Wilson score", "Clopper-Pearson", wilson_cell),
    Kind("paired drop", "upper", "Newcombe paired (method 10)", "Bonett-Price 2012 Wald", paired_drop_cell),
    Kind("relative drop", "upper", "asymptotic score (Tang 2003)", "Bonett-Price 2006 CC", relative_drop_cell),
    Kind("relative drop (large drops)", "upper", "asymptotic score (Tang 2003)", "Bonett-Price 2006 CC", relative_drop_large_cell),
    Kind("corruption accuracy", "lower", "Wilson, shrunk to n_eff", "Student t, per-image", corruption_accuracy_cell),
    Kind("corruption drop", "upper", "Newcombe paired, shrunk to n_eff", "Student t, per-image", corruption_drop_cell),
    Kind("relative mCE", "upper", "Fieller, paired totals", "delta method", relative_mce_cell),
    Kind("relative CE (1 corruption)", "upper", "Fieller, paired totals", "delta method", relative_ce_cell),
    Kind("p50 latency bound", "upper", "order statistic (binomial)", "Hutson fractional", percentile_cell(0.5)),
    Kind("p90 latency bound", "upper", "order statistic (binomial)", "Hutson fractional", percentile_cell(0.9)),
    Kind("p99 latency bound", "upper", "order statistic (binomial)", "Hutson fractional", percentile_cell(0.99)),
    Kind("speed-up bound", "lower", "sign test", "Hutson fractional", speedup_cell),
]
RETIRED = [
    Kind("relative drop, v0", "upper", "drop bound / baseline estimate", "Bonett-Price 2006 CC", relative_drop_retired),
    Kind("relative drop, Bonett-Price", "upper", "Bonett-Price 2006, no CC", "Bonett-Price 2006 CC", relative_drop_bonett_price),
    Kind("relative drop, B-P, large", "upper", "Bonett-Price 2006, no CC", "Bonett-Price 2006 CC", relative_drop_bonett_price_large),
    Kind("relative mCE, v0", "upper", "percentile bootstrap (1000)", "Fieller", relative_mce_bootstrap),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer datasets for the slow kinds: under two minutes")
    parser.add_argument("--datasets", type=int, default=None, help="simulated datasets per cell (default 4000; --quick 2000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default="", help="run only the kinds whose name contains this")
    args = parser.parse_args()
    d = args.datasets or (2000 if args.quick else 4000)
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    print(f"one-sided nominal {NOMINAL:.1%} (the end of a two-sided {LEVEL:.0%} interval a gate reads); {d} datasets a cell; "
          f"a cell fails below nominal - 2 MC standard errors")
    print(f"{'kind':<30} {'side':<5} {'n':>5} {'coverage':>8} {'MC se':>6} {'width/ref':>9} {'ref cov':>7}  method vs reference; notes")
    worst: tuple[float, str] | None = None
    widest: tuple[float, str] | None = None  # against references that keep the level
    cells = compared = 0
    for kinds, counted in ((KINDS, True), (RETIRED, False)):
        if not counted:
            print("retired methods, for comparison (not counted):")
        for kind in kinds:
            if args.only not in kind.name:
                continue
            for n in NS:
                cell = kind.run(n, d, rng)
                if cell is None:
                    print(f"{kind.name:<30} {kind.side:<5} {n:>5} {'n/a':>8}  too few samples for a bound at {NOMINAL:.1%}")
                    continue
                coverage = float(cell.covered.mean())
                se = math.sqrt(NOMINAL * (1 - NOMINAL) / len(cell.covered))
                ratio = float(np.median(cell.distance) / np.median(cell.reference)) if np.median(cell.reference) > 0 else math.inf
                flag = "" if coverage >= NOMINAL - 2 * se else "  LOW"
                ref_coverage = None if cell.reference_covered is None else float(cell.reference_covered.mean())
                ref_keeps = ref_coverage is None or ref_coverage >= NOMINAL - 2 * se
                if not ref_keeps:
                    flag += "  (reference misses the level: width not compared)"
                shown = "" if ref_coverage is None else f"{ref_coverage:.4f}"
                print(f"{kind.name:<30} {kind.side:<5} {n:>5} {coverage:>8.4f} {se:>6.4f} {ratio:>9.2f} {shown:>7}  "
                      f"{kind.method} vs {kind.reference}{'; ' + cell.note if cell.note else ''}{flag}")
                if counted and ref_keeps:
                    compared += 1
                    if widest is None or ratio > widest[0]:
                        widest = (ratio, f"{kind.name.replace(' ', '_')}@n={n} vs {kind.reference}")
                if counted:
                    cells += 1
                    margin = coverage - NOMINAL
                    if worst is None or margin < worst[0]:
                        worst = (margin, f"{kind.name.replace(' ', '_')}@n={n}")
    print(f"wall time {time.perf_counter() - started:.0f} s")
    if worst is None:
        return
    if widest is not None:
        print(f"width: widest {widest[1]} {widest[0]:.2f}x (target <= 1.5x) over {compared} cells whose reference keeps the level")
    print(f"coverage: worst {worst[1]} {NOMINAL + worst[0]:.4f} (nominal {NOMINAL:.3f}) over {cells} cells")


if __name__ == "__main__":
    main()
