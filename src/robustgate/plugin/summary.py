"""The table at the end of a run: one row per (model, contract) item."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest


@dataclass(frozen=True)
class SummaryRow:
    spec: str
    model: str
    contract: str
    result: str  # PASS, FAIL or ERROR
    detail: str

    @classmethod
    def from_report(cls, report: pytest.TestReport, properties: dict[str, Any]) -> "SummaryRow":
        verdict = properties.get("robustgate.verdict")
        if report.passed:
            result = "PASS"
        elif verdict == "fail":
            result = "FAIL"
        else:
            result = "ERROR"
        detail = properties.get("robustgate.headline")
        if detail is None:
            text = str(report.longrepr or "").strip().splitlines()
            detail = text[0] if text else ""
        return cls(
            spec=report.nodeid.split("::")[0],
            model=str(properties["robustgate.model"]),
            contract=str(properties["robustgate.contract"]),
            result=result,
            detail=str(detail),
        )


def render_summary(rows: list[SummaryRow], *, quiet: bool) -> list[str]:
    counts = {r: sum(row.result == r for row in rows) for r in ("PASS", "FAIL", "ERROR")}
    head = f"{len(rows)} contract{'s' if len(rows) != 1 else ''}: " + ", ".join(f"{n} {r.lower()}" for r, n in counts.items() if n)
    shown = [row for row in rows if row.result != "PASS"] if quiet else rows
    if not shown:
        return [head]
    table = [("spec", "model", "contract", "result", "measured")]
    table += [(r.spec, r.model, r.contract, r.result, r.detail) for r in shown]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths)) + "  " + row[4] for row in table]
    return [head, *lines]
