"""``summary.md``: a compact table of a run for ``$GITHUB_STEP_SUMMARY`` or a merge-request comment."""

from __future__ import annotations

from typing import Any

from robustgate.checks.outcome import format_number, weaker_prefix
from robustgate.reports.results import model_label, trusted_weights

_RESULT = {"passed": "PASS", "failed": "FAIL", "error": "ERROR", "skipped": "skipped"}


def describe_gate(gate: dict[str, Any]) -> str:
    def number(value: float | None) -> str:
        return "n/a" if value is None else format_number(value)

    shown = f"{gate['metric']} {number(gate['estimate'])}"
    if gate["read"] not in ("point", "exact"):
        shown += f" ({gate['read']} {number(gate['value'])})"
    return f"{shown} {gate['op']} {gate['threshold']:g}"


def describe_measured(item: dict[str, Any]) -> str:
    """An item's summary cell: its caveats, then its failing gates (else every gate), else its message."""
    failing = [g for g in item["gates"] if not g["passed"]]
    measured = "; ".join(describe_gate(g) for g in (failing or item["gates"])) or item.get("message", "")
    return weaker_prefix(item.get("caveats", [])) + measured


def render_markdown(doc: dict[str, Any]) -> str:
    items = doc["items"]
    counts = {name: sum(item["outcome"] == key for item in items) for key, name in _RESULT.items()}
    head = ", ".join(f"{n} {name.lower()}" for name, n in counts.items() if n) or "no contracts ran"
    lines = ["## robustgate", "", f"**{len(items)} contract{'s' if len(items) != 1 else ''}: {head}**"]
    if doc.get("interrupted"):
        lines.append("")
        lines.append("The run was interrupted: contracts that did not run are missing.")
    if doc.get("baseline"):
        lines += ["", f"Compared with the previous release `{doc['baseline']['path']}` (`regression.*` gates: positive is worse)."]
    for trusted in trusted_weights(doc):
        lines += ["", f"Trusted weights (unpickled with `trusted: true`, which can run code): `{trusted}`"]
    for spec, entry in doc["specs"].items():
        if entry.get("paths"):
            lines += ["", f"Files and folders {spec} read: " + "; ".join(f"{key} `{path}`" for key, path in entry["paths"].items())]
    lines += ["", "| spec | model | contract | result | measured |", "|---|---|---|---|---|"]
    for item in items:
        row = (item["spec"], model_label(item), item["contract"], _RESULT[item["outcome"]], describe_measured(item))
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    env = doc["environment"]
    lines += ["", f"{env['cpu']} · torch {env['torch']} · quantized engine {env['quantized_engine']} · "
              f"robustgate {env['robustgate']} · {doc['timings']['total_seconds']:.0f} s"]
    return "\n".join(lines) + "\n"
