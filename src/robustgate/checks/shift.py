"""``shift:`` contracts: accuracy from a source domain to several target domains at once.

For each target it reports the model's accuracy there, the shift gap (source accuracy minus target
accuracy, on different images: Newcombe's unpaired interval) and, for a compressed variant, the drop
against the baseline on the same target images (paired). A gate given as a number holds on the worst
target; a mapping ``{webcam: 0.05, dslr: 0.08}`` sets one threshold per target.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, ValidationInfo, model_validator

from robustgate.checks.accuracy import add_drop_gates, reading, relative_drop
from robustgate.checks.base import ContractKind, Evaluation, contract_kinds
from robustgate.checks.chance import note_if_at_chance, require_reference_above_chance
from robustgate.checks.outcome import Gate, Outcome
from robustgate.checks.stats import unpaired_difference, wilson_interval
from robustgate.registry import did_you_mean
from robustgate.spec.fields import DatasetRef, Params, Probability, gated_elsewhere, one_or_per_name
from robustgate.spec.model import BASELINE

if TYPE_CHECKING:
    import torch

# the worst target's threshold, or one per target
PerTarget = Annotated[Probability | dict[str, Probability], one_or_per_name(1.0, "{printed: 0.05}")]


class ShiftParams(Params):
    source: DatasetRef
    targets: list[DatasetRef] = Field(min_length=1)
    min: PerTarget | None = None  # accuracy on a target
    max_gap: PerTarget | None = None  # source accuracy minus target accuracy, for the same model
    max_drop: PerTarget | None = None  # target accuracy lost vs the baseline on the same images
    max_relative_drop: PerTarget | None = None

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> "ShiftParams":
        if len(set(self.targets)) != len(self.targets):
            raise ValueError("targets: names a dataset twice")
        if self.source in self.targets:
            raise ValueError(f"'{self.source}' is the source; a target must be another dataset")
        gates = {"min": self.min, "max_gap": self.max_gap, "max_drop": self.max_drop,
                 "max_relative_drop": self.max_relative_drop}
        if all(g is None for g in gates.values()) and not gated_elsewhere(info):
            raise ValueError("a shift contract needs a gate: min, max_gap, max_drop or max_relative_drop")
        for key, gate in gates.items():
            if isinstance(gate, dict) and not gate:
                raise ValueError(f"{key}: {{}} gates nothing; give a number (the worst target) or one per target")
            for name in gate if isinstance(gate, dict) else []:
                if name not in self.targets:
                    raise ValueError(
                        f"{key}: '{name}' is not one of the targets; {did_you_mean(name, self.targets)} "
                        "(a number gates the worst target, a mapping sets one threshold per target)"
                    )
        return self


class ShiftContract(ContractKind):
    Params = ShiftParams
    gate_keys = frozenset({"min", "max_gap", "max_drop", "max_relative_drop"})

    def label(self, params: ShiftParams) -> str:
        return f"{params.source}->{'+'.join(params.targets)}"

    def applies_to_baseline(self, params: ShiftParams) -> bool:
        return params.min is not None or params.max_gap is not None

    def headline_metric(self, params: ShiftParams) -> str:
        return "worst_accuracy"

    def check(self, evaluation: Evaluation, variant: str, params: ShiftParams) -> Outcome:
        outcome = Outcome(contract=f"shift[{self.label(params)}]", variant=variant)
        level, read_low = reading(evaluation.confidence, "lower")
        _, read_high = reading(evaluation.confidence, "upper")
        m = outcome.metrics

        def correct(model: str, dataset: str) -> torch.Tensor:
            return evaluation.logits(model, dataset).argmax(dim=1) == evaluation.labels(dataset)

        source_hits = correct(variant, params.source)
        source = wilson_interval(int(source_hits.sum()), len(source_hits), level)
        m.update(source_accuracy=source.estimate, source_accuracy_low=source.low, source_accuracy_high=source.high,
                 source_n=source.n, interval_level=level)
        per_target: dict[str, dict[str, tuple[float, float, float]]] = {}  # metric -> target -> (estimate, low, high)
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
                add_drop_gates(outcome, base_hits, hits, None, None, level, read_high, suffix)
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

        def gate(threshold: float | dict[str, float] | None, metric: str, op: Literal[">=", "<="], read: str) -> None:
            if threshold is None:
                return
            values = per_target[metric]

            def bound(target: str) -> float:
                est, low, high = values[target]
                return est if read == "point" else (low if op == ">=" else high)

            if isinstance(threshold, dict):
                for target, limit in threshold.items():
                    outcome.gates.append(Gate(f"{metric}@{target}", op, limit, values[target][0], bound(target), read))
                return
            pick = min if op == ">=" else max  # a number gates the worst target, read at its conservative bound
            target = pick(params.targets, key=bound)
            outcome.gates.append(Gate(f"{metric}@{target}", op, threshold, values[target][0], bound(target), read))

        who = "baseline" if variant == BASELINE else variant
        note_if_at_chance(outcome, source_hits, evaluation.labels(params.source), level, read_low, params.source, who)
        for target in params.targets:
            note_if_at_chance(outcome, correct(variant, target), evaluation.labels(target), level, read_low, target, who)
        gate(params.min, "accuracy", ">=", read_low)
        gate(params.max_gap, "gap", "<=", read_high)
        if variant != BASELINE:
            gate(params.max_drop, "drop", "<=", read_high)
            gate(params.max_relative_drop, "relative_drop", "<=", read_high)
        if params.max_gap is not None:  # a gap is read against the model's own source accuracy
            require_reference_above_chance(outcome, source_hits, evaluation.labels(params.source), level, read_low,
                                           params.source, who)
        if variant != BASELINE and (params.max_drop is not None or params.max_relative_drop is not None):
            for target in params.targets:
                require_reference_above_chance(outcome, base_target_hits[target], evaluation.labels(target), level,
                                               read_low, target)
        return outcome


contract_kinds.register("shift")(ShiftContract())
