"""End to end: a team gates the int8 ExecuTorch program it lowered with ExecuTorch's own tools, and robustgate's own
XNNPACK int8 variant, both run in ExecuTorch's runtime; without the runtime, those items skip naming the extra."""

from __future__ import annotations

import json

import pytest
from executorch_artifacts import lower_int8_as_a_team_does
from tiny_spec_edits import STATIC_INT8, edit

import robustgate.runtimes
from robustgate.models.classifier import Classifier

VARIANTS = (
    "  xnnpack-int8: {ptq: {backend: xnnpack, calibrate: {on: digits-train, samples: 128}}}\n"
    "  own-int8: {artifact: own_int8.pte}\n"
)
ATTACK = "kind: pgd, eps: 16/255, on: handwritten, samples: 32, min: 0.0, steps: 5, queries: 200"
CONTRACTS = (
    "  - size: {max_mb: 1.0, variants: [own-int8]}\n"
    f"  - attack: {{{ATTACK}, variants: [xnnpack-int8]}}\n"
    f"  - attack: {{{ATTACK}, accept_missing: [twin], variants: [own-int8]}}\n"
)


def test_a_teams_executorch_int8_program_is_gated_in_executorch(
    tiny_project: pytest.Pytester, write_spec, trained_cnn: Classifier, digits, monkeypatch: pytest.MonkeyPatch
) -> None:
    specs = tiny_project.path / "robustness_specs"
    lower_int8_as_a_team_does(trained_cnn.net, trained_cnn.normalize(digits[0].floats()[:128]), specs / "own_int8.pte")
    write_spec(edit((specs / "tiny.yaml").read_text(), f"  {STATIC_INT8}\n", VARIANTS) + CONTRACTS, "tiny.yaml")

    result = tiny_project.runpytest("-p", "no:cacheprovider", "--robustgate-report=out")
    # the baseline's accuracy; each variant's two accuracies and its attack; own-int8's size
    result.assert_outcomes(passed=8)
    result.stdout.fnmatch_lines(["*own-int8*attack[[]pgd:16/255@handwritten]*PASS*WEAKER PROTOCOL*"])
    items = {(i["model"], i["kind"], i["contract"]): i for i in json.loads((tiny_project.path / "out" / "results.json").read_text())["items"]}
    own = items[("own-int8", "accuracy", "accuracy[handwritten]")]
    assert own["metrics"]["accuracy"] >= 0.95  # the wider trained net, in XNNPACK's int8 kernels
    size = next(item for (model, kind, _), item in items.items() if model == "own-int8" and kind == "size")
    assert size["metrics"]["bytes"] == (specs / "own_int8.pte").stat().st_size and "params" not in size["metrics"]
    attacks = {model: item for (model, kind, _), item in items.items() if kind == "attack"}
    # robustgate's own program has the twin of the PT2E graph it was lowered from, agreeing with XNNPACK's logits
    assert attacks["xnnpack-int8"]["metrics"]["twin_agreement"] >= 0.99 and attacks["xnnpack-int8"]["metrics"]["broken_by_twin"] > 0
    # a team's program has no graph to mirror: transfer from the baseline and Square through the runtime, said as weaker
    own_attack = attacks["own-int8"]["metrics"]
    assert own_attack.get("broken_by_twin", 0) == 0 and "twin_agreement" not in own_attack
    assert {"broken_by_transfer", "broken_by_gradient_free"} <= set(own_attack)

    monkeypatch.setitem(robustgate.runtimes.RUNTIMES, "executorch", (("executorch_not_here",), "ExecuTorch", "executorch"))
    missing = tiny_project.runpytest("-p", "no:cacheprovider", "-rs")
    missing.assert_outcomes(passed=1, skipped=7)
    missing.stdout.fnmatch_lines([
        "SKIPPED [[]*[]]*needs ExecuTorch, which is not installed here (executorch_not_here): pip install 'robustgate[[]executorch[]]'",
    ])
