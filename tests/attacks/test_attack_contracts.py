"""End to end: attack contracts through pytest, on the tiny CNN and its int8 variant."""

from __future__ import annotations

import pytest
from tiny_spec_edits import edit

ATTACKS = """\
  - attack: {kind: pgd, eps: 2/255, on: handwritten, samples: 120, min: 0.3, max_drop: 0.25}
  - attack: {kind: fgsm, eps: [0, 1/255, 8/255], on: handwritten, samples: 120, min: 0.0, min_area: 0.05}
  - attack: {kind: salt_pepper, amount: 0.05, on: handwritten, samples: 120, min: 0.1}
"""


@pytest.fixture
def attack_project(tiny_project: pytest.Pytester, write_spec) -> pytest.Pytester:
    spec = (tiny_project.path / "robustness_specs" / "tiny.yaml").read_text()
    write_spec(spec + ATTACKS, "tiny.yaml")
    return tiny_project


@pytest.mark.cold_cache  # compares a cold run with a warm one
def test_attack_contracts_gate_every_variant_and_rerun_from_the_cache(attack_project: pytest.Pytester, junit_properties) -> None:
    cold = attack_project.runpytest("--robustgate-cache-dir=cache", "--junitxml=cold.xml", "-p", "no:cacheprovider")
    cold.assert_outcomes(passed=9)
    cold.stdout.fnmatch_lines(
        [
            "*attacking baseline with pgd at 2/255 on 'handwritten' (120 images) directly*",
            "*attacking int8 with pgd at 2/255 on 'handwritten' (120 images) through a fake-quant twin where one can be built, transfer from its fp32 parent and a gradient-free attack*",
            "*int8*attack[[]pgd:2/255@handwritten]*PASS*robust_accuracy 0.* (one-sided 97.5% lower bound 0.*) >= 0.3; drop *",
        ]
    )
    warm = attack_project.runpytest("--robustgate-cache-dir=cache", "--junitxml=warm.xml", "-p", "no:cacheprovider")
    warm.assert_outcomes(passed=9)
    assert "attacking" not in warm.stdout.str()

    cases = [junit_properties(attack_project.path / name) for name in ("cold.xml", "warm.xml")]
    assert cases[0] == cases[1]
    props = cases[0]
    int8_pgd = next(p for name, p in props.items() if "int8" in name and "pgd" in name)
    int8_clean = next(p for name, p in props.items() if "int8" in name and "accuracy[handwritten]" in name)
    assert int(int8_pgd["robustgate.n"]) == 120
    assert float(int8_pgd["robustgate.robust_accuracy"]) <= float(int8_clean["robustgate.accuracy"]) + 0.05
    assert int(int8_pgd["robustgate.broken_by_white_box"]) == 0  # int8 has no gradients to attack directly
    broken = sum(int(int8_pgd[f"robustgate.broken_by_{m}"]) for m in ("twin", "transfer", "gradient_free"))
    assert broken > 0
    assert float(int8_pgd["robustgate.twin_agreement"]) > 0.95
    fgsm = next(p for name, p in props.items() if "baseline" in name and "fgsm" in name)
    curve = [float(fgsm[f"robustgate.robust_accuracy@{eps}"]) for eps in ("0", "1/255", "8/255")]
    assert curve[0] >= curve[1] >= curve[2]
    # The area gate reads the trapezoid mean of the curve over [0, 8/255].
    area = ((curve[0] + curve[1]) / 2 * (1 / 255) + (curve[1] + curve[2]) / 2 * (7 / 255)) / (8 / 255)
    assert float(fgsm["robustgate.robust_area"]) == pytest.approx(area)
    assert float(fgsm["robustgate.robust_area_low"]) <= area


def test_a_broken_attack_contract_fails_with_its_numbers(attack_project: pytest.Pytester, write_spec) -> None:
    spec = (attack_project.path / "robustness_specs" / "tiny.yaml").read_text()
    write_spec(edit(spec, "on: handwritten, samples: 120, min: 0.3", "on: handwritten, samples: 120, min: 0.99"), "tiny.yaml")
    result = attack_project.runpytest("-p", "no:cacheprovider", "-k", "pgd")
    result.assert_outcomes(failed=2, deselected=7)
    result.stdout.fnmatch_lines(["robustgate contract broken: baseline :: attack[[]pgd:2/255@handwritten]*", "*robust_accuracy*>= 0.99*FAIL*"])


def test_gradient_masking_warns_and_fails_under_strict(tiny_project: pytest.Pytester, write_spec) -> None:
    spec = edit((tiny_project.path / "robustness_specs" / "tiny.yaml").read_text(), "tinynet:build", "tinynet:rounded")
    contract = "  - attack: {kind: pgd, eps: 4/255, on: handwritten, samples: 64, min: 0.0, variants: [baseline]%s}\n"
    write_spec(spec + contract % "", "tiny.yaml")
    warned = tiny_project.runpytest("-p", "no:cacheprovider", "-k", "pgd")
    outcomes = warned.parseoutcomes()
    assert outcomes["passed"] == 1 and outcomes["warnings"] >= 1
    warned.stdout.fnmatch_lines(["*EvaluationWarning: baseline :: attack[[]pgd:4/255@handwritten]: the input gradient is exactly zero on 32 of 32 images*"])

    write_spec(spec + contract % ", strict: true", "tiny.yaml")
    strict = tiny_project.runpytest("-p", "no:cacheprovider", "-k", "pgd")
    strict.assert_outcomes(failed=1, deselected=3)
    strict.stdout.fnmatch_lines(["*masking_findings*<= 0*FAIL*", "*finding: the input gradient is exactly zero on 32 of 32 images*"])


def test_a_sweep_of_one_point_reads_like_a_single_eps(tiny_project: pytest.Pytester, write_spec, junit_properties) -> None:
    spec = (tiny_project.path / "robustness_specs" / "tiny.yaml").read_text()
    write_spec(spec + "  - attack: {kind: fgsm, eps: [4/255], on: handwritten, samples: 32, min: 0.0, variants: [baseline]}\n", "tiny.yaml")
    tiny_project.runpytest("-p", "no:cacheprovider", "-k", "fgsm", "--junitxml=j.xml").assert_outcomes(passed=1, deselected=3)
    props = next(p for name, p in junit_properties(tiny_project.path / "j.xml").items() if "fgsm" in name)
    assert "robustgate.robust_accuracy@4/255" in props and "robustgate.robust_area" not in props
