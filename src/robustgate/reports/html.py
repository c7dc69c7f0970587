"""``report.html``: one self-contained page (inline CSS, plots as embedded PNGs, no network fetch)
rendered from a results document, so ``robustgate report`` can redraw it from ``results.json``.

The page opens with the findings, a list of the contract kinds with how their contracts ended, and the
plots that span kinds (clean accuracy per dataset, against model size). Then one section per contract
kind (:func:`robustgate.reports.table.by_kind`): the heading and description its declaration gives,
the table of its items, and the figures a plug-in in ``_FIGURES`` draws for that kind (attack sweeps,
corruption heatmaps, latency distributions, calibration's reliability diagrams). A new kind gets its
section and table without a change here; a kind an older results.json names but this robustgate does
not register is titled by its name.

Every plot and table is keyed by spec and matrix case (two specs may both have a ``baseline`` and an
``int8``): a plot draws one (spec, case) group, and names it when the page has several. What a plot
draws is read from each item's ``kind``, ``datasets``, ``axes``, ``series`` and metrics, never from its
label. A plot whose data is absent is left out; a run with hundreds of items gets at most
``MAX_FIGURES`` figures of a kind (failing items first) and the page says what it left out. Each row of
a table opens onto what the terminal's verdict shows (gates, intervals, McNemar, the attack's legs),
open already for failing rows.
"""

from __future__ import annotations

import html
import math
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from robustgate.checks.outcome import format_number
from robustgate.reports import plots
from robustgate.reports.breakdown import (
    attack_legs, context, describe_measured, gate_rows, interval_level, intervals, paired_comparisons,
)
from robustgate.reports.results import model_label, trusted_weights, upgraded, upgraded_item
from robustgate.reports.table import RESULT, KindSection, by_kind, headline, not_run_lines

MAX_FIGURES = 8  # per-item or per-group figures of one kind (heatmaps, eps sweeps, accuracy by case)
MAX_LINES = 8  # curves or bar groups on one axes (the colour cycle has 10)
MAX_ROWS = 40  # rows of a summary plot (corruption summary, speed-ups)
MAX_FINDINGS = 50

_STYLE = """
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:1100px;padding:1em;color:#1d1d1f;background:#fff}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}h3{font-size:1.05em;margin:1.2em 0 .4em}
table{border-collapse:collapse;width:100%;font-size:.92em}
td,th{border-bottom:1px solid #eee;padding:.35em .5em;text-align:left;vertical-align:top;overflow-wrap:break-word}
th{background:#f5f5f7}tr:has(>.FAIL),tr:has(>.ERROR){background:#fff6f6}
.PASS{color:#0a7d32;font-weight:600}.FAIL{color:#c0162a;font-weight:700}.ERROR{color:#b35c00;font-weight:700}.SKIP{color:#777}.worse{color:#c0162a;font-weight:600}.better{color:#0a7d32}
.findings{background:#fff4e0;border:1px solid #f0c27a;border-left:6px solid #e08a00;border-radius:6px;padding:0 1em .5em;margin:1em 0}
.findings h2{border:0;margin:.5em 0 .3em;color:#8a4b00}
.finding{margin:.45em 0;overflow-wrap:anywhere}
.tag{display:inline-block;font-size:.75em;font-weight:700;text-transform:uppercase;letter-spacing:.03em;padding:.05em .45em;border-radius:4px;background:#b35c00;color:#fff;margin-right:.35em}
.tag.masking{background:#c0162a}
.meta,.note,small{color:#666;font-size:.88em}small{display:block}
img{max-width:100%;height:auto;display:block}
figure{margin:0 0 1em}figcaption{font-size:.88em;color:#444;margin-top:.2em;overflow-wrap:anywhere}
.plots{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,460px),1fr));gap:.4em 1.2em;align-items:start}
details>summary{cursor:pointer}details:not([open])>.breakdown{display:none}
.breakdown{font-size:.92em;margin:.3em 0 .4em}.breakdown p{margin:.3em 0;overflow-wrap:anywhere}
.breakdown table{width:auto;max-width:100%;margin:.3em 0;font-size:1em}
.breakdown td,.breakdown th{padding:.12em .45em}.breakdown caption{text-align:left;color:#666;font-size:.9em}
@media (max-width:640px){
body{padding:.7em}h1{font-size:1.3em}
.cards>thead{display:none}
.cards,.cards>tbody,.cards>tbody>tr,.cards>tbody>tr>td{display:block;width:auto}
.cards>tbody>tr{border:1px solid #ddd;border-radius:8px;margin:.7em 0;padding:.35em .6em}
.cards>tbody>tr:has(>.FAIL),.cards>tbody>tr:has(>.ERROR){border-color:#c0162a;border-width:2px}
.cards>tbody>tr>td{border:0;padding:.12em 0 .12em 6.4em;position:relative;overflow-wrap:anywhere}
.cards>tbody>tr>td::before{content:attr(data-label);position:absolute;left:0;width:6em;color:#666;font-weight:400}
.cards>tbody>tr>td:has(details){padding-left:0}.cards>tbody>tr>td:has(details)::before{position:static;display:block}
.breakdown table{width:100%}.breakdown td,.breakdown th{overflow-wrap:anywhere}
}
@media print{
body{max-width:none;padding:0;font-size:10pt}
h2{break-after:avoid}figure,tr,.finding{break-inside:avoid}
.breakdown td,.breakdown th{overflow-wrap:anywhere}
.plots{grid-template-columns:1fr 1fr}
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}
}
"""
Group = tuple[str, str]  # (spec, case): the models of one spec file, or of one case of its matrix


