"""The figures of report.html, drawn from plain numbers (report.html picks them out of the results):
each function returns an ``<img>`` tag with its PNG embedded, so the page fetches nothing.

matplotlib's object API, not pyplot: no global figure state or backend to switch in a test run.
"""

from __future__ import annotations

import base64
import html
import io
import math
import struct
from typing import Any

_MARKERS = "osD^vPX*<>"
_PERCENTILES = ((50, "o"), (90, "s"), (99, "^"))  # marked on each latency curve
MAX_LABELS = 12  # point labels on a scatter: beyond, only the best accuracy for its size is named

Points = list[tuple[float, float, float, float]]  # (x, value, low, high)


def png(fig: Any, alt: str) -> str:
    from PIL import Image

    drawn, buffer = io.BytesIO(), io.BytesIO()
    fig.savefig(drawn, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    with Image.open(drawn) as image:  # 256 colours: a third of the bytes, no difference to see
        image.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(buffer, format="PNG")
    data = buffer.getvalue()
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk: lets the browser lay the page out before decoding
    return (f'<img alt="{html.escape(alt)}" width="{width}" height="{height}" '
            f'src="data:image/png;base64,{base64.b64encode(data).decode()}">')


def figure(width: float = 7.0, height: float = 3.6, panels: int = 1) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    return fig, fig.subplots(1, panels, sharey=True) if panels > 1 else fig.subplots()


def plain_ticks(axis: Any) -> None:
    """Log-scale ticks at 1, 2 and 5 times powers of ten, written as plain numbers (0.2, not 2x10^-1)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())


def _values(values: dict[str, dict[str, float]], models: list[str]) -> str:
    """The numbers a plot draws, for its alt text: ``baseline: handwritten 0.9610, printed 0.8000; int8: ...``."""
    return "; ".join(f"{model}: " + ", ".join(f"{key} {value:.4f}" for key, value in values[model].items()) for model in models)


def accuracy_bars(values: dict[str, dict[str, float]], models: list[str], alt: str) -> str:
    """Grouped bars: the accuracy of each of ``models`` on every dataset it was measured on (the alt text lists them)."""
    datasets = sorted({d for model in models for d in values[model]})
    fig, ax = figure()
    width = 0.8 / len(models)
    for i, model in enumerate(models):
        per = values[model]
        xs = [j + i * width for j, d in enumerate(datasets) if d in per]
        ax.bar(xs, [per[d] for d in datasets if d in per], width, label=model)
    ax.set_xticks([j + width * (len(models) - 1) / 2 for j in range(len(datasets))], datasets)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=8, ncols=min(len(models), 5), loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    return png(fig, f"{alt} ({_values(values, models)})")


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


def size_scatter(per: dict[str, tuple[float, float, float, float, str]], techniques: list[str], dataset: str, alt: str) -> str:
    """Accuracy on ``dataset`` against size relative to the baseline; ``per``: model -> (size, accuracy, low, high,
    technique); one marker and colour per technique (its index in ``techniques``, the same on every plot)."""
    crowded = len(per) > MAX_LABELS  # then no interval bars, and names only on the best-for-size front
    fig, ax = figure(5.6, 3.6)
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
        plain_ticks(ax.xaxis)
    else:
        ax.set_xlim(0, max(1.1, max(ratios) * 1.1))
    ax.axvline(1.0, color="#bbb", linewidth=0.8, zorder=0)
    named = _pareto(shown) if crowded else {model for *_, model in shown}
    _annotate_apart(ax, [p for p in sorted(shown, key=lambda p: -p[1]) if p[2] in named])
    ax.set_xlabel("model size relative to the baseline (bytes)")
    ax.set_ylabel(f"accuracy on {dataset}")
    ax.legend(fontsize=8, title="technique", title_fontsize=8,
              **({"loc": "upper left", "bbox_to_anchor": (1.01, 1.0)} if crowded else {}))
    drawn = {model: {"size": p[0], "accuracy": p[1]} for model, p in per.items()}
    return png(fig, f"{alt} ({_values(drawn, list(drawn))})")


def sweep_figure(curves: dict[str, Points], title: str, references: dict[str, Points] | None = None) -> str:
    """Robust accuracy against attack strength, one line per model with its interval shaded; ``references``
    (the baseline under the same attack, read from a variant's drop gates) dashed, without an interval."""
    references = references or {}
    strengths = [p[0] for points in (*curves.values(), *references.values()) for p in points]
    levels = all(abs(s * 255 - round(s * 255)) < 1e-6 for s in strengths)  # eps on the 1/255 grid: shown as x/255
    scale, axis = (255, "strength (x/255)") if levels else (1, "strength")
    fig, ax = figure(5.6, 3.4)
    for model, points in curves.items():
        xs = [p[0] * scale for p in points]
        (line,) = ax.plot(xs, [p[1] for p in points], marker="o", label=model)
        ax.fill_between(xs, [p[2] for p in points], [p[3] for p in points], color=line.get_color(), alpha=0.15, linewidth=0)
    for model, points in references.items():
        ax.plot([p[0] * scale for p in points], [p[1] for p in points], linestyle="--", marker=".", color="black",
                label=model)
    ax.set_xlabel(f"attack {axis}: eps, or the share of pixels for salt-and-pepper")
    ax.set_ylabel("robust accuracy")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, **({"loc": "upper left", "bbox_to_anchor": (1.01, 1.0)} if len(curves) + len(references) > 4 else {}))
    drawn = {model: {f"{p[0] * scale:g}": p[1] for p in points} for model, points in (*curves.items(), *references.items())}
    return png(fig, f"robust accuracy against attack {axis.split()[0]}: {title} ({_values(drawn, list(drawn))})")


def heatmap(rows: list[str], columns: list[str], panels: list[tuple[str, list[list[float]]]], xlabel: str, alt: str,
            row_height: float = 0.3) -> str:
    """Accuracy grids (rows x columns) side by side, one per panel (e.g. a variant, then its baseline), one colour scale."""
    width = max(4.0, 0.45 * len(columns) + 3.2)
    fig, axes = figure(width + (len(panels) - 1) * (width - 1.6), row_height * len(rows) + 1.2, panels=len(panels))
    axes = list(axes) if len(panels) > 1 else [axes]
    image = None
    for ax, (title, grid) in zip(axes, panels):
        image = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        ax.set_yticks(range(len(rows)), rows, fontsize=8)
        ax.set_xticks(range(len(columns)), columns, fontsize=8, rotation=0 if len(columns) <= 6 else 45,
                      ha="center" if len(columns) <= 6 else "right")
        ax.set_xlabel(xlabel)
        if title:
            ax.set_title(title, fontsize=9)
        if len(columns) <= 8:
            for i, row in enumerate(grid):
                for j, value in enumerate(row):
                    if not math.isnan(value):
                        ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                                color="white" if value < 0.6 else "black")
    fig.colorbar(image, ax=axes, label="accuracy")
    return png(fig, alt)


