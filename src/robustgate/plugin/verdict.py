"""How a broken contract reads in pytest's failure section: a small table, not a traceback."""

from __future__ import annotations

from dataclasses import dataclass

from _pytest._code.code import TerminalRepr
from _pytest._io import TerminalWriter

from robustgate.checks.outcome import Outcome, format_number


class ContractViolation(Exception):
    """Raised by an item whose outcome has a failing gate; carries the outcome for the report."""

    def __init__(self, outcome: Outcome, item: str, where: str, source_line: str) -> None:
        self.outcome = outcome
        self.item = item
        self.where = where
        self.source_line = source_line
        super().__init__(outcome.headline())


class EvaluationWarning(UserWarning):
    """The evaluation behind a result may be too weak to trust (e.g. signs of gradient masking)."""


class RegressionWarning(UserWarning):
    """A ``max_regression`` gate could not be read: no previous release to compare with, or nothing to compare in it."""


@dataclass(eq=False)
class ViolationRepr(TerminalRepr):
    """A broken contract in pytest's failure section (and, as text, in JUnit XML and from xdist workers)."""

    violation: ContractViolation

    def toterminal(self, tw: TerminalWriter) -> None:
        tw.line(format_violation(self.violation))


def format_violation(err: ContractViolation) -> str:
    outcome, metrics = err.outcome, err.outcome.metrics
    rows = [("gate", "measured", "read as", "threshold", "result")]
    for gate in outcome.gates:
        read = {"point": "point estimate", "exact": "exact"}.get(gate.read, f"{gate.read} {gate.value:.4f}")
        rows.append((gate.metric, format_number(gate.estimate), read, f"{gate.op} {gate.threshold:g}", "ok" if gate.passed else "FAIL"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    table = ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines = [f"robustgate contract broken: {outcome.variant} :: {err.item}   ({err.where})", *table]
    lines += [f"  weaker protocol: {caveat}" for caveat in outcome.caveats]
    context = _context(metrics)
    if context:
        lines.append("  " + " · ".join(context))
    lines += [f"  {note}" for note in outcome.notes]
    lines += [f"  finding: {finding}" for finding in outcome.findings]
    if err.source_line:
        lines.append(f"  spec: {err.source_line.strip()}")
    return "\n".join(lines)


def _context(metrics: dict) -> list[str]:
    parts = []
    if "accuracy" in metrics:
        level = metrics.get("interval_level", 0.95)
        parts.append(
            f"accuracy {metrics['accuracy']:.4f}, {level:.0%} interval [{metrics['accuracy_low']:.4f}, {metrics['accuracy_high']:.4f}]"
        )
    if "baseline_accuracy" in metrics:
        parts.append(f"baseline {metrics['baseline_accuracy']:.4f}")
        parts.append(
            f"drop {metrics['drop']:+.4f} [{metrics['drop_low']:+.4f}, {metrics['drop_high']:+.4f}], "
            f"McNemar p = {metrics['mcnemar_p']:.3g} (lost {metrics['lost']}, gained {metrics['gained']})"
        )
    if "n" in metrics:
        parts.append(f"n = {metrics['n']}")
    before = [f"{name.removeprefix('previous.')} {format_number(value)}" for name, value in metrics.items() if name.startswith("previous.")]
    if before:
        parts.append(f"previous release: {', '.join(before)}")
    if "mb" in metrics:
        parts.append(
            f"{metrics['mb']:.2f} MB ({metrics['size_ratio']:.3f} of the baseline), "
            f"{metrics['params']:,} params ({metrics['params_ratio']:.3f}), {metrics['macs']:,} MACs ({metrics['macs_ratio']:.3f})"
        )
    return parts
