"""Wilson intervals and the paired (exact McNemar) drop: properties, and numbers checked by hand."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest, norm

from robustgate.checks.stats import paired_drop, wilson_interval

PROPERTIES = settings(max_examples=100, deadline=None)
LEVEL = st.floats(min_value=0.5, max_value=0.999)
EPS = 1e-12


@st.composite
def counts(draw: st.DrawFn, max_n: int = 5000) -> tuple[int, int]:
    n = draw(st.integers(1, max_n))
    return draw(st.integers(0, n)), n


@st.composite
def paired_vectors(draw: st.DrawFn) -> tuple[torch.Tensor, torch.Tensor]:
    n = draw(st.integers(1, 300))
    flags = st.lists(st.booleans(), min_size=n, max_size=n)
    return torch.tensor(draw(flags), dtype=torch.bool), torch.tensor(draw(flags), dtype=torch.bool)


def wilson_by_formula(k: int, n: int, level: float) -> tuple[float, float]:
    z = norm.ppf(0.5 + level / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def exact_mcnemar_p(lost: int, gained: int) -> float:
    """Two-sided exact McNemar p-value, from binomial coefficients in exact arithmetic."""
    m = lost + gained
    tail = sum(Fraction(math.comb(m, i), 2**m) for i in range(min(lost, gained) + 1))
    return float(min(Fraction(1), 2 * tail))


# --- wilson_interval -----------------------------------------------------------------------------


@PROPERTIES
@given(kn=counts(), level=LEVEL)
def test_wilson_interval_is_ordered_and_inside_the_unit_interval(kn: tuple[int, int], level: float) -> None:
    k, n = kn
    p = wilson_interval(k, n, level)
    assert 0.0 <= p.low <= p.estimate <= p.high <= 1.0
    assert p.estimate == k / n
    assert (p.successes, p.n, p.level) == (k, n, level)


@PROPERTIES
@given(kn=counts(), level=LEVEL)
def test_wilson_interval_matches_the_textbook_formula(kn: tuple[int, int], level: float) -> None:
    k, n = kn
    p = wilson_interval(k, n, level)
    low, high = wilson_by_formula(k, n, level)
    assert p.low == pytest.approx(max(low, 0.0), abs=1e-9)
    assert p.high == pytest.approx(min(high, 1.0), abs=1e-9)


@PROPERTIES
@given(kn=counts(max_n=2000), factor=st.integers(2, 10), level=LEVEL)
def test_wilson_interval_narrows_as_n_grows_at_a_fixed_proportion(kn: tuple[int, int], factor: int, level: float) -> None:
    k, n = kn
    small = wilson_interval(k, n, level)
    large = wilson_interval(k * factor, n * factor, level)
    assert large.estimate == small.estimate
    assert large.high - large.low < small.high - small.low


@PROPERTIES
@given(kn=counts(), levels=st.lists(LEVEL, min_size=2, max_size=2, unique=True))
def test_a_higher_level_gives_a_wider_interval_around_the_lower_one(kn: tuple[int, int], levels: list[float]) -> None:
    k, n = kn
    lower_level, higher_level = sorted(levels)
    assume(higher_level - lower_level > 1e-6)  # a level one ulp higher gives the same interval
    narrow = wilson_interval(k, n, lower_level)
    wide = wilson_interval(k, n, higher_level)
    assert wide.low <= narrow.low + EPS
    assert wide.high >= narrow.high - EPS
    assert wide.high - wide.low > narrow.high - narrow.low


def test_wilson_95_for_8_of_10_by_hand() -> None:
    p = wilson_interval(8, 10, 0.95)
    assert p.estimate == 0.8
    assert p.low == pytest.approx(0.4902, abs=5e-4)
    assert p.high == pytest.approx(0.9433, abs=5e-4)


def test_wilson_at_the_edges_by_hand() -> None:
    # k = 0: the interval is [0, z^2 / (n + z^2)]; k = n mirrors it.
    z2 = 1.959963984540054**2
    none = wilson_interval(0, 10, 0.95)
    assert none.low == pytest.approx(0.0, abs=1e-12)
    assert none.high == pytest.approx(z2 / (10 + z2), rel=1e-9)
    assert none.high == pytest.approx(0.2775, abs=5e-4)
    every = wilson_interval(10, 10, 0.95)
    assert every.low == pytest.approx(1 - none.high, rel=1e-9)
    assert every.high == pytest.approx(1.0, abs=1e-12)


def test_wilson_50_of_100_is_symmetric_by_hand() -> None:
    p = wilson_interval(50, 100, 0.95)
    assert p.low == pytest.approx(0.4038, abs=5e-4)
    assert p.high == pytest.approx(0.5962, abs=5e-4)
    assert p.low + p.high == pytest.approx(1.0, abs=1e-12)


def test_wilson_refuses_zero_images() -> None:
    with pytest.raises(ValueError, match="at least one image"):
        wilson_interval(0, 0, 0.95)


# --- paired_drop ---------------------------------------------------------------------------------


@PROPERTIES
@given(pair=paired_vectors(), level=LEVEL)
def test_paired_drop_is_the_accuracy_difference_inside_its_interval(
    pair: tuple[torch.Tensor, torch.Tensor], level: float
) -> None:
    reference, candidate = pair
    n = reference.numel()
    result = paired_drop(reference, candidate, level)
    assert result.n == n
    assert result.drop == (int(reference.sum()) - int(candidate.sum())) / n
    assert result.drop == pytest.approx(float(reference.float().mean() - candidate.float().mean()), abs=1e-6)
    assert result.lost == int((reference & ~candidate).sum())
    assert result.gained == int((~reference & candidate).sum())
    assert result.low <= result.drop + EPS
    assert result.drop <= result.high + EPS
    assert -1.0 <= result.low and result.high <= 1.0
    assert result.level == level


@PROPERTIES
@given(pair=paired_vectors(), level=LEVEL)
def test_paired_drop_p_value_is_the_exact_mcnemar_test(pair: tuple[torch.Tensor, torch.Tensor], level: float) -> None:
    result = paired_drop(*pair, level)
    assert 0.0 <= result.p_value <= 1.0
    assert result.p_value == pytest.approx(exact_mcnemar_p(result.lost, result.gained), rel=1e-9, abs=1e-300)
    if result.lost + result.gained:
        assert result.p_value == pytest.approx(binomtest(result.lost, result.lost + result.gained, 0.5).pvalue, rel=1e-9)


@PROPERTIES
@given(flags=st.lists(st.booleans(), min_size=1, max_size=300), level=LEVEL)
def test_identical_vectors_have_no_drop(flags: list[bool], level: float) -> None:
    correct = torch.tensor(flags, dtype=torch.bool)
    result = paired_drop(correct, correct.clone(), level)
    assert result.drop == 0.0
    assert result.low <= 0.0 <= result.high  # no observed change is not proof of none
    assert result.low == pytest.approx(-result.high, abs=1e-12)
    assert (result.lost, result.gained) == (0, 0)
    assert result.p_value == 1.0


@PROPERTIES
@given(pair=paired_vectors(), level=LEVEL)
def test_swapping_reference_and_candidate_mirrors_the_result(pair: tuple[torch.Tensor, torch.Tensor], level: float) -> None:
    reference, candidate = pair
    forward = paired_drop(reference, candidate, level)
    backward = paired_drop(candidate, reference, level)
    assert backward.drop == -forward.drop
    assert backward.low == pytest.approx(-forward.high, abs=1e-9)
    assert backward.high == pytest.approx(-forward.low, abs=1e-9)
    assert (backward.lost, backward.gained) == (forward.gained, forward.lost)
    assert backward.p_value == pytest.approx(forward.p_value, rel=1e-9)


@PROPERTIES
@given(pair=paired_vectors(), levels=st.lists(LEVEL, min_size=2, max_size=2, unique=True))
def test_a_higher_level_gives_a_wider_drop_interval(pair: tuple[torch.Tensor, torch.Tensor], levels: list[float]) -> None:
    lower_level, higher_level = sorted(levels)
    narrow = paired_drop(*pair, lower_level)
    wide = paired_drop(*pair, higher_level)
    assert wide.low <= narrow.low + EPS
    assert wide.high >= narrow.high - EPS


def pairs_from_table(both: int, lost: int, gained: int, neither: int) -> tuple[torch.Tensor, torch.Tensor]:
    reference = torch.tensor([True] * both + [True] * lost + [False] * gained + [False] * neither)
    candidate = torch.tensor([True] * both + [False] * lost + [True] * gained + [False] * neither)
    return reference, candidate


@pytest.mark.parametrize(
    ("table", "low", "high"),
    [
        # Newcombe (1998), Statistics in Medicine 17:2635, worked examples of method 10.
        ((36, 12, 2, 0), 0.0569, 0.3404),
        ((18, 12, 2, 18), 0.0562, 0.3290),
        ((53, 0, 0, 1), -0.0729, 0.0729),
    ],
)
def test_paired_drop_matches_newcombes_published_intervals(table, low, high) -> None:
    result = paired_drop(*pairs_from_table(*table), 0.95)
    assert result.drop == pytest.approx((table[1] - table[2]) / sum(table))
    assert result.low == pytest.approx(low, abs=1e-4)
    assert result.high == pytest.approx(high, abs=1e-4)


def test_paired_drop_p_value_by_hand() -> None:
    # 6 lost, 1 gained: 2 * P(X >= 6) for X ~ Binomial(7, 1/2)
    result = paired_drop(*pairs_from_table(4, 6, 1, 1), 0.95)
    assert result.p_value == pytest.approx(16 / 128)


def test_disagreements_all_one_way_still_leave_room_for_a_larger_drop() -> None:
    # 6 lost and none gained out of 500: the drop could well be larger than the 1.2 points seen.
    result = paired_drop(*pairs_from_table(384, 6, 0, 110), 0.95)
    assert result.drop == pytest.approx(0.012)
    assert result.high > 0.02
    assert result.low > 0.0


def test_paired_drop_refuses_vectors_of_different_images() -> None:
    with pytest.raises(ValueError, match="same images"):
        paired_drop(torch.ones(5, dtype=torch.bool), torch.ones(6, dtype=torch.bool), 0.95)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [((56, 70), (48, 80), (0.0524, 0.3339)), ((9, 10), (3, 10), (0.1705, 0.8090)), ((0, 10), (0, 20), (-0.1611, 0.2775))],
)
def test_unpaired_difference_matches_newcombes_table(a: tuple[int, int], b: tuple[int, int], expected: tuple[float, float]) -> None:
    # Newcombe 1998 (Statistics in Medicine 17:873), Table II, method 10.
    from robustgate.checks.stats import unpaired_difference

    d = unpaired_difference(wilson_interval(*a, 0.95), wilson_interval(*b, 0.95))
    assert d.estimate == pytest.approx(a[0] / a[1] - b[0] / b[1])
    assert (d.low, d.high) == pytest.approx(expected, abs=1e-4)
