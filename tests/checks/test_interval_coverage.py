"""The intervals gates read keep their stated level, say what they are, and stay honest on degenerate data.

Corruption contracts run through their real ``check`` on a stand-in evaluation whose logits are built
from chosen per-image, per-condition correctness; simulations are small and seeded (the full
coverage table is benchmarks/bench_coverage.py)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from robustgate.checks import clustered
from robustgate.checks.accuracy import add_drop_gates
from robustgate.checks.declaration import reading
from robustgate.checks.corruptions import CorruptionsContract, CorruptionsParams
from robustgate.checks.outcome import Outcome
from robustgate.checks.stats import bound_name, newcombe_paired_bounds, paired_drop, relative_drop_high

PROPERTIES = settings(max_examples=60, deadline=None)
NOMINAL = 0.975  # one end of a two-sided 95% interval
CLASSES = 10
SUITE = ("gaussian_noise", "contrast", "fog")
SEVERITIES = (1, 3, 5)


# --- a stand-in evaluation: logits from chosen correctness --------------------------------------


def _logits(correct: np.ndarray, labels: torch.Tensor) -> torch.Tensor:
    """One-hot logits that are right where ``correct`` says and one class off elsewhere."""
    guess = torch.where(torch.from_numpy(correct), labels, (labels + 1) % CLASSES)
    return torch.nn.functional.one_hot(guess, CLASSES).float()


@dataclass
class Corrupted:
    """Per-model correctness: ``clean`` (n,) and ``conditions`` (corruptions x severities, n)."""

    clean: dict[str, np.ndarray]
    conditions: dict[str, np.ndarray]
    confidence: float | str = 0.95
    seed: int = 0
    labels_: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        self.labels_ = torch.arange(len(next(iter(self.clean.values())))) % CLASSES

    @property
    def predictions(self) -> Corrupted:  # the only part of an Evaluation a corruption contract reads: it is that part
        return self

    def labels(self, dataset: str) -> torch.Tensor:
        return self.labels_

    def logits(self, variant: str, dataset: str) -> torch.Tensor:
        return _logits(self.clean[variant], self.labels_)

    def sample(self, dataset: str, samples: int | None) -> None:
        return None

    def corrupted_logits(self, variant: str, dataset: str, corruption: str, severity: int, samples: int | None) -> torch.Tensor:
        row = SUITE.index(corruption) * len(SEVERITIES) + SEVERITIES.index(severity)
        return _logits(self.conditions[variant][row], self.labels_)


def _check(evaluation: Corrupted, **gates: float) -> Outcome:
    params = CorruptionsParams(on="digits", suite=list(SUITE), severities=list(SEVERITIES), **gates)
    return CorruptionsContract().check(evaluation, "int8", params)


def _difficulty_model(n: int, rng: np.random.Generator, flip: float) -> Corrupted:
    """A baseline whose errors follow a per-image difficulty shared by every condition, and an int8
    variant that differs from it on a ``flip`` share of image-conditions, either way (indistinguishable)."""
    k = len(SUITE) * len(SEVERITIES)
    z = rng.standard_normal((1, n))
    severity = np.repeat(np.array(SEVERITIES, dtype=float), len(SUITE))[:, None]
    base = z + 0.5 * rng.standard_normal((k, n)) > -1.6 + 0.25 * severity
    base_clean = z[0] > -1.6
    flips = rng.random((k, n)) < flip
    int8 = base ^ flips
    int8_clean = base_clean ^ (rng.random(n) < flip)
    return Corrupted({"baseline": base_clean, "int8": int8_clean}, {"baseline": base, "int8": int8})


# --- relative mCE -------------------------------------------------------------------------------


def _fragility_losses(rng: np.random.Generator, datasets: int, n: int, conditions: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Per-image losses (share of conditions lost) of a baseline and a candidate that loses, on top of
    the baseline's errors, 0.35 x the image's fragility: skewed per-image fragility f ~ Beta(0.5, 2),
    so a few images carry most of the loss. Returns (candidate, baseline, true ratio = 1.2)."""
    shape_a, shape_b, extra = 0.5, 2.0, 0.35
    fragility = rng.beta(shape_a, shape_b, (datasets, n, 1))
    base = rng.random((datasets, n, conditions)) < fragility
    cand = base | (rng.random((datasets, n, conditions)) < extra * fragility)
    mean = shape_a / (shape_a + shape_b)
    second = shape_a * (shape_a + 1) / ((shape_a + shape_b) * (shape_a + shape_b + 1))
    return cand.mean(axis=2), base.mean(axis=2), (mean + extra * (mean - second)) / mean


