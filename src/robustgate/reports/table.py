"""The plain-text summary table: one row per (model, contract) result; it renders, never recomputes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SummaryRow:
    spec: str
    model: str
    contract: str
    result: str  # PASS, FAIL, ERROR or SKIP
    detail: str  # the gates as measured, or the error


def render_summary(rows: list[SummaryRow], *, quiet: bool) -> list[str]:
    counts = {r: sum(row.result == r for row in rows) for r in ("PASS", "FAIL", "ERROR", "SKIP")}
    head = f"{len(rows)} contract{'s' if len(rows) != 1 else ''}: " + ", ".join(f"{n} {r.lower()}" for r, n in counts.items() if n)
    shown = [row for row in rows if row.result != "PASS"] if quiet else rows
    if not shown:
        return [head]
    table = [("spec", "model", "contract", "result", "measured")]
    table += [(r.spec, r.model, r.contract, r.result, r.detail) for r in shown]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths)) + "  " + row[4] for row in table]
    return [head, *lines]
