"""``accuracy:`` contracts: clean top-1 accuracy on a dataset, absolute or against the baseline."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import ValidationInfo, model_validator

from robustgate.checks.base import ContractKind, Evaluation, contract_kinds
from robustgate.checks.chance import note_if_at_chance, require_reference_above_chance
from robustgate.checks.outcome import Gate, Outcome
from robustgate.checks.regression import PerImage
from robustgate.checks.stats import DISPLAY_LEVEL, bound_name, paired_drop, relative_drop_high, wilson_interval
from robustgate.spec.fields import DatasetRef, Params, Probability, gated_elsewhere
from robustgate.spec.model import BASELINE

if TYPE_CHECKING:
    import torch


class AccuracyParams(Params):
    on: DatasetRef
    min: Probability | None = None
    max_drop: Probability | None = None  # accuracy points lost vs the baseline on the same images
    max_relative_drop: Probability | None = None  # the same, as a share of the baseline's accuracy

    @model_validator(mode="after")
    def _some_gate(self, info: ValidationInfo) -> "AccuracyParams":
        gates = (self.min, self.max_drop, self.max_relative_drop)
        if all(g is None for g in gates) and not gated_elsewhere(info):
            raise ValueError("an accuracy contract needs a gate: min, max_drop or max_relative_drop")
        return self


def reading(confidence: float | str, side: str) -> tuple[float, str]:
    """The interval level to compute and how a gate is read under the spec's ``confidence``: one end
    of a two-sided interval at ``confidence``, so a one-sided bound at (1 + confidence) / 2."""
    if confidence == "point":
        return DISPLAY_LEVEL, "point"
    return float(confidence), bound_name(float(confidence), side)


class AccuracyContract(ContractKind):
    Params = AccuracyParams
    gate_keys = frozenset({"min", "max_drop", "max_relative_drop"})

    def label(self, params: AccuracyParams) -> str:
        return params.on

    def applies_to_baseline(self, params: AccuracyParams) -> bool:
        return params.min is not None

    def headline_metric(self, params: AccuracyParams) -> str:
        return "accuracy"

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
        outcome.per_image["accuracy"] = PerImage(evaluation.images_id(params.on), correct)
        if params.min is not None:
            value = acc.estimate if read_low == "point" else acc.low
            outcome.gates.append(Gate("accuracy", ">=", params.min, acc.estimate, value, read_low))
        note_if_at_chance(outcome, correct, labels, level, read_low, params.on, "baseline" if variant == BASELINE else variant)
        if variant != BASELINE and (params.max_drop is not None or params.max_relative_drop is not None):
            base_correct = evaluation.logits(BASELINE, params.on).argmax(dim=1) == labels
            add_drop_gates(outcome, base_correct, correct, params.max_drop, params.max_relative_drop, level, read_high)
            require_reference_above_chance(outcome, base_correct, labels, level, read_low, params.on)
        return outcome


def add_drop_gates(
    outcome: Outcome, base_correct: torch.Tensor, correct: torch.Tensor, max_drop: float | None,
    max_relative_drop: float | None, level: float, read: str, suffix: str = "",
) -> None:
    """Paired drop of ``correct`` against the baseline's ``base_correct`` on the same images, with its gates.

    ``suffix`` tells points of a sweep apart (``drop@8/255``)."""
    drop = paired_drop(base_correct, correct, level)
    base_acc = float(base_correct.float().mean())
    base = wilson_interval(int(base_correct.sum()), len(base_correct), level)  # shown beside the drop
    outcome.metrics.update(
        {
            f"baseline_accuracy{suffix}": base_acc, f"baseline_accuracy_low{suffix}": base.low,
            f"baseline_accuracy_high{suffix}": base.high, f"drop{suffix}": drop.drop, f"drop_low{suffix}": drop.low,
            f"drop_high{suffix}": drop.high, f"lost{suffix}": drop.lost, f"gained{suffix}": drop.gained,
            f"mcnemar_p{suffix}": drop.p_value,
        }
    )
    if max_drop is not None:
        value = drop.drop if read == "point" else drop.high
        outcome.gates.append(Gate(f"drop{suffix}", "<=", max_drop, drop.drop, value, read))
    if max_relative_drop is not None:
        relative, bound = relative_drop(base_correct, correct, level)
        outcome.metrics[f"relative_drop{suffix}"] = relative
        outcome.metrics[f"relative_drop_high{suffix}"] = bound
        value = relative if read == "point" else bound
        outcome.gates.append(Gate(f"relative_drop{suffix}", "<=", max_relative_drop, relative, value, read))


def relative_drop(base_correct: torch.Tensor, correct: torch.Tensor, level: float) -> tuple[float, float]:
    """The share of the baseline's accuracy lost on the same images, and the upper end of its interval:
    the baseline's own uncertainty counts (not the drop's bound over the baseline's point estimate)."""
    both = int((base_correct & correct).sum())
    lost, gained = int((base_correct & ~correct).sum()), int((~base_correct & correct).sum())
    neither = len(correct) - both - lost - gained
    relative = (lost - gained) / (both + lost) if both + lost else 0.0
    return relative, float(relative_drop_high(both, lost, gained, neither, level))


contract_kinds.register("accuracy")(AccuracyContract())
