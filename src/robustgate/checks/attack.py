"""``attack:`` contracts: accuracy under an adversarial or noise attack, absolute or against the
baseline under the same attack, at one strength or along a sweep (``eps: [1/255, ..., 16/255]``).

How the robust accuracy of each model is obtained (directly, or by the int8 protocol) is
``robustgate.attacks.protocol``'s business; this module turns it into metrics and gates.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator, model_validator

from robustgate.attacks import attack_kinds
from robustgate.attacks.protocol import METHODS, MIN_TWIN_AGREEMENT, RobustResult, describe_legs
from robustgate.attacks.strength import Shares, Strength, Strengths, format_strength
from robustgate.checks.accuracy import DROP_METRICS, MAX_DROP, MAX_RELATIVE_DROP, add_drop_gates
from robustgate.checks.base import ContractKind, Evaluation, contract_kinds
from robustgate.checks.chance import note_if_at_chance, require_reference_above_chance
from robustgate.checks.declaration import GateDecl, MetricDecl, Reading, reading
from robustgate.checks.outcome import Outcome
from robustgate.checks.regression import PerImage
from robustgate.checks.stats import wilson_interval
from robustgate.registry import did_you_mean
from robustgate.spec.fields import DatasetRef, Params, Probability
from robustgate.spec.model import BASELINE

if TYPE_CHECKING:
    import torch


class AttackParams(Params):
    kind: str
    on: DatasetRef
    eps: Strengths | None = None  # radius in pixel units ([0, 1] images), or a list (a sweep); noise std for gaussian_noise
    amount: Shares | None = None  # share of pixels flipped, for salt_pepper (or a list)
    norm: Literal["Linf", "L2"] = "Linf"
    steps: int | None = Field(None, ge=1)  # iterations (queries for square); None: the attack's default
    step_size: Strength | None = None  # None: the attack's default (PGD: 2.5 * eps / steps)
    restarts: int = Field(1, ge=1)
    queries: int = Field(200, ge=1)  # the gradient-free attack's budget in the int8 protocol
    samples: int | None = Field(None, ge=1)  # a stratified subset of `on` (the same images for every model)
    min: Probability | None = None
    max_drop: Probability | None = None  # robust accuracy lost vs the baseline under the same attack
    max_relative_drop: Probability | None = None
    min_area: Probability | None = None  # a sweep's mean robust accuracy over its range (trapezoid rule)
    # Signs of gradient masking: true runs the cheap default checks (reusing the attack's results, about
    # the attack's own cost or less), thorough the costlier ones (full Square budget, 5x the steps), false none.
    diagnostics: bool | Literal["thorough"] = True
    strict: bool = False  # a masking finding fails the item instead of warning
    # Legs of the int8 protocol the contract may go without (the item then says the number rests on fewer);
    # by default a leg that cannot run fails the item.
    accept_missing: tuple[Literal["twin", "transfer", "gradient-free"], ...] = Field((), strict=False)
    min_twin_agreement: Probability = MIN_TWIN_AGREEMENT  # a twin agreeing less is a missing twin leg
    # Attack differentiable models (the baseline among them) with the gradient-free leg too, so a drop of an
    # int8 model (twin + transfer + gradient-free) is measured against a baseline under like attacks.
    symmetric: bool = False

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        if kind not in attack_kinds:
            raise ValueError(f"unknown attack '{kind}'; {did_you_mean(kind, attack_kinds.names())}")
        return kind

    @field_validator("diagnostics", mode="before")
    @classmethod
    def _diagnostics_setting(cls, value: object) -> object:
        # one message for the union (a bool or the word thorough) rather than one per branch
        if isinstance(value, bool) or value == "thorough":
            return value
        raise ValueError(f"expected true, false or thorough (got {value!r})")

    @model_validator(mode="after")
    def _consistent(self) -> "AttackParams":
        attack = attack_kinds.get(self.kind)
        key, other = attack.strength, "amount" if attack.strength == "eps" else "eps"
        if getattr(self, other) is not None:
            raise ValueError(f"{self.kind} is set by {key}:, not {other}:; write {key}: {getattr(self, other)}")
        if getattr(self, key) is None:
            example = "8/255" if key == "eps" else "0.05"
            raise ValueError(f"an attack contract with kind {self.kind} needs {key}: (e.g. {key}: {example})")
        if self.norm not in attack.norms:
            raise ValueError(f"{self.kind} supports norm {' or '.join(attack.norms)}, not {self.norm}")
        if key == "eps" and self.norm == "Linf" and any(s > 1 for s in self.strengths):
            raise ValueError("an Linf eps above 1 covers the whole [0, 1] pixel range; did you mean 8/255 rather than 8?")
        if self.min_area is not None and len(set(self.strengths)) < 2:
            raise ValueError(f"min_area gates the area under a sweep: give {key}: a list of at least two values")
        if (self.accept_missing or "min_twin_agreement" in self.model_fields_set or self.symmetric) and not attack.needs_gradients:
            given = [key for key in ("accept_missing", "min_twin_agreement", "symmetric") if key in self.model_fields_set]
            raise ValueError(
                f"{self.kind} runs on every model directly, with no protocol legs: drop {' and '.join(given)}"
            )
        return self

    @property
    def strengths(self) -> list[float]:
        value = self.eps if self.eps is not None else self.amount
        if isinstance(value, list):
            return list(value)
        return [] if value is None else [value]  # None only while validating, before the strength key is checked

    @property
    def sweep(self) -> bool:
        return isinstance(self.eps if self.eps is not None else self.amount, list)


MIN = GateDecl("min", "robust_accuracy", ">=", "lower")
MIN_AREA = GateDecl("min_area", "robust_area", ">=", "lower")
# `strict: true` fails the item on any masking finding: a count, gated at zero
NO_MASKING = GateDecl("strict", "masking_findings", "<=", "exact")


class AttackContract(ContractKind):
    Params = AttackParams
    gates = (MIN, MAX_DROP, MAX_RELATIVE_DROP, MIN_AREA)
    metrics = (
        MetricDecl("robust_accuracy", True, low="robust_accuracy_low", high="robust_accuracy_high"),
        MetricDecl("robust_area", True, low="robust_area_low"),
        MetricDecl("masking_findings", False), MetricDecl("twin_agreement", None), MetricDecl("n", None),
        MetricDecl("interval_level", None),
        *DROP_METRICS,
    )
    # strict decides how a finding counts; accept_missing and min_twin_agreement whether a result counts:
    # none of them changes what is measured
    settings_keys = frozenset({"strict", "accept_missing", "min_twin_agreement"})
    needs = frozenset({"predictions", "attacks"})
    title = "Accuracy under attack"
    summary = ("robust accuracy under an adversarial or noise attack, at one strength or along a sweep, absolute or "
               "against the baseline under the same attack.")

    def label(self, params: AttackParams) -> str:
        """``pgd:8/255@site-a``; a sweep joins its strengths (``pgd:1/255+4/255@site-a``), an L2 attack
        says so (``pgd:L2:0.5@site-a``), so ``-k 8/255`` picks the contracts at that strength."""
        norm = "L2:" if self.norm_shown(params) else ""
        return f"{params.kind}:{norm}{'+'.join(format_strength(s) for s in params.strengths)}@{params.on}"

    @staticmethod
    def norm_shown(params: AttackParams) -> bool:
        return params.norm != "Linf" and attack_kinds.get(params.kind).strength == "eps"

    def headline_metric(self, params: AttackParams) -> str:
        if not params.sweep:
            return "robust_accuracy"
        points = set(params.strengths)  # a list of one strength still names its metric by it
        return "robust_area" if len(points) > 1 else f"robust_accuracy@{format_strength(points.pop())}"

    def check(self, evaluation: Evaluation, variant: str, params: AttackParams) -> Outcome:
        read = reading(evaluation.confidence)
        level = read.level
        key = attack_kinds.get(params.kind).strength
        outcome = Outcome(contract=f"attack[{self.label(params)}]", variant=variant)
        index = evaluation.predictions.sample(params.on, params.samples)
        labels = evaluation.predictions.labels(params.on)
        labels = labels if index is None else labels[index]
        for strength in params.strengths:
            at = f"@{format_strength(strength)}" if params.sweep else ""
            if params.sweep:  # where the sweep's plot puts this strength's metrics
                outcome.axes[format_strength(strength)] = {"strength": strength}
            result = evaluation.attacks.robust(variant, params, strength)
            acc = wilson_interval(int(result.correct.sum()), len(result.correct), level)
            outcome.metrics.update(
                {
                    f"robust_accuracy{at}": acc.estimate, f"robust_accuracy_low{at}": acc.low,
                    f"robust_accuracy_high{at}": acc.high, f"n{at}": acc.n,
                    **{f"broken_by_{method.replace('-', '_')}{at}": n for method, n in result.counts().items()},
                }
            )
            outcome.per_image[f"robust_accuracy{at}"] = PerImage(evaluation.predictions.images_id(params.on, params.samples), result.correct)
            if result.twin_agreement is not None:
                outcome.metrics[f"twin_agreement{at}"] = result.twin_agreement
            for leg, why in result.gaps.items():
                caveat = f"no {leg} leg{f' at {format_strength(strength)}' if params.sweep else ''} (accepted: accept_missing): {why}"
                if caveat not in outcome.caveats:
                    outcome.caveats.append(caveat)
            if not params.sweep:
                outcome.metrics[key] = strength
            if params.min is not None:
                outcome.gates.append(MIN.judge(params.min, acc.estimate, acc.low, acc.high, read, at))
            if variant != BASELINE and (params.max_drop is not None or params.max_relative_drop is not None):
                base = evaluation.attacks.robust(BASELINE, params, strength)
                add_drop_gates(outcome, base.correct, result.correct, params.max_drop, params.max_relative_drop, read, at)
                if strength == params.strengths[0]:  # the baseline's clean accuracy is the same at every strength
                    require_reference_above_chance(outcome, clean_correct(base), labels, read, params.on)
                    outcome.notes.append(compared_legs(variant, result, base, params))
        if params.sweep and len(set(params.strengths)) > 1:
            self._area(outcome, params, read)
        outcome.metrics["interval_level"] = level
        who = "baseline" if variant == BASELINE else variant
        clean = clean_correct(evaluation.attacks.robust(variant, params, params.strengths[0]))  # memoized: no rerun
        note_if_at_chance(outcome, clean, labels, read, params.on, who)
        if (params.diagnostics or params.strict) and attack_kinds.get(params.kind).needs_gradients:
            outcome.findings = evaluation.attacks.masking_findings(variant, params)
            outcome.metrics["masking_findings"] = len(outcome.findings)
            if params.strict:
                n = len(outcome.findings)
                outcome.gates.append(NO_MASKING.judge(0, n, n, n, read))
        return outcome

    @staticmethod
    def _area(outcome: Outcome, params: AttackParams, read: Reading) -> None:
        """Mean robust accuracy over the sweep's range (trapezoid rule), and of the lower bounds."""
        points = sorted(set(params.strengths))
        tags = [f"@{format_strength(s)}" for s in points]
        width = points[-1] - points[0]

        def area(metric: str) -> float:
            values = [outcome.metrics[f"{metric}{tag}"] for tag in tags]
            return sum((b - a) * (u + v) / 2 for a, b, u, v in zip(points, points[1:], values, values[1:])) / width

        estimate, low = area("robust_accuracy"), area("robust_accuracy_low")
        outcome.metrics.update(robust_area=estimate, robust_area_low=low)
        if params.min_area is not None:
            gate = MIN_AREA.judge(params.min_area, estimate, low, estimate, read)  # a floor: no upper end needed
            # the area of the points' lower bounds, not a bound of the area: the gate says so
            shown = f"area of the {gate.read.replace(' bound', ' bounds')}" if gate.bounded else gate.read
            outcome.gates.append(dataclasses.replace(gate, read=shown))


def compared_legs(variant: str, result: RobustResult, base: RobustResult, params: AttackParams) -> str:
    """Which attacks each side of a drop got: a drop of an int8 model (three legs) against a baseline
    attacked white-box alone compares worst cases over different attacks, and the reader must know."""
    line = (
        f"robust accuracy is the worst case over: {variant}: {describe_legs(result.legs, params.kind, params.queries)}; "
        f"baseline: {describe_legs(base.legs, params.kind, params.queries)}"
    )
    if "gradient-free" in result.legs and "gradient-free" not in base.legs:
        line += " (symmetric: true attacks the baseline with the gradient-free leg too)"
    return line


def clean_correct(result: RobustResult) -> torch.Tensor:
    """Per attacked image: was the model right on it before any attack (read from the attack's own
    record, so no second prediction of the whole dataset)."""
    return result.found_by != METHODS.index("clean")


contract_kinds.register("attack")(AttackContract())
