"""``compare:`` contracts: one model against another on the same images, as a gate.

``compare: {better: int8, than: pruned-0.5, on: webcam, by: 0.0}`` passes when int8's accuracy minus
pruned-0.5's, on the same images, is at least ``by`` at the lower end of its paired interval. With
``metric: drop`` the models are compared by the accuracy each loses against its own fp32 baseline
("int8 keeps accuracy under shift better than pruning"). Either way the gated metric is the
``advantage`` of ``better``: its accuracy minus ``than``'s, or ``than``'s drop minus its drop.
``on`` may list datasets (``on: [webcam, dslr]``, or ``"{source.targets}"`` in a matrix): a gate on
each, its metrics named ``advantage@webcam`` and so on.

``than`` may name a model of another matrix case of the same spec file, ``CASE::MODEL``
(``than: "resnet50-{source}::pruned-0.5"``), so claims across base models become gates. A case that
this run does not include (a profile narrowed the matrix) leaves the gate unread: the item skips and
says so.

Intervals, by design of the comparison:

- same images, accuracy: Newcombe's paired interval (:func:`robustgate.checks.stats.paired_drop`);
- same case, drop: both drops are against the same baseline, so the difference of drops *is* the
  difference of accuracies, and it gets the same paired interval;
- another case, same images, drop: per image the advantage is (than's baseline right - than right) -
  (better's baseline right - better right), in {-2..2}, four models on one image. A t or Wald interval
  on its mean collapses to a point when the models rarely disagree (every value 0) and under-covers
  when they disagree on a handful of images, which is the usual case for compressed models. Instead,
  each drop keeps Newcombe's paired interval (which stays honest on sparse tables) and the two are
  combined by MOVER (Zou & Donner 2008, Statistics in Medicine 27:1693; Zou 2008, American Journal of
  Epidemiology 168:212 for correlated estimates) with the per-image correlation of the two drops;
  tests/checks/test_compare.py checks its coverage by simulation;
- different images: independent samples (Newcombe's unpaired interval; MOVER with no correlation for
  drops), and a note says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from robustgate.checks.base import ContractKind, Evaluation, contract_kinds
from robustgate.checks.chance import require_reference_above_chance
from robustgate.checks.declaration import GateDecl, MetricDecl, Reading, reading
from robustgate.checks.outcome import Outcome
from robustgate.checks.stats import mover_difference, paired_drop, unpaired_difference, wilson_interval
from robustgate.errors import SpecError
from robustgate.spec.fields import DatasetRef, ModelRef, Params
from robustgate.spec.model import BASELINE

if TYPE_CHECKING:
    import torch

CASE_SEPARATOR = "::"  # spec validation checks that CASE names a case of the file's matrix


def split_reference(reference: str) -> tuple[str | None, str]:
    """``"resnet50-amazon::int8"`` -> ``("resnet50-amazon", "int8")``; a plain model name has no case."""
    case, separator, model = reference.rpartition(CASE_SEPARATOR)
    return (case, model) if separator else (None, reference)


def _listed(value: Any) -> Any:
    """``on: webcam`` is ``on: [webcam]``."""
    return [value] if isinstance(value, str) else value


class CompareParams(Params):
    better: ModelRef  # a model of this spec: the item belongs to it
    than: ModelRef  # a model of this spec, or CASE::MODEL of another matrix case of the same file
    on: Annotated[list[DatasetRef], BeforeValidator(_listed, json_schema_input_type=DatasetRef | list[DatasetRef]),
                  Field(min_length=1)]  # a gate on each
    by: float = Field(default=0.0, ge=-1.0, le=1.0)  # the least advantage `better` must have (negative: a tolerance)
    metric: Literal["accuracy", "drop"] = "accuracy"

    @model_validator(mode="after")
    def _two_models(self) -> "CompareParams":
        case, model = split_reference(self.than)
        if case is None and model == self.better:
            raise ValueError(f"better and than both name '{self.better}'; compare two different models")
        if self.metric == "drop" and BASELINE in (self.better, model):
            raise ValueError(f"metric: drop compares what each model loses against its own {BASELINE}, which loses "
                             "nothing against itself; compare compressed models, or use metric: accuracy")
        return self


class CompareContract(ContractKind):
    Params = CompareParams
    title = "Comparisons"
    summary = "one model against another (or another matrix case's) on the same images: accuracy or drop"
    needs = frozenset({"predictions"})
    gates = (GateDecl("by", "advantage", ">=", "lower"),)
    metrics = (
        MetricDecl("advantage", True, "advantage_low", "advantage_high"),
        MetricDecl("better_accuracy", True, "better_accuracy_low", "better_accuracy_high"),
        MetricDecl("than_accuracy", None, "than_accuracy_low", "than_accuracy_high"),  # the other model's quality
        MetricDecl("better_drop", False, "better_drop_low", "better_drop_high"),
        MetricDecl("than_drop", None, "than_drop_low", "than_drop_high"),
        MetricDecl("lost", None), MetricDecl("gained", None), MetricDecl("mcnemar_p", None),
        MetricDecl("n", None), MetricDecl("than_n", None), MetricDecl("paired", None), MetricDecl("interval_level", None),
    )

    def label(self, params: CompareParams) -> str:
        """``int8>pruned-0.5@webcam``; ``drop:`` in front for drops; another case as ``CASE/MODEL`` (``::``
        separates the parts of a pytest node id)."""
        case, model = split_reference(params.than)
        than = model if case is None else f"{case}/{model}"
        metric = "" if params.metric == "accuracy" else f"{params.metric}:"
        return f"{metric}{params.better}>{than}@{'+'.join(params.on)}"

    def models_for(self, params: CompareParams) -> tuple[str, ...]:
        return (params.better,)

    def headline_metric(self, params: CompareParams) -> str | None:
        """One dataset's advantage; over several, ``max_regression`` names them (``advantage@webcam``)."""
        return "advantage" if len(params.on) == 1 else None

    def check(self, evaluation: Evaluation, variant: str, params: CompareParams) -> Outcome:
        outcome = Outcome(contract=f"compare[{self.label(params)}]", variant=variant)
        case, than_model = split_reference(params.than)
        other = evaluation if case is None else _other_case(evaluation, case)  # this case's own: `evaluation` again
        if other is None:
            outcome.unread.append(f"case {case} is not in this run (a profile or a selection narrowed the "
                                  "matrix), so there is nothing to compare with")
            return outcome
        missing = other.models.unavailable(than_model)
        if missing is not None:  # its own items skip saying so; a comparison with it cannot be judged either
            outcome.unread.append(f"there is nothing to compare with: {missing}")
            return outcome
        read = reading(evaluation.confidence)
        for dataset in params.on:
            suffix = f"@{dataset}" if len(params.on) > 1 else ""
            self.compare_on(outcome, evaluation, other, params, case, than_model, dataset, suffix, read)
        return outcome

    def compare_on(self, outcome: Outcome, evaluation: Evaluation, other: Evaluation, params: CompareParams,
                   case: str | None, than_model: str, dataset: str, suffix: str, read: Reading) -> None:
        """The comparison on one dataset: its metrics (named with ``suffix``) and its gate."""
        drop = params.metric == "drop"
        better = _Side.of(evaluation, params.better, dataset, drop)
        than = _Side.of(other, than_model, dataset, drop)
        paired = better.images == than.images
        if not paired:
            outcome.notes.append(f"{params.better} and {params.than} were evaluated on different images of {dataset}, "
                                 "so they are compared as independent samples (a wider interval than a paired one)")
        m: dict[str, Any] = dict(n=len(better.correct), than_n=len(than.correct), paired=int(paired),
                                 interval_level=read.level)
        for name, side in (("better", better), ("than", than)):
            acc = wilson_interval(int(side.correct.sum()), len(side.correct), read.level)
            m.update({f"{name}_accuracy": acc.estimate, f"{name}_accuracy_low": acc.low, f"{name}_accuracy_high": acc.high})
        if drop:
            for name, side, where in (("better", better, evaluation), ("than", than, other)):
                side.add_drop(m, name, read.level)
                who = BASELINE if where is evaluation else f"{case}/{BASELINE}"
                require_reference_above_chance(outcome, side.baseline, side.labels, read, dataset, who)
        advantage = self.advantage(better, than, params.metric, other is evaluation, paired, read.level, m)
        outcome.metrics.update({f"{name}{suffix}": value for name, value in m.items()})
        outcome.gates.append(self.gates[0].judge(params.by, *advantage, read, suffix))

    @staticmethod
    def advantage(better: _Side, than: _Side, metric: str, same_case: bool, paired: bool, level: float,
                  m: dict[str, Any]) -> tuple[float, float, float]:
        """``better``'s advantage over ``than`` with its interval, recorded in ``m`` (see the module's docstring
        for which interval, when)."""
        if metric == "accuracy" or same_case:  # a drop against one shared baseline: an accuracy difference
            if paired:
                drop = paired_drop(than.correct, better.correct, level)  # than's accuracy minus better's
                m.update(lost=drop.lost, gained=drop.gained, mcnemar_p=drop.p_value)
                estimate, low, high = -drop.drop, -drop.high, -drop.low
            else:
                diff = unpaired_difference(*(wilson_interval(int(s.correct.sum()), len(s.correct), level)
                                             for s in (better, than)))
                estimate, low, high = diff.estimate, diff.low, diff.high
        else:
            correlation = 0.0
            if paired:
                than_drops, better_drops = than.drop_per_image(), better.drop_per_image()
                per_image = than_drops - better_drops
                m.update(lost=int((per_image < 0).sum()), gained=int((per_image > 0).sum()))
                correlation = _correlation(than_drops, better_drops)
            estimate, low, high = (float(v) for v in mover_difference(
                (m["than_drop"], m["than_drop_low"], m["than_drop_high"]),
                (m["better_drop"], m["better_drop_low"], m["better_drop_high"]), correlation))
        m.update(advantage=estimate, advantage_low=low, advantage_high=high)
        return estimate, low, high


