"""pytest-html extras: when pytest-html writes its report (``--html``), each robustgate row carries the
item's gates, notes and findings, and its plot (the same one report.html draws for it)."""

from __future__ import annotations

import html
from typing import Any

from robustgate.reports.markdown import describe_gate
from robustgate.reports.results import model_label


def item_extras(item: dict[str, Any]) -> list[dict[str, Any]]:
    """pytest-html extras for one item of a results document (see :mod:`robustgate.reports.results`)."""
    import pytest_html

    from robustgate.reports.html import item_plot

    esc = html.escape
    rows = "".join(
        f"<tr><td>{esc(describe_gate(g))}</td><td>{'ok' if g['passed'] else '<b>FAIL</b>'}</td></tr>" for g in item["gates"]
    )
    parts = [f"<table class='robustgate'><tr><th>{esc(model_label(item))} :: {esc(item['contract'])}</th><th></th></tr>{rows}</table>"]
    parts += [f"<p>finding: {esc(finding)}</p>" for finding in item["findings"]]
    parts += [f"<p>{esc(note)}</p>" for note in item["notes"]]
    plot = item_plot(item)
    if plot:
        parts.append(plot)
    return [pytest_html.extras.html("<div>" + "".join(parts) + "</div>")]
