"""Latency contracts time a runtime variant (an ONNX export in ONNX Runtime, an ExecuTorch program in ExecuTorch) in its
runtime, interleaved with the fp32 baseline for its speed-up."""

from __future__ import annotations

import json

import pytest
from tiny_spec_edits import edit

pytestmark = pytest.mark.serial  # latency is timed (pytest-benchmark) only on a machine the test has to itself

FAST = "min_queries: 30, min_seconds: 0.05, warmup: 3"


@pytest.mark.parametrize("runtime", ["onnx", "executorch"])
def test_an_export_is_timed_in_its_runtime_against_the_baseline(tiny_project: pytest.Pytester, write_spec, runtime: str) -> None:
    specs = tiny_project.path / "robustness_specs"
    spec = edit((specs / "tiny.yaml").read_text(), "  int8: {ptq: {backend: x86, calibrate: {on: digits-train, samples: 128}}}\n",
                f"  {runtime}: {{export: {{format: {runtime}}}}}\n")
    spec += (f"  - latency: {{p90_ms: 1000, {FAST}, variants: [{runtime}]}}\n"
             f"  - latency: {{min_speedup: 0.01, {FAST}, variants: [{runtime}]}}\n")
    write_spec(spec, "tiny.yaml")
    result = tiny_project.runpytest("-p", "no:cacheprovider", "--benchmark-json=bench.json", "-k", "latency")
    result.assert_outcomes(passed=2, deselected=3)
    benches = {b["name"]: b["extra_info"] for b in json.loads((tiny_project.path / "bench.json").read_text())["benchmarks"]}
    absolute, relative = benches[f"{runtime}::latency[p90_ms]"], benches[f"{runtime}::latency[min_speedup]"]
    assert 0 < absolute["p50_ms"] <= absolute["p90_ms"] and absolute["machine"]["threads"] == 1
    # interleaved with the fp32 baseline in eager PyTorch; the tiny net's ratio is what it is, but both were timed
    assert 0 < relative["speedup_low"] <= relative["speedup"] and relative["queries"] >= 60
