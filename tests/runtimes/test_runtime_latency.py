"""Latency contracts time a runtime variant (an ONNX export in ONNX Runtime, an ExecuTorch program in ExecuTorch, or
a team's own int8 file of either kind) in its runtime, interleaved with the fp32 baseline for its speed-up."""

from __future__ import annotations

import json

import pytest
from executorch_artifacts import lower_int8_as_a_team_does
from onnx_artifacts import export_onnx, quantize_onnx
from tiny_spec_edits import edit

from robustgate.models.classifier import Classifier

pytestmark = pytest.mark.serial  # latency is timed (pytest-benchmark) only on a machine the test has to itself

FAST = "min_queries: 30, min_seconds: 0.05, warmup: 3"


@pytest.fixture(scope="module", autouse=True)
def _exir_imported_here_first() -> None:
    """ExecuTorch's EXIR registers its torch ops once per process. An in-process pytester run drops the modules it
    imported when it ends, so this process importing EXIR after one did would register them again, and fail."""
    import executorch.exir  # noqa: F401

INT8 = "  int8: {ptq: {backend: x86, calibrate: {on: digits-train, samples: 128}}}\n"


@pytest.mark.parametrize("runtime, suffix, name", [("onnx", "onnx", "ONNX Runtime"), ("executorch", "pte", "ExecuTorch")])
def test_an_export_and_a_teams_own_int8_file_are_timed_in_their_runtime_against_the_baseline(
    tiny_project: pytest.Pytester, write_spec, trained_cnn: Classifier, digits, runtime: str, suffix: str, name: str
) -> None:
    specs = tiny_project.path / "robustness_specs"
    calibration = trained_cnn.normalize(digits[0].floats()[:128])  # the team's file takes normalised images
    if suffix == "onnx":
        quantize_onnx(export_onnx(trained_cnn.net, calibration[:2], tiny_project.path / "fp32.onnx"), specs / "own.onnx", calibration)
    else:
        lower_int8_as_a_team_does(trained_cnn.net, calibration, specs / "own.pte")
    variants = f"  {runtime}: {{export: {{format: {runtime}}}}}\n  own: {{artifact: own.{suffix}}}\n"
    spec = edit((specs / "tiny.yaml").read_text(), INT8, variants)
    for variant in (runtime, "own"):
        spec += (f"  - latency: {{p90_ms: 1000, {FAST}, variants: [{variant}]}}\n"
                 f"  - latency: {{min_speedup: 0.01, {FAST}, variants: [{variant}]}}\n")
    write_spec(spec, "tiny.yaml")
    result = tiny_project.runpytest("-p", "no:cacheprovider", "--benchmark-json=bench.json", "-k", "latency")
    result.assert_outcomes(passed=4, deselected=5)
    benches = {b["name"]: b["extra_info"] for b in json.loads((tiny_project.path / "bench.json").read_text())["benchmarks"]}
    for variant in (runtime, "own"):
        absolute, relative = benches[f"{variant}::latency[p90_ms]"], benches[f"{variant}::latency[min_speedup]"]
        # what was timed is the runtime, not eager torch
        assert absolute["machine"]["runtime"].startswith(name) and relative["machine"]["runtime"].startswith(name)
        assert 0 < absolute["p50_ms"] <= absolute["p90_ms"] and absolute["machine"]["threads"] == 1
        # interleaved with the fp32 baseline in eager PyTorch; the tiny net's ratio is what it is, but both were timed
        assert 0 < relative["speedup_low"] <= relative["speedup"] and relative["queries"] >= 60
