"""``calibration:`` contracts: whether a model's confidence means what it says, and its worst class.

``calibration: {on: webcam, max_ece: 0.05, min_worst_class: 0.5, reference: amazon-test}`` reports on
the images of ``on``:

- the expected calibration error (ECE): 15 equal-width bins of the top-1 softmax confidence, the
  image-weighted mean of |accuracy - mean confidence| per bin (the L1 estimator of Guo et al. 2017,
  "On Calibration of Modern Neural Networks"). It is the estimator papers and libraries report, so a
  threshold can be taken from them; equal-mass or debiased estimators would move every number.
  Its interval is a percentile bootstrap over images, seeded by the spec's ``seed``. The binned ECE is
  biased upward on a finite sample (noise in a bin's accuracy only adds to |accuracy - confidence|),
  and a bootstrap resample adds its own noise on top, so the upper bound that ``max_ece`` reads
  overstates the error: the gate is conservative (a well-calibrated model on few images may fail it,
  a miscalibrated one does not pass by chance);
- every class's accuracy with its Wilson interval, and the worst class, the one whose accuracy is
  lowest at the end ``min_worst_class`` reads (its lower bound; the estimate under ``confidence: point``);
- under shift: ``reference:`` (e.g. the source domain) adds the ECE and worst-class accuracy there and
  how much they change on ``on``; for a compressed model, the fp32 baseline's ECE on the same images
  stands beside its own.

Series for the report: per-class accuracy, and the reliability diagram's bins (mean confidence,
accuracy and image count of every bin that holds an image).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import model_validator

from robustgate.checks.base import ContractKind, Evaluation, contract_kinds
from robustgate.checks.declaration import GateDecl, MetricDecl, Reading, reading
from robustgate.checks.outcome import Outcome
from robustgate.checks.stats import Proportion, wilson_interval
from robustgate.spec.fields import DatasetRef, Params, Probability
from robustgate.spec.model import BASELINE

if TYPE_CHECKING:
    import numpy as np

BINS = 15  # Guo et al.'s choice, and what torchmetrics and most papers use
RESAMPLES = 1000  # bootstrap resamples: the bound's Monte Carlo error is well under its sampling error
_CHUNK = 100  # resamples drawn at once, which bounds memory on large datasets


class CalibrationParams(Params):
    on: DatasetRef
    max_ece: Probability | None = None  # expected calibration error, read at its upper bound
    min_worst_class: Probability | None = None  # the worst class's accuracy, read at its lower bound
    reference: DatasetRef | None = None  # e.g. the source domain: the same numbers there, and their change

    @model_validator(mode="after")
    def _reference_elsewhere(self) -> "CalibrationParams":
        if self.reference == self.on:
            raise ValueError(f"reference: '{self.reference}' is the dataset the contract is on; name another one "
                             "(e.g. the source domain) to report how calibration changes under shift")
        return self


class CalibrationContract(ContractKind):
    Params = CalibrationParams
    title = "Calibration"
    summary = "expected calibration error and the worst class's accuracy, and how they change under shift"
    needs = frozenset({"predictions"})
    gates = (
        GateDecl("max_ece", "ece", "<=", "upper"),
        GateDecl("min_worst_class", "worst_class_accuracy", ">=", "lower"),
    )
    metrics = (
        MetricDecl("ece", False, "ece_low", "ece_high"),
        MetricDecl("worst_class_accuracy", True, "worst_class_accuracy_low", "worst_class_accuracy_high"),
        MetricDecl("accuracy", True),
        MetricDecl("ece_change", False),  # on `on` minus on `reference`
        MetricDecl("worst_class_accuracy_change", True),
        MetricDecl("baseline_ece", None),  # the fp32 model's, shown beside a variant's
        MetricDecl("worst_class", None), MetricDecl("worst_class_n", None), MetricDecl("n", None),
        MetricDecl("interval_level", None),
    )

    def label(self, params: CalibrationParams) -> str:
        return params.on if params.reference is None else f"{params.reference}->{params.on}"

    def headline_metric(self, params: CalibrationParams) -> str:
        return "ece"

    def check(self, evaluation: Evaluation, variant: str, params: CalibrationParams) -> Outcome:
        outcome = Outcome(contract=f"calibration[{self.label(params)}]", variant=variant)
        read = reading(evaluation.confidence)
        m = outcome.metrics
        here = Calibration.of(evaluation, variant, params.on, read, evaluation.seed)
        m.update(n=here.n, accuracy=here.accuracy, ece=here.ece, ece_low=here.ece_low, ece_high=here.ece_high,
                 interval_level=read.level, worst_class=here.worst_class, worst_class_n=here.worst.n,
                 worst_class_accuracy=here.worst.estimate, worst_class_accuracy_low=here.worst.low,
                 worst_class_accuracy_high=here.worst.high)
        outcome.series.update(here.series())
        if params.reference is not None:
            # only its estimates are reported: no bootstrap
            there = Calibration.of(evaluation, variant, params.reference, read, evaluation.seed, resamples=0)
            m.update({f"ece@{params.reference}": there.ece, f"worst_class_accuracy@{params.reference}": there.worst.estimate,
                      "ece_change": here.ece - there.ece,
                      "worst_class_accuracy_change": here.worst.estimate - there.worst.estimate})
        if variant != BASELINE:
            m["baseline_ece"] = Calibration.of(evaluation, BASELINE, params.on, read, evaluation.seed, resamples=0).ece
        max_ece, min_worst = self.gates
        if params.max_ece is not None:
            outcome.gates.append(max_ece.judge(params.max_ece, here.ece, here.ece_low, here.ece_high, read))
        if params.min_worst_class is not None:
            outcome.gates.append(min_worst.judge(params.min_worst_class, here.worst.estimate, here.worst.low,
                                                 here.worst.high, read, f"@class{here.worst_class}"))
        return outcome


@dataclass(frozen=True)
class Calibration:
    """One model's calibration and per-class accuracy on the images of one dataset."""

    n: int
    accuracy: float
    ece: float
    ece_low: float
    ece_high: float
    bins: ReliabilityBins
    classes: dict[int, Proportion]  # class index -> its accuracy, for every class with images
    worst_class: int

    @property
    def worst(self) -> Proportion:
        return self.classes[self.worst_class]

    @classmethod
    def of(cls, evaluation: Evaluation, model: str, dataset: str, read: Reading, seed: int,
           resamples: int = RESAMPLES) -> Calibration:
        import torch

        labels = evaluation.predictions.labels(dataset)
        probabilities = torch.softmax(evaluation.predictions.logits(model, dataset).double(), dim=1)
        confidence, predicted = probabilities.max(dim=1)
        correct = (predicted == labels).cpu().numpy()
        confidence_ = confidence.cpu().numpy()
        ece = expected_calibration_error(confidence_, correct)
        low, high = ece_interval(confidence_, correct, read.level, seed, resamples) if resamples else (ece, ece)
        classes = class_accuracies(labels.cpu().numpy(), correct, read.level)
        # the worst class is the one the gate would read lowest: at its lower bound (a class of 3 images
        # that got 2 right is not better than one of 300 that got 190 right), at its estimate under `point`
        worst = min(classes, key=lambda c: read.pick("lower", classes[c].estimate, classes[c].low, classes[c].high)[0])
        return cls(len(correct), float(correct.mean()), ece, min(low, ece), max(high, ece),
                   reliability_bins(confidence_, correct), classes, worst)

    def series(self) -> dict[str, list[float]]:
        return {
            "class": [float(c) for c in self.classes],
            "class_accuracy": [p.estimate for p in self.classes.values()],
            "class_n": [float(p.n) for p in self.classes.values()],
            "reliability_confidence": self.bins.confidence,
            "reliability_accuracy": self.bins.accuracy,
            "reliability_count": self.bins.count,
            "reliability_bin_low": self.bins.low,
        }


