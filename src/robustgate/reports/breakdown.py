"""What an item's verdict rests on, read from its results record, for every report to render: each gate
with how it was read and, for a gate relative to another model (or release), that reference's own
absolute value; the confidence intervals; the paired comparisons with the baseline (McNemar); the
attack protocol's per-leg breakdown. The terminal, summary.md and report.html show the same things.

It reads the metric names the checks write (``baseline_accuracy@printed``, ``broken_by_twin@8/255``),
keyed by the item's ``kind``, at the points its record names (``axes``: an attack sweep's strengths;
``datasets``: a shift's targets, a comparison's datasets), and never recomputes a number: a reference
the results do not hold is shown as not recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from robustgate.checks.outcome import format_number, weaker_prefix

READ_AS = {"point": "point estimate", "exact": "exact"}


@dataclass(frozen=True)
class Reference:
    """The absolute value a relative gate is measured against, e.g. the baseline's accuracy on the same images."""

    name: str  # "baseline accuracy", "baseline robust accuracy", "previous release", ...
    value: float | None  # None: the results do not hold it
    unit: str = ""

    def describe(self) -> str:
        return f"{self.name} {format_number(self.value)}{self.unit}" if self.value is not None else f"{self.name} not recorded"


def references(item: dict[str, Any], metric: str) -> list[Reference]:
    """What the gate on ``metric`` of ``item`` is relative to (empty for an absolute gate)."""
    m, kind = item["metrics"], item.get("kind", "")
    base, _, at = metric.partition("@")
    if metric.startswith("regression."):
        name = metric.removeprefix("regression.")
        before = m.get(f"previous.{name}", (item.get("previous") or {}).get(name))
        return [Reference("previous release", before, " ms" if name.endswith("_ms") else "")]
    if kind in ("accuracy", "attack", "shift") and base in ("drop", "relative_drop"):
        name = "baseline robust accuracy" if kind == "attack" else "baseline accuracy"
        return [Reference(name, m.get(f"baseline_accuracy{'@' + at if at else ''}"))]
    if kind == "shift" and base == "gap":
        return [Reference("own source accuracy", m.get("source_accuracy"))]
    if kind == "corruptions" and metric in ("drop", "relative_mce"):
        return [Reference("baseline corruption accuracy", m.get("baseline_mean_corruption_accuracy")),
                Reference("clean", m.get("baseline_clean_accuracy"))]
    if kind == "corruptions" and at and base in ("drop", "relative_ce"):
        return [Reference(f"baseline accuracy under {at}", m.get(f"baseline_accuracy@{at}"))]
    if kind == "latency" and metric in ("speedup", "slowdown"):
        name, key = ("baseline p50", "baseline_p50_ms") if metric == "speedup" else ("previous p50", "previous_p50_ms")
        return [Reference(name, m.get(key), " ms")]
    if metric in ("size_ratio", "params_ratio", "macs_ratio"):
        counted = {"size_ratio": "bytes", "params_ratio": "params", "macs_ratio": "macs"}[metric]
        return [Reference(f"baseline {counted}", m.get(f"baseline_{counted}"))]
    return []


def _number(value: float | None) -> str:
    return "n/a" if value is None else format_number(value)


def describe_gate(gate: dict[str, Any], item: dict[str, Any] | None = None) -> str:
    """``drop 0.0100 (one-sided 97.5% upper bound 0.0412) <= 0.03, baseline accuracy 0.9610``: the gate as measured and,
    given its item, the absolute value it is relative to."""
    shown = f"{gate['metric']} {_number(gate['estimate'])}"
    if gate["read"] not in READ_AS:
        shown += f" ({gate['read']} {_number(gate['value'])})"
    shown += f" {gate['op']} {gate['threshold']:g}"
    return shown + "".join(f", {ref.describe()}" for ref in (references(item, gate["metric"]) if item else []))


def describe_measured(item: dict[str, Any]) -> str:
    """An item's summary cell: its caveats, then its failing gates (else every gate), else its message."""
    failing = [g for g in item["gates"] if not g["passed"]]
    measured = "; ".join(describe_gate(g, item) for g in (failing or item["gates"])) or item.get("message", "")
    return weaker_prefix(item.get("caveats", [])) + measured


@dataclass(frozen=True)
class GateRow:
    """One row of an item's gate table, as the terminal's verdict prints it."""

    metric: str
    measured: str
    read_as: str  # "point estimate", "exact" or "one-sided 97.5% lower bound 0.8123"
    threshold: str  # "<= 0.03"
    reference: str  # the references a relative gate reads against, "" for an absolute one
    passed: bool


def gate_rows(item: dict[str, Any]) -> list[GateRow]:
    rows = []
    for gate in item["gates"]:
        read = READ_AS.get(gate["read"], f"{gate['read']} {_number(gate['value'])}")
        reference = "; ".join(ref.describe() for ref in references(item, gate["metric"]))
        rows.append(GateRow(gate["metric"], _number(gate["estimate"]), read, f"{gate['op']} {gate['threshold']:g}",
                            reference, bool(gate["passed"])))
    return rows


