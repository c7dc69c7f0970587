"""``accuracy:`` contracts: clean top-1 accuracy on a dataset, absolute or against the baseline."""

from __future__ import annotations

from typing import TYPE_CHECKING

from robustgate.checks.base import ContractKind, Evaluation, contract_kinds
from robustgate.checks.chance import note_if_at_chance, require_reference_above_chance
from robustgate.checks.declaration import GateDecl, MetricDecl, Reading, reading
from robustgate.checks.outcome import Outcome
from robustgate.checks.regression import PerImage
from robustgate.checks.stats import paired_drop, relative_drop_high, wilson_interval
from robustgate.spec.fields import DatasetRef, Params, Probability
from robustgate.spec.model import BASELINE

if TYPE_CHECKING:
    import torch


class AccuracyParams(Params):
    on: DatasetRef
    min: Probability | None = None
    max_drop: Probability | None = None  # accuracy points lost vs the baseline on the same images
    max_relative_drop: Probability | None = None  # the same, as a share of the baseline's accuracy


# The drop gates every kind that compares a variant with the baseline on the same images offers.
MAX_DROP = GateDecl("max_drop", "drop", "<=", "upper", relative=True)
MAX_RELATIVE_DROP = GateDecl("max_relative_drop", "relative_drop", "<=", "upper", relative=True)
DROP_METRICS = (
    MetricDecl("drop", False, low="drop_low", high="drop_high"),
    MetricDecl("relative_drop", False, high="relative_drop_high"),
    MetricDecl("baseline_accuracy", None, low="baseline_accuracy_low", high="baseline_accuracy_high"),
    MetricDecl("lost", None), MetricDecl("gained", None), MetricDecl("mcnemar_p", None),
)
MIN = GateDecl("min", "accuracy", ">=", "lower")


class AccuracyContract(ContractKind):
    Params = AccuracyParams
    gates = (MIN, MAX_DROP, MAX_RELATIVE_DROP)
    metrics = (
        MetricDecl("accuracy", True, low="accuracy_low", high="accuracy_high"),
        MetricDecl("correct", None), MetricDecl("n", None), MetricDecl("interval_level", None),
        *DROP_METRICS,
    )
    needs = frozenset({"predictions"})
    title = "Clean accuracy"
    summary = "top-1 accuracy on one dataset, or the accuracy a variant loses against the baseline on the same images."

    def label(self, params: AccuracyParams) -> str:
        return params.on

    def headline_metric(self, params: AccuracyParams) -> str:
        return "accuracy"

    def check(self, evaluation: Evaluation, variant: str, params: AccuracyParams) -> Outcome:
        labels = evaluation.predictions.labels(params.on)
        correct = evaluation.predictions.logits(variant, params.on).argmax(dim=1) == labels
        read = reading(evaluation.confidence)
        acc = wilson_interval(int(correct.sum()), len(labels), read.level)
        outcome = Outcome(contract=f"accuracy[{params.on}]", variant=variant)
        outcome.metrics.update(
            accuracy=acc.estimate, accuracy_low=acc.low, accuracy_high=acc.high, correct=acc.successes, n=acc.n,
            interval_level=read.level,
        )
        outcome.per_image["accuracy"] = PerImage(evaluation.predictions.images_id(params.on), correct)
        if params.min is not None:
            outcome.gates.append(MIN.judge(params.min, acc.estimate, acc.low, acc.high, read))
        note_if_at_chance(outcome, correct, labels, read, params.on, "baseline" if variant == BASELINE else variant)
        if variant != BASELINE and (params.max_drop is not None or params.max_relative_drop is not None):
            base_correct = evaluation.predictions.logits(BASELINE, params.on).argmax(dim=1) == labels
            add_drop_gates(outcome, base_correct, correct, params.max_drop, params.max_relative_drop, read)
            require_reference_above_chance(outcome, base_correct, labels, read, params.on)
        return outcome


def add_drop_gates(
    outcome: Outcome, base_correct: torch.Tensor, correct: torch.Tensor, max_drop: float | None,
    max_relative_drop: float | None, read: Reading, suffix: str = "",
) -> None:
    """Paired drop of ``correct`` against the baseline's ``base_correct`` on the same images, with its gates.

    ``suffix`` tells points of a sweep apart (``drop@8/255``)."""
    drop = paired_drop(base_correct, correct, read.level)
    base_acc = float(base_correct.float().mean())
    base = wilson_interval(int(base_correct.sum()), len(base_correct), read.level)  # shown beside the drop
    outcome.metrics.update(
        {
            f"baseline_accuracy{suffix}": base_acc, f"baseline_accuracy_low{suffix}": base.low,
            f"baseline_accuracy_high{suffix}": base.high, f"drop{suffix}": drop.drop, f"drop_low{suffix}": drop.low,
            f"drop_high{suffix}": drop.high, f"lost{suffix}": drop.lost, f"gained{suffix}": drop.gained,
            f"mcnemar_p{suffix}": drop.p_value,
        }
    )
    if max_drop is not None:
        outcome.gates.append(MAX_DROP.judge(max_drop, drop.drop, drop.low, drop.high, read, suffix))
    if max_relative_drop is not None:
        relative, bound = relative_drop(base_correct, correct, read.level)
        outcome.metrics[f"relative_drop{suffix}"] = relative
        outcome.metrics[f"relative_drop_high{suffix}"] = bound
        # the lower end is never gated (a relative drop gate is a ceiling), so the estimate stands in for it
        outcome.gates.append(MAX_RELATIVE_DROP.judge(max_relative_drop, relative, relative, bound, read, suffix))


def relative_drop(base_correct: torch.Tensor, correct: torch.Tensor, level: float) -> tuple[float, float]:
    """The share of the baseline's accuracy lost on the same images, and the upper end of its interval:
    the baseline's own uncertainty counts (not the drop's bound over the baseline's point estimate)."""
    both = int((base_correct & correct).sum())
    lost, gained = int((base_correct & ~correct).sum()), int((~base_correct & correct).sum())
    neither = len(correct) - both - lost - gained
    relative = (lost - gained) / (both + lost) if both + lost else 0.0
    return relative, float(relative_drop_high(both, lost, gained, neither, level))


contract_kinds.register("accuracy")(AccuracyContract())