@dataclass(frozen=True)
class ReliabilityBins:
    """The reliability diagram: every confidence bin that holds an image, in order."""

    low: list[float]  # the bin's lower edge; it spans (low, low + 1/BINS]
    confidence: list[float]  # mean top-1 confidence of its images
    accuracy: list[float]
    count: list[float]


def bin_of(confidence: np.ndarray) -> np.ndarray:
    """The bin of each confidence: bin m holds ((m - 1)/BINS, m/BINS], as in Guo et al."""
    import numpy as np

    return np.clip(np.ceil(confidence * BINS).astype(np.int64) - 1, 0, BINS - 1)


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray) -> float:
    """Sum over bins of |bin| / n * |accuracy - mean confidence| = sum |sum (correct - confidence)| / n."""
    import numpy as np

    gap = np.bincount(bin_of(confidence), weights=correct - confidence, minlength=BINS)
    return float(np.abs(gap).sum() / len(confidence))


def ece_interval(confidence: np.ndarray, correct: np.ndarray, level: float, seed: int,
                 resamples: int = RESAMPLES) -> tuple[float, float]:
    """Percentile bootstrap interval of the ECE over images (resampled with replacement), seeded."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n, bins, residual = len(confidence), bin_of(confidence), correct - confidence
    values = []
    for start in range(0, resamples, _CHUNK):
        draws = rng.integers(0, n, size=(min(_CHUNK, resamples - start), n))
        # one bincount for the whole chunk: resample r's bin m is slot r * BINS + m
        slots = bins[draws] + BINS * np.arange(len(draws))[:, None]
        gaps = np.bincount(slots.ravel(), weights=residual[draws].ravel(), minlength=len(draws) * BINS)
        values.append(np.abs(gaps.reshape(len(draws), BINS)).sum(axis=1) / n)
    low, high = np.quantile(np.concatenate(values), [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def reliability_bins(confidence: np.ndarray, correct: np.ndarray) -> ReliabilityBins:
    import numpy as np

    bins = bin_of(confidence)
    count = np.bincount(bins, minlength=BINS)
    held = count > 0
    mean = {name: np.bincount(bins, weights=values, minlength=BINS)[held] / count[held]
            for name, values in (("confidence", confidence), ("accuracy", correct.astype(np.float64)))}
    return ReliabilityBins([float(m) / BINS for m in np.flatnonzero(held)], mean["confidence"].tolist(),
                           mean["accuracy"].tolist(), count[held].astype(float).tolist())


def class_accuracies(labels: np.ndarray, correct: np.ndarray, level: float) -> dict[int, Proportion]:
    """Accuracy with its Wilson interval for every class among ``labels``, each at ``level``. A gate reads
    the lowest of these bounds: a class truly below its threshold fails it at least as surely as the
    spec's confidence says, and with many classes near the threshold it fails more often (conservative)."""
    import numpy as np

    return {int(c): wilson_interval(int(correct[labels == c].sum()), int((labels == c).sum()), level)
            for c in np.unique(labels)}


contract_kinds.register("calibration")(CalibrationContract())