def _group(item: dict[str, Any]) -> Group:
    return item["spec"], item.get("case") or ""


def _groups(items: list[dict[str, Any]]) -> dict[Group, list[dict[str, Any]]]:
    """Items by (spec, case), in run order."""
    grouped: dict[Group, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        grouped[_group(item)].append(item)
    return grouped


@dataclass(frozen=True)
class _Naming:
    """How the page names models and groups: with the spec only when the page holds several specs."""

    many_specs: bool

    @classmethod
    def of(cls, items: list[dict[str, Any]]) -> "_Naming":
        return cls(len({item["spec"] for item in items}) > 1)

    def model(self, item: dict[str, Any]) -> str:
        return f"{item['spec']} :: {model_label(item)}" if self.many_specs else model_label(item)

    def item(self, item: dict[str, Any]) -> str:
        return f"{self.model(item)} :: {item['contract']}"

    def group(self, group: Group) -> str:
        spec, case = group
        return " :: ".join(([spec] if self.many_specs else []) + ([case] if case else []))


def _figure_tag(image: str, caption: str, kind: str) -> str:
    return f"<figure data-plot='{kind}'>{image}<figcaption>{html.escape(caption)}</figcaption></figure>"


def _titled(text: str, where: str) -> str:
    return f"{text}: {where}" if where else text


def _failing(item: dict[str, Any]) -> bool:
    return item["outcome"] in ("failed", "error")


def _failing_first(items: list[dict[str, Any]], limit: int, baseline_first: bool = False) -> tuple[list[dict[str, Any]], int]:
    """At most ``limit`` items (the baseline's first if asked), then failed and errored ones, then in run order;
    and how many were left out."""
    ranked = sorted(items, key=lambda item: (not (baseline_first and item["model"] == "baseline"), not _failing(item)))
    return ranked[:limit], max(0, len(ranked) - limit)


def _left_out(shown: int, left: int, what: str, order: str = ", failing ones first, then in run order") -> str:
    if not left:
        return ""
    return f"<p class='note'>Showing {shown} of {shown + left} {what}{order}; results.json holds them all.</p>"


def _section(title: str, figures: list[tuple[str, str, str]], what: str, heading: str = "h3") -> list[str]:
    """A section of figures ``(image, caption, kind)``, at most ``MAX_FIGURES``, saying how many it left out;
    ``heading``: h2 for a section of the page, h3 for one inside a contract kind's."""
    if not figures:
        return []
    shown = figures[:MAX_FIGURES]
    return [f"<{heading}>{title}</{heading}>", "<div class='plots'>", *(_figure_tag(*figure) for figure in shown), "</div>",
            _left_out(len(shown), len(figures) - len(shown), what, order=", in run order")]


def _accuracy_readings(item: dict[str, Any]) -> list[tuple[str, float, float, float, float | None]]:
    """``(dataset, accuracy, low, high, baseline accuracy)`` per dataset an item measured clean accuracy on:
    an accuracy item on its dataset, a shift item on its source and each target."""
    m, datasets = item["metrics"], item.get("datasets") or []

    def reading(dataset: str, name: str, suffix: str = "") -> tuple[str, float, float, float, float | None] | None:
        estimate = m.get(f"{name}{suffix}")
        if estimate is None:
            return None
        low, high = (m.get(f"{name}_{end}{suffix}") for end in ("low", "high"))
        return (dataset, estimate, estimate if low is None else low, estimate if high is None else high,
                m.get(f"baseline_{name}{suffix}"))

    if not datasets or item.get("kind") not in ("accuracy", "shift"):
        return []
    if item["kind"] == "accuracy":
        found = [reading(datasets[0], "accuracy")]
    else:  # a shift's datasets: its source, then its targets
        found = [reading(datasets[0], "source_accuracy"), *(reading(t, "accuracy", f"@{t}") for t in datasets[1:])]
    return [r for r in found if r is not None]


def _accuracy_section(items: list[dict[str, Any]], naming: _Naming) -> list[str]:
    """Accuracy by model and dataset: one plot per (spec, case), each with its own models and baseline."""
    groups = _groups(items)
    drawn = [(group, plot) for group, chosen in groups.items() if (plot := _accuracy_plot(chosen, naming.group(group)))]
    if not drawn:
        return []
    if len(groups) == 1:
        image, left = drawn[0][1]
        return ["<h2>Accuracy by model and dataset</h2>", image,
                _left_out(MAX_LINES, left, "models", order=", the baseline first, then in run order")]
    figures = [(image, naming.group(group) + (f" ({MAX_LINES} of {MAX_LINES + left} models)" if left else ""), "accuracy")
               for group, (image, left) in drawn]
    return _section("Accuracy by model and dataset", figures, "spec and case groups", heading="h2")


def _accuracy_plot(items: list[dict[str, Any]], where: str) -> tuple[str, int] | None:
    """Clean accuracy of every model of one group on every dataset (from accuracy and shift items); and how many
    models were left out."""
    values: dict[str, dict[str, float]] = defaultdict(dict)
    for item in items:
        for dataset, accuracy, _, _, baseline in _accuracy_readings(item):
            values[item["model"]][dataset] = accuracy
            if baseline is not None:  # a drop gate measured the baseline too
                values["baseline"].setdefault(dataset, baseline)
    if not values:
        return None
    models = sorted(values, key=lambda model: model != "baseline")[:MAX_LINES]
    return plots.accuracy_bars(values, models, _titled("accuracy by model and dataset", where)), len(values) - len(models)


def _compression_section(items: list[dict[str, Any]], naming: _Naming) -> list[str]:
    """Accuracy against model size (bytes, relative to the group's baseline) per group and dataset, one marker per
    technique."""
    points: dict[tuple[Group, str], dict[str, tuple[float, float, float, float, str]]] = defaultdict(dict)
    for item in items:
        size = item["metrics"].get("size_ratio")
        if size is None:
            continue
        for dataset, accuracy, low, high, base in _accuracy_readings(item):
            points[(_group(item), dataset)][item["model"]] = (size, accuracy, low, high, item.get("technique") or "?")
            if base is not None:  # a drop gate measured the baseline, which may have no item here
                points[(_group(item), dataset)].setdefault("baseline", (1.0, base, base, base, "baseline"))
    if not points:
        return []
    techniques = list(dict.fromkeys(p[4] for per in points.values() for p in sorted(per.values(), key=lambda p: -p[0])))
    order = list(_groups(items))
    figures = []
    for group, dataset in sorted(points, key=lambda key: (order.index(key[0]), key[1])):
        where = naming.group(group)
        alt = _titled(f"accuracy on {dataset} against model size, by technique", where)
        figures.append((plots.size_scatter(points[(group, dataset)], techniques, dataset, alt),
                        f"{where} :: {dataset}" if where else dataset, "compression"))
    parts = _section("Accuracy against model size", figures, "plots", heading="h2")
    parts.insert(1, "<p class='note'>Size is the model's bytes relative to its baseline's: int8 keeps every parameter "
                    "but stores each in one byte instead of four (plus per-layer overheads). Bars: each accuracy's "
                    "confidence interval; one marker per technique.</p>")
    return parts


def _points(item: dict[str, Any], name: str, low: str | None = None, high: str | None = None) -> plots.Points:
    """``(strength, value, low, high)`` of metric ``name`` (and its interval ends) at each strength on the item's axes."""
    m, points = item["metrics"], []
    for at, where in (item.get("axes") or {}).items():
        value = m.get(f"{name}@{at}")
        if "strength" in where and value is not None:
            lo = m.get(f"{low}@{at}") if low else None
            hi = m.get(f"{high}@{at}") if high else None
            points.append((float(where["strength"]), value, value if lo is None else lo, value if hi is None else hi))
    return sorted(points) if len(points) >= 2 else []


def _sweep(item: dict[str, Any]) -> plots.Points:
    """(eps, robust accuracy, low, high) of an attack item that swept more than one strength."""
    if item.get("kind") != "attack":
        return []
    return _points(item, "robust_accuracy", "robust_accuracy_low", "robust_accuracy_high")


def _baseline_sweep(items: list[dict[str, Any]]) -> dict[str, plots.Points]:
    """The baseline's robust accuracy along the sweep, as the variants' drop gates measured it (same attack, same
    images), when the baseline has no item of its own for the contract."""
    if any(item["model"] == "baseline" for item in items):
        return {}
    for item in items:
        points = _points(item, "baseline_accuracy")
        if points:
            return {"baseline (from the drop gates)": points}
    return {}


def _sweep_section(items: list[dict[str, Any]], naming: _Naming) -> list[str]:
    """Robust accuracy against eps (or amount), one figure per attack contract with a sweep in each (spec, case), one
    line per model, the baseline among them."""
    by_contract: dict[tuple[Group, str], list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        if _sweep(item):
            by_contract[(_group(item), item["contract"])].append(item)
    # contracts with a failing model first, so a cap never hides a broken sweep
    contracts = sorted(by_contract.items(), key=lambda entry: not any(_failing(i) for i in entry[1]))
    figures = []
    for (group, contract), swept in contracts:
        chosen, left = _failing_first(swept, MAX_LINES, baseline_first=True)
        title = f"{naming.group(group)} :: {contract}" if naming.group(group) else contract
        caption = title + (f" ({len(chosen)} of {len(swept)} models, the baseline and failing ones first)" if left else "")
        image = plots.sweep_figure({i["model"]: _sweep(i) for i in chosen}, title, _baseline_sweep(swept))
        figures.append((image, caption, "attack"))
    return _section("Robust accuracy against attack strength", figures, "attack contracts with a sweep")


def _corruption_cells(item: dict[str, Any], prefix: str = "accuracy") -> dict[tuple[str, int], float]:
    """``(corruption, severity) -> value`` of metric ``prefix`` at each cell of a corruptions item's axes."""
    cells: dict[tuple[str, int], float] = {}
    if item.get("kind") != "corruptions":
        return cells
    for at, where in (item.get("axes") or {}).items():
        value = item["metrics"].get(f"{prefix}@{at}")
        if "severity" in where and value is not None:
            cells[(str(where["corruption"]), int(where["severity"]))] = value
    return cells


def _corruption_heatmap(item: dict[str, Any], title: str, baseline: dict[tuple[str, int], float] | None = None) -> str | None:
    """Accuracy by corruption and severity of one corruptions item, beside its baseline's (from the baseline's own
    item of the contract, or from the item's ``baseline_accuracy@C/S`` metrics) when the results hold it."""
    cells = _corruption_cells(item)
    if not cells:
        return None
    baseline = baseline or _corruption_cells(item, "baseline_accuracy")
    names = list(dict.fromkeys(name for name, _ in cells))
    severities = sorted({s for _, s in cells})

    def grid(values: dict[tuple[str, int], float]) -> list[list[float]]:
        return [[values.get((n, s), math.nan) for s in severities] for n in names]

    panels = [(item["model"] if baseline else "", grid(cells))]
    if baseline and item["model"] != "baseline":
        panels.append(("baseline", grid(baseline)))
    beside = ", beside the baseline's" if len(panels) > 1 else ""
    return plots.heatmap(names, [str(s) for s in severities], panels, "severity", f"corruption accuracy: {title}{beside}")


def _corruption_summary(items: list[dict[str, Any]], naming: _Naming) -> str:
    """Mean accuracy over severities per corruption, one row per item: the lowest mean first."""
    rows = []
    for item in items:
        per: dict[str, list[float]] = defaultdict(list)
        for (name, _), value in _corruption_cells(item).items():
            per[name].append(value)
        means = {name: sum(v) / len(v) for name, v in per.items()}
        label = naming.model(item) if len({i["contract"] for i in items}) == 1 else naming.item(item)
        rows.append((sum(means.values()) / len(means), label, means))
    rows.sort(key=lambda row: row[0])
    rows = rows[:MAX_ROWS]
    names = list(dict.fromkeys(name for *_, means in rows for name in means))
    grid = [[means.get(name, math.nan) for name in names] for *_, means in rows]
    return plots.heatmap([row[1] for row in rows], names, [("", grid)], "corruption (mean over severities)",
                         "corruption accuracy of every corruptions item", row_height=0.2)


def _corruption_section(items: list[dict[str, Any]], naming: _Naming) -> list[str]:
    corrupted = [item for item in items if _corruption_cells(item)]
    if not corrupted:
        return []
    baselines = {(_group(item), item["contract"]): _corruption_cells(item) for item in corrupted if item["model"] == "baseline"}
    chosen, left = _failing_first(corrupted, MAX_FIGURES)
    parts = ["<h3>Corruption accuracy</h3>"]
    if left:
        shown = min(len(corrupted), MAX_ROWS)
        contracts = sorted({item["contract"] for item in corrupted})
        caption = (f"{', '.join(contracts) if len(contracts) <= 3 else 'All corruptions contracts'}: every model, mean "
                   f"accuracy over severities ({shown} of {len(corrupted)} items, the lowest mean first)")
        parts.append(_figure_tag(_corruption_summary(corrupted, naming), caption, "corruptions-summary"))
    heatmaps = [_figure_tag(_corruption_heatmap(item, naming.item(item), baselines.get((_group(item), item["contract"])))
                            or "", naming.item(item), "corruptions") for item in chosen]
    parts += ["<div class='plots'>", *heatmaps, "</div>"]
    parts.append(_left_out(len(chosen), left, "heatmaps"))
    return parts


def _timed(item: dict[str, Any]) -> bool:
    return len((item.get("series") or {}).get("latency_ms") or []) >= 2


def _speedup_text(m: dict[str, Any]) -> str:
    if m.get("speedup") is None:
        return ""
    low = f" (≥{m['speedup_low']:.2f})" if m.get("speedup_low") is not None else ""
    return f", ×{m['speedup']:.2f}{low} vs baseline"


def _latency_curves(items: list[dict[str, Any]], paired: bool) -> list[tuple[str, list[float], str]]:
    """One solid curve per item; with ``paired``, the first variant's baseline, timed interleaved with it, dashed."""
    named = len({item["contract"] for item in items}) > 1
    curves = []
    for item in items:
        name = item["model"] + (f" :: {item['contract']}" if named else "")
        m, series = item["metrics"], item.get("series") or {}
        p50 = f": p50 {m['p50_ms']:.3g} ms" if m.get("p50_ms") is not None else ""
        curves.append((f"{name}{p50}{_speedup_text(m)}", series["latency_ms"], "-"))
        if paired and len(series.get("baseline_latency_ms") or []) >= 2:
            curves.append((f"baseline, timed with {item['model']}", series["baseline_latency_ms"], "--"))
            paired = False
    return curves


def _latency_section(items: list[dict[str, Any]], naming: _Naming) -> list[str]:
    """Latency distributions, one figure per (spec, case); then the speed-ups of every variant."""
    timed = _groups([item for item in items if _timed(item)])
    if not timed:
        return []
    caption = "Per-query latency (batch and threads as in each contract's note)"
    if any(item["metrics"].get("speedup") is not None for group in timed.values() for item in group):
        caption += "; variants' legend entries give the measured speed-up and its lower bound"
    parts = ["<h3>Latency distribution</h3>"]
    for group, members in list(timed.items())[:MAX_FIGURES]:
        chosen, left = _failing_first(members, MAX_LINES, baseline_first=True)
        lone = not any(item["model"] == "baseline" for item in chosen)  # no baseline item of its own: show a paired one
        alt = _titled("per-query latency distributions", naming.group(group))
        parts += [_figure_tag(plots.latency_figure(_latency_curves(chosen, lone), alt),
                              _titled(caption, naming.group(group)), "latency"),
                  _left_out(len(chosen), left, "latency distributions", ", the baseline first, then failing ones, then in run order")]
    parts.append(_left_out(MAX_FIGURES, len(timed) - MAX_FIGURES, "spec and case groups", ", in run order")
                 if len(timed) > MAX_FIGURES else "")
    faster = [item for item in items if item["metrics"].get("speedup") is not None]
    if len(faster) >= 2:
        shown, left = _failing_first(faster, MAX_ROWS)
        named = len({item["contract"] for item in shown}) > 1
        rows = [(naming.item(i) if named else naming.model(i), i["metrics"]["speedup"],
                 i["metrics"]["speedup"] if i["metrics"].get("speedup_low") is None else i["metrics"]["speedup_low"],
                 i["outcome"] == "passed") for i in shown]
        thresholds = sorted({g["threshold"] for i in shown for g in i["gates"] if g["metric"] == "speedup" and g["threshold"]})
        image = plots.speedup_figure(rows, thresholds, "speed-up of each variant against the baseline")
        parts += [_figure_tag(image, "Speed-up against the baseline: the measured speed-up and its lower bound", "speedup"),
                  _left_out(len(shown), left, "speed-ups")]
    return parts


Bins = list[tuple[float, float, float, float]]  # a reliability diagram's (lower edge, confidence, accuracy, images)


def _calibration_data(item: dict[str, Any]) -> tuple[Bins, list[tuple[str, float, float]]] | None:
    """A calibration item's reliability bins and ``(class, accuracy, images)`` per class, from its series."""
    series = (item.get("series") or {}) if item.get("kind") == "calibration" else {}
    bins = list(zip(*(series.get(name) or [] for name in ("reliability_bin_low", "reliability_confidence",
                                                           "reliability_accuracy", "reliability_count"))))
    classes = [(f"{c:.0f}", accuracy, n) for c, accuracy, n in
               zip(*(series.get(name) or [] for name in ("class", "class_accuracy", "class_n")))]
    return (bins, classes) if bins and classes else None


def _calibration_plot(item: dict[str, Any], label: str) -> str | None:
    """A calibration item's reliability diagram beside its per-class accuracy, or None without their series."""
    from robustgate.checks.calibration import BINS  # the bins' width: the check's, not a copy of it

    data = _calibration_data(item)
    if data is None:
        return None
    worst = item["metrics"].get("worst_class")
    return plots.calibration_figure(*data, 1 / BINS, None if worst is None else f"{worst:.0f}",
                                    f"reliability diagram and accuracy per class: {label}")


def _calibration_caption(item: dict[str, Any], label: str) -> str:
    """``int8 :: calibration[amazon->webcam]: ECE 0.0412 on webcam, 0.0250 on amazon, the baseline's 0.0380; worst class
    3 at 0.4000``: what the figure's numbers mean, on which datasets."""
    m, datasets = item["metrics"], item.get("datasets") or []
    shown = [f"ECE {format_number(m['ece'])}" + (f" on {datasets[0]}" if datasets else "")] if m.get("ece") is not None else []
    shown += [f"{format_number(m[f'ece@{d}'])} on {d}" for d in datasets[1:] if m.get(f"ece@{d}") is not None]
    if m.get("baseline_ece") is not None:
        shown.append(f"the baseline's {format_number(m['baseline_ece'])}")
    worst = m.get("worst_class"), m.get("worst_class_accuracy")
    tail = f"; worst class {worst[0]:.0f} at {format_number(worst[1])}" if None not in worst else ""
    return f"{label}: {', '.join(shown)}{tail}" if shown or tail else label


def _calibration_section(items: list[dict[str, Any]], naming: _Naming) -> list[str]:
    """Each calibration item's reliability diagram and per-class accuracy, failing ones first."""
    drawable = [item for item in items if _calibration_data(item)]
    chosen, left = _failing_first(drawable, MAX_FIGURES)
    if not chosen:
        return []
    figures = [_figure_tag(_calibration_plot(item, naming.item(item)) or "", _calibration_caption(item, naming.item(item)),
                           "calibration") for item in chosen]
    return ["<h3>Reliability and accuracy per class</h3>", "<div class='plots'>", *figures, "</div>",
            _left_out(len(chosen), left, "calibration plots")]


def item_plot(item: dict[str, Any]) -> str | None:
    """The one plot of a single results item as an ``<img>`` tag (embedded PNG), or None when it has nothing to plot:
    a corruption heatmap, robust accuracy against eps for a sweep, a latency distribution or a reliability diagram."""
    item = upgraded_item(item)
    label = f"{model_label(item)} :: {item['contract']}"
    calibration = _calibration_plot(item, label)
    if calibration:
        return calibration
    if _corruption_cells(item):
        return _corruption_heatmap(item, label)
    sweep = _sweep(item)
    if sweep:
        return plots.sweep_figure({model_label(item): sweep}, label, _baseline_sweep([item]))
    if _timed(item):
        return plots.latency_figure(_latency_curves([item], paired=True), f"latency distribution: {label}")
    return None


def _cells(*cells: str, head: bool = False) -> str:
    tag = "th" if head else "td"
    return "<tr>" + "".join(f"<{tag}>{cell}</{tag}>" for cell in cells) + "</tr>"


def item_breakdown(item: dict[str, Any], notes: bool = False) -> str:
    """What the terminal's verdict shows for an item, as HTML: the gate table (measured, how it was read, threshold,
    the absolute value a relative gate reads against, result), caveats, intervals, the paired comparisons with the
    baseline, the attack's per-leg breakdown, the context line and the findings (and, with ``notes``, the notes)."""
    esc = html.escape
    parts = []
    rows = gate_rows(item)
    if rows:
        body = "".join(_cells(esc(r.metric), r.measured, esc(r.read_as), esc(r.threshold), esc(r.reference) or "—",
                              "ok" if r.passed else "<b class='FAIL'>FAIL</b>") for r in rows)
        parts.append("<table class='gates'><thead>" + _cells("gate", "measured", "read as", "threshold", "relative to",
                                                               "result", head=True) + f"</thead><tbody>{body}</tbody></table>")
    parts += [f"<p>weaker protocol: {esc(caveat)}</p>" for caveat in item.get("caveats", [])]
    shown = intervals(item)
    if shown:
        def end(value: float | None) -> str:
            return "—" if value is None else format_number(value)

        body = "".join(_cells(esc(name), format_number(est), f"[{end(low)}, {end(high)}]") for name, est, low, high in shown)
        parts.append("<table class='intervals'><thead>" + _cells("metric", "estimate", f"{interval_level(item)} interval",
                                                                 head=True) + f"</thead><tbody>{body}</tbody></table>")
    parts += [f"<p>{esc(line)}</p>" for line in paired_comparisons(item)]
    legs = attack_legs(item)
    if legs:
        methods = list(dict.fromkeys(method for leg in legs for method in leg.broken_by))
        head = _cells("strength", "n", *(("wrong unattacked" if m == "clean" else m) for m in methods), "twin agreement",
                      head=True)
        body = "".join(_cells(esc(leg.at.lstrip("@")) or "—", "—" if leg.n is None else f"{leg.n:.0f}",
                              *(f"{leg.broken_by.get(m, 0):.0f}" for m in methods),
                              "—" if leg.twin_agreement is None else f"{leg.twin_agreement:.4f}") for leg in legs)
        parts.append(f"<table class='legs'><caption>images each attack broke first (legs that broke none show 0)</caption>"
                     f"<thead>{head}</thead><tbody>{body}</tbody></table>")
    lines = context(item)
    if lines:
        parts.append(f"<p class='meta'>{esc(' · '.join(lines))}</p>")
    parts += [f"<p>finding: {esc(finding)}</p>" for finding in item.get("findings", [])]
    if notes:
        parts += [f"<p>{esc(note)}</p>" for note in item.get("notes", [])]
    return f"<div class='breakdown'>{''.join(parts)}</div>" if parts else ""


def _masking(item: dict[str, Any]) -> bool:
    """Whether an item's findings come from the attack checks' gradient-masking diagnostics."""
    return item.get("kind") == "attack" or "masking_findings" in item["metrics"]


def _findings_section(items: list[dict[str, Any]], naming: _Naming) -> list[str]:
    """Warnings about the evaluation itself, gradient masking first: at the top, where nobody scrolls past them."""
    findings = sorted(((item, finding) for item in items for finding in item.get("findings", [])),
                      key=lambda pair: not _masking(pair[0]))
    if not findings:
        return []
    esc = html.escape
    parts = ["<section class='findings'>", f"<h2>Findings</h2><p class='meta'>{len(findings)} warning"
             f"{'s' if len(findings) != 1 else ''} about the evaluation itself: the numbers they concern may not mean "
             "what they seem.</p>"]
    for item, finding in findings[:MAX_FINDINGS]:
        tag = "<span class='tag masking'>gradient masking</span>" if _masking(item) else "<span class='tag'>evaluation</span>"
        parts.append(f"<div class='finding'>{tag}<b>{esc(naming.item(item))}</b>: {esc(finding)}</div>")
    if len(findings) > MAX_FINDINGS:
        parts.append(f"<p class='note'>and {len(findings) - MAX_FINDINGS} more in results.json.</p>")
    return parts + ["</section>"]


def _contracts_table(items: list[dict[str, Any]], naming: _Naming) -> list[str]:
    """One row per item of a kind (a spec column when the page holds several specs); each opens onto its breakdown."""
    esc = html.escape
    ranked, _ = _failing_first(items, len(items))
    order = "<p class='note'>Failing contracts first, then in run order.</p>" if ranked != items else ""
    spec_head = "<th>spec</th>" if naming.many_specs else ""
    rows = [f"{order}<table class='cards contracts'><thead><tr>{spec_head}<th>model</th><th>contract</th>"
            "<th>result</th><th>measured</th></tr></thead><tbody>"]
    for item in ranked:
        result = RESULT[item["outcome"]]
        measured = esc(describe_measured(item))
        breakdown = item_breakdown(item)
        if breakdown:
            measured = f"<details{' open' if _failing(item) else ''}><summary>{measured}</summary>{breakdown}</details>"
        technique = item.get("technique")
        model = esc(model_label(item)) + (f"<small>{esc(technique)}</small>" if technique and technique != item["model"] else "")
        notes = "".join(f"<small>{esc(note)}</small>" for note in item.get("notes", []))
        spec = f"<td data-label='spec'>{esc(item['spec'])}</td>" if naming.many_specs else ""
        rows.append(f"<tr>{spec}<td data-label='model'>{model}</td><td data-label='contract'>{_breakable(item['contract'])}</td>"
                    f"<td data-label='result' class='{result}'>{result}</td>"
                    f"<td data-label='measured'>{measured}{notes}</td></tr>")
    return rows + ["</tbody></table>"]


# the figures a contract kind's section draws below its table, by kind; a kind without an entry shows its table alone
_FIGURES: dict[str, Callable[[list[dict[str, Any]], _Naming], list[str]]] = {
    "attack": _sweep_section,
    "corruptions": _corruption_section,
    "latency": _latency_section,
    "calibration": _calibration_section,
}


def _anchor(kind: str) -> str:
    return "kind-" + (re.sub(r"[^\w-]", "-", kind) or "other")


def _kinds_list(sections: list[KindSection]) -> list[str]:
    """Each contract kind's section, linked, with how its contracts ended: the failing kinds are found at the top."""
    if not sections:
        return []
    esc = html.escape
    entries = []
    for section in sections:
        failing = sum(_failing(item) for item in section.items)
        ended = esc(headline(item["outcome"] for item in section.items))
        entries.append(f"<li><a href='#{_anchor(section.kind)}'>{esc(section.title)}</a>: "
                       + (f"<b class='FAIL'>{ended}</b>" if failing else ended) + "</li>")
    return ["<h2>Contracts</h2>", "<ul class='kinds'>", *entries, "</ul>",
            "<p class='note'>Open a row of a section's table for its gates, intervals and breakdown.</p>"]


def _kind_section(section: KindSection, naming: _Naming) -> list[str]:
    """A contract kind's section: its declared title and description, its items' table, then its kind's figures."""
    esc = html.escape
    figures = _FIGURES.get(section.kind)
    return [f"<section id='{_anchor(section.kind)}' data-kind='{esc(section.kind)}'>", f"<h2>{esc(section.title)}</h2>",
            f"<p class='meta'>{esc(section.description)}</p>" if section.description else "",
            *_contracts_table(section.items, naming), *(figures(section.items, naming) if figures else []), "</section>"]


def _breakable(label: str) -> str:
    """An item's label, escaped, with line-break opportunities after its punctuation (``<wbr>``: copied text keeps the
    id as it is, for ``-k``), so a long id wraps in a narrow column instead of widening the table."""
    return "<wbr>".join(html.escape(part) for part in re.split(r"(?<=[\[@+:>])", label))


MAX_CHANGES = 200  # rows of the comparison with the previous release


def _changes_section(items: list[dict[str, Any]], naming: _Naming) -> list[str]:
    """Each item's quality metrics against the previous release (--robustgate-baseline), worse ones first.

    Per item: the metrics its gates read, else those measured once per item (no ``@target`` breakdowns)."""
    import robustgate.checks  # noqa: F401 (registers the contract kinds, whose declarations say each metric's direction)
    from robustgate.checks.base import metric_direction

    rows = []
    for item in items:
        previous = item.get("previous") or {}
        gated = {g["metric"].removeprefix("regression.") for g in item["gates"]}
        names = [m for m in previous if m in gated] or [m for m in previous if "@" not in m]
        for metric in names:
            before, now = previous[metric], item["metrics"].get(metric)
            if before is None or now is None:
                continue
            worse = (before - now) if metric_direction(metric) else (now - before)
            rows.append((worse, item, metric, before, now))
    if not rows:
        return []
    rows.sort(key=lambda row: -((row[0] > 0) - (row[0] < 0)))  # worse, same, better; units differ, so no finer order
    esc = html.escape
    parts = ["<h2>Changes since the previous release</h2>", "<table class='cards changes'><thead><tr><th>model</th><th>contract</th>"
             "<th>metric</th><th>previous</th><th>now</th><th>change</th></tr></thead><tbody>"]
    for worse, item, metric, before, now in rows[:MAX_CHANGES]:
        verdict = "worse" if worse > 0 else "better" if worse < 0 else "same"
        parts.append(f"<tr><td data-label='model'>{esc(naming.model(item))}</td><td data-label='contract'>{esc(item['contract'])}</td>"
                     f"<td data-label='metric'>{esc(metric)}</td><td data-label='previous'>{format_number(before)}</td>"
                     f"<td data-label='now'>{format_number(now)}</td>"
                     f"<td data-label='change' class='{verdict}'>{now - before:+.4g} ({verdict})</td></tr>")
    parts.append("</tbody></table>")
    return parts + [_left_out(min(len(rows), MAX_CHANGES), max(len(rows) - MAX_CHANGES, 0), "changes", order=", the worst first")]


def render_html(doc: dict[str, Any]) -> str:
    doc = upgraded(doc)
    items, not_run = doc["items"], doc.get("not_run") or []
    naming, sections = _Naming.of(items), by_kind(items)
    esc = html.escape
    head = headline((item["outcome"] for item in items), len(not_run), bool(doc.get("interrupted")))
    env = doc["environment"]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>robustgate report</title><style>{_STYLE}</style></head><body>",
        f"<h1>robustgate: {esc(head)}</h1>",
        f"<p class='meta'>{esc(', '.join(s['name'] for s in doc['specs'].values()))} · {esc(str(env['cpu']))} · "
        f"torch {esc(str(env['torch']))} · quantized engine {esc(str(env['quantized_engine']))} · "
        f"robustgate {esc(str(env['robustgate']))} · {doc['timings']['total_seconds']:.0f} s"
        + (" · <b>interrupted</b>" if doc.get("interrupted") else "") + "</p>",
        *(f"<p class='meta'><b>{esc(line)}</b></p>" for line in not_run_lines(not_run)),
        f"<p class='meta'>Compared with the previous release {esc(doc['baseline']['path'])} "
        "(<code>regression.*</code> gates: positive is worse).</p>" if doc.get("baseline") else "",
        *(f"<p class='meta'><b>Trusted weights</b> (unpickled with <code>trusted: true</code>, which can run code): "
          f"<code>{esc(trusted)}</code></p>" for trusted in trusted_weights(doc)),
        *_findings_section(items, naming),
        *_kinds_list(sections),
        *_changes_section(items, naming),
        *_accuracy_section(items, naming),
        *_compression_section(items, naming),
        *(part for section in sections for part in _kind_section(section, naming)),
        "</body></html>",
    ]
    return "\n".join(part for part in parts if part) + "\n"
