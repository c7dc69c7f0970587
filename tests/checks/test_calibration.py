"""``calibration:`` contracts against a fake evaluation (logits + labels): the ECE against a hand-computed example,
its bins and bootstrap bound, the worst class, reporting under shift, validation; and one run of the tiny spec."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from tiny_spec_edits import edit

from robustgate.checks import contract_kinds
from robustgate.checks.calibration import (
    CalibrationParams, bin_of, ece_interval, expected_calibration_error, reliability_bins,
)
from robustgate.checks.stats import wilson_interval

KIND = contract_kinds.get("calibration")


def two_class_logits(confidence: list[float], predicted: list[int]) -> torch.Tensor:
    """Logits whose softmax gives ``predicted`` the probability ``confidence`` (two classes)."""
    p = torch.tensor(confidence, dtype=torch.float64)
    top, other = p.log(), (1 - p).log()
    first = torch.tensor(predicted) == 0
    return torch.stack([torch.where(first, top, other), torch.where(first, other, top)], dim=1)


@dataclass
class FakePredictions:
    labels_of: dict[str, torch.Tensor]
    logits_of: dict[tuple[str, str], torch.Tensor]

    def labels(self, dataset: str) -> torch.Tensor:
        return self.labels_of[dataset]

    def logits(self, variant: str, dataset: str) -> torch.Tensor:
        return self.logits_of[(variant, dataset)]

    def images_id(self, dataset: str, samples: int | None = None) -> str:
        return dataset


@dataclass
class FakeEvaluation:
    predictions: FakePredictions
    confidence: float | str = 0.95
    seed: int = 0


# four images: two at confidence 0.95 (one right), two at 0.55 (both right)
CONFIDENCE, PREDICTED, LABELS = [0.95, 0.95, 0.55, 0.55], [0, 0, 1, 1], [0, 1, 1, 1]


def test_the_ece_of_a_hand_computed_example() -> None:
    """Bin (14/15, 1]: accuracy 0.5, confidence 0.95; bin (8/15, 9/15]: accuracy 1, confidence 0.55.
    ECE = 2/4 * |0.5 - 0.95| + 2/4 * |1 - 0.55| = 0.45."""
    correct = np.array(PREDICTED) == np.array(LABELS)
    assert expected_calibration_error(np.array(CONFIDENCE), correct) == pytest.approx(0.45)
    bins = reliability_bins(np.array(CONFIDENCE), correct)
    assert bins.low == pytest.approx([8 / 15, 14 / 15]) and bins.count == [2.0, 2.0]
    assert bins.confidence == pytest.approx([0.55, 0.95]) and bins.accuracy == pytest.approx([1.0, 0.5])


def test_bins_hold_their_upper_edge_as_guo_et_al_define_them() -> None:
    assert bin_of(np.array([1 / 15, 1 / 15 + 1e-9, 1.0, 0.0])).tolist() == [0, 1, 14, 0]


def test_a_perfectly_calibrated_bin_has_no_error() -> None:
    confidence = np.full(10, 0.7)
    correct = np.array([1] * 7 + [0] * 3, dtype=bool)
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.0)


def test_the_bootstrap_bound_is_seeded_and_brackets_the_estimate() -> None:
    rng = np.random.default_rng(1)
    confidence = rng.uniform(0.3, 1.0, 500)
    correct = rng.uniform(size=500) < confidence - 0.1  # overconfident by about 0.1
    ece = expected_calibration_error(confidence, correct)
    low, high = ece_interval(confidence, correct, 0.95, seed=7)
    assert (low, high) == ece_interval(confidence, correct, 0.95, seed=7)
    assert low < ece < high and 0.05 < ece < 0.15


def evaluation(**kwargs: Any) -> FakeEvaluation:
    labels = torch.tensor(LABELS)
    logits = {(model, "webcam"): two_class_logits(CONFIDENCE, PREDICTED) for model in ("baseline", "int8")}
    return FakeEvaluation(FakePredictions({"webcam": labels}, logits), **kwargs)


def test_the_max_ece_gate_reads_the_upper_bound_and_a_variant_shows_the_baselines_ece() -> None:
    outcome = KIND.check(evaluation(), "int8", CalibrationParams(on="webcam", max_ece=0.5))
    m = outcome.metrics
    assert m["ece"] == pytest.approx(0.45) and m["ece_low"] <= 0.45 <= m["ece_high"]
    assert m["baseline_ece"] == pytest.approx(0.45) and m["accuracy"] == pytest.approx(0.75)
    (gate,) = outcome.gates
    assert gate.metric == "ece" and gate.value == m["ece_high"] and gate.read == "one-sided 97.5% upper bound"
    assert outcome.series["reliability_count"] == [2.0, 2.0] and outcome.contract == "calibration[webcam]"


def test_under_confidence_point_the_ece_gate_reads_the_estimate() -> None:
    (gate,) = KIND.check(evaluation(confidence="point"), "baseline", CalibrationParams(on="webcam", max_ece=0.5)).gates
    assert gate.read == "point" and gate.value == pytest.approx(0.45) and gate.passed


def test_the_worst_class_is_the_one_lowest_at_the_end_the_gate_reads() -> None:
    """Class 0: 2 of 3 right (0.667, Wilson lower bound about 0.21); class 1: 190 of 300 (0.633, about 0.58)."""
    labels = torch.tensor([0] * 3 + [1] * 300)
    correct = torch.tensor([1, 1, 0] + [1] * 190 + [0] * 110, dtype=torch.bool)
    predicted = torch.where(correct, labels, 1 - labels)
    logits = two_class_logits([0.9] * 303, predicted.tolist())
    fake = FakeEvaluation(FakePredictions({"test": labels}, {("baseline", "test"): logits}))
    spec = CalibrationParams(on="test", min_worst_class=0.5)
    outcome = KIND.check(fake, "baseline", spec)
    (gate,) = outcome.gates
    assert outcome.metrics["worst_class"] == 0 and gate.metric == "worst_class_accuracy@class0"
    assert gate.value == pytest.approx(wilson_interval(2, 3, 0.95).low) and not gate.passed
    assert outcome.series["class_accuracy"] == pytest.approx([2 / 3, 190 / 300]) and outcome.series["class_n"] == [3.0, 300.0]
    fake.confidence = "point"  # read at the estimates, class 1 is the worse one
    (gate,) = KIND.check(fake, "baseline", spec).gates
    assert gate.metric == "worst_class_accuracy@class1" and gate.value == pytest.approx(190 / 300) and gate.passed


def test_a_reference_dataset_reports_the_change_under_shift() -> None:
    fake = evaluation()
    fake.predictions.labels_of["amazon"] = torch.tensor([0, 1])
    fake.predictions.logits_of[("baseline", "amazon")] = two_class_logits([0.75, 0.75], [0, 1])
    outcome = KIND.check(fake, "baseline", CalibrationParams(on="webcam", max_ece=0.5, reference="amazon"))
    m = outcome.metrics
    assert m["ece@amazon"] == pytest.approx(0.25) and m["ece_change"] == pytest.approx(0.2)
    assert m["worst_class_accuracy@amazon"] == 1.0 and m["worst_class_accuracy_change"] == pytest.approx(m["worst_class_accuracy"] - 1.0)
    assert "baseline_ece" not in m and outcome.contract == "calibration[amazon->webcam]"


def test_validation() -> None:
    with pytest.raises(ValidationError, match="is the dataset the contract is on"):
        CalibrationParams(on="webcam", max_ece=0.1, reference="webcam")
    with pytest.raises(ValidationError):
        CalibrationParams(on="webcam", max_ece=1.5)
    assert KIND.missing_gate("calibration", CalibrationParams(on="webcam")) == (
        "a calibration contract needs a gate: max_ece or min_worst_class")


def test_a_calibration_contract_runs_on_the_tiny_spec(tiny_project: pytest.Pytester) -> None:
    spec = tiny_project.path / "robustness_specs" / "tiny.yaml"
    spec.write_text(edit(spec.read_text(), "  - accuracy: {on: printed, max_drop: 0.15}\n",
                         "  - calibration: {on: printed, reference: handwritten, max_ece: 1.0, min_worst_class: 0.0}\n"))
    result = tiny_project.runpytest("-p", "no:cacheprovider", "-k", "calibration")
    result.assert_outcomes(passed=2)  # the baseline and int8
    doc = json.loads((tiny_project.path / "reports" / "results.json").read_text())
    items = {item["nodeid"].rsplit("::", 2)[1]: item for item in doc["items"] if "calibration[" in item["nodeid"]}
    assert set(items) == {"baseline", "int8"}
    metrics = items["int8"]["metrics"]
    assert 0 <= metrics["ece_low"] <= metrics["ece"] <= metrics["ece_high"] <= 1 and "baseline_ece" in metrics
    assert math.isclose(metrics["ece_change"], metrics["ece"] - metrics["ece@handwritten"], abs_tol=1e-9)
