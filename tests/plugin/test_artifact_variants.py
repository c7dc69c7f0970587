"""End to end: a team gates models it compressed itself (an int8 TorchScript file, a wider fp32 student's
state_dict) against the spec's own baseline, and a leg or count robustgate cannot measure fails closed."""

from __future__ import annotations

import json

import pytest
import torch
from tiny_spec_edits import edit

from robustgate.compressors import StepContext, compression_steps
from robustgate.compressors.ptq import PTQParams
from robustgate.models.classifier import Classifier

ATTACK = "  - attack: {kind: pgd, eps: 16/255, on: handwritten, samples: 32, min: 0.0, steps: 5, queries: 20, variants: [own-int8]%s}\n"


def test_a_teams_own_int8_torchscript_and_fp32_student_are_gated_against_the_baseline(
    tiny_project: pytest.Pytester, write_spec, trained_cnn: Classifier, digits
) -> None:
    train, test = digits
    specs = tiny_project.path / "robustness_specs"
    context = StepContext(dataset=lambda name: train, default_data=None, example=torch.zeros(2, 3, 16, 16), seed=0,
                          progress=lambda _: None)
    int8 = compression_steps.get("ptq").apply(trained_cnn, PTQParams(calibrate={"on": "x", "samples": 64}), context)
    with torch.no_grad():  # what a team ships: its int8 graph as TorchScript, normalisation left to the caller
        torch.jit.save(torch.jit.trace(int8.net.quantized, trained_cnn.normalize(test.floats()[:2])), specs / "own_int8.pt")
    torch.save(trained_cnn.net.state_dict(), specs / "own_fp32.pt")  # a student twice as wide as the spec's model
    spec = edit((specs / "tiny.yaml").read_text(), "  int8: {ptq: {backend: x86, calibrate: {on: digits-train, samples: 128}}}\n",
                "  own-int8: {artifact: own_int8.pt}\n"
                "  own-fp32: {artifact: {path: own_fp32.pt, arch: 'tinynet:build', kwargs: {num_classes: 10, width: 32}}}\n")
    spec += "  - size: {max_mb: 1.0, variants: [own-int8]}\n  - size: {max_params: 100000, variants: [own-int8]}\n"
    write_spec(spec + ATTACK % "", "tiny.yaml")
    result = tiny_project.runpytest("-p", "no:cacheprovider", "--robustgate-report=out")
    # the baseline's accuracy, each artifact's two, own-int8's max_mb; failing closed: its params, its twin leg
    result.assert_outcomes(passed=6, failed=2)
    result.stdout.fnmatch_lines([
        "*size: max_params cannot be judged for 'own-int8': its params cannot be counted*",
        "*fix: gate its bytes on disk with max_mb or max_ratio instead*",
        "*the attack protocol for a model without autograd cannot run its twin leg (twin: robustgate builds fake-quant "
        "twins of its own int8 networks, of ONNX graphs, of PT2E torch.export programs and of the ExecuTorch programs it "
        "lowers only, not of a RecursiveScriptModule)*",
    ])
    document = json.loads((tiny_project.path / "out" / "results.json").read_text())
    items = {(i["model"], i["contract"]): i for i in document["items"]}
    (read,) = [entry["paths"] for entry in document["specs"].values()]  # a reviewer sees which files were gated
    assert read["variants.own-int8.artifact"] == str((specs / "own_int8.pt").resolve()) and "variants.own-fp32.artifact" in read
    own = items[("own-int8", "accuracy[handwritten]")]
    # The team's int8 model is the trained width-32 net quantized: above the spec's own baseline here (a drop below 0).
    assert own["metrics"]["accuracy"] >= 0.95 and own["metrics"]["drop"] < 0
    size = next(i for (model, contract), i in items.items() if model == "own-int8" and i["kind"] == "size" and i["outcome"] == "passed")
    assert size["metrics"]["bytes"] == (specs / "own_int8.pt").stat().st_size and "params" not in size["metrics"]
    assert items[("own-fp32", "accuracy[handwritten]")]["metrics"]["accuracy"] == pytest.approx(own["metrics"]["accuracy"], abs=0.02)

    write_spec(spec.replace("  - size: {max_params: 100000, variants: [own-int8]}\n", "") + ATTACK % ", accept_missing: [twin]", "tiny.yaml")
    accepted = tiny_project.runpytest("-p", "no:cacheprovider", "-k", "pgd", "--robustgate-report=out")
    accepted.assert_outcomes(passed=1, deselected=6)
    accepted.stdout.fnmatch_lines(["*own-int8*attack[[]pgd:16/255@handwritten]*PASS*WEAKER PROTOCOL (no twin leg*"])
    item = json.loads((tiny_project.path / "out" / "results.json").read_text())["items"][0]
    assert item["metrics"]["broken_by_transfer"] + item["metrics"]["broken_by_gradient_free"] > 0  # both legs ran and bit
