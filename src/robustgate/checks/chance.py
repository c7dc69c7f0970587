"""A gate that reads relative to a model's accuracy means nothing when that model guesses.

Chance is the accuracy of always answering the most frequent class of the images evaluated (1/K
on a balanced set). A model not above it at the spec's confidence (its Wilson lower bound; the
point estimate under ``confidence: point``) has learned nothing measurable on those images. A
drop, a gap or a corruption error measured against such a reference is bounded by its guessing:
an untrained baseline and an untrained int8 variant "lose" nothing, so a relative gate would pass
on a meaningless measurement. Every relative gate therefore comes with the gate
``baseline_above_chance@DATASET`` (for a shift gap, the model's own ``MODEL_above_chance@SOURCE``),
which shows the reference's own accuracy beside the relative gates and fails, with a finding that
says why, when the reference is at chance.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from robustgate.checks.declaration import Reading
from robustgate.checks.outcome import Gate, Outcome
from robustgate.checks.stats import Proportion, wilson_interval

if TYPE_CHECKING:
    import torch


def chance_accuracy(labels: torch.Tensor) -> float:
    """The accuracy of always answering the most frequent class among ``labels``, rounded up to four
    decimals (as tables show it; up, so that rounding never lets a guessing reference through)."""
    import torch  # torch only when evaluating: validating a spec must not import it

    return math.ceil(float(torch.bincount(labels).max()) / len(labels) * 10_000) / 10_000


def above_chance_gate(correct: torch.Tensor, labels: torch.Tensor, read: Reading, metric: str) -> tuple[Gate, Proportion]:
    acc = wilson_interval(int(correct.sum()), len(labels), read.level)
    value, shown = read.pick("lower", acc.estimate, acc.low, acc.high)
    return Gate(metric, ">", chance_accuracy(labels), acc.estimate, value, shown), acc


def require_reference_above_chance(
    outcome: Outcome, correct: torch.Tensor, labels: torch.Tensor, read: Reading, dataset: str, who: str = "baseline",
) -> None:
    """Gate the relative gates of ``outcome`` on their reference (``correct`` per image of ``dataset``)
    being above chance; once per reference and dataset."""
    metric = f"{who}_above_chance@{dataset}"
    if any(gate.metric == metric for gate in outcome.gates):
        return
    gate, acc = above_chance_gate(correct, labels, read, metric)
    outcome.gates.append(gate)
    if not gate.passed:
        outcome.findings.append(
            f"{at_chance(who, dataset, acc, gate)}: it guesses there, so the gates relative to it cannot pass "
            "(train or load the right weights, or check the labels and the classes of the dataset)"
        )


def note_if_at_chance(
    outcome: Outcome, correct: torch.Tensor, labels: torch.Tensor, read: Reading, dataset: str, who: str,
) -> None:
    """A finding when the model under test itself is at chance on ``dataset`` (its own gates judge it)."""
    gate, acc = above_chance_gate(correct, labels, read, f"{who}_above_chance@{dataset}")
    if not gate.passed:
        message = at_chance(who, dataset, acc, gate)
        if message not in outcome.findings:
            outcome.findings.append(message)


def at_chance(who: str, dataset: str, acc: Proportion, gate: Gate) -> str:
    shown = f"{acc.estimate:.4f} ({gate.read} {acc.low:.4f})" if gate.bounded else f"{acc.estimate:.4f}"
    return (f"the {who} model is at chance on {dataset}: accuracy {shown} is not above {gate.threshold:.4f}, "
            "what always answering its most frequent class scores")
