"""The `export: {format: onnx}` step: robustgate's own model, exported and evaluated in ONNX Runtime."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tiny_spec_edits import edit

from robustgate.compressors import StepContext, compression_steps
from robustgate.compressors.export import ExportParams
from robustgate.compressors.ptq import PTQParams
from robustgate.errors import CompressionError, SpecError
from robustgate.models.classifier import Classifier
from robustgate.runtimes.onnx import OnnxRuntimeNet
from robustgate.spec import load_spec

export = compression_steps.get("export")


def context(train) -> StepContext:
    return StepContext(dataset=lambda name: train, default_data=None, example=torch.zeros(2, 3, 16, 16), seed=0,
                       progress=lambda _: None)


def test_the_export_runs_in_onnx_runtime_computes_its_parents_logits_and_restores_from_its_bytes(trained_cnn: Classifier, digits) -> None:
    train, test = digits
    images = test.floats()
    onnx = export.apply(trained_cnn, ExportParams(format="onnx"), context(train))
    assert isinstance(onnx.net, OnnxRuntimeNet) and not export.is_differentiable(onnx, context(train))
    with torch.no_grad():
        logits, reference = onnx(images), trained_cnn(images)
    torch.testing.assert_close(logits, reference, rtol=1e-4, atol=1e-5)
    assert torch.equal(logits.argmax(1), reference.argmax(1))
    state = export.state(onnx)
    assert state["onnx"][:64].find(b"pytorch") >= 0 and onnx.net.shipped_bytes() == len(state["onnx"])  # an ONNX protobuf
    restored = export.restore(trained_cnn, ExportParams(format="onnx"), state, context(train))
    with torch.no_grad():
        assert torch.equal(restored(images), logits)  # the cache's bytes are the model


def test_an_int8_torch_model_is_not_exported(trained_cnn: Classifier, digits) -> None:
    train, _ = digits
    int8 = compression_steps.get("ptq").apply(trained_cnn, PTQParams(calibrate={"on": "x", "samples": 64}), context(train))
    with pytest.raises(CompressionError, match="export: torch.onnx.export cannot export the model") as refused:
        export.apply(int8, ExportParams(format="onnx"), context(train))
    assert "after prune or distill, not after ptq" in refused.value.hint


SPEC = """\
robustgate: 1
name: s
model: {arch: torchvision:resnet18, kwargs: {num_classes: 10}, weights: train, train: {on: train}, input: {size: [16, 16]}}
datasets:
  train: {builtin: digits, domain: handwritten, part: train}
variants:
  %s
contracts:
  - accuracy: {on: train, min: 0.5}
"""


@pytest.mark.parametrize(
    ("variant", "message"),
    [
        ("late: {export: {format: onnx}, prune: {method: l1, ratio: 0.5}}",
         "variants.late.export: `export:` gives a model that runs in an edge runtime, so it comes last"),
        ("late: {artifact: m.onnx, ptq: {backend: x86}}",
         "variants.late.artifact: `artifact:` gives a model that runs in an edge runtime, so it comes last"),
        ("pte: {export: {format: executorch}, ptq: {backend: x86}}",
         "variants.pte.export: `export:` gives a model that runs in an edge runtime, so it comes last"),
        ("xnn: {ptq: {backend: xnnpack}, prune: {method: l1, ratio: 0.5}}",
         "variants.xnn.ptq: `ptq:` gives a model that runs in an edge runtime, so it comes last"),
        ("tfl: {export: {format: tflite}}", "variants.tfl.export.format: input should be 'onnx' or 'executorch'"),
    ],
)
def test_nothing_follows_a_model_that_runs_in_a_runtime(tmp_path: Path, variant: str, message: str) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC % variant)
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_spec(path)


def test_exported_and_onnx_runtime_int8_models_are_gated_in_onnx_runtime(tiny_project: pytest.Pytester, write_spec) -> None:
    specs = tiny_project.path / "robustness_specs"
    spec = edit((specs / "tiny.yaml").read_text(), "  int8: {ptq: {backend: x86, calibrate: {on: digits-train, samples: 128}}}\n",
                "  onnx: {export: {format: onnx}}\n"
                "  ort-int8: {ptq: {backend: onnxruntime, calibrate: {on: digits-train, samples: 128}}}\n"
                "  pruned-onnx: {prune: {method: l1, ratio: 0.25, finetune: {on: digits-train, epochs: 2}}, export: {format: onnx}}\n")
    # The pruned model's drop on the printed digits is its fine-tuning's (0.115 on an AVX2 CPU with one thread, near
    # the 0.15 bar), not the export's: it is gated on the handwritten digits only.
    spec = edit(spec, "  - accuracy: {on: printed, max_drop: 0.15}\n", "  - accuracy: {on: printed, max_drop: 0.15, variants: [onnx, ort-int8]}\n")
    attack = "  - attack: {kind: pgd, eps: 8/255, on: handwritten, samples: 32, steps: 5, queries: 100, min: 0.0, variants: [onnx, ort-int8]}\n"
    write_spec(spec + "  - size: {max_ratio: 1.0, variants: [pruned-onnx, ort-int8]}\n" + attack, "tiny.yaml")
    result = tiny_project.runpytest("-p", "no:cacheprovider", "--robustgate-report=out")
    result.assert_outcomes(passed=10)  # the baseline's accuracy; five ONNX models' accuracies; two sizes; two attacks
    items = {(i["model"], i["contract"]): i for i in json.loads((tiny_project.path / "out" / "results.json").read_text())["items"]}
    baseline, onnx = items[("baseline", "accuracy[handwritten]")], items[("onnx", "accuracy[handwritten]")]
    assert onnx["metrics"]["accuracy"] == baseline["metrics"]["accuracy"] and onnx["metrics"]["drop"] == 0  # the same network
    assert abs(items[("ort-int8", "accuracy[handwritten]")]["metrics"]["drop"]) <= 0.03
    sizes = {model: i["metrics"] for (model, _), i in items.items() if i["kind"] == "size"}
    assert sizes["pruned-onnx"]["size_ratio"] < 0.75 and "params" not in sizes["pruned-onnx"]  # its ONNX bytes against fp32's
    assert sizes["ort-int8"]["size_ratio"] < 0.6  # int8 weights in the QDQ graph
    # Both runtime models are attacked by every leg without accepting a gap: the twin of each ONNX graph follows the
    # runtime (the fp32 export's logits, the int8 model's codes layer by layer), transfer comes from the torch model
    attacks = {model: i["metrics"] for (model, _), i in items.items() if i["kind"] == "attack"}
    for model in ("onnx", "ort-int8"):
        assert attacks[model]["twin_agreement"] >= 0.99 and {"broken_by_twin", "broken_by_transfer"} <= set(attacks[model])
    assert "WEAKER PROTOCOL" not in result.stdout.str()
