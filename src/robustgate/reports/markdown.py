"""``summary.md``: a compact table of a run for ``$GITHUB_STEP_SUMMARY`` or a merge-request comment,
one section per contract kind, headed and described by the kind's declaration (see ``by_kind``).

Each relative gate is shown with the absolute value it is relative to (the baseline's accuracy beside
a drop), as in the terminal table and report.html."""

from __future__ import annotations

from typing import Any

from robustgate.reports.breakdown import describe_measured
from robustgate.reports.results import model_label, trusted_weights, upgraded
from robustgate.reports.table import RESULT, by_kind, headline, not_run_lines


def render_markdown(doc: dict[str, Any]) -> str:
    doc = upgraded(doc)
    items, not_run = doc["items"], doc.get("not_run") or []
    lines = ["## robustgate", "", f"**{headline((item['outcome'] for item in items), len(not_run), bool(doc.get('interrupted')))}**"]
    if doc.get("interrupted"):
        lines += ["", "The run was interrupted: contracts that did not run are missing from the table."]
    for line in not_run_lines([f"`{nodeid}`" for nodeid in not_run]):
        lines += ["", line]
    if doc.get("baseline"):
        lines += ["", f"Compared with the previous release `{doc['baseline']['path']}` (`regression.*` gates: positive is worse)."]
    for trusted in trusted_weights(doc):
        lines += ["", f"Trusted weights (unpickled with `trusted: true`, which can run code): `{trusted}`"]
    for spec, entry in doc["specs"].items():
        if entry.get("paths"):
            lines += ["", f"Files and folders {spec} read: " + "; ".join(f"{key} `{path}`" for key, path in entry["paths"].items())]
    for section in by_kind(items):
        lines += ["", f"### {section.title}", *(["", section.description] if section.description else []), "",
                  "| spec | model | contract | result | measured |", "|---|---|---|---|---|"]
        for item in section.items:
            row = (item["spec"], model_label(item), item["contract"], RESULT[item["outcome"]], describe_measured(item))
            lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    env = doc["environment"]
    lines += ["", f"{env['cpu']} · torch {env['torch']} · quantized engine {env['quantized_engine']} · "
              f"robustgate {env['robustgate']} · {doc['timings']['total_seconds']:.0f} s"]
    return "\n".join(lines) + "\n"