def test_relative_mce_bound_keeps_its_level_where_the_percentile_bootstrap_falls_short() -> None:
    rng = np.random.default_rng(1)
    datasets, n, conditions = 3000, 30, 15
    cand, base, truth = _fragility_losses(rng, datasets, n, conditions)
    assert truth == pytest.approx(1.2)
    high = clustered.fieller_ratio(cand, base, 0.95, 1 / conditions).high
    mc_error = 2 * math.sqrt(NOMINAL * (1 - NOMINAL) / datasets)  # two standard errors: 0.0057
    coverage = float((high >= truth).mean())
    assert coverage >= NOMINAL - mc_error, coverage
    assert not np.isnan(high).any()

    # what the contract read before: the 97.5th percentile of 500 bootstrap ratios of the same data
    index = rng.integers(0, n, (500, n))
    bootstrap = np.empty(datasets)
    for start in range(0, datasets, 250):
        part = slice(start, start + 250)
        bootstrap[part] = np.percentile(cand[part][:, index].mean(-1) / base[part][:, index].mean(-1), 97.5, axis=1)
    assert float((bootstrap >= truth).mean()) < NOMINAL - mc_error < coverage


def test_the_contract_reads_the_fieller_bound_of_total_losses() -> None:
    evaluation = _difficulty_model(120, np.random.default_rng(3), flip=0.02)
    outcome = _check(evaluation, max_relative_mce=1.5)
    m = outcome.metrics
    losses = {v: evaluation.conditions[v].__invert__().mean(axis=0) - (~evaluation.clean[v]) for v in ("int8", "baseline")}
    expected = clustered.fieller_ratio(losses["int8"], losses["baseline"], 0.95, 1 / 9)
    assert m["relative_mce"] == pytest.approx(float(expected.estimate))
    assert m["relative_mce_high"] == pytest.approx(float(expected.high))
    (gate,) = [g for g in outcome.gates if g.metric == "relative_mce"]
    assert gate.read == "one-sided 97.5% upper bound" and gate.value == m["relative_mce_high"]


def test_ten_images_with_identical_errors_get_an_honest_interval() -> None:
    """Both models wrong on the same image-conditions: the bootstrap was a point (1.0, 1.0), so a
    max_relative_mce of 1.0 passed on ten images. Now every interval has width and no end is NaN."""
    rng = np.random.default_rng(0)
    base = rng.random((9, 10)) < 0.4
    clean = np.ones(10, dtype=bool)
    evaluation = Corrupted({"baseline": clean, "int8": clean.copy()}, {"baseline": base, "int8": base.copy()})
    m = _check(evaluation, max_relative_mce=1.0, max_drop=0.0).metrics
    for metric in ("relative_mce", "drop", "mean_corruption_accuracy", *(f"relative_ce@{c}" for c in SUITE)):
        low, high = m[f"{metric}_low"], m[f"{metric}_high"]
        assert not (math.isnan(low) or math.isnan(high)), metric
        assert low <= m[metric] <= high and high - low > 0, metric
    assert m["relative_mce"] == 1.0 and 1.0 < m["relative_mce_high"] < math.inf
    assert m["drop"] == 0.0 and m["drop_high"] > 0.0


def test_a_baseline_that_loses_nothing_leaves_the_ratio_unbounded_and_says_why() -> None:
    rng = np.random.default_rng(0)
    clean = np.ones(40, dtype=bool)
    base = np.ones((9, 40), dtype=bool)  # the baseline keeps every image under every corruption
    int8 = base.copy()
    int8[:, :2] = rng.random((9, 2)) < 0.5
    evaluation = Corrupted({"baseline": clean, "int8": clean.copy()}, {"baseline": base, "int8": int8})
    outcome = _check(evaluation, max_relative_mce=5.0)
    (gate,) = [g for g in outcome.gates if g.metric == "relative_mce"]
    assert gate.value == math.inf and not gate.passed
    assert any("cannot be told from zero" in f or "infinite" in f for f in outcome.findings), outcome.findings
    assert not any(isinstance(v, float) and math.isnan(v) for v in outcome.metrics.values())


# --- corruption drop and accuracy ----------------------------------------------------------------


