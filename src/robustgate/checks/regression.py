"""``max_regression:`` gates: how much worse a metric may get than in the previous release.

Any contract may carry ``max_regression: 0.01`` (its headline metric, e.g. ``accuracy``) or a mapping
``max_regression: {accuracy: 0.01, p90_ms: 0.5}``; amounts are in the metric's own units. The previous
release's values come from ``--robustgate-baseline PREV.json``. Accuracy-like metrics whose per-image
results were saved with ``--robustgate-save-baseline`` are compared image by image (Newcombe's paired
interval) when both releases saw the same images, else as independent proportions; every other
metric is compared by its point estimates.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from robustgate.checks.outcome import Gate, Outcome
from robustgate.checks.stats import DISPLAY_LEVEL, paired_drop, unpaired_difference, wilson_interval
from robustgate.errors import RobustgateError

# Which way is better, by metric name (the part before any "@target" or "@eps").
HIGHER_IS_BETTER = frozenset({
    "accuracy", "clean_accuracy", "mean_corruption_accuracy", "robust_accuracy", "robust_area", "source_accuracy",
    "worst_accuracy", "speedup", "throughput",
})
LOWER_IS_BETTER = frozenset({
    "drop", "relative_drop", "gap", "worst_gap", "gap_change", "ce", "relative_ce", "mce", "relative_mce",
    "relative_mce_mean", "bytes", "mb", "params", "macs", "size_ratio", "params_ratio", "macs_ratio",
    "peak_memory_mb", "slowdown", "masking_findings",
})
_LATENCY = re.compile(r"(p\d+|mean|max)_ms")


def higher_is_better(metric: str) -> bool | None:
    """True or False for a metric that can regress; None for counts, bounds and settings (n, eps, *_low)."""
    name = metric.split("@", 1)[0]
    if name in HIGHER_IS_BETTER:
        return True
    if name in LOWER_IS_BETTER or _LATENCY.fullmatch(name):
        return False
    return None


def comparable(metrics: dict[str, Any]) -> list[str]:
    return sorted(m for m in metrics if higher_is_better(m) is not None)


@dataclass(frozen=True)
class PerImage:
    """Which images a model got right, for a paired comparison with a later release."""

    images: str  # identifies the exact images, in order
    correct: torch.Tensor  # bool, one per image

    def to_json(self) -> dict[str, Any]:
        bits = np.packbits(self.correct.cpu().numpy().astype(bool))
        return {"images": self.images, "n": int(self.correct.numel()), "correct": base64.b64encode(bits.tobytes()).decode()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "PerImage":
        bits = np.frombuffer(base64.b64decode(data["correct"]), dtype=np.uint8)
        correct = np.unpackbits(bits)[: int(data["n"])].astype(bool)
        return cls(str(data["images"]), torch.from_numpy(correct))


@dataclass
class Previous:
    """One item as the previous release measured it."""

    metrics: dict[str, float | None]
    per_image: dict[str, PerImage] = field(default_factory=dict)
    source: str = "the baseline release"


def add_regression_gates(
    outcome: Outcome, limits: dict[str, float], previous: Previous, confidence: float | str, per_image: dict[str, PerImage],
) -> list[str]:
    """A ``regression.METRIC`` gate per limit: how much worse than ``previous`` (positive: worse).

    Returns why a limit was not read (the previous release has no value for its metric), also noted on the outcome."""
    unread = []
    for metric, allowed in limits.items():
        direction = higher_is_better(metric)
        if metric not in outcome.metrics or direction is None:
            raise RobustgateError(
                f"max_regression names '{metric}', which this {outcome.contract} contract does not measure as a quality; "
                f"it can compare: {', '.join(comparable(outcome.metrics)) or 'nothing'}"
            )
        before = previous.metrics.get(metric)
        if before is None:
            unread.append(f"{previous.source} has no value for {metric}")
            outcome.notes.append(f"max_regression not read: {unread[-1]}")
            continue
        now = float(outcome.metrics[metric])
        worse = (before - now) if direction else (now - before)
        value, read = _bound(metric, worse, previous.per_image.get(metric), per_image.get(metric), confidence)
        outcome.metrics[f"previous.{metric}"] = before
        outcome.metrics[f"regression.{metric}"] = worse
        if read != "point":
            outcome.metrics[f"regression.{metric}_high"] = value
        outcome.gates.append(Gate(f"regression.{metric}", "<=", allowed, worse, value, read))
    return unread


def _bound(metric: str, worse: float, before: PerImage | None, now: PerImage | None, confidence: float | str) -> tuple[float, str]:
    """The upper end of the regression's interval where per-image results allow one, else the estimate."""
    if before is None or now is None or confidence == "point":
        return worse, "point"
    level = float(confidence) if confidence != "point" else DISPLAY_LEVEL
    if before.images == now.images and before.correct.numel() == now.correct.numel():
        drop = paired_drop(before.correct, now.correct, level)  # the same images: image by image
        return drop.high, f"upper {level:.0%} bound, paired"
    a = wilson_interval(int(before.correct.sum()), before.correct.numel(), level)
    b = wilson_interval(int(now.correct.sum()), now.correct.numel(), level)
    return unpaired_difference(a, b).high, f"upper {level:.0%} bound, unpaired"