@dataclass(frozen=True)
class _Side:
    """One model of a comparison on the images of one dataset (of its own case)."""

    images: str
    labels: torch.Tensor
    correct: torch.Tensor
    baseline_correct: torch.Tensor | None  # only for drops: an accuracy comparison needs no baseline

    @classmethod
    def of(cls, evaluation: Evaluation, model: str, dataset: str, with_baseline: bool) -> _Side:
        labels = evaluation.predictions.labels(dataset)

        def correct(name: str) -> torch.Tensor:
            return evaluation.predictions.logits(name, dataset).argmax(dim=1) == labels

        baseline = correct(BASELINE) if with_baseline else None
        return cls(evaluation.predictions.images_id(dataset), labels, correct(model), baseline)

    @property
    def baseline(self) -> torch.Tensor:
        if self.baseline_correct is None:
            raise ValueError("a drop needs the baseline's predictions: measure the side with_baseline")
        return self.baseline_correct

    def drop_per_image(self) -> torch.Tensor:
        """1 where the baseline is right and the model wrong, -1 the other way round, else 0."""
        return self.baseline.long() - self.correct.long()

    def add_drop(self, m: dict[str, Any], name: str, level: float) -> None:
        drop = paired_drop(self.baseline, self.correct, level)
        m.update({f"{name}_drop": drop.drop, f"{name}_drop_low": drop.low, f"{name}_drop_high": drop.high})


def _other_case(evaluation: Evaluation, case: str) -> Evaluation | None:
    """Another case's evaluation, or None where this run does not include that case (validation has checked that
    the spec's matrix has it, so it is one a profile left out)."""
    if evaluation.other_case is None:
        return None
    try:
        return evaluation.other_case(case)
    except SpecError:  # the run's matrix has no such case
        return None


def _correlation(x: torch.Tensor, y: torch.Tensor) -> float:
    """Pearson's correlation of two per-image series; 0 where either is constant (no information)."""
    x, y = x.double() - x.double().mean(), y.double() - y.double().mean()
    scale = float((x.square().sum() * y.square().sum()).sqrt())
    return float((x * y).sum()) / scale if scale > 0 else 0.0


contract_kinds.register("compare")(CompareContract())
