"""``accuracy:`` contracts: clean top-1 accuracy on a dataset, absolute or against the baseline."""

from __future__ import annotations

from typing import Any

from pydantic import model_validator

from robustgate.checks.base import ContractKind, Evaluation, contract_kinds
from robustgate.checks.outcome import Gate, Outcome
from robustgate.checks.stats import DISPLAY_LEVEL, paired_drop, wilson_interval
from robustgate.spec.fields import DatasetRef, Params, Probability
from robustgate.spec.model import BASELINE


class AccuracyParams(Params):
    on: DatasetRef
    min: Probability | None = None
    max_drop: Probability | None = None  # accuracy points lost vs the baseline on the same images
    max_relative_drop: Probability | None = None  # the same, as a share of the baseline's accuracy

    @model_validator(mode="after")
    def _some_gate(self) -> "AccuracyParams":
        if self.min is None and self.max_drop is None and self.max_relative_drop is None:
            raise ValueError("an accuracy contract needs a gate: min, max_drop or max_relative_drop")
        return self


def reading(confidence: float | str, side: str) -> tuple[float, str]:
    """The interval level to compute and how a gate is read under the spec's ``confidence``."""
    if confidence == "point":
        return DISPLAY_LEVEL, "point"
    return float(confidence), f"{side} {float(confidence):.0%} bound"


class AccuracyContract(ContractKind):
    Params = AccuracyParams

    def label(self, params: AccuracyParams) -> str:
        return params.on

    def applies_to_baseline(self, params: AccuracyParams) -> bool:
        return params.min is not None

    def check(self, evaluation: Evaluation, variant: str, params: AccuracyParams) -> Outcome:
        labels = evaluation.labels(params.on)
        correct = evaluation.logits(variant, params.on).argmax(dim=1) == labels
        level, read_low = reading(evaluation.confidence, "lower")
        _, read_high = reading(evaluation.confidence, "upper")
        acc = wilson_interval(int(correct.sum()), len(labels), level)
        outcome = Outcome(contract=f"accuracy[{params.on}]", variant=variant)
        outcome.metrics.update(
            accuracy=acc.estimate, accuracy_low=acc.low, accuracy_high=acc.high, correct=acc.successes, n=acc.n,
            interval_level=level,
        )
        if params.min is not None:
            value = acc.estimate if read_low == "point" else acc.low
            outcome.gates.append(Gate("accuracy", ">=", params.min, acc.estimate, value, read_low))
        if variant != BASELINE and (params.max_drop is not None or params.max_relative_drop is not None):
            self._drop_gates(evaluation, variant, params, correct, level, read_high, outcome)
        return outcome

    @staticmethod
    def _drop_gates(
        evaluation: Evaluation, variant: str, params: AccuracyParams, correct: Any, level: float, read: str,
        outcome: Outcome,
    ) -> None:
        base_correct = evaluation.logits(BASELINE, params.on).argmax(dim=1) == evaluation.labels(params.on)
        drop = paired_drop(base_correct, correct, level)
        base_acc = float(base_correct.float().mean())
        outcome.metrics.update(
            baseline_accuracy=base_acc, drop=drop.drop, drop_low=drop.low, drop_high=drop.high,
            lost=drop.lost, gained=drop.gained, mcnemar_p=drop.p_value,
        )
        if params.max_drop is not None:
            value = drop.drop if read == "point" else drop.high
            outcome.gates.append(Gate("drop", "<=", params.max_drop, drop.drop, value, read))
        if params.max_relative_drop is not None:
            relative = drop.drop / base_acc if base_acc else 0.0
            bound = drop.high / base_acc if base_acc else 0.0
            outcome.metrics.update(relative_drop=relative)
            value = relative if read == "point" else bound
            outcome.gates.append(Gate("relative_drop", "<=", params.max_relative_drop, relative, value, read))


contract_kinds.register("accuracy")(AccuracyContract())
