"""report.html from results documents built here: a plot per kind of data, drawn by metric name and left
out when the data is absent, findings first, a table that stacks into cards on a phone, one plot per item
for pytest-html, and a thousand items rendered with caps that the page owns up to."""

from __future__ import annotations

import base64
import io
import re
from html.parser import HTMLParser
from typing import Any

import pytest
from PIL import Image

from robustgate.reports.html import MAX_FIGURES, item_plot, render_html

UNDEFINED = "relative_mce is undefined: the baseline is at chance under fog"
MASKING = "a single FGSM step breaks 9 images that pgd-10 left standing: the iterative attack is not following the gradient"


def _size(ratio: float) -> dict[str, float]:
    return {"bytes": 4e6 * ratio, "params": 1e6, "macs": 3e7, "size_ratio": ratio, "params_ratio": 1.0, "macs_ratio": 1.0}


def _item(model: str, contract: str, metrics: dict[str, Any], technique: str, outcome: str = "passed",
          **extra: Any) -> dict[str, Any]:
    ratio = 1.0 if model == "baseline" else 0.25
    gate = {"metric": "m", "op": ">=", "threshold": 0.5, "estimate": 0.9, "value": 0.85, "read": "lower 95% bound",
            "passed": outcome != "failed"}
    return {"nodeid": f"s.yaml::{model}::{contract}", "spec": "s.yaml", "model": model, "contract": contract,
            "outcome": outcome, "duration": 0.1, "metrics": {**metrics, **_size(ratio)}, "gates": [gate],
            "findings": [], "notes": [], "message": "", "technique": technique, "series": {}, **extra}


def _variant_items(model: str, technique: str = "ptq", outcome: str = "passed") -> list[dict[str, Any]]:
    sweep = {f"robust_accuracy@{eps}": acc for eps, acc in (("0", 0.9), ("2/255", 0.7), ("8/255", 0.2))}
    cells = {f"accuracy@{name}/{s}": 0.9 - 0.1 * s for name in ("fog", "contrast", "gaussian_noise") for s in (1, 3, 5)}
    latency = [0.8 + k / 100 for k in range(101)]
    return [
        _item(model, "accuracy[handwritten]", {"accuracy": 0.95, "accuracy_low": 0.93, "accuracy_high": 0.97,
                                               "baseline_accuracy": 0.96}, technique, outcome),
        _item(model, "attack[fgsm@handwritten]", sweep, technique, findings=[MASKING] if model == "int8" else []),
        _item(model, "corruptions[common@handwritten]", cells, technique,
              findings=[UNDEFINED] if model == "baseline" else []),
        _item(model, "latency", {"p50_ms": 1.3, "p90_ms": 1.7, "p99_ms": 1.79, "speedup": 4.0, "speedup_low": 3.8},
              technique, series={"latency_ms": latency, "baseline_latency_ms": [5 * v for v in latency]}),
    ]


def _doc(items: list[dict[str, Any]]) -> dict[str, Any]:
    environment = {"python": "3.11", "platform": "linux", "cpu": "a CPU", "torch": "2", "torchvision": "0",
                   "quantized_engine": "x86", "robustgate": "0"}
    return {"schema_version": 1, "exit_status": 0, "interrupted": False, "environment": environment,
            "specs": {"s.yaml": {"name": "s", "sha256": "0" * 64}}, "items": items, "timings": {"total_seconds": 1.0}}


class _Page(HTMLParser):
    def __init__(self, page: str) -> None:
        super().__init__()
        self.cells: list[dict[str, str | None]] = []
        self.images: list[str] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "td":
            self.cells.append(dict(attrs))
        if tag == "img":
            self.images.append(dict(attrs)["src"] or "")


def _decodes(source: str) -> bool:
    with Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1]))) as image:
        image.verify()
    return source.startswith("data:image/png;base64,")


@pytest.fixture(scope="module")
def run() -> dict[str, Any]:
    baseline = [item for item in _variant_items("baseline", "baseline") if item["contract"] != "latency"]
    return _doc(baseline + _variant_items("int8") + _variant_items("pruned", "prune+ptq", outcome="failed"))


def test_every_kind_of_data_gets_its_plot_and_findings_come_first(run: dict[str, Any]) -> None:
    page = render_html(run)
    titles = re.findall(r"<h2>(.*?)</h2>", page)
    assert titles == ["Findings", "Contracts", "Accuracy by model and dataset", "Accuracy against model size",
                      "Robust accuracy against attack strength", "Corruption accuracy", "Latency distribution"]
    assert page.count("<span class='tag masking'>gradient masking</span>") == 1 and MASKING in page
    assert page.index(MASKING) < page.index(UNDEFINED) < page.index("<h2>Contracts</h2>")  # masking first, at the top
    plots = re.findall(r"<figure data-plot='([\w-]+)'>", page)
    assert plots.count("corruptions") == 3 and plots.count("attack") == 1 and plots.count("speedup") == 1
    assert all(_decodes(source) for source in _Page(page).images)


def test_the_table_labels_every_cell_for_the_phone_layout_and_puts_failures_first(run: dict[str, Any]) -> None:
    page = render_html(run)
    cells = _Page(page).cells
    assert len(cells) == 4 * len(run["items"]) and all(cell.get("data-label") for cell in cells)
    assert page.count("<tr>") == 1 + len(run["items"])
    assert "@media (max-width:640px)" in page and "@media print" in page
    rows = re.findall(r"<tr><td data-label='model'>(\w+)", page)
    assert rows[0] == "pruned" and rows[1:] == [item["model"] for item in run["items"] if item["outcome"] != "failed"]