def test_a_quickstart_like_corruption_drop_uses_the_pairing() -> None:
    """n = 359, int8 differing from fp32 on 1% of image-conditions either way: the drop's interval is as
    narrow as a paired clean drop's, not the unpaired one's that failed max_drop: 0.03 (+-0.06)."""
    evaluation = _difficulty_model(359, np.random.default_rng(7), flip=0.01)
    outcome = _check(evaluation, max_drop=0.03)
    m = outcome.metrics
    clean = paired_drop(torch.from_numpy(evaluation.clean["baseline"]), torch.from_numpy(evaluation.clean["int8"]), 0.95)
    assert abs(m["drop"]) < 0.01
    assert m["drop_high"] - m["drop"] <= 1.5 * (clean.high - clean.drop) < 0.03
    assert m["drop_high"] < 0.03 and all(g.passed for g in outcome.gates if g.metric == "drop")
    # what the unpaired floor gave: Newcombe's interval for two independent accuracies of 359 images
    from robustgate.checks.stats import unpaired_difference, wilson_interval

    k = round(m["mean_corruption_accuracy"] * 359)
    unpaired = unpaired_difference(wilson_interval(k, 359, 0.95), wilson_interval(k, 359, 0.95))
    assert m["drop_high"] - m["drop"] < 0.5 * unpaired.high


def test_corruption_accuracy_keeps_its_level_at_small_n() -> None:
    rng = np.random.default_rng(2)
    datasets, n, k = 2000, 30, 15
    ability = rng.standard_normal((datasets, 1, n)) + 0.7 * rng.standard_normal((datasets, k, n))
    threshold = -1.0
    truth = 1 - math.erfc(-threshold / math.sqrt(2 * 1.49)) / 2  # P(N(0, 1.49) > threshold)
    low = clustered.accuracy(ability > threshold, 0.95).low
    coverage = float((low <= truth).mean())
    assert coverage >= NOMINAL - 2 * math.sqrt(NOMINAL * (1 - NOMINAL) / datasets), coverage
    wilson_n = clustered.accuracy(np.repeat((ability > threshold)[:, :1], k, axis=1), 0.95)  # one Bernoulli per image
    assert np.median(truth - low) < np.median(wilson_n.estimate - wilson_n.low)  # narrower than n images' Wilson


# --- relative drop --------------------------------------------------------------------------------


def _pairs(both: int, lost: int, gained: int, neither: int) -> tuple[torch.Tensor, torch.Tensor]:
    reference = torch.tensor([1] * both + [1] * lost + [0] * gained + [0] * neither, dtype=torch.bool)
    candidate = torch.tensor([1] * both + [0] * lost + [1] * gained + [0] * neither, dtype=torch.bool)
    return reference, candidate


def _relative_gate_value(both: int, lost: int, gained: int, neither: int) -> float:
    outcome = Outcome("accuracy[x]", "int8")
    add_drop_gates(outcome, *_pairs(both, lost, gained, neither), None, 0.5, reading(0.95))
    (gate,) = outcome.gates
    return gate.value


def test_relative_drop_bound_counts_the_baselines_uncertainty() -> None:
    """30 images, baseline 18 right, int8 loses 3: the old bound (drop's bound / 0.6) read 0.359 as if
    0.6 were exact; the reference's own interval widens it. With 100 times the images, where 0.6 is
    nearly exact, the two agree."""
    small = _relative_gate_value(15, 3, 0, 12)
    drop = paired_drop(*_pairs(15, 3, 0, 12), 0.95)
    assert small == pytest.approx(0.3922, abs=1e-3) and small > drop.high / 0.6 + 0.02
    large = _relative_gate_value(1500, 300, 0, 1200)
    drop = paired_drop(*_pairs(1500, 300, 0, 1200), 0.95)
    assert large == pytest.approx(drop.high / 0.6, rel=0.02)


def test_relative_drop_bound_is_the_score_intervals_end() -> None:
    """Cross-checked against the score statistic solved one table at a time, as the contingencytables R
    package writes it (Tang_asymptotic_score_CI_paired_2x2), on Cavo et al.'s table (59, 6 / 16, 80)."""
    from scipy.optimize import brentq
    from scipy.stats import norm

    n11, n12, n21, n = 59, 6, 16, 161  # candidate right = n11 + n12, reference right = n11 + n21

    def score(phi: float) -> float:
        a, b = n * (1 + phi), (n11 + n21) * phi**2 - (n11 + n12 + 2 * n21)
        c = n21 * (1 - phi) * (n11 + n12 + n21) / n
        p21 = (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)
        return (n11 + n12 - (n11 + n21) * phi) / math.sqrt(n * (1 + phi) * p21 + (n11 + n12 + n21) * (phi - 1))

    lower = brentq(lambda phi: score(phi) - norm.ppf(0.975), 1e-8, 65 / 75)
    assert 1 - float(relative_drop_high(59, 16, 6, 80, 0.95)) == pytest.approx(lower, abs=1e-6)
    assert lower == pytest.approx(0.7476, abs=1e-4)


