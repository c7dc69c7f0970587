"""Checks against a fake evaluation (logits + labels): which value each gate reads, and what it measures.

Fast (no model, no training, no pytest run); the end-to-end tests keep the plugin honest, these pin the
statistics. Expected bounds are computed here by hand (Wilson's score interval at z = 1.96), not by the
code under test.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from fake_evaluation import FakeEvaluation, FakeModels, hits

from robustgate.checks import contract_kinds
from robustgate.checks.outcome import EXACT, POINT, Gate, Outcome

Z = 1.959963984540054  # a two-sided 95% interval's end: the one-sided 97.5% bound `confidence: 0.95` reads


def wilson(right: int, n: int) -> tuple[float, float]:
    p, z2 = right / n, Z * Z
    centre, half = (p + z2 / (2 * n)) / (1 + z2 / n), Z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return centre - half, centre + half


def check(kind: str, evaluation: FakeEvaluation, variant: str, **params: Any) -> Outcome:
    contract = contract_kinds.get(kind)
    return contract.check(evaluation, variant, contract.Params.model_validate(params))


def gate(outcome: Outcome, metric: str) -> Gate:
    (found,) = [g for g in outcome.gates if g.metric == metric]
    return found


# -- accuracy ----------------------------------------------------------------------------------------------


def test_accuracy_min_reads_the_wilson_lower_bound() -> None:
    fake = FakeEvaluation().answering("int8", "test", hits(100, 90))
    low, high = wilson(90, 100)  # 0.8256, 0.9448

    failing = check("accuracy", fake, "int8", on="test", min=0.85)
    assert failing.metrics["accuracy"] == pytest.approx(0.9)
    assert (failing.metrics["accuracy_low"], failing.metrics["accuracy_high"]) == pytest.approx((low, high), abs=1e-6)
    floor = gate(failing, "accuracy")
    assert (floor.estimate, floor.value, floor.threshold) == pytest.approx((0.9, low, 0.85))
    assert floor.bounded and not floor.passed and not failing.passed  # 0.90 >= 0.85, but not its lower bound

    assert check("accuracy", fake, "int8", on="test", min=0.82).passed  # the bound clears 0.82


def test_accuracy_under_confidence_point_reads_the_estimate() -> None:
    fake = FakeEvaluation(confidence="point").answering("int8", "test", hits(100, 90))
    outcome = check("accuracy", fake, "int8", on="test", min=0.85)
    floor = gate(outcome, "accuracy")
    assert (floor.value, floor.read) == (pytest.approx(0.9), POINT)
    assert outcome.passed


def test_accuracy_drop_reads_the_upper_bound_of_the_paired_drop() -> None:
    baseline, int8 = hits(200, 190), hits(200, 190)
    for i in (3, 50, 97, 141, 188, 199):  # six images the baseline gets right and int8 does not
        baseline[i], int8[i] = 1, 0
    fake = FakeEvaluation().answering("baseline", "test", baseline).answering("int8", "test", int8)
    lost = sum(b and not v for b, v in zip(baseline, int8))

    outcome = check("accuracy", fake, "int8", on="test", max_drop=0.05)
    m = outcome.metrics
    assert (m["lost"], m["gained"]) == (lost, 0)
    assert m["drop"] == pytest.approx(lost / 200)
    drop = gate(outcome, "drop")
    assert drop.value == pytest.approx(m["drop_high"]) and drop.value > drop.estimate
    assert drop.passed == (m["drop_high"] <= 0.05)
    assert gate(outcome, "baseline_above_chance@test").passed  # the reference a relative gate needs

    point = check("accuracy", FakeEvaluation(confidence="point", predictions=fake.predictions), "int8",
                  on="test", max_drop=0.02)
    assert gate(point, "drop").value == pytest.approx(lost / 200) and not point.passed  # 0.03 > 0.02


def test_the_baseline_reads_no_drop_gate() -> None:
    fake = FakeEvaluation().answering("baseline", "test", hits(50, 45))
    outcome = check("accuracy", fake, "baseline", on="test", min=0.5, max_drop=0.01)
    assert [g.metric for g in outcome.gates] == ["accuracy"]


# -- shift -------------------------------------------------------------------------------------------------


def test_shift_gap_is_source_minus_target_and_a_number_gates_the_worst_target() -> None:
    fake = (FakeEvaluation(confidence="point").answering("baseline", "amazon", hits(100, 90))
            .answering("baseline", "webcam", hits(100, 70)).answering("baseline", "dslr", hits(100, 80)))
    outcome = check("shift", fake, "baseline", source="amazon", targets=["webcam", "dslr"], max_gap=0.15)
    m = outcome.metrics
    assert (m["source_accuracy"], m["accuracy@webcam"], m["accuracy@dslr"]) == pytest.approx((0.9, 0.7, 0.8))
    assert (m["gap@webcam"], m["gap@dslr"], m["worst_accuracy"], m["worst_gap"]) == pytest.approx((0.2, 0.1, 0.7, 0.2))
    (worst,) = [g for g in outcome.gates if g.metric.startswith("gap")]
    assert worst.metric == "gap@webcam" and worst.value == pytest.approx(0.2) and not worst.passed


def test_shift_gap_reads_the_upper_end_of_newcombes_interval() -> None:
    fake = FakeEvaluation().answering("baseline", "amazon", hits(100, 90)).answering("baseline", "webcam", hits(100, 70))
    outcome = check("shift", fake, "baseline", source="amazon", targets=["webcam"], max_gap={"webcam": 0.3})
    m, gap = outcome.metrics, gate(outcome, "gap@webcam")
    source_low, source_high = wilson(90, 100)
    target_low, target_high = wilson(70, 100)
    newcombe_high = 0.2 + math.sqrt((source_high - 0.9) ** 2 + (0.7 - target_low) ** 2)
    assert gap.value == pytest.approx(m["gap_high@webcam"]) == pytest.approx(newcombe_high, abs=1e-6)
    assert gap.estimate == pytest.approx(0.2) and not gap.passed  # 0.2 <= 0.3, but its bound is above
    assert m["source_accuracy_low"] == pytest.approx(source_low, abs=1e-6)


# -- size --------------------------------------------------------------------------------------------------

SIZES = {
    "baseline": {"bytes": 4_000_000, "params": 1_000_000, "macs": 5_000_000, "size_ratio": 1.0,
                 "params_ratio": 1.0, "macs_ratio": 1.0},
    "int8": {"bytes": 1_100_000, "params": 1_000_000, "macs": 5_000_000, "size_ratio": 0.275,
             "params_ratio": 1.0, "macs_ratio": 1.0},
}


def test_size_gates_read_exact_counts() -> None:
    fake = FakeEvaluation(models=FakeModels(SIZES))
    outcome = check("size", fake, "int8", max_mb=1.0, max_ratio=0.3)
    assert outcome.metrics["mb"] == pytest.approx(1.1)
    mb, ratio = gate(outcome, "mb"), gate(outcome, "size_ratio")
    assert (mb.value, mb.read, mb.passed) == (pytest.approx(1.1), EXACT, False)
    assert (ratio.value, ratio.read, ratio.passed) == (pytest.approx(0.275), EXACT, True)



def test_the_baseline_reads_its_absolute_size_gates_but_not_max_ratio() -> None:
    """The baseline gets an item for max_mb; max_ratio is of the baseline, so its own item must not gate 1.0."""
    outcome = check("size", FakeEvaluation(models=FakeModels(SIZES)), "baseline", max_mb=5.0, max_ratio=0.3)
    assert [g.metric for g in outcome.gates] == ["mb"] and outcome.passed


# -- corruptions -------------------------------------------------------------------------------------------


def corrupted_fake(confidence: float | str = 0.95) -> FakeEvaluation:
    """200 test images; under fog the baseline keeps 180 at severity 1 and 160 at 2, int8 keeps 170 and 130."""
    fake = FakeEvaluation(confidence=confidence)
    for variant, (mild, strong) in {"baseline": (180, 160), "int8": (170, 130)}.items():
        fake.answering(variant, "test", hits(200, 200))
        fake.corrupted(variant, "test", "fog", 1, hits(200, mild)).corrupted(variant, "test", "fog", 2, hits(200, strong))
    return fake


def test_corruptions_accuracy_is_the_mean_over_severities_read_at_its_lower_bound() -> None:
    outcome = check("corruptions", corrupted_fake(), "baseline", on="test", suite=["fog"], severities=[1, 2],
                    min_accuracy=0.85)
    m = outcome.metrics
    assert (m["accuracy@fog/1"], m["accuracy@fog/2"], m["clean_accuracy"]) == pytest.approx((0.9, 0.8, 1.0))
    assert m["mean_corruption_accuracy"] == pytest.approx(0.85)
    floor = gate(outcome, "mean_corruption_accuracy")
    assert floor.value == pytest.approx(m["mean_corruption_accuracy_low"]) and floor.value < 0.85
    assert not floor.passed and "drop" not in m  # the baseline is its own reference: no drop


def test_corruptions_drop_and_relative_mce_against_the_baseline() -> None:
    outcome = check("corruptions", corrupted_fake(confidence="point"), "int8", on="test", suite=["fog"],
                    severities=[1, 2], max_drop=0.1, max_relative_mce=1.5)
    m = outcome.metrics
    assert m["mean_corruption_accuracy"] == pytest.approx(0.75)
    assert m["drop"] == pytest.approx(0.1)  # 0.85 - 0.75 on the same corrupted images
    # losses to corruption: int8 (0.15 + 0.35) against the baseline's (0.10 + 0.20)
    assert m["relative_mce"] == pytest.approx(0.5 / 0.3)
    assert gate(outcome, "drop").passed and not gate(outcome, "relative_mce").passed
    assert (gate(outcome, "drop").read, gate(outcome, "relative_mce").read) == (POINT, POINT)
