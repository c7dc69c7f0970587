"""Attack and latency checks against a fake evaluation: which value each gate reads, and what it measures.

The fake hands each check real :class:`RobustResult` and :class:`LatencyResult` values built here from per-image
outcomes and per-query times (no model, no attack, no timing). Expected bounds are computed here by hand (Wilson
and Newcombe at z = 1.96, order statistics from the binomial), not by the code under test.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from fake_evaluation import FakeEvaluation, FakeLatency, latency_result, robust_result, spans
from scipy.stats import binom

from robustgate.attacks.protocol import IncompleteProtocol
from robustgate.checks import contract_kinds
from robustgate.checks.outcome import EXACT, POINT, Gate, Outcome

Z = 1.959963984540054  # a two-sided 95% interval's end: the one-sided 97.5% bound `confidence: 0.95` reads
ONE_SIDED = 0.975
LOWER, UPPER = "one-sided 97.5% lower bound", "one-sided 97.5% upper bound"
EPS = 8 / 255


def wilson(right: int, n: int) -> tuple[float, float]:
    p, z2 = right / n, Z * Z
    centre, half = (p + z2 / (2 * n)) / (1 + z2 / n), Z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return centre - half, centre + half


def check(contract_kind: str, evaluation: FakeEvaluation, variant: str, /, **params: Any) -> Outcome:
    """``params`` as a spec writes them (an attack's own ``kind:`` among them)."""
    contract = contract_kinds.get(contract_kind)
    return contract.check(evaluation, variant, contract.Params.model_validate(params))


def gate(outcome: Outcome, metric: str) -> Gate:
    (found,) = [g for g in outcome.gates if g.metric == metric]
    return found


# -- attack ------------------------------------------------------------------------------------------------

# 100 images (labels cycle 4 classes: chance 0.25). The baseline is right on 90 clean, 60 survive PGD.
BASELINE_8 = spans(("robust", 60), ("white-box", 30), ("clean", 10))


def test_attack_min_reads_the_wilson_lower_bound_of_robust_accuracy() -> None:
    fake = FakeEvaluation().attacked("baseline", EPS, robust_result(BASELINE_8))
    low, high = wilson(60, 100)  # 0.5020, 0.6906

    outcome = check("attack", fake, "baseline", kind="pgd", on="test", eps="8/255", min=0.55)
    m = outcome.metrics
    assert (m["robust_accuracy"], m["n"], m["eps"]) == (pytest.approx(0.6), 100, pytest.approx(EPS))
    assert (m["robust_accuracy_low"], m["robust_accuracy_high"]) == pytest.approx((low, high), abs=1e-6)
    assert (m["broken_by_clean"], m["broken_by_white_box"], m["broken_by_twin"]) == (10, 30, 0)
    floor = gate(outcome, "robust_accuracy")
    assert (floor.estimate, floor.value, floor.read) == (pytest.approx(0.6), pytest.approx(low, abs=1e-6), LOWER)
    assert not floor.passed and not outcome.passed  # 0.60 >= 0.55, but not its lower bound
    assert [g.metric for g in outcome.gates] == ["robust_accuracy"]  # the baseline reads no drop, and no strict gate
    assert m["masking_findings"] == 0 and outcome.findings == []

    assert check("attack", fake, "baseline", kind="pgd", on="test", eps="8/255", min=0.5).passed  # 0.502 clears 0.5
    point = check("attack", FakeEvaluation(confidence="point", predictions=fake.predictions, attacks=fake.attacks),
                  "baseline", kind="pgd", on="test", eps="8/255", min=0.55)
    assert (gate(point, "robust_accuracy").value, gate(point, "robust_accuracy").read) == (pytest.approx(0.6), POINT)
    assert point.passed


def test_attack_max_drop_reads_the_upper_end_of_the_paired_drop_in_robust_accuracy() -> None:
    """Per image, baseline/int8 robust: 30 both, 30 baseline only (lost), 20 int8 only (gained), 20 neither.
    both * neither == lost * gained, so Newcombe's phi is 0 and the upper end is drop + sqrt(d_int8^2 + d_base^2)."""
    int8 = spans(("robust", 30), ("twin", 30), ("robust", 20), ("transfer", 10), ("clean", 10))
    fake = (FakeEvaluation().attacked("baseline", EPS, robust_result(BASELINE_8))
            .attacked("int8", EPS, robust_result(int8, legs=("twin", "transfer", "gradient-free"), twin_agreement=1.0)))
    base_low, base_high = wilson(60, 100)
    int8_low, _ = wilson(50, 100)
    drop_high = 0.1 + math.sqrt((0.5 - int8_low) ** 2 + (base_high - 0.6) ** 2)  # 0.2321

    outcome = check("attack", fake, "int8", kind="pgd", on="test", eps="8/255", max_drop=0.2)
    m = outcome.metrics
    # against the baseline's robust correctness (60), not its clean one (90)
    assert (m["baseline_accuracy"], m["robust_accuracy"], m["drop"]) == pytest.approx((0.6, 0.5, 0.1))
    assert (m["lost"], m["gained"], m["twin_agreement"]) == (30, 20, 1.0)
    assert m["baseline_accuracy_low"] == pytest.approx(base_low, abs=1e-6)
    drop = gate(outcome, "drop")
    assert (drop.estimate, drop.value, drop.read) == (pytest.approx(0.1), pytest.approx(drop_high, abs=1e-6), UPPER)
    assert not drop.passed  # 0.10 <= 0.20, but the upper end is above
    reference = gate(outcome, "baseline_above_chance@test")  # clean 90/100 above the 0.25 of guessing
    assert (reference.estimate, reference.threshold, reference.passed) == (pytest.approx(0.9), 0.25, True)
    (legs,) = outcome.notes
    assert "int8: pgd on the fake-quant twin" in legs and "baseline: white-box pgd" in legs
    assert "symmetric: true" in legs  # int8 met a gradient-free leg the baseline did not

    assert check("attack", fake, "int8", kind="pgd", on="test", eps="8/255", max_drop=0.24).passed


def test_an_attack_sweep_names_metrics_by_strength_fills_axes_and_gates_the_area() -> None:
    low_4, _ = wilson(80, 100)
    low_8, _ = wilson(60, 100)
    fake = (FakeEvaluation()
            .attacked("baseline", 4 / 255, robust_result(spans(("robust", 80), ("white-box", 10), ("clean", 10))))
            .attacked("baseline", EPS, robust_result(BASELINE_8)))

    outcome = check("attack", fake, "baseline", kind="pgd", on="test", eps=["4/255", "8/255"], min=0.5, min_area=0.65)
    m = outcome.metrics
    assert (m["robust_accuracy@4/255"], m["robust_accuracy@8/255"]) == pytest.approx((0.8, 0.6))
    assert (m["n@4/255"], m["broken_by_white_box@8/255"]) == (100, 30)
    assert "robust_accuracy" not in m and "eps" not in m  # a sweep has no single strength
    assert outcome.axes == {"4/255": {"strength": pytest.approx(4 / 255)}, "8/255": {"strength": pytest.approx(EPS)}}
    assert [g.metric for g in outcome.gates] == ["robust_accuracy@4/255", "robust_accuracy@8/255", "robust_area"]
    assert gate(outcome, "robust_accuracy@8/255").value == pytest.approx(low_8, abs=1e-6)
    # trapezoid over two points: the mean of the estimates, and of the lower bounds
    area = gate(outcome, "robust_area")
    assert (area.estimate, area.value) == (pytest.approx(0.7), pytest.approx((low_4 + low_8) / 2, abs=1e-6))
    assert area.read == "area of the one-sided 97.5% lower bounds"
    assert not area.passed and gate(outcome, "robust_accuracy@4/255").passed  # 0.70 >= 0.65, its bounds' 0.6066 not


def test_strict_turns_masking_findings_into_a_failing_gate() -> None:
    finding = "PGD at 8/255 breaks fewer images than at 4/255: gradients may be masked"
    fake = FakeEvaluation().attacked("baseline", EPS, robust_result(BASELINE_8), findings=[finding])

    warned = check("attack", fake, "baseline", kind="pgd", on="test", eps="8/255", min=0.5)
    assert warned.findings == [finding] and warned.metrics["masking_findings"] == 1
    assert [g.metric for g in warned.gates] == ["robust_accuracy"] and warned.passed  # a warning only

    strict = check("attack", fake, "baseline", kind="pgd", on="test", eps="8/255", min=0.5, strict=True)
    masking = gate(strict, "masking_findings")
    assert (masking.value, masking.threshold, masking.read, masking.passed) == (1, 0, EXACT, False)
    assert not strict.passed


def test_strict_without_findings_passes_its_gate() -> None:
    fake = FakeEvaluation().attacked("baseline", EPS, robust_result(BASELINE_8))
    outcome = check("attack", fake, "baseline", kind="pgd", on="test", eps="8/255", min=0.5, strict=True)
    assert (gate(outcome, "masking_findings").value, outcome.passed) == (0, True)


def test_a_noise_attack_asks_for_no_masking_diagnostics() -> None:
    """Gaussian noise needs no gradients, so nothing can mask them: no findings are asked for, strict gates nothing."""
    fake = FakeEvaluation().attacked("baseline", 0.1, robust_result(BASELINE_8))
    del fake.attacks.findings["baseline"]  # asking now fails the test
    outcome = check("attack", fake, "baseline", kind="gaussian_noise", on="test", eps=0.1, min=0.5, strict=True)
    assert [g.metric for g in outcome.gates] == ["robust_accuracy"] and "masking_findings" not in outcome.metrics


def test_an_accepted_missing_leg_becomes_a_caveat() -> None:
    why = "robustgate builds fake-quant twins of its own int8 networks only, not of a Net"
    int8 = robust_result(spans(("robust", 70), ("transfer", 20), ("clean", 10)), legs=("transfer", "gradient-free"),
                         unavailable={"twin": why})
    fake = FakeEvaluation().attacked("int8", EPS, int8)

    outcome = check("attack", fake, "int8", kind="pgd", on="test", eps="8/255", min=0.5, accept_missing=["twin"])
    assert outcome.caveats == [f"no twin leg (accepted: accept_missing): {why}"]
    assert outcome.passed and outcome.headline().startswith("WEAKER PROTOCOL (no twin leg")
    with pytest.raises(IncompleteProtocol):  # not accepted: the protocol fails closed
        check("attack", fake, "int8", kind="pgd", on="test", eps="8/255", min=0.5)


def test_a_twin_below_min_twin_agreement_is_a_missing_leg() -> None:
    int8 = robust_result(spans(("robust", 70), ("twin", 20), ("clean", 10)),
                         legs=("twin", "transfer", "gradient-free"), twin_agreement=0.9)
    fake = FakeEvaluation().attacked("int8", EPS, int8)
    outcome = check("attack", fake, "int8", kind="pgd", on="test", eps="8/255", min=0.5, accept_missing=["twin"],
                    min_twin_agreement=0.95)
    (caveat,) = outcome.caveats
    assert caveat.startswith("no twin leg (accepted: accept_missing): ") and "90.0%" in caveat
    assert outcome.metrics["twin_agreement"] == 0.9
    assert check("attack", fake, "int8", kind="pgd", on="test", eps="8/255", min=0.5, accept_missing=["twin"],
                 min_twin_agreement=0.85).caveats == []


# -- latency -----------------------------------------------------------------------------------------------

MS = [(37 * i) % 100 + 1.0 for i in range(100)]  # 1 to 100 ms, shuffled: the k-th fastest query took k ms


def upper_rank(n: int, q: float) -> int:
    """Smallest k with P(Binomial(n, q) < k) >= 97.5%: the order statistic bounding the q-quantile from above."""
    return next(k for k in range(1, n + 1) if binom.cdf(k - 1, n, q) >= ONE_SIDED)


def latency_fake(confidence: float | str = 0.95, **fields: Any) -> FakeEvaluation:
    return FakeEvaluation(confidence=confidence, latency=FakeLatency({"int8": latency_result(MS, **fields)}))


def test_latency_percentile_gates_read_the_order_statistic_upper_bound() -> None:
    assert (upper_rank(100, 0.5), upper_rank(100, 0.9)) == (61, 96)  # with 100 queries: X(61) and X(96)
    outcome = check("latency", latency_fake(), "int8", p50_ms=60, p90_ms=97)
    m = outcome.metrics
    assert (m["p50_ms"], m["p50_ms_high"], m["p90_ms"], m["p90_ms_high"]) == pytest.approx((50, 61, 90, 96))
    assert (m["queries"], m["mean_ms"], m["max_ms"]) == (100, pytest.approx(50.5), pytest.approx(100))
    assert math.isnan(m["p99_ms_high"])  # 1 - 0.99^100 < 97.5%: even the slowest query bounds no p99
    p50, p90 = gate(outcome, "p50_ms"), gate(outcome, "p90_ms")
    assert (p50.estimate, p50.value, p50.read) == (pytest.approx(50), pytest.approx(61), UPPER)
    assert not p50.passed and p90.passed  # p50 50 <= 60 but its bound 61 is not; p90's bound 96 <= 97
    assert (p90.value, outcome.passed) == (pytest.approx(96), False)


def test_latency_under_confidence_point_reads_the_percentile_itself() -> None:
    outcome = check("latency", latency_fake("point"), "int8", p50_ms=60, p90_ms=91)
    p50, p90 = gate(outcome, "p50_ms"), gate(outcome, "p90_ms")
    assert (p50.value, p50.read, p90.value, p90.read) == (pytest.approx(50), POINT, pytest.approx(90), POINT)
    assert outcome.passed


def test_latency_of_a_gpu_spec_says_it_was_timed_on_the_cpu() -> None:
    outcome = check("latency", latency_fake(machine={"cpu": "AMD EPYC", "spec_device": "cuda"}), "int8", p90_ms=97)
    assert any("timed on the CPU, where edge models run, though the spec evaluates on cuda" in n for n in outcome.notes)
    on_cpu = check("latency", latency_fake(), "int8", p90_ms=97)
    assert not any("timed on the CPU" in note for note in on_cpu.notes)


def test_max_ms_reads_the_slowest_query_exactly() -> None:
    outcome = check("latency", latency_fake(), "int8", max_ms=99)
    slowest = gate(outcome, "max_ms")
    assert (slowest.value, slowest.read, slowest.passed) == (pytest.approx(100), EXACT, False)


def test_min_speedup_reads_the_sign_test_lower_bound_of_the_median_ratio() -> None:
    ratios = np.array([1.0 + 0.1 * ((7 * i) % 20) for i in range(20)])  # 1.0 to 2.9, shuffled; median 1.95
    # the largest k with P(Binomial(20, 1/2) >= k) >= 97.5% is 6 (0.9793; k = 7: 0.9423): the 6th smallest, 1.5
    k = max(k for k in range(1, 21) if binom.sf(k - 1, 20, 0.5) >= ONE_SIDED)
    assert k == 6
    fake = latency_fake(reference=np.full(100, 0.08), speedups=ratios)

    outcome = check("latency", fake, "int8", min_speedup=1.6)
    m = outcome.metrics
    assert (m["speedup"], m["speedup_low"], m["speedup_pairs"]) == (pytest.approx(1.95), pytest.approx(1.5), 20)
    assert m["baseline_p50_ms"] == pytest.approx(80)
    speedup = gate(outcome, "speedup")
    assert (speedup.estimate, speedup.value, speedup.read) == (pytest.approx(1.95), pytest.approx(1.5), LOWER)
    assert not speedup.passed  # 1.95 >= 1.6, but its lower bound is not
    assert check("latency", fake, "int8", min_speedup=1.5).passed
    assert "baseline_latency_ms" in outcome.series


def test_throughput_reads_the_batch_over_the_upper_bound_of_the_median_call() -> None:
    """Calls of 1 to 100 ms at batch 32: 32 / 50.5 ms (numpy's median) = 633.7 images/s, and 32 over the
    median's upper bound X(61) = 61 ms: 524.6 images/s."""
    fake = latency_fake(throughput_seconds=np.asarray(MS) / 1000)
    outcome = check("latency", fake, "int8", throughput=600)
    rate = gate(outcome, "throughput")
    assert (rate.estimate, rate.value, rate.read) == (pytest.approx(32 / 0.0505), pytest.approx(32 / 0.061), LOWER)
    assert not rate.passed and check("latency", fake, "int8", throughput=520).passed


def test_the_baseline_reads_no_speedup() -> None:
    fake = FakeEvaluation(latency=FakeLatency({"baseline": latency_result(MS, reference=np.full(100, 0.08),
                                                                          speedups=np.ones(20))}))
    outcome = check("latency", fake, "baseline", min_speedup=1.5, p50_ms=70)
    assert [g.metric for g in outcome.gates] == ["p50_ms"] and "speedup" not in outcome.metrics


def test_max_slowdown_reads_the_estimate_even_under_a_numeric_confidence() -> None:
    """p50 50 ms against an earlier run's 40: 1.25 (not p50's upper bound, 61 ms, over 40: 1.525)."""
    outcome = check("latency", latency_fake(previous_p50_ms=40.0), "int8", max_slowdown=1.3)
    slowdown = gate(outcome, "slowdown")
    assert (slowdown.estimate, slowdown.value, slowdown.read) == (pytest.approx(1.25), pytest.approx(1.25), POINT)
    # the report section says so too, from the declaration
    assert "max_slowdown: slowdown <= (read at its estimate)" in contract_kinds.get("latency").describe()
    assert slowdown.passed and outcome.metrics["previous_p50_ms"] == 40.0
    assert not check("latency", latency_fake(previous_p50_ms=40.0), "int8", max_slowdown=1.2).passed


def test_max_slowdown_without_an_earlier_run_is_unread_not_passed() -> None:
    outcome = check("latency", latency_fake(), "int8", max_slowdown=1.3)
    assert outcome.gates == [] and not outcome.passed
    (why,) = outcome.unread
    assert "--benchmark-compare" in why and outcome.findings == [why]