def test_relative_drop_keeps_its_level_with_large_drops() -> None:
    """Attack-like: robust accuracy 0.2-0.6, the candidate far below. A MOVER ratio tried here read 95%."""
    rng = np.random.default_rng(5)
    datasets, n = 3000, 30
    p_ref = rng.uniform(0.2, 0.6, datasets)
    sigma = rng.uniform(0.1, 0.6, datasets)
    spread = np.sqrt(1 + sigma**2)
    from scipy.stats import norm

    tau_ref = -norm.ppf(p_ref) * spread
    tau_cand = tau_ref + rng.uniform(0.2, 0.8, datasets)
    z = rng.standard_normal((datasets, n))
    ref = z + sigma[:, None] * rng.standard_normal((datasets, n)) > tau_ref[:, None]
    cand = z + sigma[:, None] * rng.standard_normal((datasets, n)) > tau_cand[:, None]
    counts = [(a & b).sum(1) for a, b in ((ref, cand), (ref, ~cand), (~ref, cand), (~ref, ~cand))]
    truth = 1 - norm.sf(tau_cand / spread) / norm.sf(tau_ref / spread)
    coverage = float((relative_drop_high(*counts, 0.95) >= truth).mean())
    assert coverage >= NOMINAL - 2 * math.sqrt(NOMINAL * (1 - NOMINAL) / datasets), coverage


# --- wording ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("confidence", "side", "expected"), [
    (0.95, "lower", "one-sided 97.5% lower bound"),
    (0.9, "upper", "one-sided 95% upper bound"),
    (0.99, "lower", "one-sided 99.5% lower bound"),
    (0.8, "upper", "one-sided 90% upper bound"),
])
def test_a_bound_says_its_level_and_side(confidence: float, side: str, expected: str) -> None:
    assert bound_name(confidence, side) == expected
    assert reading(confidence).level == confidence and getattr(reading(confidence), side) == expected
    assert getattr(reading("point"), side) == "point"


# --- properties -----------------------------------------------------------------------------------


LEVELS = st.tuples(st.floats(0.5, 0.99), st.floats(0.5, 0.99)).map(sorted)


@st.composite
def condition_tables(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(2, 40))
    k = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    p_base, flip = draw(st.floats(0.0, 1.0)), draw(st.floats(0.0, 0.5))
    base = rng.random((k, n)) < p_base
    return base, base ^ (rng.random((k, n)) < flip)


@PROPERTIES
@given(tables=condition_tables(), levels=LEVELS)
def test_corruption_intervals_are_ordered_in_range_and_grow_with_the_level(tables, levels) -> None:
    base, cand = tables
    narrow, wide = levels
    for make, bounds in ((lambda lv: clustered.accuracy(cand, lv), (0.0, 1.0)),
                         (lambda lv: clustered.paired_drop(base, cand, lv), (-1.0, 1.0))):
        a, b = make(narrow), make(wide)
        for i in (a, b):
            assert bounds[0] - 1e-12 <= i.low <= i.estimate <= i.high <= bounds[1] + 1e-12
            assert not np.isnan([i.low, i.high]).any()
        assert b.low <= a.low + 1e-12 and b.high >= a.high - 1e-12


@PROPERTIES
@given(tables=condition_tables(), levels=LEVELS)
def test_ratio_intervals_are_ordered_never_nan_and_grow_with_the_level(tables, levels) -> None:
    base, cand = tables
    k = base.shape[0]
    a, b = (~cand).mean(axis=0), (~base).mean(axis=0)
    narrow, wide = (clustered.fieller_ratio(a, b, lv, 1 / k) for lv in levels)
    for i in (narrow, wide):
        assert not np.isnan([i.low, i.estimate, i.high]).any()
        assert i.low <= i.estimate <= i.high and i.high > i.low
    assert wide.high >= narrow.high - 1e-9 and wide.low <= narrow.low + 1e-9


@PROPERTIES
@given(counts=st.tuples(*[st.integers(0, 300)] * 4).filter(lambda c: c[0] + c[1] > 0 and c[0] + c[2] > 0), levels=LEVELS)
def test_relative_drop_bound_is_above_its_estimate_at_most_one_and_grows_with_the_level(counts, levels) -> None:
    both, lost, gained, _ = counts
    estimate = (lost - gained) / (both + lost)
    narrow, wide = (float(relative_drop_high(*counts, lv)) for lv in levels)
    assert estimate - 1e-9 <= narrow <= wide + 1e-9 and wide <= 1.0
    low, high = newcombe_paired_bounds(*counts, levels[0])
    assert low <= (lost - gained) / sum(counts) <= high