def latency_figure(curves: list[tuple[str, list[float], str]], alt: str) -> str:
    """Per-query latency as an ECDF (the series are the 0..100th percentiles), p50/p90/p99 marked on each curve."""
    fig, ax = figure(6.4, 3.6)
    for label, series, style in curves:
        fractions = [k / (len(series) - 1) for k in range(len(series))]
        (line,) = ax.plot(series, fractions, linestyle=style, linewidth=1.6 if style == "-" else 1.0, label=label)
        if style == "-" and len(series) == 101:
            for at, marker in _PERCENTILES:
                ax.plot([series[at]], [at / 100], marker=marker, color=line.get_color(), markersize=5, linestyle="none")
    low, high = min(min(s) for _, s, _ in curves), max(max(s) for _, s, _ in curves)
    if low > 0 and high / low > 8:
        ax.set_xscale("log")
        plain_ticks(ax.xaxis)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0.0, -0.16), ncols=1 if len(curves) <= 4 else 2, frameon=False)
    ax.set_ylim(0, 1.02)
    scale = ", log scale" if ax.get_xscale() == "log" else ""
    ax.set_xlabel(f"latency per query (ms{scale});  ● p50  ■ p90  ▲ p99")
    ax.set_ylabel("fraction of queries")
    ax.grid(alpha=0.3)
    return png(fig, alt)


def speedup_figure(rows: list[tuple[str, float, float, bool]], thresholds: list[float], alt: str) -> str:
    """``rows``: (label, speed-up, its lower bound, passed); a line from the bound to the estimate, gates dotted."""
    fig, ax = figure(6.0, 0.25 * len(rows) + 1.1)
    for k, (_, speedup, low, passed) in enumerate(rows):
        ax.plot([low, speedup], [k, k], color="#888", linewidth=2, solid_capstyle="butt")
        ax.plot([speedup], [k], "o", color="C0" if passed else "C3")
    ax.axvline(1.0, color="#bbb", linewidth=0.8)
    for threshold in thresholds:
        ax.axvline(threshold, color="C3", linestyle=":", linewidth=1, label=f"gate: ≥ {threshold:g}")
    ax.set_yticks(range(len(rows)), [row[0] for row in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("speed-up against the baseline (line: from its lower bound)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    return png(fig, alt)


def calibration_figure(bins: list[tuple[float, float, float, float]], classes: list[tuple[str, float, float]], width: float,
                       worst: str | None, alt: str) -> str:
    """A calibration item's two panels: the reliability diagram (``bins``: each non-empty confidence bin's lower
    edge, mean confidence, accuracy and image count; bars ``width`` wide against the diagonal of perfect
    calibration) and the accuracy of every class (``classes``: name, accuracy, images), ``worst`` in red."""
    fig, (reliability, per_class) = figure(8.4, 3.4, panels=2)  # one accuracy axis for both
    reliability.plot([0, 1], [0, 1], color="#888", linestyle="--", linewidth=0.8, label="perfectly calibrated")
    reliability.bar([b[0] for b in bins], [b[2] for b in bins], width, align="edge", color="C0", edgecolor="white",
                    label="accuracy")
    reliability.plot([b[1] for b in bins], [b[2] for b in bins], "o", color="C1", markersize=3, label="mean confidence")
    reliability.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence (top-1 softmax)", ylabel="accuracy")
    reliability.legend(fontsize=7, loc="upper left")
    positions = range(len(classes))
    per_class.bar(positions, [c[1] for c in classes], color=["C3" if c[0] == worst else "C0" for c in classes])
    per_class.set_xticks(positions, [c[0] for c in classes], fontsize=7, rotation=0 if len(classes) <= 12 else 90)
    per_class.set(ylim=(0, 1), xlabel="class (worst in red)")
    drawn = ", ".join(f"{b[1]:.2f}: {b[2]:.2f} of {b[3]:.0f}" for b in bins)
    return png(fig, f"{alt} (accuracy by mean confidence: {drawn}; worst class {worst})")
