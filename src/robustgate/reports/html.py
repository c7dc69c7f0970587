"""``report.html``: one self-contained page (inline CSS, plots as embedded PNGs, no network fetch)
rendered from a results document, so ``robustgate report`` can redraw it from ``results.json``.

Plots are drawn from the metrics any item reports, by name: ``accuracy`` per dataset against the
size metrics (``size_ratio``), ``robust_accuracy@EPS`` sweeps, ``accuracy@CORRUPTION/SEVERITY`` grids
and the ``latency_ms`` distributions. A plot whose data is absent is left out; a run with hundreds of
items gets at most ``MAX_FIGURES`` figures of a kind (failing items first) and the page says what it left out.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
import struct
from collections import defaultdict
from typing import Any

from robustgate.checks.outcome import format_number
from robustgate.reports.markdown import describe_measured
from robustgate.reports.results import model_label, trusted_weights

MAX_FIGURES = 8  # per-item figures of one kind (heatmaps, eps sweeps)
MAX_LINES = 8  # curves or bar groups on one axes (the colour cycle has 10)
MAX_ROWS = 40  # rows of a summary plot (corruption summary, speed-ups)
MAX_LABELS = 12  # point labels on a scatter: beyond, only the best accuracy for its size is named
MAX_FINDINGS = 50

_STYLE = """
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:1100px;padding:1em;color:#1d1d1f;background:#fff}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
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
@media (max-width:640px){
body{padding:.7em}h1{font-size:1.3em}
.cards thead{display:none}
.cards,.cards tbody,.cards tr,.cards td{display:block;width:auto}
.cards tr{border:1px solid #ddd;border-radius:8px;margin:.7em 0;padding:.35em .6em}
.cards tr:has(.FAIL),.cards tr:has(.ERROR){border-color:#c0162a;border-width:2px}
.cards td{border:0;padding:.12em 0 .12em 6.4em;position:relative;overflow-wrap:anywhere}
.cards td::before{content:attr(data-label);position:absolute;left:0;width:6em;color:#666;font-weight:400}
}
@media print{
body{max-width:none;padding:0;font-size:10pt}
h2{break-after:avoid}figure,tr,.finding{break-inside:avoid}
.plots{grid-template-columns:1fr 1fr}
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}
}
"""
_RESULT = {"passed": "PASS", "failed": "FAIL", "error": "ERROR", "skipped": "SKIP"}
_MARKERS = "osD^vPX*<>"
_PERCENTILES = ((50, "o"), (90, "s"), (99, "^"))  # marked on each latency curve


def _png(fig: Any, alt: str) -> str:
    from PIL import Image

    drawn, buffer = io.BytesIO(), io.BytesIO()
    fig.savefig(drawn, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    with Image.open(drawn) as image:  # 256 colours: a third of the bytes, no difference to see
        image.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(buffer, format="PNG")
    data = buffer.getvalue()
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk: lets the browser lay the page out before decoding
    return (f'<img alt="{html.escape(alt)}" width="{width}" height="{height}" '
            f'src="data:image/png;base64,{base64.b64encode(data).decode()}">')


def _figure(width: float = 7.0, height: float = 3.6) -> tuple[Any, Any]:
    # matplotlib's object API, not pyplot: no global figure state or backend to switch in a test run
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    return fig, fig.subplots()


def _figure_tag(image: str, caption: str, kind: str) -> str:
    return f"<figure data-plot='{kind}'>{image}<figcaption>{html.escape(caption)}</figcaption></figure>"


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


def _label(item: dict[str, Any]) -> str:
    return f"{model_label(item)} :: {item['contract']}"


def _dataset(contract: str) -> str | None:
    match = re.fullmatch(r"accuracy\[(.+?)(#\d+)?\]", contract)
    return match.group(1) if match else None


def _accuracy_readings(item: dict[str, Any]) -> list[tuple[str, float, float, float, float | None]]:
    """``(dataset, accuracy, low, high, baseline accuracy)`` per dataset an item measured clean accuracy on:
    an ``accuracy[...]`` item on its dataset, a ``shift[...]`` item on its source and each target."""
    m = item["metrics"]

    def reading(dataset: str, name: str, suffix: str = "") -> tuple[str, float, float, float, float | None] | None:
        estimate = m.get(f"{name}{suffix}")
        if estimate is None:
            return None
        low, high = (m.get(f"{name}_{end}{suffix}") for end in ("low", "high"))
        return (dataset, estimate, estimate if low is None else low, estimate if high is None else high,
                m.get(f"baseline_{name}{suffix}"))

    dataset = _dataset(item["contract"])
    if dataset:
        found = [reading(dataset, "accuracy")]
    else:
        shift = re.fullmatch(r"shift\[(.+?)->.+\]", item["contract"])
        if not shift:
            return []
        found = [reading(shift.group(1), "source_accuracy")]  # targets from the metrics: names may hold '+' or '->'
        found += [reading(key[len("accuracy@"):], "accuracy", key[len("accuracy"):]) for key in m
                  if key.startswith("accuracy@")]
    return [r for r in found if r is not None]


def _accuracy_section(items: list[dict[str, Any]]) -> list[str]:
    """Accuracy by model and dataset: one plot, or one per matrix case (each case has its own models and data)."""
    by_case: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        by_case[item.get("case") or ""].append(item)
    if len(by_case) == 1:
        accuracy = _accuracy_plot(items)
        if not accuracy:
            return []
        return ["<h2>Accuracy by model and dataset</h2>", accuracy[0],
                _left_out(MAX_LINES, accuracy[1], "models", order=", the baseline first, then in run order")]
    plots = [(case, plot) for case, chosen in by_case.items() if (plot := _accuracy_plot(chosen, case))]
    if not plots:
        return []
    figures = [_figure_tag(image, case + (f" ({MAX_LINES} of {MAX_LINES + left} models)" if left else ""), "accuracy")
               for case, (image, left) in plots[:MAX_FIGURES]]
    return ["<h2>Accuracy by model and dataset</h2>", "<div class='plots'>", *figures, "</div>",
            _left_out(MAX_FIGURES, len(plots) - MAX_FIGURES, "matrix cases", order=", in run order")
            if len(plots) > MAX_FIGURES else ""]


def _accuracy_plot(items: list[dict[str, Any]], case: str = "") -> tuple[str, int] | None:
    """Clean accuracy of every model on every dataset (from accuracy[...] and shift[...] items); and how many models
    were left out."""
    values: dict[str, dict[str, float]] = defaultdict(dict)
    for item in items:
        for dataset, accuracy, _, _, baseline in _accuracy_readings(item):
            values[model_label(item)][dataset] = accuracy
            if baseline is not None:  # a drop gate measured the baseline too
                values[_baseline_label(item)].setdefault(dataset, baseline)
    if not values:
        return None
    models = sorted(values, key=lambda model: model.split("::")[-1] != "baseline")[:MAX_LINES]
    datasets = sorted({d for per in values.values() for d in per})
    fig, ax = _figure()
    width = 0.8 / len(models)
    for i, model in enumerate(models):
        per = values[model]
        xs = [j + i * width for j, d in enumerate(datasets) if d in per]
        ax.bar(xs, [per[d] for d in datasets if d in per], width, label=model)
    ax.set_xticks([j + width * (len(models) - 1) / 2 for j in range(len(datasets))], datasets)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=8, ncols=min(len(models), 5), loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    return _png(fig, "accuracy by model and dataset" + (f": {case}" if case else "")), len(values) - len(models)


def _baseline_label(item: dict[str, Any]) -> str:
    """The label of the baseline an item was compared with (its case's, in a spec matrix)."""
    return model_label({"model": "baseline", "case": item.get("case")})


def _annotate_apart(ax: Any, points: list[tuple[float, float, str]]) -> None:
    """Name points, skipping a name that would overlap one already drawn."""
    ax.get_xlim(), ax.get_ylim()  # settles the autoscaled limits, so transData is final
    placed: list[tuple[float, float]] = []
    for x, y, name in points:
        px, py = ax.transData.transform((x, y))
        if all(abs(px - qx) > 70 or abs(py - qy) > 12 for qx, qy in placed):
            ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
            placed.append((px, py))


def _pareto(points: list[tuple[float, float, str]]) -> set[str]:
    """The models no smaller model beats on accuracy: the ones worth naming on a crowded scatter."""
    best, front = -math.inf, set()
    for _, accuracy, model in sorted(points, key=lambda p: (p[0], -p[1])):
        if accuracy > best:
            best = accuracy
            front.add(model)
    return front


def _compression_plots(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Accuracy against model size (bytes, relative to the baseline) per dataset, one marker per technique."""
    points: dict[str, dict[str, tuple[float, float, float, float, str]]] = defaultdict(dict)
    for item in items:
        size = item["metrics"].get("size_ratio")
        if size is None:
            continue
        for dataset, accuracy, low, high, base in _accuracy_readings(item):
            points[dataset][model_label(item)] = (size, accuracy, low, high, item.get("technique") or "?")
            if base is not None:  # a drop gate measured the baseline, which may have no item here
                points[dataset].setdefault(_baseline_label(item), (1.0, base, base, base, "baseline"))
    techniques = list(dict.fromkeys(p[4] for per in points.values() for p in sorted(per.values(), key=lambda p: -p[0])))
    plots = []
    for dataset, per in sorted(points.items()):
        crowded = len(per) > MAX_LABELS  # then no interval bars, and names only on the best-for-size front
        fig, ax = _figure(5.6, 3.6)
        for k, technique in enumerate(techniques):
            chosen = [p for p in per.values() if p[4] == technique]
            if chosen:
                colour = "black" if technique == "baseline" else f"C{k % 10}"
                spread = None if crowded else [[p[1] - p[2] for p in chosen], [p[3] - p[1] for p in chosen]]
                ax.errorbar([p[0] for p in chosen], [p[1] for p in chosen], yerr=spread, fmt=_MARKERS[k % len(_MARKERS)],
                            color=colour, ecolor=colour, elinewidth=0.8, capsize=2, markersize=4 if crowded else 6,
                            label=technique)
        shown = [(p[0], p[1], model) for model, p in per.items()]
        ratios = [p[0] for p in shown]
        if min(ratios) < 0.1:
            ax.set_xscale("log")
            _plain_ticks(ax.xaxis)
        else:
            ax.set_xlim(0, max(1.1, max(ratios) * 1.1))
        ax.axvline(1.0, color="#bbb", linewidth=0.8, zorder=0)
        named = _pareto(shown) if crowded else {model for *_, model in shown}
        _annotate_apart(ax, [p for p in sorted(shown, key=lambda p: -p[1]) if p[2] in named])
        ax.set_xlabel("model size relative to the baseline (bytes)")
        ax.set_ylabel(f"accuracy on {dataset}")
        ax.legend(fontsize=8, title="technique", title_fontsize=8,
                  **({"loc": "upper left", "bbox_to_anchor": (1.01, 1.0)} if crowded else {}))
        plots.append((dataset, _png(fig, f"accuracy on {dataset} against model size, by technique")))
    return plots


def _plain_ticks(axis: Any) -> None:
    """Log-scale ticks at 1, 2 and 5 times powers of ten, written as plain numbers (0.2, not 2x10^-1)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())


def _strength(text: str) -> float:
    number, _, denominator = text.partition("/")
    return float(number) / float(denominator) if denominator else float(number)


def _sweep(item: dict[str, Any]) -> list[tuple[float, float, float, float]]:
    """(eps, robust accuracy, low, high) of an attack item that swept more than one strength."""
    m = item["metrics"]
    points = []
    for key, value in m.items():
        if key.startswith("robust_accuracy@") and value is not None:
            at = key.split("@", 1)[1]
            low, high = m.get(f"robust_accuracy_low@{at}"), m.get(f"robust_accuracy_high@{at}")
            points.append((_strength(at), value, value if low is None else low, value if high is None else high))
    return sorted(points) if len(points) >= 2 else []


def _sweep_figure(curves: dict[str, list[tuple[float, float, float, float]]], title: str) -> str:
    if re.search(r"\bsalt_pepper(_search)?@", title):  # their strength is the share of pixels flipped, not a radius
        return _draw_sweep(curves, title, 1, "amount (share of pixels)")
    levels = all(abs(p[0] * 255 - round(p[0] * 255)) < 1e-6 for points in curves.values() for p in points)
    return _draw_sweep(curves, title, 255 if levels else 1, "eps (x/255)" if levels else "eps")


def _draw_sweep(curves: dict[str, list[tuple[float, float, float, float]]], title: str, scale: int, axis: str) -> str:
    fig, ax = _figure(5.6, 3.4)
    for model, points in curves.items():
        xs = [p[0] * scale for p in points]
        (line,) = ax.plot(xs, [p[1] for p in points], marker="o", label=model)
        ax.fill_between(xs, [p[2] for p in points], [p[3] for p in points], color=line.get_color(), alpha=0.15, linewidth=0)
    ax.set_xlabel(axis)
    ax.set_ylabel("robust accuracy")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, **({"loc": "upper left", "bbox_to_anchor": (1.01, 1.0)} if len(curves) > 4 else {}))
    return _png(fig, f"robust accuracy against {axis.split()[0]}: {title}")


def _sweep_section(items: list[dict[str, Any]]) -> list[str]:
    """Robust accuracy against eps (or amount), one figure per attack contract with a sweep, one line per model."""
    by_contract: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        if _sweep(item):
            by_contract[item["contract"]].append(item)
    if not by_contract:
        return []
    # contracts with a failing model first, so a cap never hides a broken sweep
    contracts = sorted(by_contract.items(), key=lambda entry: not any(_failing(i) for i in entry[1]))
    parts, figures = ["<h2>Robust accuracy against attack strength</h2>"], []
    for contract, swept in contracts[:MAX_FIGURES]:
        chosen, left = _failing_first(swept, MAX_LINES)
        caption = contract + (f" ({len(chosen)} of {len(swept)} models, failing ones first)" if left else "")
        figures.append(_figure_tag(_sweep_figure({model_label(i): _sweep(i) for i in chosen}, contract), caption, "attack"))
    parts += ["<div class='plots'>", *figures, "</div>"]
    if len(contracts) > MAX_FIGURES:
        parts.append(f"<p class='note'>Showing {MAX_FIGURES} of {len(contracts)} attack contracts with a sweep, failing "
                     "ones first; results.json holds them all.</p>")
    return parts


def _corruption_cells(item: dict[str, Any]) -> dict[tuple[str, int], float]:
    cells = {}
    for key, value in item["metrics"].items():
        match = re.fullmatch(r"accuracy@(\w+)/(\d+)", key)
        if match and value is not None:
            cells[(match.group(1), int(match.group(2)))] = value
    return cells


def _heatmap(rows: list[str], columns: list[str], grid: list[list[float]], xlabel: str, alt: str, row_height: float = 0.3) -> str:
    fig, ax = _figure(max(4.0, 0.45 * len(columns) + 3.2), row_height * len(rows) + 1.2)
    image = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_xticks(range(len(columns)), columns, fontsize=8, rotation=0 if len(columns) <= 6 else 45,
                  ha="center" if len(columns) <= 6 else "right")
    ax.set_xlabel(xlabel)
    if len(columns) <= 8:
        for i, row in enumerate(grid):
            for j, value in enumerate(row):
                if not math.isnan(value):
                    ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color="white" if value < 0.6 else "black")
    fig.colorbar(image, ax=ax, label="accuracy")
    return _png(fig, alt)


def _corruption_heatmap(item: dict[str, Any]) -> str | None:
    """Accuracy by corruption and severity of one corruptions item."""
    cells = _corruption_cells(item)
    if not cells:
        return None
    names = list(dict.fromkeys(name for name, _ in cells))
    severities = sorted({s for _, s in cells})
    grid = [[cells.get((n, s), math.nan) for s in severities] for n in names]
    return _heatmap(names, [str(s) for s in severities], grid, "severity", f"corruption accuracy: {_label(item)}")


def _corruption_summary(items: list[dict[str, Any]]) -> str:
    """Mean accuracy over severities per corruption, one row per item: the lowest mean first."""
    rows = []
    for item in items:
        per: dict[str, list[float]] = defaultdict(list)
        for (name, _), value in _corruption_cells(item).items():
            per[name].append(value)
        means = {name: sum(v) / len(v) for name, v in per.items()}
        label = model_label(item) if len({i["contract"] for i in items}) == 1 else _label(item)
        rows.append((sum(means.values()) / len(means), label, means))
    rows.sort(key=lambda row: row[0])
    rows = rows[:MAX_ROWS]
    names = list(dict.fromkeys(name for *_, means in rows for name in means))
    grid = [[means.get(name, math.nan) for name in names] for *_, means in rows]
    return _heatmap([row[1] for row in rows], names, grid, "corruption (mean over severities)",
                    "corruption accuracy of every corruptions item", row_height=0.2)


def _corruption_section(items: list[dict[str, Any]]) -> list[str]:
    corrupted = [item for item in items if _corruption_cells(item)]
    if not corrupted:
        return []
    chosen, left = _failing_first(corrupted, MAX_FIGURES)
    parts = ["<h2>Corruption accuracy</h2>"]
    if left:
        shown = min(len(corrupted), MAX_ROWS)
        contracts = sorted({item["contract"] for item in corrupted})
        caption = (f"{', '.join(contracts) if len(contracts) <= 3 else 'All corruptions contracts'}: every model, mean "
                   f"accuracy over severities ({shown} of {len(corrupted)} items, the lowest mean first)")
        parts.append(_figure_tag(_corruption_summary(corrupted), caption, "corruptions-summary"))
    heatmaps = [_figure_tag(_corruption_heatmap(item) or "", _label(item), "corruptions") for item in chosen]
    parts += ["<div class='plots'>", *heatmaps, "</div>"]
    parts.append(_left_out(len(chosen), left, "heatmaps"))
    return parts


def _timed(item: dict[str, Any]) -> bool:
    return len((item.get("series") or {}).get("latency_ms") or []) >= 2


def _latency_figure(curves: list[tuple[str, list[float], str]], alt: str) -> str:
    """Per-query latency as an ECDF (the series are the 0..100th percentiles), p50/p90/p99 marked on each curve."""
    fig, ax = _figure(6.4, 3.6)
    for label, series, style in curves:
        fractions = [k / (len(series) - 1) for k in range(len(series))]
        (line,) = ax.plot(series, fractions, linestyle=style, linewidth=1.6 if style == "-" else 1.0, label=label)
        if style == "-" and len(series) == 101:
            for at, marker in _PERCENTILES:
                ax.plot([series[at]], [at / 100], marker=marker, color=line.get_color(), markersize=5, linestyle="none")
    low, high = min(min(s) for _, s, _ in curves), max(max(s) for _, s, _ in curves)
    if low > 0 and high / low > 8:
        ax.set_xscale("log")
        _plain_ticks(ax.xaxis)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0.0, -0.16), ncols=1 if len(curves) <= 4 else 2, frameon=False)
    ax.set_ylim(0, 1.02)
    scale = ", log scale" if ax.get_xscale() == "log" else ""
    ax.set_xlabel(f"latency per query (ms{scale});  ● p50  ■ p90  ▲ p99")
    ax.set_ylabel("fraction of queries")
    ax.grid(alpha=0.3)
    return _png(fig, alt)


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
        name = _label(item) if named else model_label(item)
        m, series = item["metrics"], item.get("series") or {}
        p50 = f": p50 {m['p50_ms']:.3g} ms" if m.get("p50_ms") is not None else ""
        curves.append((f"{name}{p50}{_speedup_text(m)}", series["latency_ms"], "-"))
        if paired and len(series.get("baseline_latency_ms") or []) >= 2:
            curves.append((f"baseline, timed with {model_label(item)}", series["baseline_latency_ms"], "--"))
            paired = False
    return curves


