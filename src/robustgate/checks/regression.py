"""``max_regression:`` gates: how much worse a metric may get than in the previous release.

Any contract may carry ``max_regression: 0.01`` (its headline metric, e.g. ``accuracy``) or a mapping
``max_regression: {accuracy: 0.01, p90_ms: 0.5}``; amounts are in the metric's own units. The previous
release's values come from ``--robustgate-baseline PREV.json``. Accuracy-like metrics whose per-image
results were saved with ``--robustgate-save-baseline`` are compared image by image (Newcombe's paired
interval) when both releases saw the same images, else as independent proportions (also from a plain
results.json, by accuracy and image count); every other metric (latency, corruption summaries) is
compared by its point estimates, timings only when both releases ran on the same CPU.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from robustgate.checks.base import metric_direction
from robustgate.checks.declaration import reading
from robustgate.checks.outcome import POINT, Gate, Outcome
from robustgate.checks.stats import bound_name, paired_drop, unpaired_difference, wilson_interval
from robustgate.errors import RobustgateError

if TYPE_CHECKING:
    import torch

# Metrics that time this machine (latency percentiles, mean and max, and the ratios of timings)
_TIMED = re.compile(r"(p\d+|mean|max)_ms|speedup|throughput|slowdown")


def comparable(metrics: dict[str, Any]) -> list[str]:
    """The metrics of an outcome a ``max_regression:`` gate may name: those with a direction."""
    return sorted(m for m in metrics if metric_direction(m) is not None)


@dataclass(frozen=True)
class PerImage:
    """Which images a model got right, for a paired comparison with a later release."""

    images: str  # identifies the exact images, in order
    correct: torch.Tensor  # bool, one per image

    def to_json(self) -> dict[str, Any]:
        import numpy as np  # numpy and torch only for results: validating a spec must not import them

        bits = np.packbits(self.correct.cpu().numpy().astype(bool))
        return {"images": self.images, "n": int(self.correct.numel()), "correct": base64.b64encode(bits.tobytes()).decode()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "PerImage":
        """Raises ValueError (or KeyError, TypeError) for anything :meth:`to_json` would not have written."""
        import numpy as np
        import torch

        n, images = data["n"], data["images"]
        bits = np.frombuffer(base64.b64decode(data["correct"], validate=True), dtype=np.uint8)
        if not isinstance(images, str) or isinstance(n, bool) or not isinstance(n, int) or not 0 < n <= 8 * len(bits) < n + 8:
            raise ValueError(f"'n' = {n!r} does not match {len(bits)} packed bytes, or 'images' is not a string")
        return cls(images, torch.from_numpy(np.unpackbits(bits)[:n].astype(bool)))


@dataclass
class Previous:
    """One item as the previous release measured it."""

    metrics: dict[str, float | None]
    per_image: dict[str, PerImage] = field(default_factory=dict)
    source: str = "the baseline release"
    settings: str | None = None  # digest of the contract's settings then (None: not recorded)
    cpu: str | None = None  # where it ran: timings compare only on the same CPU


def add_regression_gates(
    outcome: Outcome, limits: dict[str, float], previous: Previous, confidence: float | str, cpu: str | None = None,
) -> list[str]:
    """A ``regression.METRIC`` gate per limit: how much worse than ``previous`` (positive: worse).

    Returns why limits were not read (the previous release has no value for the metric, or timed it on
    another CPU); each reason is also noted on the outcome."""
    unread = []
    for metric, allowed in limits.items():
        direction = metric_direction(metric)
        if metric not in outcome.metrics or direction is None:
            raise RobustgateError(
                f"max_regression names '{metric}', which this {outcome.contract} contract does not measure as a quality; "
                f"it can compare: {', '.join(comparable(outcome.metrics)) or 'nothing'}"
            )
        before = previous.metrics.get(metric)
        if isinstance(before, bool) or not isinstance(before, (int, float)):
            why = f"{previous.source} has no value for {metric}"
        elif _timed(metric) and previous.cpu and cpu and previous.cpu != cpu:
            why = f"{previous.source} timed {metric} on another CPU ({previous.cpu}; this run: {cpu})"
        else:
            _add_gate(outcome, metric, allowed, before, direction, previous, confidence)
            continue
        unread.append(why)
        outcome.notes.append(f"max_regression not read: {why}")
    return unread


def _add_gate(outcome: Outcome, metric: str, allowed: float, before: float, higher_is_better: bool, previous: Previous,
              confidence: float | str) -> None:
    """The ``regression.METRIC`` gate: how much worse ``metric`` is than ``before``, at the upper end of its
    interval where the previous release's images allow one (accuracies), else at the point estimates."""
    now = float(outcome.metrics[metric])
    worse = (before - now) if higher_is_better else (now - before)
    value, read = worse, POINT
    if higher_is_better and not reading(confidence).point:
        value, read = _upper_bound(metric, outcome.metrics, previous, outcome.per_image, float(confidence), previous.source)
    outcome.metrics[f"previous.{metric}"] = before
    outcome.metrics[f"regression.{metric}"] = worse
    if read != POINT:
        outcome.metrics[f"regression.{metric}_high"] = value
    outcome.gates.append(Gate(f"regression.{metric}", "<=", allowed, worse, value, read))


def _timed(metric: str) -> bool:
    """Metrics that time this machine: compared with a previous release only when it ran on the same CPU."""
    return bool(_TIMED.fullmatch(metric.split("@", 1)[0]))


def _upper_bound(metric: str, now: dict[str, Any], previous: Previous, per_image: dict[str, PerImage], level: float,
                 source: str) -> tuple[float, str]:
    """Upper end of "how much accuracy was lost" (previous minus now): image by image on the same images,
    as independent proportions on others (per-image results, or the accuracy and image count of each
    release); the point estimate where neither is known (e.g. a plain results.json without counts)."""
    before, after = previous.per_image.get(metric), per_image.get(metric)
    first: tuple[int, int] | None
    second: tuple[int, int] | None
    if before is not None and after is not None:
        if before.images == after.images:
            if before.correct.numel() != after.correct.numel():
                raise RobustgateError(f"{source} holds {before.correct.numel()} per-image results for {metric} on the same "
                                      f"images where this run has {after.correct.numel()}: the baseline file is damaged")
            drop = paired_drop(before.correct, after.correct, level)  # the same images: image by image
            return drop.high, f"{bound_name(level, 'upper')}, paired"
        first, second = (int(before.correct.sum()), before.correct.numel()), (int(after.correct.sum()), after.correct.numel())
    else:
        first, second = _count(metric, previous.metrics), _count(metric, now)
    if first is None or second is None:
        return float(previous.metrics[metric] or 0.0) - float(now[metric]), POINT
    (k1, n1), (k2, n2) = first, second
    difference = unpaired_difference(wilson_interval(k1, n1, level), wilson_interval(k2, n2, level))
    return difference.high, f"{bound_name(level, 'upper')}, unpaired"


def _count(metric: str, metrics: dict[str, Any]) -> tuple[int, int] | None:
    """(images right, images) behind an accuracy, from its image count ``n`` (``n@8/255`` for a sweep point);
    None for anything that is not one proportion of images."""
    name, at, where = metric.partition("@")
    if name not in ("accuracy", "robust_accuracy"):  # a share of n images; means and ratios are not
        return None
    n = metrics.get(f"n{at}{where}")
    value = metrics.get(metric)
    if not isinstance(n, (int, float)) or not isinstance(value, (int, float)) or n < 1:
        return None
    return round(float(value) * n), int(n)
