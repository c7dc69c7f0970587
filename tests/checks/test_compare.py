"""``compare:`` contracts against a fake evaluation (logits + labels), the coverage of the interval for a
difference of drops across matrix cases, validation, and one run of the tiny spec end to end."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from fake_evaluation import FakeModels
from tiny_spec_edits import edit

from robustgate.checks import contract_kinds
from robustgate.checks.compare import CompareParams
from robustgate.checks.stats import mover_difference, newcombe_paired_bounds, paired_drop, wilson_interval
from robustgate.errors import SpecError
from robustgate.spec.parse import load_cases

CLASSES = 4
KIND = contract_kinds.get("compare")


def logits_for(labels: torch.Tensor, correct: list[int] | torch.Tensor) -> torch.Tensor:
    """Logits whose top-1 is the label where ``correct`` is 1, the next class otherwise."""
    right = torch.as_tensor(correct, dtype=torch.bool)
    predicted = torch.where(right, labels, (labels + 1) % CLASSES)
    return torch.nn.functional.one_hot(predicted, CLASSES).float() * 5


@dataclass
class FakePredictions:
    labels_of: dict[str, torch.Tensor]
    correct_of: dict[tuple[str, str], list[int]]  # (model, dataset) -> 1 where right
    images: dict[str, str] = field(default_factory=dict)

    def labels(self, dataset: str) -> torch.Tensor:
        return self.labels_of[dataset]

    def logits(self, variant: str, dataset: str) -> torch.Tensor:
        return logits_for(self.labels_of[dataset], self.correct_of[(variant, dataset)])

    def images_id(self, dataset: str, samples: int | None = None) -> str:
        return self.images.get(dataset, f"images of {dataset}")


@dataclass
class FakeEvaluation:
    predictions: FakePredictions
    models: FakeModels = field(default_factory=FakeModels)
    case: str | None = None
    cases: dict[str, FakeEvaluation] = field(default_factory=dict)
    confidence: float | str = 0.95
    seed: int = 0

    @property
    def other_case(self) -> Any:
        def case(name: str) -> FakeEvaluation:
            if name == self.case:
                return self
            if name not in self.cases:
                raise SpecError(f"no matrix case '{name}'")
            return self.cases[name]

        return case if self.case is not None else None


def evaluation(correct: dict[str, list[int]], dataset: str = "webcam", **kwargs: Any) -> FakeEvaluation:
    n = len(next(iter(correct.values())))
    labels = torch.arange(n) % CLASSES
    return FakeEvaluation(FakePredictions({dataset: labels}, {(m, dataset): c for m, c in correct.items()}), **kwargs)


def params(**keys: Any) -> CompareParams:
    return CompareParams.model_validate({"better": "int8", "than": "pruned", "on": "webcam", **keys})


# 40 images: int8 gets 6 right that pruned misses and misses 1 that pruned gets
INT8 = [1] * 30 + [1] * 6 + [0] * 1 + [0] * 3
PRUNED = [1] * 30 + [0] * 6 + [1] * 1 + [0] * 3
BASE = [1] * 40


def test_the_advantage_in_accuracy_is_paired_and_the_gate_reads_its_lower_bound() -> None:
    outcome = KIND.check(evaluation({"int8": INT8, "pruned": PRUNED, "baseline": BASE}), "int8", params(by=0.0))
    m = outcome.metrics
    expected = paired_drop(torch.tensor(PRUNED).bool(), torch.tensor(INT8).bool(), 0.95)
    assert m["advantage"] == pytest.approx(5 / 40) and (m["gained"], m["lost"]) == (6, 1)
    assert (m["advantage_low"], m["advantage_high"]) == pytest.approx((-expected.high, -expected.low))
    assert m["better_accuracy"] == pytest.approx(36 / 40) and m["than_accuracy"] == pytest.approx(31 / 40)
    (gate,) = outcome.gates
    assert gate.metric == "advantage" and gate.value == pytest.approx(m["advantage_low"])
    assert gate.read == "one-sided 97.5% lower bound" and gate.passed == (m["advantage_low"] >= 0)
    assert outcome.contract == "compare[int8>pruned@webcam]" and not outcome.notes


def test_under_confidence_point_the_gate_reads_the_estimate() -> None:
    outcome = KIND.check(evaluation({"int8": INT8, "pruned": PRUNED}, confidence="point"), "int8", params(by=0.1))
    (gate,) = outcome.gates
    assert gate.read == "point" and gate.value == pytest.approx(5 / 40) and gate.passed


def test_a_drop_within_one_case_is_the_accuracy_difference_against_the_shared_baseline() -> None:
    base = [1] * 36 + [0] * 4
    m = KIND.check(evaluation({"int8": INT8, "pruned": PRUNED, "baseline": base}), "int8", params(metric="drop")).metrics
    accuracy = KIND.check(evaluation({"int8": INT8, "pruned": PRUNED, "baseline": base}), "int8", params()).metrics
    assert m["better_drop"] == pytest.approx(0.0) and m["than_drop"] == pytest.approx(5 / 40)
    assert (m["advantage"], m["advantage_low"], m["advantage_high"]) == pytest.approx(
        (accuracy["advantage"], accuracy["advantage_low"], accuracy["advantage_high"]))


def test_naming_this_very_case_is_naming_a_model_of_it() -> None:
    base = [1] * 36 + [0] * 4
    correct = {"int8": INT8, "pruned": PRUNED, "baseline": base}
    by_case = KIND.check(evaluation(correct, case="a"), "int8", params(than="a::pruned", metric="drop")).metrics
    plain = KIND.check(evaluation(correct, case="a"), "int8", params(metric="drop")).metrics
    assert by_case == plain


def test_another_case_on_the_same_images_pairs_the_drops_per_image() -> None:
    small = evaluation({"pruned": INT8, "baseline": BASE}, case="r18-amazon")
    large = evaluation({"pruned": PRUNED, "baseline": BASE}, case="r50-amazon")
    small.cases["r50-amazon"] = large
    spec = params(better="pruned", than="r50-amazon::pruned", metric="drop")
    outcome = KIND.check(small, "pruned", spec)
    m = outcome.metrics
    assert m["better_drop"] == pytest.approx(4 / 40) and m["than_drop"] == pytest.approx(9 / 40)
    assert m["advantage"] == pytest.approx(5 / 40) and (m["gained"], m["lost"]) == (6, 1) and m["paired"] == 1
    assert m["advantage_low"] < m["advantage"] < m["advantage_high"]
    assert outcome.contract == "compare[drop:pruned>r50-amazon/pruned@webcam]"
    assert [g.metric for g in outcome.gates] == ["baseline_above_chance@webcam", "r50-amazon/baseline_above_chance@webcam",
                                                 "advantage"]


def test_different_images_are_compared_as_independent_samples_and_a_note_says_so() -> None:
    small = evaluation({"int8": INT8, "baseline": BASE}, case="a")
    large = evaluation({"pruned": PRUNED, "baseline": BASE}, case="b")
    large.predictions.images["webcam"] = "other images"
    small.cases["b"] = large
    outcome = KIND.check(small, "int8", params(than="b::pruned"))
    expected = [wilson_interval(k, 40, 0.95) for k in (36, 31)]
    assert outcome.metrics["paired"] == 0 and "lost" not in outcome.metrics
    assert outcome.metrics["advantage_low"] == pytest.approx(
        5 / 40 - np.hypot(expected[0].estimate - expected[0].low, expected[1].high - expected[1].estimate))
    assert "independent samples" in outcome.notes[0]


def test_a_case_this_run_does_not_include_leaves_the_gate_unread() -> None:
    outcome = KIND.check(evaluation({"int8": INT8}, case="a"), "int8", params(than="b::pruned"))
    assert not outcome.gates and "case b is not in this run" in outcome.unread[0]


def test_a_model_whose_runtime_is_missing_here_leaves_the_gate_unread() -> None:
    fake = evaluation({"int8": INT8, "pruned": PRUNED})
    fake.models.missing["pruned"] = "variant pruned (artifact) needs ONNX Runtime: pip install 'robustgate[onnx]'"
    outcome = KIND.check(fake, "int8", params())
    assert not outcome.gates and outcome.unread == [
        "there is nothing to compare with: variant pruned (artifact) needs ONNX Runtime: pip install 'robustgate[onnx]'"]


def test_several_datasets_get_a_gate_each_with_their_metrics_named_by_dataset() -> None:
    fake = evaluation({"int8": INT8, "pruned": PRUNED}, confidence="point")
    fake.predictions.labels_of["dslr"] = fake.predictions.labels_of["webcam"]
    fake.predictions.correct_of.update({("int8", "dslr"): PRUNED, ("pruned", "dslr"): INT8})
    spec = params(on=["webcam", "dslr"])
    outcome = KIND.check(fake, "int8", spec)
    assert [(g.metric, g.passed) for g in outcome.gates] == [("advantage@webcam", True), ("advantage@dslr", False)]
    assert outcome.metrics["advantage@dslr"] == pytest.approx(-5 / 40) and "advantage" not in outcome.metrics
    assert KIND.label(spec) == "int8>pruned@webcam+dslr" and KIND.headline_metric(spec) is None


def test_the_item_belongs_to_the_better_model() -> None:
    assert KIND.models_for(params()) == ("int8",)
    assert KIND.headline_metric(params()) == "advantage"


SPEC = """\
robustgate: 1
name: compare
matrix: {arch: [resnet18, resnet50]}
model:
  arch: "{arch}"
  kwargs: {num_classes: 10}
  weights: train
  train: {on: digits, epochs: 1}
  input: {size: [32, 32], mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]}
