"""End to end: the int8 attack protocol fails closed, says when a contract accepts less, and runs on
non-square inputs (issue 18)."""

from __future__ import annotations

import json

import pytest
from tiny_spec_edits import edit

PGD = "  - attack: {kind: pgd, eps: 2/255, on: handwritten, samples: 48, min: 0.0, steps: 5, queries: 20, variants: [int8]%s}\n"


def test_an_int8_model_without_a_twin_fails_with_one_message_naming_the_leg(tiny_project: pytest.Pytester, write_spec) -> None:
    spec = edit((tiny_project.path / "robustness_specs" / "tiny.yaml").read_text(), "tinynet:build", "tinynet:upsampling")
    write_spec(spec + PGD % "", "tiny.yaml")
    failed = tiny_project.runpytest("-p", "no:cacheprovider", "-k", "pgd")
    failed.assert_outcomes(failed=1, deselected=3)
    failed.stdout.fnmatch_lines([
        "*tiny.yaml:19: the attack protocol for a model without autograd cannot run its twin leg (twin: no fake-quant twin "
        "for the int8 layer torch.ao.nn.quantized.modules.conv.ConvTranspose2d), so its robust accuracy would rest on the "
        "other legs alone and overstate robustness",
        "*fix: make the missing leg possible, or accept the weaker protocol with accept_missing: [[]twin] on this contract*",
        "*int8*attack[[]pgd:2/255@handwritten]*ERROR*",
    ])
    assert "Traceback" not in failed.stdout.str()

    write_spec(spec + PGD % ", accept_missing: [twin]", "tiny.yaml")
    accepted = tiny_project.runpytest("-p", "no:cacheprovider", "-k", "pgd", "--robustgate-report=out")
    accepted.assert_outcomes(passed=1, deselected=3)
    accepted.stdout.fnmatch_lines(["*int8*attack[[]pgd:2/255@handwritten]*PASS*WEAKER PROTOCOL (no twin leg (accepted: accept_missing): no fake-quant twin*): robust_accuracy*"])
    item = json.loads((tiny_project.path / "out" / "results.json").read_text())["items"][0]
    assert item["caveats"] and "ConvTranspose2d" in item["caveats"][0]
    assert item["metrics"]["broken_by_twin"] == 0
    assert "WEAKER PROTOCOL" in (tiny_project.path / "out" / "summary.md").read_text()
    assert "WEAKER PROTOCOL" in (tiny_project.path / "out" / "report.html").read_text()


def test_a_non_square_input_runs_every_leg_and_every_check(tiny_project: pytest.Pytester, write_spec, junit_properties) -> None:
    spec = edit((tiny_project.path / "robustness_specs" / "tiny.yaml").read_text(), "size: [16, 16]", "size: [12, 16]")
    contracts = (
        "  - attack: {kind: pgd, eps: 4/255, on: handwritten, samples: 64, min: 0.0, steps: 5, queries: 30}\n"
        "  - attack: {kind: salt_pepper, amount: 0.05, on: handwritten, samples: 64, min: 0.0}\n"
    )
    write_spec(spec + contracts, "tiny.yaml")
    result = tiny_project.runpytest("-p", "no:cacheprovider", "-k", "attack", "--junitxml=j.xml")
    result.assert_outcomes(passed=4, deselected=3)
    props = junit_properties(tiny_project.path / "j.xml")
    int8 = next(p for name, p in props.items() if "int8" in name and "pgd" in name)
    assert float(int8["robustgate.twin_agreement"]) >= 0.99
    assert "robustgate.caveats" not in int8
    assert int(int8["robustgate.masking_findings"]) >= 0  # the checks ran (a Square among them) on 12x16 images


@pytest.mark.cold_cache  # asserts which attacks its second run builds
def test_a_drop_says_which_attacks_each_side_got_and_symmetric_attacks_the_baseline_alike(
    tiny_project: pytest.Pytester, write_spec, junit_properties
) -> None:
    spec = (tiny_project.path / "robustness_specs" / "tiny.yaml").read_text()
    drop = "  - attack: {kind: pgd, eps: 2/255, on: handwritten, samples: 48, max_drop: 1.0, steps: 5, queries: 20, variants: [int8]%s}\n"
    write_spec(spec + drop % "", "tiny.yaml")
    result = tiny_project.runpytest("--robustgate-cache-dir=cache", "-p", "no:cacheprovider", "-k", "pgd", "--junitxml=j.xml")
    result.assert_outcomes(passed=1, deselected=3)
    (notes,) = [p["robustgate.notes"] for p in junit_properties(tiny_project.path / "j.xml").values()]
    assert (
        "robust accuracy is the worst case over: int8: pgd on the fake-quant twin, pgd transferred from the fp32 parent, "
        "gradient-free square (20 queries); baseline: white-box pgd (symmetric: true attacks the baseline" in notes
    )
    asymmetric = junit_properties(tiny_project.path / "j.xml")

    write_spec(spec + drop % ", symmetric: true", "tiny.yaml")
    result = tiny_project.runpytest("--robustgate-cache-dir=cache", "-p", "no:cacheprovider", "-k", "pgd", "--junitxml=j.xml")
    result.assert_outcomes(passed=1, deselected=3)
    # the int8 model's legs do not change, so its attack is read from the cache; the baseline is attacked again
    assert "attacking int8" not in result.stdout.str()
    result.stdout.fnmatch_lines(["*attacking baseline with pgd at 2/255*directly and by a gradient-free attack (symmetric)*"])
    (props,) = junit_properties(tiny_project.path / "j.xml").values()
    assert "baseline: white-box pgd, gradient-free square (20 queries)" in props["robustgate.notes"]
    assert "symmetric: true attacks" not in props["robustgate.notes"]
    (before,) = asymmetric.values()
    # the baseline can only lose robust images to a second attack, so the drop can only shrink
    assert float(props["robustgate.drop"]) <= float(before["robustgate.drop"])
