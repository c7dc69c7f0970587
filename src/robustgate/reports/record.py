"""One item's result, as one record: built once by the item from the check's outcome, carried on the pytest
report (also across pytest-xdist workers), and rendered by every report.

JUnit XML's properties, results.json, summary.md, the terminal table and report.html all read this record
(the last three through its results.json form): no report recovers structure from a label, a property name
or a metric name. The record holds raw numbers; its results.json form writes NaN and infinity as null.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from robustgate.checks.outcome import Gate, Number, Outcome, headline

JUNIT_PREFIX = "robustgate."  # JUnit property names, e.g. robustgate.accuracy, robustgate.outcome
_GATE_FIELDS = [f.name for f in fields(Gate)]


def finite(value: Any) -> float | None:
    """JSON has no NaN or infinity: write them as null (an unread bound, an infinite ratio)."""
    number = float(value)
    return number if math.isfinite(number) else None


@dataclass
class ItemRecord:
    """Everything the reports say about one (model, contract) item.

    Who it is (``nodeid`` to ``settings``) is known at collection; what it measured (``metrics`` to
    ``per_image``) is filled from the check's outcome; how it ended (``outcome``, ``message``,
    ``duration``) from pytest's report."""

    nodeid: str
    spec: str  # the spec file as item ids name it: relative to the rootdir
    model: str
    contract: str  # the item's label, e.g. accuracy[printed]: for people, never parsed
    kind: str  # the contract's kind: accuracy, attack, corruptions, shift, latency, size, ...
    datasets: list[str]  # the datasets the contract reads, in the order its keys name them
    case: str = ""  # the spec's matrix case (e.g. resnet50-amazon), empty for a spec without a matrix
    technique: str = ""  # the variant's compression steps, e.g. "prune+int8" ("baseline" for the reference)
    settings: str = ""  # digest of what the contract measures: a previous release's numbers compare only if it is equal
    metrics: dict[str, Number] = field(default_factory=dict)
    gates: list[Gate] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    caveats: list[str] = field(default_factory=list)  # what the contract accepted that weakens the measurement
    series: dict[str, list[float]] = field(default_factory=dict)  # distributions, e.g. latency_ms percentiles 0..100
    axes: dict[str, dict[str, float | str]] = field(default_factory=dict)  # see Outcome.axes
    phases: dict[str, float] = field(default_factory=dict)  # seconds spent training, predicting, attacking, ...
    previous: dict[str, float | None] = field(default_factory=dict)  # the previous release's values, when compared
    per_image: dict[str, Any] = field(default_factory=dict)  # metric -> packed outcomes, only when saving a release
    outcome: str = ""  # passed, failed (a broken gate), error (could not evaluate) or skipped
    message: str = ""  # an error's or a skip's first line
    duration: float = 0.0

    def measured(self, outcome: Outcome, phases: dict[str, float], per_image: bool) -> None:
        """Take what the check measured; with ``per_image``, also which images each metric got right (bit-packed:
        small enough to travel from xdist workers), for a saved release."""
        self.metrics = dict(outcome.metrics)
        self.gates = list(outcome.gates)
        self.findings, self.notes, self.caveats = list(outcome.findings), list(outcome.notes), list(outcome.caveats)
        self.series = {name: list(values) for name, values in outcome.series.items()}
        self.axes = {at: dict(where) for at, where in outcome.axes.items()}
        self.phases = dict(phases)
        self.per_image = {m: images.to_json() for m, images in outcome.per_image.items()} if per_image else {}

    @property
    def verdict(self) -> str | None:
        """pass or fail once gates were read; None for an item that read none (skipped or could not evaluate)."""
        if not self.gates:
            return None
        return "pass" if all(gate.passed for gate in self.gates) else "fail"

    def ended(self, passed: bool, skipped: bool, message: str, duration: float) -> None:
        """How pytest says the item ended: a failure is ``failed`` when a gate broke, else ``error``."""
        if passed or skipped:
            self.outcome = "passed" if passed else "skipped"
        else:
            self.outcome = "failed" if self.verdict == "fail" else "error"
        self.message = message if self.outcome in ("error", "skipped") else ""
        self.duration = duration

    def to_wire(self) -> dict[str, Any]:
        """Plain data for the pytest report (pytest-xdist serialises it from the worker to the controller)."""
        return asdict(self)

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> ItemRecord:
        gates = [Gate(**{name: gate[name] for name in _GATE_FIELDS}) for gate in data["gates"]]
        return cls(**{**data, "gates": gates})

    def results_item(self) -> dict[str, Any]:
        """The item as results.json writes it (see :mod:`robustgate.reports.results`): numbers finite or null;
        the per-image outcomes go to the document's own ``per_image``."""
        item = asdict(self)
        del item["per_image"]
        item["metrics"] = {name: finite(value) for name, value in self.metrics.items()}
        item["gates"] = [{**{k: finite(v) if k in ("threshold", "estimate", "value") else v for k, v in asdict(gate).items()},
                          "passed": gate.passed} for gate in self.gates]
        item["series"] = {name: [v for v in map(float, values) if math.isfinite(v)] for name, values in self.series.items()}
        return item

    def junit_properties(self) -> list[tuple[str, Any]]:
        """JUnit XML's ``<property>`` elements: who the item is, every metric, what the evaluation found, the
        verdict and its headline once gates were read, and how the item ended."""
        named: list[tuple[str, Any]] = [("model", self.model), ("contract", self.contract), ("kind", self.kind),
                                        ("datasets", " ".join(self.datasets)), *([("case", self.case)] if self.case else []),
                                        ("technique", self.technique), ("settings", self.settings), *self.metrics.items()]
        named += [(name, "; ".join(lines)) for name, lines in
                  (("findings", self.findings), ("notes", self.notes), ("caveats", self.caveats)) if lines]
        if self.verdict is not None:
            named += [("verdict", self.verdict), ("headline", headline(self.gates, self.caveats))]
        named.append(("outcome", self.outcome))
        return [(JUNIT_PREFIX + name, value) for name, value in named]
