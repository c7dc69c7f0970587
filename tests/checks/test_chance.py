"""A model that guesses is no reference: relative gates against it fail, saying why."""

from __future__ import annotations

import json

import pytest
import torch

from robustgate.checks.chance import chance_accuracy, require_reference_above_chance
from robustgate.checks.declaration import reading
from robustgate.checks.outcome import Outcome
from tiny_spec_edits import edit

GUESSING_CONTRACTS = """contracts:
  - accuracy: {on: handwritten, max_drop: 0.10}
  - attack: {kind: pgd, eps: 2/255, on: handwritten, samples: 64, steps: 3, queries: 20, max_drop: 0.2, diagnostics: false}
  - corruptions: {on: handwritten, suite: [gaussian_noise], severities: [1], samples: 64, max_drop: 0.2}
  - shift: {source: handwritten, targets: [printed], max_drop: 0.2}
"""


def test_chance_is_the_most_frequent_class_share() -> None:
    assert chance_accuracy(torch.tensor([0, 1, 2, 3])) == 0.25
    assert chance_accuracy(torch.tensor([2, 2, 2, 0])) == 0.75


@pytest.mark.parametrize(("hits", "read", "passes"), [
    (25, "point", False),  # exactly chance on 4 balanced classes: not above it
    (26, "point", True),
    (30, "one-sided 97.5% lower bound", False),  # 0.30, but its lower bound 0.22 is not above 0.25
    (60, "one-sided 97.5% lower bound", True),
])
def test_a_reference_must_be_above_chance_at_the_spec_confidence(hits: int, read: str, passes: bool) -> None:
    labels = torch.arange(100) % 4
    correct = torch.arange(100) < hits
    outcome = Outcome("accuracy[x]", "int8")
    reads = reading("point" if read == "point" else 0.95)
    require_reference_above_chance(outcome, correct, labels, reads, "site-a")
    require_reference_above_chance(outcome, correct, labels, reads, "site-a")  # once per reference and dataset
    (gate,) = outcome.gates
    assert gate.metric == "baseline_above_chance@site-a" and gate.threshold == 0.25 and gate.estimate == hits / 100
    assert gate.passed is passes
    assert bool(outcome.findings) is not passes
    if not passes:
        assert "the baseline model is at chance on site-a" in outcome.findings[0] and "cannot pass" in outcome.findings[0]


def test_relative_gates_against_a_guessing_baseline_fail(tiny_project: pytest.Pytester, write_spec) -> None:
    """A random network whose logits favour one class (what a collapsed or untrained model does): int8 loses
    nothing against it, so every relative gate passed without a word. Each item now fails on the reference."""
    import tinynet  # written by tiny_project

    torch.manual_seed(0)
    net = tinynet.build(10)
    with torch.no_grad():
        net[-1].bias.copy_(torch.full((10,), -10.0))
        net[-1].bias[3] = 10.0  # always "3", with gradients still flowing through the other logits
    torch.save(net.state_dict(), tiny_project.path / "robustness_specs" / "guessing.pt")
    tiny = tiny_project.path / "robustness_specs" / "tiny.yaml"
    # the tiny spec's model and data, with these weights instead of training, and only relative gates
    head = tiny.read_text().split("contracts:")[0]
    guessing = edit(edit(head, "  weights: train\n", "  weights: guessing.pt\n"), "  train: {on: digits-train, epochs: 10, lr: 0.01}\n", "")
    tiny.unlink()
    write_spec(guessing + GUESSING_CONTRACTS, "guessing.yaml")
    result = tiny_project.runpytest("-p", "no:cacheprovider", "--robustgate-report=out")
    result.assert_outcomes(failed=4)
    result.stdout.fnmatch_lines(["*baseline_above_chance@handwritten*> 0.1*FAIL*",
                                 "*finding: the baseline model is at chance on handwritten*cannot pass*"])
    items = json.loads((tiny_project.path / "out" / "results.json").read_text())["items"]
    assert len(items) == 4
    for item in items:
        failing = [gate for gate in item["gates"] if not gate["passed"]]
        assert failing and all(gate["metric"].startswith("baseline_above_chance@") for gate in failing), item["gates"]
        assert any("the int8 model is at chance" in finding for finding in item["findings"])
    shift = next(item for item in items if item["contract"].startswith("shift"))
    assert {gate["metric"] for gate in shift["gates"] if not gate["passed"]} == {"baseline_above_chance@printed"}