def _speedup_figure(items: list[dict[str, Any]]) -> str:
    fig, ax = _figure(6.0, 0.25 * len(items) + 1.1)
    for k, item in enumerate(items):
        m = item["metrics"]
        low = m.get("speedup_low") if m.get("speedup_low") is not None else m["speedup"]
        ax.plot([low, m["speedup"]], [k, k], color="#888", linewidth=2, solid_capstyle="butt")
        ax.plot([m["speedup"]], [k], "o", color="C0" if item["outcome"] == "passed" else "C3")
    ax.axvline(1.0, color="#bbb", linewidth=0.8)
    for threshold in sorted({g["threshold"] for i in items for g in i["gates"] if g["metric"] == "speedup" and g["threshold"]}):
        ax.axvline(threshold, color="C3", linestyle=":", linewidth=1, label=f"gate: ≥ {threshold:g}")
    named = len({item["contract"] for item in items}) > 1
    ax.set_yticks(range(len(items)), [_label(i) if named else model_label(i) for i in items], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("speed-up against the baseline (line: from its lower bound)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    return _png(fig, "speed-up of each variant against the baseline")


def _latency_section(items: list[dict[str, Any]]) -> list[str]:
    timed = [item for item in items if _timed(item)]
    if not timed:
        return []
    chosen, left = _failing_first(timed, MAX_LINES, baseline_first=True)
    lone = not any(item["model"] == "baseline" for item in chosen)  # no baseline item of its own: show a paired one
    caption = "Per-query latency (batch and threads as in each contract's note)"
    if any(item["metrics"].get("speedup") is not None for item in chosen):
        caption += "; variants' legend entries give the measured speed-up and its lower bound"
    parts = ["<h2>Latency distribution</h2>",
             _figure_tag(_latency_figure(_latency_curves(chosen, lone), "per-query latency distributions"), caption, "latency"),
             _left_out(len(chosen), left, "latency distributions", ", the baseline first, then failing ones, then in run order")]
    faster = [item for item in items if item["metrics"].get("speedup") is not None]
    if len(faster) >= 2:
        shown, left = _failing_first(faster, MAX_ROWS)
        parts += [_figure_tag(_speedup_figure(shown), "Speed-up against the baseline: the measured speed-up and its "
                              "lower bound", "speedup"), _left_out(len(shown), left, "speed-ups")]
    return parts


def item_plot(item: dict[str, Any]) -> str | None:
    """The one plot of a single results item as an ``<img>`` tag (embedded PNG), or None when it has nothing to plot:
    a corruption heatmap, robust accuracy against eps for a sweep, or a latency distribution."""
    if _corruption_cells(item):
        return _corruption_heatmap(item)
    sweep = _sweep(item)
    if sweep:
        return _sweep_figure({model_label(item): sweep}, _label(item))
    if _timed(item):
        return _latency_figure(_latency_curves([item], paired=True), f"latency distribution: {_label(item)}")
    return None


def _masking(item: dict[str, Any]) -> bool:
    """Whether an item's findings come from the attack checks' gradient-masking diagnostics."""
    return item["contract"].startswith("attack") or "masking_findings" in item["metrics"]


def _findings_section(items: list[dict[str, Any]]) -> list[str]:
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
        parts.append(f"<div class='finding'>{tag}<b>{esc(_label(item))}</b>: {esc(finding)}</div>")
    if len(findings) > MAX_FINDINGS:
        parts.append(f"<p class='note'>and {len(findings) - MAX_FINDINGS} more in results.json.</p>")
    return parts + ["</section>"]


def _contracts_table(items: list[dict[str, Any]]) -> list[str]:
    esc = html.escape
    ranked, _ = _failing_first(items, len(items))
    order = "<p class='note'>Failing contracts first, then in run order.</p>" if ranked != items else ""
    rows = [f"<h2>Contracts</h2>{order}<table class='cards contracts'><thead><tr><th>model</th><th>contract</th><th>result</th>"
            "<th>measured</th></tr></thead><tbody>"]
    for item in ranked:
        result = _RESULT[item["outcome"]]
        measured = describe_measured(item)
        technique = item.get("technique")
        model = esc(model_label(item)) + (f"<small>{esc(technique)}</small>" if technique and technique != item["model"] else "")
        notes = "".join(f"<small>{esc(note)}</small>" for note in item.get("notes", []))
        rows.append(f"<tr><td data-label='model'>{model}</td><td data-label='contract'>{esc(item['contract'])}</td>"
                    f"<td data-label='result' class='{result}'>{result}</td>"
                    f"<td data-label='measured'>{esc(measured)}{notes}</td></tr>")
    return rows + ["</tbody></table>"]


MAX_CHANGES = 200  # rows of the comparison with the previous release


def _changes_section(items: list[dict[str, Any]]) -> list[str]:
    """Each item's quality metrics against the previous release (--robustgate-baseline), worse ones first.

    Per item: the metrics its gates read, else those measured once per item (no ``@target`` breakdowns)."""
    from robustgate.checks.regression import higher_is_better

    rows = []
    for item in items:
        previous = item.get("previous") or {}
        gated = {g["metric"].removeprefix("regression.") for g in item["gates"]}
        names = [m for m in previous if m in gated] or [m for m in previous if "@" not in m]
        for metric in names:
            before, now = previous[metric], item["metrics"].get(metric)
            if before is None or now is None:
                continue
            worse = (before - now) if higher_is_better(metric) else (now - before)
            rows.append((worse, item, metric, before, now))
    if not rows:
        return []
    rows.sort(key=lambda row: -((row[0] > 0) - (row[0] < 0)))  # worse, same, better; units differ, so no finer order
    esc = html.escape
    parts = ["<h2>Changes since the previous release</h2>", "<table class='cards changes'><thead><tr><th>model</th><th>contract</th>"
             "<th>metric</th><th>previous</th><th>now</th><th>change</th></tr></thead><tbody>"]
    for worse, item, metric, before, now in rows[:MAX_CHANGES]:
        verdict = "worse" if worse > 0 else "better" if worse < 0 else "same"
        parts.append(f"<tr><td data-label='model'>{esc(model_label(item))}</td><td data-label='contract'>{esc(item['contract'])}</td>"
                     f"<td data-label='metric'>{esc(metric)}</td><td data-label='previous'>{format_number(before)}</td>"
                     f"<td data-label='now'>{format_number(now)}</td>"
                     f"<td data-label='change' class='{verdict}'>{now - before:+.4g} ({verdict})</td></tr>")
    parts.append("</tbody></table>")
    return parts + [_left_out(min(len(rows), MAX_CHANGES), max(len(rows) - MAX_CHANGES, 0), "changes", order=", the worst first")]


def render_html(doc: dict[str, Any]) -> str:
    items = doc["items"]
    esc = html.escape
    counts = {name: sum(item["outcome"] == key for item in items) for key, name in _RESULT.items()}
    head = ", ".join(f"{n} {name.lower()}" for name, n in counts.items() if n) or "no contracts ran"
    env = doc["environment"]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>robustgate report</title><style>{_STYLE}</style></head><body>",
        f"<h1>robustgate: {len(items)} contracts, {esc(head)}</h1>",
        f"<p class='meta'>{esc(', '.join(s['name'] for s in doc['specs'].values()))} · {esc(str(env['cpu']))} · "
        f"torch {esc(str(env['torch']))} · quantized engine {esc(str(env['quantized_engine']))} · "
        f"robustgate {esc(str(env['robustgate']))} · {doc['timings']['total_seconds']:.0f} s"
        + (" · <b>interrupted</b>" if doc.get("interrupted") else "") + "</p>",
        f"<p class='meta'>Compared with the previous release {esc(doc['baseline']['path'])} "
        "(<code>regression.*</code> gates: positive is worse).</p>" if doc.get("baseline") else "",
        *(f"<p class='meta'><b>Trusted weights</b> (unpickled with <code>trusted: true</code>, which can run code): "
          f"<code>{esc(trusted)}</code></p>" for trusted in trusted_weights(doc)),
        *_findings_section(items),
        *_contracts_table(items),
        *_changes_section(items),
    ]
    parts += _accuracy_section(items)
    compression = _compression_plots(items)
    if compression:
        parts += ["<h2>Accuracy against model size</h2>",
                  "<p class='note'>Size is the model's bytes relative to the baseline's: int8 keeps every parameter but "
                  "stores each in one byte instead of four (plus per-layer overheads). Bars: each accuracy's "
                  "confidence interval; one marker per technique.</p>",
                  "<div class='plots'>", *(_figure_tag(image, dataset, "compression") for dataset, image in compression),
                  "</div>"]
    parts += _sweep_section(items) + _corruption_section(items) + _latency_section(items)
    parts.append("</body></html>")
    return "\n".join(part for part in parts if part) + "\n"
