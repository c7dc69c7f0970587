"""What a check returns: its metrics and the gates it read, free of any pytest type."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Number = float | int
Op = Literal[">=", "<=", ">"]  # ">": strictly above (a reference above chance)
POINT = "point"  # a gate read the point estimate (`confidence: point`, or a number without an interval)
EXACT = "exact"  # a gate read a count, which has no sampling error


@dataclass(frozen=True)
class Gate:
    """One threshold of a contract and how it was read.

    ``read`` says which value met the threshold: the point estimate, or the
    end of the confidence interval that makes the gate conservative (a
    minimum is read at the lower bound, a maximum at the upper bound).
    """

    metric: str
    op: Op
    threshold: float
    estimate: float
    value: float  # what the gate compared: the estimate or the bound
    read: str  # POINT, EXACT or e.g. "one-sided 97.5% lower bound" (see robustgate.checks.declaration)

    @property
    def passed(self) -> bool:
        if self.op == ">":
            return self.value > self.threshold
        return self.value >= self.threshold if self.op == ">=" else self.value <= self.threshold

    @property
    def bounded(self) -> bool:
        """Whether the gate read an end of the estimate's interval rather than the estimate itself."""
        return self.read not in (POINT, EXACT)

    def describe(self) -> str:
        shown = format_number(self.estimate)
        if self.bounded:
            shown += f" ({self.read} {format_number(self.value)})"
        return f"{self.metric} {shown} {self.op} {self.threshold:g}"


def format_number(value: float) -> str:
    """Rates with four decimals; counts (params, MACs) whole."""
    return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.0f}"


@dataclass
class Outcome:
    """The result of one contract on one variant."""

    contract: str  # e.g. "accuracy[printed]"
    variant: str
    metrics: dict[str, Number] = field(default_factory=dict)
    gates: list[Gate] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)  # warnings about the evaluation itself (e.g. gradient masking)
    notes: list[str] = field(default_factory=list)  # context a reader needs (e.g. the machine a latency ran on)
    # what the contract accepted that makes the measurement weaker than robustgate's own (e.g. an attack leg
    # it may go without); every summary of the item leads with them
    caveats: list[str] = field(default_factory=list)
    series: dict[str, list[float]] = field(default_factory=dict)  # distributions for plots (e.g. latency quantiles)
    # where each ``@`` breakdown of the metrics was measured, so reports plot it without parsing metric names:
    # suffix -> coordinates, e.g. an attack sweep's "8/255" -> {"strength": 0.0314}, a corruption grid's
    # "fog/3" -> {"corruption": "fog", "severity": 3}
    axes: dict[str, dict[str, float | str]] = field(default_factory=dict)
    # gates the contract names that nothing measured this run, and why: an item that read no other gate skips
    unread: list[str] = field(default_factory=list)
    per_image: dict[str, Any] = field(default_factory=dict)  # metric -> PerImage, for paired regression gates

    @property
    def passed(self) -> bool:
        return bool(self.gates) and all(gate.passed for gate in self.gates)

    def headline(self) -> str:
        return headline(self.gates, self.caveats)


def headline(gates: list[Gate], caveats: list[str]) -> str:
    """One line for summaries: the caveats, then the failing gates, else every gate."""
    failing = [g for g in gates if not g.passed]
    return weaker_prefix(caveats) + "; ".join(g.describe() for g in (failing or gates))


def weaker_prefix(caveats: list[str]) -> str:
    """How a summary line says its measurement is weaker than robustgate's own, by the contract's choice."""
    return f"WEAKER PROTOCOL ({'; '.join(caveats)}): " if caveats else ""