datasets:
  digits: {builtin: digits, domain: handwritten}
variants:
  int8: {ptq: {backend: x86}}
  pruned-0.5: {prune: {method: l1, ratio: 0.5}}
contracts:
  - compare: {COMPARE}
"""


def load(tmp_path: Path, compare: str, spec: str = SPEC) -> list:
    path = tmp_path / "spec.yaml"
    path.write_text(edit(spec, "{COMPARE}", compare))
    return load_cases(path)


@pytest.mark.parametrize(("keys", "message"), [
    ("{better: int9, than: int8, on: digits}", "contracts[0].compare.better: unknown model 'int9'; did you mean 'int8'?"),
    ("{better: int8, than: int8, on: digits}", "better and than both name 'int8'"),
    ("{better: int8, than: resnet34::int8, on: digits}",
     "contracts[0].compare.than: 'resnet34' is not a case of this spec; did you mean"),
    ("{better: int8, than: baseline, on: digits, metric: drop}", "metric: drop compares what each model loses"),
])
def test_validation_names_the_mistake(tmp_path: Path, keys: str, message: str) -> None:
    with pytest.raises(SpecError, match=re.escape(message)):
        load(tmp_path, keys)


def test_a_case_reference_needs_a_matrix(tmp_path: Path) -> None:
    plain = edit(edit(SPEC, "matrix: {arch: [resnet18, resnet50]}\n", ""), '"{arch}"', "resnet18")
    with pytest.raises(SpecError, match="names a matrix case, but this spec has no matrix"):
        load(tmp_path, "{better: int8, than: x::int8, on: digits}", plain)


def test_another_cases_same_model_is_a_comparison(tmp_path: Path) -> None:
    cases = load(tmp_path, '{better: int8, than: "resnet50::int8", on: digits}')
    assert [spec.case for spec in cases] == ["resnet18", "resnet50"]
    assert cases[0].contracts[0].params.than == "resnet50::int8"


# --- coverage of the interval for a difference of drops across cases, on the same images ---------------------------

def cell_probabilities(accuracy: float, same_base: float, lose: float, gain: float) -> np.ndarray:
    """P(than's baseline right, than right, better's baseline right, better right) over 16 cells: the two baselines
    agree on an image with probability ``same_base``; than loses (gains) an image with twice ``lose`` (``gain``),
    better with ``lose`` (``gain``), so better keeps more."""
    p = np.zeros((2, 2, 2, 2))
    for tb in (0, 1):
        for bb in (0, 1):
            base = (accuracy if tb else 1 - accuracy) * (same_base if tb == bb else 1 - same_base)
            for tc in (0, 1):
                for bc in (0, 1):
                    p_t = (2 * lose if tc == 0 else 1 - 2 * lose) if tb else (gain if tc else 1 - gain)
                    p_b = (lose if bc == 0 else 1 - lose) if bb else (gain / 2 if bc else 1 - gain / 2)
                    p[tb, tc, bb, bc] = base * p_t * p_b
    return p.ravel()


def simulated_intervals(p: np.ndarray, n: int, level: float, replicates: int, seed: int):
    """The advantage's interval (than's drop minus better's) on ``replicates`` samples of ``n`` images, as the
    compare contract computes it, and the true advantage."""
    cells = np.array([(tb, tc, bb, bc) for tb in (0, 1) for tc in (0, 1) for bb in (0, 1) for bc in (0, 1)])
    counts = np.random.default_rng(seed).multinomial(n, p, size=replicates)  # replicates x 16
    x, y = cells[:, 0] - cells[:, 1], cells[:, 2] - cells[:, 3]  # per-image drops of than and better

    def drop_interval(ref: int, cand: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        table = [counts[:, (cells[:, ref] == r) & (cells[:, cand] == c)].sum(axis=1) for r, c in ((1, 1), (1, 0), (0, 1), (0, 0))]
        low, high = newcombe_paired_bounds(*table, level)
        return (table[1] - table[2]) / n, low, high

    def mean(values: np.ndarray) -> np.ndarray:
        return counts @ values / n

    covariance = mean(x * y) - mean(x) * mean(y)
    scale = np.sqrt((mean(x * x) - mean(x) ** 2) * (mean(y * y) - mean(y) ** 2))
    r = np.where(scale > 0, covariance / np.where(scale > 0, scale, 1.0), 0.0)
    _, low, high = mover_difference(drop_interval(0, 1), drop_interval(2, 3), r)
    return low, high, float(p @ x - p @ y)


@pytest.mark.parametrize(("n", "lose", "gain"), [(60, 0.02, 0.01), (200, 0.05, 0.05), (500, 0.01, 0.0), (200, 0.15, 0.1)])
def test_the_cross_case_drop_interval_keeps_its_coverage(n: int, lose: float, gain: float) -> None:
    """Seeded Monte Carlo: two-sided coverage and each one-sided bound hold their level within 2 standard errors,
    from rare disagreements (where a t interval on the per-image values collapses) to frequent ones."""
    replicates, level = 4000, 0.95
    low, high, truth = simulated_intervals(cell_probabilities(0.8, 0.85, lose, gain), n, level, replicates, seed=n)
    for covered, nominal in (((low <= truth) & (truth <= high)).mean(), level), ((low <= truth).mean(), (1 + level) / 2), \
                            ((truth <= high).mean(), (1 + level) / 2):
        assert covered >= nominal - 2 * np.sqrt(nominal * (1 - nominal) / replicates), (covered, nominal)


# --- end to end -------------------------------------------------------------------------------------------------------

def test_a_compare_contract_runs_on_the_tiny_spec(tiny_project: pytest.Pytester) -> None:
    spec = tiny_project.path / "robustness_specs" / "tiny.yaml"
    text = edit(spec.read_text(), "variants:\n", "variants:\n  int8-dynamic: {ptq: {method: dynamic}}\n")
    spec.write_text(text + "  - compare: {better: int8-dynamic, than: int8, on: printed, by: -0.2}\n")
    result = tiny_project.runpytest("-p", "no:cacheprovider", "-k", "compare")
    result.assert_outcomes(passed=1)
    doc = json.loads((tiny_project.path / "reports" / "results.json").read_text())
    (item,) = [item for item in doc["items"] if "compare[" in item["nodeid"]]
    assert item["nodeid"].endswith("::int8-dynamic::compare[int8-dynamic>int8@printed]")
    assert item["metrics"]["n"] == 200 and item["metrics"]["paired"] == 1