def _bound(metrics: dict[str, Any], metric: str, end: str) -> float | None:
    """``metric``'s interval end: named ``accuracy_low``, ``accuracy_low@webcam`` (shift, attack sweeps) or
    ``accuracy@fog_low`` (corruptions)."""
    base, at, where = metric.partition("@")
    for key in (f"{metric}_{end}", f"{base}_{end}{at}{where}"):
        if metrics.get(key) is not None:
            return metrics[key]
    return None


def _is_bound(metric: str) -> bool:
    return metric.endswith(("_low", "_high")) or metric.partition("@")[0].endswith(("_low", "_high"))


def intervals(item: dict[str, Any]) -> list[tuple[str, float, float | None, float | None]]:
    """``(metric, estimate, low, high)`` for every metric with an interval end (a one-sided bound has one),
    the gated metrics first."""
    m = item["metrics"]
    gated = [g["metric"] for g in item["gates"]]
    names = list(dict.fromkeys([*(name for name in gated if name in m), *m]))
    found = []
    for name in names:
        if m.get(name) is None or _is_bound(name):
            continue
        low, high = _bound(m, name, "low"), _bound(m, name, "high")
        if low is not None or high is not None:
            found.append((name, m[name], low, high))
    return found


def interval_level(item: dict[str, Any]) -> str:
    level = item["metrics"].get("interval_level")
    return f"{level:.0%}" if level is not None else "95%"


def _suffixes(item: dict[str, Any]) -> list[str]:
    """The ``@`` suffixes an item's metrics may carry, from its record: none, each point on its ``axes`` and each of
    its ``datasets``."""
    points = [*(item.get("axes") or {}), *(item.get("datasets") or [])]
    return list(dict.fromkeys(["", *(f"@{point}" for point in points)]))


def paired_comparisons(item: dict[str, Any]) -> list[str]:
    """Each paired drop against the baseline on the same images: its interval, the baseline's value and McNemar's test."""
    m, lines = item["metrics"], []
    for at in _suffixes(item):
        key = f"mcnemar_p{at}"
        if m.get(key) is None:
            continue
        drop, low, high = (m.get(f"{name}{at}") for name in ("drop", "drop_low", "drop_high"))
        shown = f"drop{at} {drop:+.4f}" if drop is not None else f"drop{at}"
        if low is not None and high is not None:
            shown += f" [{low:+.4f}, {high:+.4f}]"
        if m.get(f"baseline_accuracy{at}") is not None:
            shown += f" from the baseline's {m[f'baseline_accuracy{at}']:.4f}"
        lines.append(f"{shown}: McNemar p = {m[key]:.3g} (lost {_count(m.get(f'lost{at}'))}, "
                     f"gained {_count(m.get(f'gained{at}'))})")
    return lines


def _count(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}"


@dataclass(frozen=True)
class Legs:
    """Which attack of the protocol broke how many images, at one strength (``at``: "" or ``@8/255``)."""

    at: str
    n: float | None
    broken_by: dict[str, float]  # method (white-box, twin, transfer, gradient-free, clean: wrong unattacked) -> images
    twin_agreement: float | None


def attack_legs(item: dict[str, Any]) -> list[Legs]:
    """The protocol's legs at each strength an attack item measured (each point of a sweep's ``axes``, else one)."""
    m, legs = item["metrics"], []
    for at in [f"@{point}" for point in item.get("axes") or {}] or [""]:
        counts = {method.replace("_", "-"): value for method, value in _named(m, "broken_by_", at).items() if value is not None}
        if counts:
            legs.append(Legs(at, m.get(f"n{at}"), counts, m.get(f"twin_agreement{at}")))
    return legs


def _named(metrics: dict[str, Any], prefix: str, at: str) -> dict[str, Any]:
    """``NAME -> value`` of the metrics named ``prefix + NAME + at`` (``broken_by_twin@8/255``: twin at ``@8/255``)."""
    found = {}
    for key, value in metrics.items():
        name = key[len(prefix):len(key) - len(at)]
        if key.startswith(prefix) and key.endswith(at) and "@" not in name:  # not a name of another point
            found[name] = value
    return found


def context(item: dict[str, Any]) -> list[str]:
    """The lines the terminal's verdict closes with: images, the previous release's values, the model's size."""
    m, lines = item["metrics"], []
    n = m.get("n", m.get("source_n"))
    if n is not None:
        lines.append(f"n = {n:.0f}")
    before = item.get("previous") or {k.removeprefix("previous."): v for k, v in m.items() if k.startswith("previous.")}
    if before:
        lines.append("previous release: " + ", ".join(f"{name} {_number(value)}" for name, value in before.items()))
    if m.get("bytes") is not None and m.get("size_ratio") is not None:
        shown = f"{m['bytes'] / 1e6:.2f} MB ({m['size_ratio']:.3f} of the baseline)"
        for name in ("params", "macs"):
            if m.get(name) is not None and m.get(f"{name}_ratio") is not None:
                shown += f", {m[name]:,.0f} {name if name == 'params' else 'MACs'} ({m[f'{name}_ratio']:.3f})"
        lines.append(shown)
    return lines
