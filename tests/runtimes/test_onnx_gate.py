"""End to end: a team gates the int8 ONNX model it quantized with ONNX Runtime's own tools, run in ONNX Runtime,
against the spec's baseline; without the runtime installed, that variant's items skip saying which extra to add."""

from __future__ import annotations

import json

import pytest
from onnx_artifacts import export_onnx, quantize_onnx
from tiny_spec_edits import edit

import robustgate.runtimes
from robustgate.models.classifier import Classifier

VARIANTS = "  int8: {ptq: {backend: x86, calibrate: {on: digits-train, samples: 128}}}\n"
CONTRACTS = (
    "  - size: {max_mb: 1.0, variants: [own-int8]}\n"
    "  - attack: {kind: pgd, eps: 16/255, on: handwritten, samples: 32, min: 0.0, steps: 5, queries: 200,"
    " variants: [own-int8]}\n"
    "  - compare: {better: baseline, than: own-int8, on: handwritten, by: -0.5}\n"
)


def test_a_teams_onnx_runtime_int8_model_is_gated_in_onnx_runtime(
    tiny_project: pytest.Pytester, write_spec, trained_cnn: Classifier, digits, monkeypatch: pytest.MonkeyPatch
) -> None:
    train, _ = digits
    specs = tiny_project.path / "robustness_specs"
    normalized = trained_cnn.normalize(train.floats()[:128])  # the team's graph takes normalised images (input: normalized)
    fp32 = export_onnx(trained_cnn.net, normalized[:2], tiny_project.path / "fp32.onnx")
    quantize_onnx(fp32, specs / "own_int8.onnx", normalized)
    spec = edit((specs / "tiny.yaml").read_text(), VARIANTS, "  own-int8: {artifact: own_int8.onnx}\n") + CONTRACTS
    write_spec(spec, "tiny.yaml")

    result = tiny_project.runpytest("-p", "no:cacheprovider", "--robustgate-report=out")
    result.assert_outcomes(passed=6)  # the baseline's accuracy, own-int8's two accuracies, its size, its attack, the comparison
    result.stdout.fnmatch_lines([
        "*attacking own-int8 with pgd at 16/255*through a fake-quant twin where one can be built, transfer from its fp32 parent and a gradient-free attack",
        "*own-int8*attack[[]pgd:16/255@handwritten]*PASS*robust_accuracy*",
    ])
    assert "WEAKER PROTOCOL" not in result.stdout.str()  # the twin of the ONNX graph itself: every leg ran
    items = {(i["model"], i["contract"]): i for i in json.loads((tiny_project.path / "out" / "results.json").read_text())["items"]}
    own = items[("own-int8", "accuracy[handwritten]")]
    assert own["metrics"]["accuracy"] >= 0.95 and own["metrics"]["drop"] < 0  # the wider net, in ORT's int8 kernels
    size = next(i for (model, _), i in items.items() if model == "own-int8" and i["kind"] == "size")
    assert size["metrics"]["bytes"] == (specs / "own_int8.onnx").stat().st_size and "params" not in size["metrics"]
    attack = next(i for (model, _), i in items.items() if model == "own-int8" and i["kind"] == "attack")
    # the twin of the QDQ graph follows ORT's int8 codes layer by layer, and the white-box attack through it breaks
    # images that ORT scores; transfer from the fp32 baseline and Square's queries through the runtime ran too
    assert attack["metrics"]["twin_agreement"] >= 0.99 and attack["metrics"]["broken_by_twin"] > 0
    assert {"broken_by_transfer", "broken_by_gradient_free"} <= set(attack["metrics"])

    monkeypatch.setitem(robustgate.runtimes.RUNTIMES, "onnx", (("onnxruntime_not_here",), "ONNX Runtime", "onnx"))
    missing = tiny_project.runpytest("-p", "no:cacheprovider", "-rs")
    missing.assert_outcomes(passed=1, skipped=5)  # the baseline is still gated
    missing.stdout.fnmatch_lines([
        # the baseline's comparison with it cannot be judged either: it skips, naming the extra, rather than fail
        "SKIPPED [[]1[]]*there is nothing to compare with: variant own-int8 (artifact) needs ONNX Runtime*"
        "pip install 'robustgate[[]onnx[]]', and this contract gates nothing else",
        "SKIPPED [[]4[]]*variant own-int8 (artifact) needs ONNX Runtime, which is not installed here "
        "(onnxruntime_not_here): pip install 'robustgate[[]onnx[]]'",
    ])
