"""``shift:`` contracts: accuracy from a source domain to several target domains at once.

For each target it reports the model's accuracy there, the shift gap (source accuracy minus target
accuracy, on different images: Newcombe's unpaired interval) and, for a compressed variant, the drop
against the baseline on the same target images (paired). A gate given as a number holds on the worst
target; a mapping ``{webcam: 0.05, dslr: 0.08}`` sets one threshold per target.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import Field, model_validator

from robustgate.checks.accuracy import DROP_METRICS, MAX_DROP, MAX_RELATIVE_DROP, add_drop_gates, relative_drop
from robustgate.checks.base import ContractKind, Evaluation, contract_kinds
from robustgate.checks.chance import note_if_at_chance, require_reference_above_chance
from robustgate.checks.declaration import GateDecl, MetricDecl, Reading, reading
from robustgate.checks.outcome import Gate, Outcome
from robustgate.checks.stats import unpaired_difference, wilson_interval
from robustgate.registry import did_you_mean
from robustgate.spec.fields import DatasetRef, Params, Probability, one_or_per_name
from robustgate.spec.model import BASELINE

if TYPE_CHECKING:
    import torch

# the worst target's threshold, or one per target
PerTarget = Annotated[Probability | dict[str, Probability], one_or_per_name(1.0, "{printed: 0.05}")]
Interval = tuple[float, float, float]  # estimate, low, high


class ShiftParams(Params):
    source: DatasetRef
    targets: list[DatasetRef] = Field(min_length=1)
    min: PerTarget | None = None  # accuracy on a target
    max_gap: PerTarget | None = None  # source accuracy minus target accuracy, for the same model
    max_drop: PerTarget | None = None  # target accuracy lost vs the baseline on the same images
    max_relative_drop: PerTarget | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "ShiftParams":
        if len(set(self.targets)) != len(self.targets):
            raise ValueError("targets: names a dataset twice")
        if self.source in self.targets:
            raise ValueError(f"'{self.source}' is the source; a target must be another dataset")
        for key in (gate.key for gate in ShiftContract.gates):
            threshold = getattr(self, key)
            if isinstance(threshold, dict) and not threshold:
                raise ValueError(f"{key}: {{}} gates nothing; give a number (the worst target) or one per target")
            for name in threshold if isinstance(threshold, dict) else []:
                if name not in self.targets:
                    raise ValueError(
                        f"{key}: '{name}' is not one of the targets; {did_you_mean(name, self.targets)} "
                        "(a number gates the worst target, a mapping sets one threshold per target)"
                    )
        return self


MIN = GateDecl("min", "accuracy", ">=", "lower")
MAX_GAP = GateDecl("max_gap", "gap", "<=", "upper")


class ShiftContract(ContractKind):
    Params = ShiftParams
    gates = (MIN, MAX_GAP, MAX_DROP, MAX_RELATIVE_DROP)
    metrics = (
        MetricDecl("accuracy", True, low="accuracy_low", high="accuracy_high"),
        MetricDecl("source_accuracy", True, low="source_accuracy_low", high="source_accuracy_high"),
        MetricDecl("worst_accuracy", True),
        MetricDecl("gap", False, low="gap_low", high="gap_high"),
        MetricDecl("worst_gap", False), MetricDecl("gap_change", False),
        MetricDecl("baseline_source_accuracy", None), MetricDecl("source_n", None), MetricDecl("n", None),
        MetricDecl("interval_level", None),
        *DROP_METRICS,
    )
    needs = frozenset({"predictions"})
    title = "Accuracy under domain shift"
    summary = ("accuracy from a source domain to each target, the gap between them, and the drop against the "
               "baseline on each target (a number gates the worst target).")

    def label(self, params: ShiftParams) -> str:
        return f"{params.source}->{'+'.join(params.targets)}"

    def headline_metric(self, params: ShiftParams) -> str:
        return "worst_accuracy"

    def check(self, evaluation: Evaluation, variant: str, params: ShiftParams) -> Outcome:
        outcome = Outcome(contract=f"shift[{self.label(params)}]", variant=variant)
        read = reading(evaluation.confidence)
        level = read.level
        m = outcome.metrics
        labels = evaluation.predictions.labels

        def correct(model: str, dataset: str) -> torch.Tensor:
            return evaluation.predictions.logits(model, dataset).argmax(dim=1) == labels(dataset)

        source_hits = correct(variant, params.source)
        source = wilson_interval(int(source_hits.sum()), len(source_hits), level)
        m.update(source_accuracy=source.estimate, source_accuracy_low=source.low, source_accuracy_high=source.high,
                 source_n=source.n, interval_level=level)
        per_target: dict[str, dict[str, Interval]] = {}  # metric -> target -> (estimate, low, high)
        base_target_hits: dict[str, torch.Tensor] = {}
        for target in params.targets:
            hits = correct(variant, target)
            acc = wilson_interval(int(hits.sum()), len(hits), level)
            gap = unpaired_difference(source, acc)
            m.update({f"accuracy@{target}": acc.estimate, f"accuracy_low@{target}": acc.low,
                      f"accuracy_high@{target}": acc.high, f"n@{target}": acc.n,
                      f"gap@{target}": gap.estimate, f"gap_low@{target}": gap.low, f"gap_high@{target}": gap.high})
            per_target.setdefault("accuracy", {})[target] = (acc.estimate, acc.low, acc.high)
            per_target.setdefault("gap", {})[target] = (gap.estimate, gap.low, gap.high)
            if variant != BASELINE:
                base_hits = base_target_hits[target] = correct(BASELINE, target)
                suffix = f"@{target}"
                add_drop_gates(outcome, base_hits, hits, None, None, read, suffix)
                base_acc = m[f"baseline_accuracy{suffix}"]
                per_target.setdefault("drop", {})[target] = (m[f"drop{suffix}"], m[f"drop_low{suffix}"], m[f"drop_high{suffix}"])
                relative, relative_high = relative_drop(base_hits, hits, level)  # the baseline's uncertainty counts
                relative_low = m[f"drop_low{suffix}"] / base_acc if base_acc else 0.0  # shown, never gated
                per_target.setdefault("relative_drop", {})[target] = (relative, min(relative_low, relative), relative_high)
                m[f"relative_drop{suffix}"], m[f"relative_drop_high{suffix}"] = relative, relative_high
                base_source = correct(BASELINE, params.source).float().mean()
                m["baseline_source_accuracy"] = float(base_source)
                m[f"gap_change{suffix}"] = float(m[f"gap{suffix}"] - (base_source - base_hits.float().mean()))
        worst = min(params.targets, key=lambda t: per_target["accuracy"][t][0])
        m["worst_accuracy"], m["worst_gap"] = per_target["accuracy"][worst][0], per_target["gap"][worst][0]

        who = "baseline" if variant == BASELINE else variant
        note_if_at_chance(outcome, source_hits, labels(params.source), read, params.source, who)
        for target in params.targets:
            note_if_at_chance(outcome, correct(variant, target), labels(target), read, target, who)
        for gate in self.set_gates(params):
            if variant != BASELINE or not gate.relative:
                outcome.gates += per_target_gates(gate, getattr(params, gate.key), per_target[gate.metric], read)
        if params.max_gap is not None:  # a gap is read against the model's own source accuracy
            require_reference_above_chance(outcome, source_hits, labels(params.source), read, params.source, who)
        if variant != BASELINE and (params.max_drop is not None or params.max_relative_drop is not None):
            for target in params.targets:
                require_reference_above_chance(outcome, base_target_hits[target], labels(target), read, target)
        return outcome


def per_target_gates(gate: GateDecl, threshold: float | dict[str, float], values: dict[str, Interval], read: Reading) -> list[Gate]:
    """One gate per target a mapping names; for a number, the gate on the worst target (by the end it reads)."""
    if isinstance(threshold, dict):
        return [gate.judge(limit, *values[target], read, f"@{target}") for target, limit in threshold.items()]
    judged = [gate.judge(threshold, *values[target], read, f"@{target}") for target in values]
    pick = min if gate.op == ">=" else max
    return [pick(judged, key=lambda judged_gate: judged_gate.value)]


contract_kinds.register("shift")(ShiftContract())
