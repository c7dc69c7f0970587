"""pytest-html extras: when pytest-html writes its report (``--html``), each robustgate row carries what
report.html's row opens onto (gates with the values relative gates read against, intervals, McNemar, the
attack's legs, findings and notes) and its plot (the same one report.html draws for it)."""

from __future__ import annotations

import html
from typing import Any

from robustgate.reports.results import model_label


def item_extras(item: dict[str, Any]) -> list[dict[str, Any]]:
    """pytest-html extras for one item of a results document (see :mod:`robustgate.reports.results`)."""
    import pytest_html

    from robustgate.reports.html import item_breakdown, item_plot

    title = f"<p><b>{html.escape(model_label(item))} :: {html.escape(item['contract'])}</b></p>"
    plot = item_plot(item) or ""
    return [pytest_html.extras.html(f"<div class='robustgate'>{title}{item_breakdown(item, notes=True)}{plot}</div>")]
