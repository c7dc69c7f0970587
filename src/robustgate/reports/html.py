"""``report.html``: one self-contained page (inline CSS, plots as embedded PNGs, no network fetch)
rendered from a results document, so ``robustgate report`` can redraw it from ``results.json``.

Plots are drawn from the metrics any item reports, by name: ``accuracy`` per dataset,
``robust_accuracy@EPS`` sweeps, ``accuracy@CORRUPTION/SEVERITY`` grids and latency percentiles.
"""

from __future__ import annotations

import base64
import html
import io
import re
from collections import defaultdict
from typing import Any

from robustgate.reports.markdown import describe_gate

_STYLE = """
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:1100px;padding:1em;color:#1d1d1f}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%;font-size:.92em}td,th{border-bottom:1px solid #eee;padding:.35em .5em;text-align:left;vertical-align:top}
.PASS{color:#0a7d32;font-weight:600}.FAIL{color:#c0162a;font-weight:700}.ERROR{color:#b35c00;font-weight:700}.SKIP{color:#777}
.finding{background:#fff4e0;border-left:4px solid #e08a00;padding:.4em .7em;margin:.3em 0}
.meta{color:#666;font-size:.9em}img{max-width:100%;height:auto}.scroll{overflow-x:auto}
@media print{body{max-width:none}.scroll{overflow:visible}}
"""
_RESULT = {"passed": "PASS", "failed": "FAIL", "error": "ERROR", "skipped": "SKIP"}


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return f'<img alt="" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def _figure(width: float = 7.0, height: float = 3.6) -> tuple[Any, Any]:
    # matplotlib's object API, not pyplot: no global figure state or backend to switch in a test run
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    return fig, fig.subplots()


def _accuracy_plot(items: list[dict[str, Any]]) -> str | None:
    """Clean accuracy of every model on every dataset (from accuracy[...] items)."""
    values: dict[str, dict[str, float]] = defaultdict(dict)
    for item in items:
        match = re.fullmatch(r"accuracy\[(.+?)(#\d+)?\]", item["contract"])
        if match and item["metrics"].get("accuracy") is not None:
            values[item["model"]][match.group(1)] = item["metrics"]["accuracy"]
            if item["metrics"].get("baseline_accuracy") is not None:  # a drop gate measured the baseline too
                values["baseline"].setdefault(match.group(1), item["metrics"]["baseline_accuracy"])
    if not values:
        return None
    datasets = sorted({d for per in values.values() for d in per})
    fig, ax = _figure()
    width = 0.8 / len(values)
    for i, (model, per) in enumerate(values.items()):
        xs = [j + i * width for j, d in enumerate(datasets) if d in per]
        ax.bar(xs, [per[d] for d in datasets if d in per], width, label=model)
    ax.set_xticks([j + width * (len(values) - 1) / 2 for j in range(len(datasets))], datasets)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.legend()
    return _png(fig)


def _strength(text: str) -> float:
    number, _, denominator = text.partition("/")
    return float(number) / float(denominator) if denominator else float(number)


def _sweep_plots(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Robust accuracy against eps, one line per model, for every attack contract with a sweep."""
    curves: dict[str, dict[str, list[tuple[float, float]]]] = defaultdict(dict)
    for item in items:
        points = [(_strength(k.split("@", 1)[1]), v) for k, v in item["metrics"].items()
                  if k.startswith("robust_accuracy@") and v is not None]
        if len(points) >= 2:
            curves[item["contract"]][item["model"]] = sorted(points)
    plots = []
    for contract, per_model in curves.items():
        fig, ax = _figure(6, 3.4)
        for model, points in per_model.items():
            ax.plot([p[0] * 255 for p in points], [p[1] for p in points], marker="o", label=model)
        ax.set_xlabel("eps (x/255)")
        ax.set_ylabel("robust accuracy")
        ax.set_ylim(0, 1)
        ax.legend()
        plots.append((contract, _png(fig)))
    return plots


def _corruption_heatmaps(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Accuracy by corruption and severity, one heatmap per corruptions item."""
    plots = []
    for item in items:
        cells = {}
        for key, value in item["metrics"].items():
            match = re.fullmatch(r"accuracy@(\w+)/(\d)", key)
            if match and value is not None:
                cells[(match.group(1), int(match.group(2)))] = value
        if not cells:
            continue
        names = list(dict.fromkeys(name for name, _ in cells))
        severities = sorted({s for _, s in cells})
        grid = [[cells.get((n, s), float("nan")) for s in severities] for n in names]
        fig, ax = _figure(5.5, 0.32 * len(names) + 1.2)
        image = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        ax.set_yticks(range(len(names)), names)
        ax.set_xticks(range(len(severities)), [str(s) for s in severities])
        ax.set_xlabel("severity")
        for i, row in enumerate(grid):
            for j, value in enumerate(row):
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color="white" if value < 0.6 else "black")
        fig.colorbar(image, ax=ax, label="accuracy")
        plots.append((f"{item['model']} :: {item['contract']}", _png(fig)))
    return plots


def _latency_plot(items: list[dict[str, Any]]) -> str | None:
    rows = [(f"{i['model']} :: {i['contract']}", i["metrics"]) for i in items if i["metrics"].get("p50_ms") is not None]
    if not rows:
        return None
    fig, ax = _figure(6, 0.5 * len(rows) + 1.2)
    for k, (label, m) in enumerate(rows):
        ax.plot([m["p50_ms"], m.get("p99_ms") or m["p50_ms"]], [k, k], color="#888", zorder=1)
        for name, marker, colour in (("p50_ms", "o", "tab:blue"), ("p90_ms", "s", "tab:orange"), ("p99_ms", "^", "tab:red")):
            if m.get(name) is not None:
                label = name.removesuffix("_ms") if k == 0 else None
                ax.scatter([m[name]], [k], marker=marker, color=colour, zorder=2, label=label)
    ax.set_yticks(range(len(rows)), [label for label, _ in rows])
    ax.set_xlabel("latency (ms)")
    ax.legend()
    return _png(fig)


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
    ]
    findings = [(item, f) for item in items for f in item.get("findings", [])]
    if findings:
        parts.append("<h2>Findings</h2>")
        parts += [f"<div class='finding'><b>{esc(item['model'])} :: {esc(item['contract'])}</b>: {esc(f)}</div>" for item, f in findings]
    parts.append("<h2>Contracts</h2><div class='scroll'><table><tr><th>model</th><th>contract</th><th>result</th><th>measured</th></tr>")
    for item in items:
        result = _RESULT[item["outcome"]]
        failing = [g for g in item["gates"] if not g["passed"]]
        measured = "; ".join(describe_gate(g) for g in (failing or item["gates"])) or item.get("message", "")
        parts.append(f"<tr><td>{esc(item['model'])}</td><td>{esc(item['contract'])}</td><td class='{result}'>{result}</td>"
                     f"<td>{esc(measured)}</td></tr>")
    parts.append("</table></div>")
    accuracy = _accuracy_plot(items)
    if accuracy:
        parts += ["<h2>Accuracy by model and dataset</h2>", accuracy]
    for title, image in _sweep_plots(items):
        parts += [f"<h2>Robust accuracy against eps: {esc(title)}</h2>", image]
    for title, image in _corruption_heatmaps(items):
        parts += [f"<h2>Corruption accuracy: {esc(title)}</h2>", image]
    latency = _latency_plot(items)
    if latency:
        parts += ["<h2>Latency percentiles</h2>", latency]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
