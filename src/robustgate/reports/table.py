"""The plain-text summary table: one row per (model, contract) result; it renders, never recomputes.

``headline`` is the first line of every report (terminal, summary.md, report.html): how many contracts
there were and how they ended, including those that never ran because the run stopped early.
``by_kind`` groups a run's items into the sections summary.md and report.html show, one per contract kind,
titled and described by the kind's own declaration."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

RESULT = {"passed": "PASS", "failed": "FAIL", "error": "ERROR", "skipped": "SKIP"}  # results.json outcome -> table
_WORDS = {"passed": "pass", "failed": "fail", "error": "error", "skipped": "skipped"}
MAX_NOT_RUN = 20  # contracts that did not run, named one by one


@dataclass(frozen=True)
class SummaryRow:
    spec: str
    model: str
    contract: str
    result: str  # PASS, FAIL, ERROR or SKIP
    detail: str  # the gates as measured, or the error


def headline(outcomes: Iterable[str], not_run: int = 0, interrupted: bool = False) -> str:
    """``6 contracts: 3 pass, 1 fail, 2 did not run (the run was interrupted)``, from results.json outcomes."""
    outcomes = list(outcomes)
    counts = [f"{n} {word}" for key, word in _WORDS.items() if (n := outcomes.count(key))]
    total = len(outcomes) + not_run
    text = f"{total} contract{'s' if total != 1 else ''}: " + ", ".join(counts + ([f"{not_run} did not run"] if not_run else []))
    if not total:
        text = "no contracts ran"
    return text + (" (the run was interrupted)" if interrupted else " (the run stopped early)" if not_run else "")


@dataclass(frozen=True)
class KindSection:
    """The items of one contract kind, with the heading and description its declaration gives them."""

    kind: str
    title: str  # the kind's ``title``; an unregistered kind (an older or foreign results.json) is titled by its name
    description: str  # what it gates and how each gate is read (:meth:`ContractKind.describe`); "" when unregistered
    items: list[dict[str, Any]]


def by_kind(items: list[dict[str, Any]]) -> list[KindSection]:
    """The items grouped by ``kind``, in the order robustgate.checks registers the kinds (clean accuracy first,
    then shift, corruptions, attacks, ...), then kinds it does not know in run order;
    within a section, in run order. Reports add no per-kind code for a kind to get its section."""
    import robustgate.checks  # noqa: F401 (registers the contract kinds)
    from robustgate.checks.base import contract_kinds

    grouped: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        grouped.setdefault(item.get("kind") or "", []).append(item)
    order = [kind for kind in contract_kinds.registered() if kind in grouped] + [kind for kind in grouped if kind not in contract_kinds]
    return [_section(kind, grouped[kind]) for kind in order]


def _section(kind: str, items: list[dict[str, Any]]) -> KindSection:
    from robustgate.checks.base import contract_kinds

    if kind not in contract_kinds:
        return KindSection(kind, kind or "Other contracts", "", items)
    declared = contract_kinds.get(kind)
    described = declared.describe().removeprefix(f"{declared.title}: ")  # the title heads the section already
    return KindSection(kind, declared.title, described[:1].upper() + described[1:], items)


def not_run_lines(not_run: list[str]) -> list[str]:
    """The contracts that never reported, named (the first ``MAX_NOT_RUN``), for a run that stopped early."""
    if not not_run:
        return []
    more = f" and {len(not_run) - MAX_NOT_RUN} more (results.json lists them)" if len(not_run) > MAX_NOT_RUN else ""
    return [f"did not run: {', '.join(not_run[:MAX_NOT_RUN])}{more}"]


def render_summary(rows: list[SummaryRow], *, quiet: bool, not_run: list[str] | None = None,
                   interrupted: bool = False) -> list[str]:
    outcomes = [{value: key for key, value in RESULT.items()}[row.result] for row in rows]
    head = [headline(outcomes, len(not_run or []), interrupted), *not_run_lines(not_run or [])]
    shown = [row for row in rows if row.result != "PASS"] if quiet else rows
    if not shown:
        return head
    table = [("spec", "model", "contract", "result", "measured")]
    table += [(r.spec, r.model, r.contract, r.result, r.detail) for r in shown]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths)) + "  " + row[4] for row in table]
    return [*head, *lines]