def test_plots_without_their_data_are_left_out() -> None:
    plain = _item("baseline", "accuracy[handwritten]", {"accuracy": 0.9}, "baseline")
    for key in ("size_ratio", "bytes"):
        del plain["metrics"][key]
    page = render_html(_doc([plain]))
    assert re.findall(r"<h2>(.*?)</h2>", page) == ["Contracts", "Accuracy by model and dataset"]
    assert render_html(_doc([]))  # a run whose items all vanished still renders


def test_shift_items_of_matrix_cases_feed_the_accuracy_plots_per_case() -> None:
    """A spec matrix's shift contracts (the Office-31 study) measure target accuracies: they are plotted per target
    against size, with each case's models and baseline apart; salt-and-pepper sweeps are plotted against amount."""
    def shift(case: str, model: str, technique: str, target_accuracy: float) -> dict[str, Any]:
        metrics = {"source_accuracy": 0.9, "source_accuracy_low": 0.85, "source_accuracy_high": 0.93,
                   "accuracy@webcam": target_accuracy, "accuracy_low@webcam": target_accuracy - 0.05,
                   "accuracy_high@webcam": target_accuracy + 0.05, "accuracy@dslr+flip": 0.7}
        if model != "baseline":
            metrics["baseline_accuracy@webcam"] = 0.6 if case == "resnet18-amazon" else 0.65
        item = _item(model, "shift[source-test->webcam+dslr+flip]", metrics, technique, case=case)
        item["nodeid"] = f"s.yaml::{case}::{model}::shift[source-test->webcam+dslr+flip]"
        return item

    items = [shift(case, model, technique, accuracy) for case in ("resnet18-amazon", "resnet50-amazon")
             for model, technique, accuracy in (("int8", "ptq", 0.58), ("pruned-0.5", "prune", 0.4))]
    salt = {f"robust_accuracy@{amount}": acc for amount, acc in (("0.01", 0.6), ("0.05", 0.3))}
    items.append(_item("int8", "attack[salt_pepper@source-attack]", salt, "ptq", case="resnet18-amazon"))
    page = render_html(_doc(items))
    alts = re.findall(r'<img alt="([^"]*)"', page)
    assert {"accuracy on webcam against model size, by technique", "accuracy on dslr+flip against model size, by technique",
            "accuracy on source-test against model size, by technique"} <= set(alts)  # a target's '+' is its own
    assert {"accuracy by model and dataset: resnet18-amazon", "accuracy by model and dataset: resnet50-amazon"} <= set(alts)
    assert "robust accuracy against amount: attack[salt_pepper@source-attack]" in alts
    rows = re.findall(r"<td data-label='model'>([\w:.-]+)", page)
    assert rows.count("resnet18-amazon::int8") == 2 and rows.count("resnet50-amazon::pruned-0.5") == 1


def test_a_comparison_with_a_previous_release_is_stated_and_tabled_worse_first(run: dict[str, Any]) -> None:
    items = [dict(item) for item in run["items"]]
    for item in items:
        if item["contract"] == "accuracy[handwritten]":
            item["previous"] = {"accuracy": 0.97 if item["model"] == "pruned" else 0.94, "bytes": item["metrics"]["bytes"]}
        if item["contract"] == "latency":
            item["previous"] = {"p50_ms": 1.1, "p90_ms": 1.8, "accuracy@fog/1": 0.5}
    page = render_html({**run, "items": items, "baseline": {"path": "reports/v1.json", "sha256": "0" * 64}})
    assert "Compared with the previous release reports/v1.json" in page
    table = page[page.index("<h2>Changes since the previous release</h2>"):]
    rows = re.findall(r"<tr><td data-label='model'>(\w+)</td><td data-label='contract'>([^<]+)</td>"
                      r"<td data-label='metric'>([^<]+)</td>.*?class='(\w+)'>([^<]+)</td>", table)
    # quality metrics measured once per item; latency is worse when it grows; worse first, then in run order
    assert [(model, metric, verdict) for model, _, metric, verdict, _ in rows] == [
        ("int8", "p50_ms", "worse"), ("pruned", "accuracy", "worse"), ("pruned", "p50_ms", "worse"),
        ("baseline", "bytes", "same"), ("int8", "bytes", "same"), ("pruned", "bytes", "same"),
        ("baseline", "accuracy", "better"), ("int8", "accuracy", "better"), ("int8", "p90_ms", "better"),
        ("pruned", "p90_ms", "better"),
    ]


def test_item_plot_draws_one_item_or_nothing() -> None:
    items = {item["contract"]: item for item in _variant_items("int8")}
    for contract in ("attack[fgsm@handwritten]", "corruptions[common@handwritten]", "latency"):
        tag = item_plot(items[contract])
        assert tag and tag.startswith("<img ") and _decodes(_Page(tag).images[0]), contract
    assert item_plot(items["accuracy[handwritten]"]) is None


def test_a_thousand_items_render_in_seconds_with_the_caps_stated() -> None:
    items = [item for k in range(250) for item in _variant_items(f"v{k:03d}", ("ptq", "prune", "distill")[k % 3],
                                                                  "failed" if k % 50 == 7 else "passed")]
    page = render_html(_doc(items))  # its time is measured in benchmarks/bench_report.py, not here
    assert len(page) < 3_000_000 and page.count("<tr>") == 1 + 1000
    assert page.count("<figure data-plot='corruptions'>") == MAX_FIGURES and "data-plot='corruptions-summary'" in page
    assert f"Showing {MAX_FIGURES} of 250 heatmaps" in page and "of 250 latency distributions" in page
    assert len(_Page(page).images) <= 3 * MAX_FIGURES
