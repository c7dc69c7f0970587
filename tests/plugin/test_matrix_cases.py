"""A spec with a ``matrix:`` runs each case as a spec of its own: its own trained baseline and variants, ids that
name the case, and reports that keep the cases apart."""

from __future__ import annotations

import json

import pytest

SPEC = """\
robustgate: 1
name: grid
matrix:
  source:
    - {name: handwritten, target: printed}
    - {name: printed, target: handwritten}
model:
  arch: tinynet:build
  kwargs: {num_classes: 10}
  weights: train
  train: {on: "{source}-train", epochs: 8, lr: 0.01}
  input: {size: [16, 16], mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]}
datasets:
  handwritten-train: {builtin: digits, domain: handwritten, part: train}
  handwritten: {builtin: digits, domain: handwritten, part: test}
  printed-train: {builtin: digits, domain: printed, part: train}
  printed: {builtin: digits, domain: printed, part: test}
variants:
  int8: {ptq: {backend: x86, calibrate: {on: "{source}-train", samples: 64}}}
contracts:
  - shift: {source: "{source}", targets: ["{source.target}"], min: 0.0}
"""


@pytest.mark.cold_cache  # asserts each case's training line
def test_each_case_trains_its_own_model_and_is_reported_apart(tiny_project: pytest.Pytester, write_spec) -> None:
    (tiny_project.path / "robustness_specs" / "tiny.yaml").unlink()
    write_spec(SPEC, "grid.yaml")
    result = tiny_project.runpytest("--robustgate-cache-dir=cache", "-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines_random([
        "*grid.yaml::handwritten::baseline::shift[[]handwritten->printed] PASSED*",
        "*grid.yaml::printed::int8::shift[[]printed->handwritten] PASSED*",
        "*robustgate: [[]grid::handwritten] training tinynet:build on 'handwritten-train'*",
        "*robustgate: [[]grid::printed] training tinynet:build on 'printed-train'*",
        "*grid.yaml  printed::int8 *shift[[]printed->handwritten]*PASS*",
    ])
    items = {item["nodeid"].split("::", 1)[1]: item
             for item in json.loads((tiny_project.path / "reports" / "results.json").read_text())["items"]}
    assert {item["case"] for item in items.values()} == {"handwritten", "printed"}
    assert {item["model"] for item in items.values()} == {"baseline", "int8"}
    # two trained models, so the digits each was trained on are the easy ones: each case's source beats its target
    # (one model for both would lose on one of them). By 0.1, not 0.2: the printed case's gap measured 0.19-0.23
    # across emulated CPUs (0.49 against 0.30 under AVX2 kernels, benchmarks/bench_cross_cpu.py), the handwritten 0.35+.
    for case, target in (("handwritten", "printed"), ("printed", "handwritten")):
        metrics = items[f"{case}::baseline::shift[{case}->{target}]"]["metrics"]
        assert metrics["source_accuracy"] > metrics[f"accuracy@{target}"] + 0.1, (case, metrics)
    # one item per case and model in the report's tables, named as its id names it
    html = (tiny_project.path / "reports" / "report.html").read_text()
    assert "handwritten::int8" in html and "printed::int8" in html
    assert "printed::int8" in (tiny_project.path / "reports" / "summary.md").read_text()

    selected = tiny_project.runpytest("--robustgate-cache-dir=cache", "-p", "no:cacheprovider", "-k", "printed and int8")
    selected.assert_outcomes(passed=2)  # the int8 item of case printed, and the one of handwritten whose target is printed
