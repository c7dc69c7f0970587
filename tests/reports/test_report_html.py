"""report.html from results documents built here: a plot per kind of data, drawn by metric name and left
out when the data is absent, every plot and table keyed by spec and case, findings first, a table that
stacks into cards on a phone and whose rows open onto the terminal's verdict, the baseline beside the
variants, one plot per item for pytest-html, and a thousand items rendered with caps that the page owns up to."""

from __future__ import annotations

import base64
import html
import io
import re
from html.parser import HTMLParser
from typing import Any

import pytest
from PIL import Image

from robustgate.reports.html import MAX_FIGURES, item_breakdown, item_plot, render_html
from robustgate.reports.results import SCHEMA_VERSION

UNDEFINED = "relative_mce is undefined: the baseline is at chance under fog"
MASKING = "a single FGSM step breaks 9 images that pgd-10 left standing: the iterative attack is not following the gradient"


def _size(ratio: float) -> dict[str, float]:
    return {"bytes": 4e6 * ratio, "params": 1e6, "macs": 3e7, "size_ratio": ratio, "params_ratio": 1.0, "macs_ratio": 1.0}


def _item(model: str, contract: str, metrics: dict[str, Any], technique: str, outcome: str = "passed",
          datasets: tuple[str, ...] = ("handwritten",), spec: str = "s.yaml", **extra: Any) -> dict[str, Any]:
    ratio = 1.0 if model == "baseline" else 0.25
    gate = {"metric": "m", "op": ">=", "threshold": 0.5, "estimate": 0.9, "value": 0.85, "read": "lower 95% bound",
            "passed": outcome != "failed"}
    kind = contract.partition("[")[0]  # these labels are made here; reports read `kind`, never a label
    return {"nodeid": f"{spec}::{model}::{contract}", "spec": spec, "model": model, "contract": contract,
            "kind": kind, "datasets": [] if kind == "latency" else list(datasets),
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
    specs = {item["spec"]: {"name": item["spec"].removesuffix(".yaml"), "sha256": "0" * 64} for item in items} or \
        {"s.yaml": {"name": "s", "sha256": "0" * 64}}
    return {"schema_version": SCHEMA_VERSION, "exit_status": 0, "interrupted": False, "environment": environment,
            "specs": specs, "items": items, "timings": {"total_seconds": 1.0}}


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
    titles = re.findall(r"<h([23])>(.*?)</h[23]>", page)
    assert titles == [("2", "Findings"), ("2", "Contracts"), ("2", "Accuracy by model and dataset"),
                      ("2", "Accuracy against model size"), ("2", "Clean accuracy"), ("2", "Accuracy under corruptions"),
                      ("3", "Corruption accuracy"), ("2", "Accuracy under attack"),
                      ("3", "Robust accuracy against attack strength"), ("2", "Latency"), ("3", "Latency distribution")]
    assert page.count("<span class='tag masking'>gradient masking</span>") == 1 and MASKING in page
    assert page.index(MASKING) < page.index(UNDEFINED) < page.index("<h2>Contracts</h2>")  # masking first, at the top
    plots = re.findall(r"<figure data-plot='([\w-]+)'>", page)
    assert plots.count("corruptions") == 3 and plots.count("attack") == 1 and plots.count("speedup") == 1
    assert all(_decodes(source) for source in _Page(page).images)


def test_the_table_labels_every_cell_for_the_phone_layout_and_puts_failures_first(run: dict[str, Any]) -> None:
    page = render_html(run)
    cells = [cell for cell in _Page(page).cells if cell.get("data-label")]  # the rows' breakdowns are tables too
    assert len(cells) == 4 * len(run["items"]) and page.count("<tr><td data-label='model'>") == len(run["items"])
    assert "@media (max-width:640px)" in page and "@media print" in page
    rows = re.findall(r"<tr><td data-label='model'>(\w+)", page)
    kinds = ["accuracy", "corruptions", "attack", "latency"]  # as robustgate.checks registers them
    assert rows == [item["model"] for kind in kinds for item in
                    sorted((i for i in run["items"] if i["kind"] == kind), key=lambda i: i["outcome"] != "failed")]
    assert rows[0] == "pruned"  # each kind's table puts its failures first
    listed = re.findall(r"<li><a href='#(kind-\w+)'>([^<]+)</a>: (<b class='FAIL'>)?", page)
    assert [(anchor, title, bool(failing)) for anchor, title, failing in listed] == [
        ("kind-accuracy", "Clean accuracy", True), ("kind-corruptions", "Accuracy under corruptions", False),
        ("kind-attack", "Accuracy under attack", False), ("kind-latency", "Latency", False)]
    assert all(f"<section id='{anchor}'" in page for anchor, *_ in listed)


def test_plots_without_their_data_are_left_out() -> None:
    plain = _item("baseline", "accuracy[handwritten]", {"accuracy": 0.9}, "baseline")
    for key in ("size_ratio", "bytes"):
        del plain["metrics"][key]
    page = render_html(_doc([plain]))
    assert re.findall(r"<h2>(.*?)</h2>", page) == ["Contracts", "Accuracy by model and dataset", "Clean accuracy"]
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
        item = _item(model, "shift[source-test->webcam+dslr+flip]", metrics, technique, case=case,
                     datasets=("source-test", "webcam", "dslr+flip"))
        item["nodeid"] = f"s.yaml::{case}::{model}::shift[source-test->webcam+dslr+flip]"
        return item

    items = [shift(case, model, technique, accuracy) for case in ("resnet18-amazon", "resnet50-amazon")
             for model, technique, accuracy in (("int8", "ptq", 0.58), ("pruned-0.5", "prune", 0.4))]
    salt = {f"robust_accuracy@{amount}": acc for amount, acc in (("0.01", 0.6), ("0.05", 0.3))}
    items.append(_item("int8", "attack[salt_pepper@source-attack]", salt, "ptq", case="resnet18-amazon",
                       datasets=("source-attack",)))
    page = render_html(_doc(items))
    alts = re.findall(r'<img alt="([^"]*)"', page)
    titles = {alt.split(" (")[0] for alt in alts}  # an alt text closes with the numbers drawn
    assert {f"accuracy on {dataset} against model size, by technique: {case}" for dataset in ("webcam", "dslr+flip", "source-test")
            for case in ("resnet18-amazon", "resnet50-amazon")} <= titles  # a target's '+' is its own
    assert {"accuracy by model and dataset: resnet18-amazon", "accuracy by model and dataset: resnet50-amazon"} <= titles
    assert "robust accuracy against attack strength: resnet18-amazon :: attack[salt_pepper@source-attack]" in titles
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
    assert len(page) < 3_000_000 and page.count("<tr><td data-label='model'>") == 1000
    assert page.count("<figure data-plot='corruptions'>") == MAX_FIGURES and "data-plot='corruptions-summary'" in page
    assert f"Showing {MAX_FIGURES} of 250 heatmaps" in page and "of 250 latency distributions" in page
    assert len(_Page(page).images) <= 3 * MAX_FIGURES


def _accuracy(spec: str, model: str, dataset: str, accuracy: float, baseline: float | None = None) -> dict[str, Any]:
    metrics = {"accuracy": accuracy, "accuracy_low": accuracy - 0.02, "accuracy_high": accuracy + 0.02}
    if baseline is not None:
        metrics["baseline_accuracy"] = baseline
    item = _item(model, f"accuracy[{dataset}]", metrics, "baseline" if model == "baseline" else "ptq",
                 datasets=(dataset,), spec=spec)
    return item


def test_two_specs_with_the_same_models_and_datasets_are_plotted_and_tabled_apart() -> None:
    """Both specs have a `baseline` and an `int8` on `handwritten` and `printed`: each spec's plots draw its own models
    and its own baseline (spec b's baseline is known only from its int8's drop gate), and the table names the spec."""
    items = [_accuracy("a.yaml", "baseline", "handwritten", 0.96), _accuracy("a.yaml", "int8", "handwritten", 0.95),
             _accuracy("a.yaml", "int8", "printed", 0.81, baseline=0.83),
             _accuracy("b.yaml", "int8", "handwritten", 0.42, baseline=0.50), _accuracy("b.yaml", "int8", "printed", 0.30)]
    page = render_html(_doc(items))
    alts = re.findall(r'<img alt="([^"]*)"', page)
    accuracy = {alt.split(" (")[0]: alt for alt in alts if alt.startswith("accuracy by model and dataset")}
    assert accuracy == {
        "accuracy by model and dataset: a.yaml": "accuracy by model and dataset: a.yaml (baseline: handwritten 0.9600, "
                                                 "printed 0.8300; int8: handwritten 0.9500, printed 0.8100)",
        "accuracy by model and dataset: b.yaml": "accuracy by model and dataset: b.yaml (baseline: handwritten 0.5000; "
                                                 "int8: handwritten 0.4200, printed 0.3000)",
    }
    sizes = [alt for alt in alts if " against model size" in alt]
    assert [alt.split(" (")[0] for alt in sizes] == [
        f"accuracy on {dataset} against model size, by technique: {spec}"
        for spec in ("a.yaml", "b.yaml") for dataset in ("handwritten", "printed")]
    assert "baseline: size 1.0000, accuracy 0.5000" in sizes[2] and "0.96" not in sizes[2]  # b's baseline, not a's
    captions = re.findall(r"<figcaption>([^<]*)</figcaption>", page)
    assert {"a.yaml", "b.yaml", "a.yaml :: printed", "b.yaml :: handwritten"} <= set(captions)
    page = page.replace("<wbr>", "")  # the label's line-break opportunities
    rows = re.findall(r"<tr><td data-label='spec'>([^<]+)</td><td data-label='model'>(\w+)(?:<small>\w+</small>)?</td>"
                      r"<td data-label='contract'>([^<]+)</td>", page)
    assert rows == [(item["spec"], item["model"], item["contract"]) for item in items]


def _int8_attack(outcome: str = "failed") -> dict[str, Any]:
    """An int8 attack sweep with drop gates: robust accuracy, the baseline's under the same attack, the protocol's legs."""
    metrics: dict[str, Any] = {"interval_level": 0.95}
    for at, robust, base in (("0", 0.9, 0.92), ("2/255", 0.6, 0.7), ("8/255", 0.2, 0.4)):
        metrics.update({f"robust_accuracy@{at}": robust, f"robust_accuracy_low@{at}": robust - 0.05,
                        f"robust_accuracy_high@{at}": robust + 0.05, f"n@{at}": 64, f"baseline_accuracy@{at}": base,
                        f"drop@{at}": base - robust, f"drop_low@{at}": base - robust - 0.03,
                        f"drop_high@{at}": base - robust + 0.04, f"mcnemar_p@{at}": 0.0123, f"lost@{at}": 9,
                        f"gained@{at}": 2, f"broken_by_clean@{at}": 5, f"broken_by_white_box@{at}": 0,
                        f"broken_by_twin@{at}": 12, f"broken_by_transfer@{at}": 3, f"broken_by_gradient_free@{at}": 1,
                        f"twin_agreement@{at}": 0.97})
    item = _item("int8", "attack[pgd:0+2/255+8/255@handwritten]", metrics, "ptq", outcome)
    item["gates"] = [
        {"metric": "drop@8/255", "op": "<=", "threshold": 0.1, "estimate": 0.2, "value": 0.24,
         "read": "upper 95% bound", "passed": outcome != "failed"},
        {"metric": "baseline_above_chance@handwritten", "op": ">", "threshold": 0.1, "estimate": 0.95, "value": 0.93,
         "read": "lower 95% bound", "passed": True},
    ]
    item["caveats"] = ["no transfer leg (accepted: accept_missing): no surrogate"]
    return item


def test_a_row_opens_onto_the_terminals_verdict_with_the_baseline_beside_each_relative_gate() -> None:
    item = _int8_attack()
    page = render_html(_doc([item, _accuracy("s.yaml", "baseline", "handwritten", 0.96)]))
    row = page[page.index("<tr><td data-label='model'>int8"):]
    row = row[:row.index("</details>")]
    assert "<details open><summary>WEAKER PROTOCOL (no transfer leg" in row  # failing: open already
    assert "drop@8/255 0.2000 (upper 95% bound 0.2400) &lt;= 0.1, baseline robust accuracy 0.4000</summary>" in row
    table = row[row.index("<table class='gates'>"):]
    gates = re.findall(r"<tr><td>([^<]+)</td><td>([^<]+)</td><td>([^<]+)</td><td>([^<]+)</td><td>([^<]+)</td>"
                       r"<td>(.*?)</td></tr>", table[:table.index("</table>")])
    assert gates == [
        ("drop@8/255", "0.2000", "upper 95% bound 0.2400", "&lt;= 0.1", "baseline robust accuracy 0.4000", "<b class='FAIL'>FAIL</b>"),
        ("baseline_above_chance@handwritten", "0.9500", "lower 95% bound 0.9300", "&gt; 0.1", "—", "ok"),
    ]
    assert "<tr><td>robust_accuracy@8/255</td><td>0.2000</td><td>[0.1500, 0.2500]</td></tr>" in row  # intervals
    assert "<th>95% interval</th>" in row and "<tr><td>drop@8/255</td>" in row
    assert ("drop@8/255 +0.2000 [+0.1700, +0.2400] from the baseline&#x27;s 0.4000: McNemar p = 0.0123 "
            "(lost 9, gained 2)") in row
    legs = re.findall(r"<table class='legs'><caption>images each attack broke first.*?</caption><thead>(.*?)</thead>"
                      r"<tbody>(.*?)</tbody>", row)[0]
    assert re.findall(r"<th>([^<]+)</th>", legs[0]) == ["strength", "n", "wrong unattacked", "white-box", "twin",
                                                          "transfer", "gradient-free", "twin agreement"]
    assert "<tr><td>8/255</td><td>64</td><td>5</td><td>0</td><td>12</td><td>3</td><td>1</td><td>0.9700</td></tr>" in legs[1]
    assert "weaker protocol: no transfer leg" in row
    passing = page[page.index("<tr><td data-label='model'>baseline"):]
    assert passing.index("<details><summary>") < passing.index("</tr>")  # a passing row opens when asked


def test_attack_and_corruption_plots_draw_the_baseline_beside_the_variant() -> None:
    """A sweep gated by drops only has no baseline item: its curve comes from the drop gates' measurements. A
    corruptions contract the baseline ran too puts the baseline's grid beside each variant's."""
    cells = {f"accuracy@{name}/{s}": 0.9 - 0.1 * s for name in ("fog", "contrast") for s in (1, 3)}
    corruptions = [_item(model, "corruptions[fog+contrast@handwritten]", cells, technique)
                   for model, technique in (("baseline", "baseline"), ("int8", "ptq"))]
    page = render_html(_doc([_int8_attack("passed"), *corruptions]))
    alts = re.findall(r'<img alt="([^"]*)"', page)
    sweep = next(alt for alt in alts if alt.startswith("robust accuracy against attack strength"))
    assert ("int8: 0 0.9000, 2 0.6000, 8 0.2000; baseline (from the drop gates): 0 0.9200, 2 0.7000, 8 0.4000"
            in html.unescape(sweep))
    heatmaps = [html.unescape(alt) for alt in alts if alt.startswith("corruption accuracy")]
    assert heatmaps == ["corruption accuracy: baseline :: corruptions[fog+contrast@handwritten]",
                        "corruption accuracy: int8 :: corruptions[fog+contrast@handwritten], beside the baseline's"]
    alone = item_plot(corruptions[1])  # pytest-html's row has the item alone: no baseline to draw
    assert alone and "beside" not in alone


def test_the_breakdown_of_each_kind_names_what_its_relative_gates_read_against() -> None:
    def gated(kind: str, metric: str, metrics: dict[str, float], datasets: tuple[str, ...] = ("handwritten",)) -> str:
        item = _item("int8", f"{kind}[x]", metrics, "ptq", datasets=datasets)
        item["gates"] = [{"metric": metric, "op": "<=", "threshold": 0.1, "estimate": 0.05, "value": 0.07,
                          "read": "point", "passed": True}]
        return html.unescape(item_breakdown(item))

    assert "baseline accuracy 0.9100" in gated("shift", "drop@printed", {"baseline_accuracy@printed": 0.91},
                                               ("handwritten", "printed"))
    assert "own source accuracy 0.9800" in gated("shift", "gap@printed", {"source_accuracy": 0.98})
    assert "baseline corruption accuracy 0.7000; clean 0.9500" in gated(
        "corruptions", "relative_mce", {"baseline_mean_corruption_accuracy": 0.7, "baseline_clean_accuracy": 0.95})
    assert "baseline accuracy under fog not recorded" in gated("corruptions", "drop@fog", {})
    assert "baseline p50 5.0000 ms" in gated("latency", "speedup", {"baseline_p50_ms": 5.0}, ())
    assert "previous release 0.9300" in gated("accuracy", "regression.accuracy", {"previous.accuracy": 0.93})
    assert "<td>—</td>" in item_breakdown(_item("int8", "size", {}, "ptq", datasets=()))  # the helper's gate `m`: absolute


def test_a_version_1_document_and_a_run_that_stopped_early_render() -> None:
    """A version-1 document (no kind, no datasets) still draws its accuracy plot; contracts that did not run are
    counted and named at the top."""
    items = [_accuracy("s.yaml", "baseline", "handwritten", 0.96), _accuracy("s.yaml", "int8", "printed", 0.8, 0.83)]
    for item in items:
        del item["kind"], item["datasets"]
    page = render_html({**_doc(items), "schema_version": 1, "interrupted": True,
                        "not_run": ["s.yaml::int8::accuracy[handwritten]"]})
    assert "<h1>robustgate: 3 contracts: 2 pass, 1 did not run (the run was interrupted)</h1>" in page
    assert "did not run: s.yaml::int8::accuracy[handwritten]" in page
    alt = next(alt for alt in re.findall(r'<img alt="([^"]*)"', page) if alt.startswith("accuracy by model"))
    assert alt == "accuracy by model and dataset (baseline: handwritten 0.9600, printed 0.8300; int8: printed 0.8000)"


def _calibration(model: str, outcome: str = "passed") -> dict[str, Any]:
    """A calibration item under shift (on webcam, reference amazon) with the series the check writes."""
    metrics = {"ece": 0.0412, "ece_low": 0.02, "ece_high": 0.06, "ece@amazon": 0.025, "worst_class": 3,
               "worst_class_accuracy": 0.4, "worst_class_accuracy_low": 0.3, "worst_class_accuracy_high": 0.5,
               "baseline_ece": 0.038, "n": 100}
    series = {"class": [0.0, 1.0, 2.0, 3.0], "class_accuracy": [0.9, 0.8, 0.7, 0.4], "class_n": [25.0] * 4,
              "reliability_bin_low": [8 / 15, 11 / 15, 14 / 15], "reliability_confidence": [0.6, 0.8, 0.97],
              "reliability_accuracy": [0.5, 0.75, 0.95], "reliability_count": [20.0, 30.0, 50.0]}
    return _item(model, "calibration[amazon->webcam]", metrics, "ptq", outcome, datasets=("webcam", "amazon"),
                 series=series)


def test_sections_are_titled_and_described_by_each_kinds_declaration_and_calibration_draws_its_diagram() -> None:
    """Every kind's section comes from its declaration (compare has no figures of its own, only its table);
    calibration draws its reliability diagram beside the per-class accuracy; summary.md has the same sections."""
    from robustgate.checks.base import contract_kinds
    from robustgate.reports.markdown import render_markdown

    compare = _item("int8", "compare[int8>pruned@webcam]", {"advantage@webcam": 0.02}, "ptq", datasets=("webcam",))
    shift = _item("int8", "shift[amazon->webcam]", {"drop": 0.01}, "ptq", datasets=("webcam", "amazon"))
    items = [_calibration("int8", "failed"), compare, shift, _accuracy("s.yaml", "int8", "handwritten", 0.95)]
    page = render_html(_doc(items))
    for kind in ("accuracy", "compare", "calibration"):
        declared = contract_kinds.get(kind)
        section = page[page.index(f"<section id='kind-{kind}' data-kind='{kind}'>"):]
        section = section[:section.index("</section>")]
        assert f"<h2>{html.escape(declared.title)}</h2>" in section
        assert declared.summary.rstrip(".")[1:] in html.unescape(section) and "Gates: " in section
        assert section.count("<tr><td data-label='model'>") == 1
    kinds = ["accuracy", "shift", "calibration", "compare"]  # as robustgate.checks registers them: not the run's order,
    # not alphabetical (a reader asks about clean accuracy, then shift, before the finer kinds)
    assert re.findall(r"data-kind='(\w+)'", page) == kinds
    figures = re.findall(r"<figure data-plot='calibration'><img alt=\"([^\"]*)\".*?<figcaption>([^<]*)</figcaption>", page)
    assert len(figures) == 1 and all(_decodes(source) for source in _Page(page).images)
    alt, caption = map(html.unescape, figures[0])
    assert alt.startswith("reliability diagram and accuracy per class: int8 :: calibration[amazon->webcam] (")
    assert "0.60: 0.50 of 20" in alt and alt.endswith("worst class 3)")
    assert caption == ("int8 :: calibration[amazon->webcam]: ECE 0.0412 on webcam, 0.0250 on amazon, the baseline's "
                       "0.0380; worst class 3 at 0.4000")
    assert item_plot(items[0]) and "reliability diagram" in (item_plot(items[0]) or "")
    summary = render_markdown(_doc(items))
    headings = re.findall(r"^### (.*)$", summary, re.M)
    assert headings == [contract_kinds.get(kind).title for kind in kinds]
    assert summary.index("### Calibration") < summary.index("| calibration[amazon->webcam] | FAIL |")


def test_a_kind_this_robustgate_does_not_know_still_renders_under_its_own_name() -> None:
    """An older or foreign results.json may name a kind no longer registered: its items get a section titled by the
    kind's name, with the generic table and no figures."""
    from robustgate.reports.markdown import render_markdown

    items = [_item("int8", "robustness_index[handwritten]", {"index": 0.7}, "ptq"), _item("int8", "size", {}, "ptq")]
    page = render_html(_doc(items))
    assert re.findall(r"<h2>(.*?)</h2>", page)[-2:] == ["Size", "robustness_index"]
    section = page[page.index("<section id='kind-robustness_index' data-kind='robustness_index'>"):]
    assert section.count("<tr><td data-label='model'>") == 1 and "<figure" not in section
    assert "### robustness_index" in render_markdown(_doc(items))
