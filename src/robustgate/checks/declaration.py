"""What a contract kind declares about its gates and metrics, and how a gate is read.

A kind lists its gates (:class:`GateDecl`: the spec key, the metric it gates, the direction and which
end of the metric's interval it reads) and its metrics (:class:`MetricDecl`: which way is better).
Everything else about them is derived from the declaration (see :class:`robustgate.checks.base.ContractKind`):
the "needs a gate" message, the keys that change no measurement, whether the baseline gets an item,
the direction a ``max_regression:`` gate compares in, and how each gate picks its value under the
spec's ``confidence`` (:meth:`GateDecl.judge`, here and nowhere else).

No torch, numpy or scipy: kinds are declared when a spec is validated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from robustgate.checks.outcome import EXACT, POINT, Gate, Op
from robustgate.checks.stats import DISPLAY_LEVEL, bound_name

# "point": always the estimate, for a ratio no interval is computed for (a latency against an earlier run)
End = Literal["lower", "upper", "exact", "point"]


@dataclass(frozen=True)
class Reading:
    """How every gate of a run is read under the spec's ``confidence`` (see :func:`reading`)."""

    level: float  # the level of the two-sided intervals computed (DISPLAY_LEVEL under `confidence: point`)
    lower: str  # how a lower end is read, e.g. "one-sided 97.5% lower bound", or "point"
    upper: str

    @property
    def point(self) -> bool:
        """Whether gates read point estimates (intervals are still computed, at DISPLAY_LEVEL, to be shown)."""
        return self.lower == POINT

    def pick(self, reads: End, estimate: float, low: float, high: float) -> tuple[float, str]:
        """The value a gate compares and how it was read: the conservative end ``reads`` names, the estimate
        under ``confidence: point``, and always the estimate of what is counted rather than sampled."""
        if reads == "exact":
            return estimate, EXACT
        if self.point or reads == "point":
            return estimate, POINT
        return (low, self.lower) if reads == "lower" else (high, self.upper)


def reading(confidence: float | str) -> Reading:
    """The interval level to compute and how gates are read under the spec's ``confidence``: one end of a
    two-sided interval at ``confidence``, so a one-sided bound at (1 + confidence) / 2."""
    if confidence == POINT:
        return Reading(DISPLAY_LEVEL, POINT, POINT)
    level = float(confidence)
    return Reading(level, bound_name(level, "lower"), bound_name(level, "upper"))


@dataclass(frozen=True)
class GateDecl:
    """One gate a contract kind offers: ``key`` in the spec gates ``metric`` with ``op``."""

    key: str  # the spec key holding the threshold, e.g. "max_drop"
    metric: str  # the metric it gates, e.g. "drop" (a sweep or a target adds a suffix: "drop@8/255")
    op: Op
    reads: End  # the interval end read under a numeric confidence ("exact": counted, no interval)
    # read against a reference measurement (the fp32 baseline, or an earlier run): the baseline gets no
    # item for this gate alone, having nothing to compare itself with
    relative: bool = False

    def judge(self, threshold: float, estimate: float, low: float, high: float, reading: Reading, suffix: str = "") -> Gate:
        """The gate on ``metric + suffix``, comparing the end of [low, high] this gate reads (or the estimate)."""
        value, read = reading.pick(self.reads, estimate, low, high)
        return Gate(f"{self.metric}{suffix}", self.op, threshold, estimate, value, read)


@dataclass(frozen=True)
class MetricDecl:
    """One metric a contract kind reports, and which way is better (for ``max_regression:`` and reports)."""

    name: str  # e.g. "accuracy"; suffixed forms ("accuracy@webcam", "drop@8/255") share its declaration
    higher_is_better: bool | None  # None: not a quality (counts, levels): never regression-gated
    low: str | None = None  # the metrics holding its interval ends, e.g. "accuracy_low"
    high: str | None = None
    pattern: bool = False  # `name` is a regular expression, e.g. r"p\d+_ms" for every latency percentile

    def names(self, metric: str) -> bool:
        """Whether ``metric`` (without its "@" suffix) is this metric."""
        return bool(re.fullmatch(self.name, metric)) if self.pattern else metric == self.name
