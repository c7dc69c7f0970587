"""Spec files become items with readable ids that -k, --lf and -x understand."""

from __future__ import annotations

import pytest
from tiny_spec_edits import edit


def test_spec_collects_one_item_per_model_and_contract(tiny_project: pytest.Pytester) -> None:
    result = tiny_project.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "robustness_specs/tiny.yaml::baseline::accuracy[handwritten]",
            "robustness_specs/tiny.yaml::int8::accuracy[handwritten]",
            "robustness_specs/tiny.yaml::int8::accuracy[printed]",
        ]
    )
    # accuracy[printed] has only a drop gate, which means nothing for the baseline itself.
    assert "baseline::accuracy[printed]" not in result.stdout.str()
    result.stdout.fnmatch_lines(["3 tests collected*"])


def test_keyword_selects_a_variant(tiny_project: pytest.Pytester) -> None:
    result = tiny_project.runpytest("--collect-only", "-q", "-k", "baseline")
    result.stdout.fnmatch_lines(["*1/3 tests collected (2 deselected)*"])


def test_yaml_without_version_key_is_not_collected(tiny_project: pytest.Pytester) -> None:
    (tiny_project.path / "robustness_specs" / "other.yaml").write_text("just: data\n")
    result = tiny_project.runpytest("--collect-only", "-q")
    assert "other.yaml" not in result.stdout.str()


def test_ini_patterns_choose_which_files_are_specs(tiny_project: pytest.Pytester) -> None:
    contracts = tiny_project.mkdir("contracts")
    (contracts / "tiny.yaml").write_text((tiny_project.path / "robustness_specs" / "tiny.yaml").read_text())
    tiny_project.makeini("[pytest]\nrobustgate_patterns = contracts/*.yaml\n")
    result = tiny_project.runpytest("--collect-only", "-q")
    out = result.stdout.str()
    assert "contracts/tiny.yaml::int8::accuracy[printed]" in out
    assert "robustness_specs/tiny.yaml" not in out


def test_file_named_on_the_command_line_is_collected_anywhere(tiny_project: pytest.Pytester) -> None:
    elsewhere = tiny_project.mkdir("elsewhere")
    (elsewhere / "gate.yml").write_text((tiny_project.path / "robustness_specs" / "tiny.yaml").read_text())
    result = tiny_project.runpytest("--collect-only", "-q", "elsewhere/gate.yml")
    result.stdout.fnmatch_lines(["elsewhere/gate.yml::baseline::accuracy[handwritten]"])


def test_a_spec_beside_the_unit_tests_is_collected_with_them(tiny_project: pytest.Pytester) -> None:
    tests = tiny_project.mkdir("tests")
    (tests / "gate.yaml").write_text((tiny_project.path / "robustness_specs" / "tiny.yaml").read_text())
    (tests / "test_unit.py").write_text("def test_unit():\n    pass\n")
    (tests / "config.yaml").write_text("just: data\n")  # other YAML files are left alone
    result = tiny_project.runpytest("--collect-only", "-q", "tests")
    ids = result.stdout.str().splitlines()
    assert "tests/test_unit.py::test_unit" in ids and "tests/gate.yaml::baseline::accuracy[handwritten]" in ids
    assert "config.yaml" not in result.stdout.str()


def test_a_yaml_file_named_without_the_key_gets_robustgates_message(tiny_project: pytest.Pytester) -> None:
    (tiny_project.path / "notes.yaml").write_text("model: {arch: resnet18}\n")
    result = tiny_project.runpytest("notes.yaml")
    result.stdout.fnmatch_lines([
        "notes.yaml:1: notes.yaml has no top-level `robustgate:` key, so it is not a robustgate spec and nothing in it runs",
        "  fix: start a spec with the line `robustgate: 1`*",
    ])
    assert result.ret != 0 and "Traceback" not in result.stdout.str()


def test_malformed_spec_fails_collection_with_file_line_and_no_traceback(
    tiny_project: pytest.Pytester, write_spec
) -> None:
    text = edit((tiny_project.path / "robustness_specs" / "tiny.yaml").read_text(), "epochs: 10", "epoch: 10")
    write_spec(text, "tiny.yaml")
    result = tiny_project.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        ["*robustness_specs/tiny.yaml:8: model.train.epoch: unknown key 'epoch'; did you mean 'epochs'?*"]
    )
    assert "Traceback" not in result.stdout.str()


def collected_ids(project: pytest.Pytester) -> list[str]:
    result = project.runpytest("--collect-only", "-q")
    return [line for line in result.stdout.str().splitlines() if "::" in line]


def test_two_contracts_on_one_dataset_are_told_apart_by_their_gates(tiny_project: pytest.Pytester, write_spec) -> None:
    text = (tiny_project.path / "robustness_specs" / "tiny.yaml").read_text()
    write_spec(text + "  - accuracy: {on: printed, max_relative_drop: 0.2}\n", "tiny.yaml")
    ids = collected_ids(tiny_project)
    assert "robustness_specs/tiny.yaml::int8::accuracy[printed:max_drop]" in ids
    assert "robustness_specs/tiny.yaml::int8::accuracy[printed:max_relative_drop]" in ids


def test_contract_restricted_to_variants(tiny_project: pytest.Pytester, write_spec) -> None:
    text = (tiny_project.path / "robustness_specs" / "tiny.yaml").read_text()
    write_spec(text + "  - accuracy: {on: printed, min: 0.1}\n    variants: [int8]\n", "tiny.yaml")
    out = "\n".join(collected_ids(tiny_project))
    assert "int8::accuracy[printed:min]" in out
    assert "baseline::accuracy[printed" not in out


ATTACKS = """\
  - attack: {kind: pgd, eps: 8/255, on: handwritten, samples: 50, min: 0.1}
  - attack: {kind: pgd, eps: 2/255, on: handwritten, samples: 50, min: 0.1}
  - attack: {kind: pgd, eps: 8/255, on: handwritten, samples: 50, steps: 40, min: 0.1}
  - attack: {kind: pgd, eps: [1/255, 4/255], norm: Linf, on: printed, max_drop: 0.2}
  - corruptions: {on: handwritten, suite: [gaussian_noise, fog, contrast, pixelate], severities: [3], max_relative_mce: 2}
  - latency: {p50_ms: 100, batch_size: 8}
"""


def test_ids_name_what_is_measured_and_k_picks_a_strength(tiny_project: pytest.Pytester, write_spec) -> None:
    text = (tiny_project.path / "robustness_specs" / "tiny.yaml").read_text()
    write_spec(text + ATTACKS, "tiny.yaml")
    ids = [i.split("::", 1)[1] for i in collected_ids(tiny_project)]
    for expected in (
        "int8::attack[pgd:8/255@handwritten:steps-default]",  # two PGD contracts at 8/255: the steps tell them apart
        "int8::attack[pgd:8/255@handwritten:steps40]",
        "int8::attack[pgd:2/255@handwritten]",
        "int8::attack[pgd:1/255+4/255@printed]",
        "int8::corruptions[gaussian_noise-and-3-more:severity3@handwritten]",
        "int8::latency[batch8]",
    ):
        assert expected in ids, ids
    picked = tiny_project.runpytest("--collect-only", "-q", "-k", "8/255 and int8")
    assert [line for line in picked.stdout.str().splitlines() if "::" in line] == [
        "robustness_specs/tiny.yaml::int8::attack[pgd:8/255@handwritten:steps-default]",
        "robustness_specs/tiny.yaml::int8::attack[pgd:8/255@handwritten:steps40]",
    ]


def test_inserting_or_moving_a_contract_changes_no_other_id(tiny_project: pytest.Pytester, write_spec) -> None:
    head, contracts = (tiny_project.path / "robustness_specs" / "tiny.yaml").read_text().split("contracts:\n")
    lines = contracts.splitlines(keepends=True) + ATTACKS.splitlines(keepends=True)
    write_spec(head + "contracts:\n" + "".join(lines), "tiny.yaml")
    before = collected_ids(tiny_project)
    inserted = "  - attack: {kind: fgsm, eps: 4/255, on: handwritten, min: 0.05}\n"
    write_spec(head + "contracts:\n" + inserted + "".join(reversed(lines)), "tiny.yaml")
    after = collected_ids(tiny_project)
    assert set(after) - set(before) == {f"robustness_specs/tiny.yaml::{m}::attack[fgsm:4/255@handwritten]" for m in ("baseline", "int8")}
    assert set(before) <= set(after)


def test_a_contract_repeated_exactly_is_one_error_naming_both_lines(tiny_project: pytest.Pytester, write_spec) -> None:
    text = (tiny_project.path / "robustness_specs" / "tiny.yaml").read_text()
    write_spec(text + "  - accuracy: {on: printed, max_drop: 0.15}\n", "tiny.yaml")
    result = tiny_project.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["robustness_specs/tiny.yaml:19: the contract at line 19 repeats the one at line 18 for "
                                 "accuracy on the same model (printed)", "  fix: delete one of them"])
    assert "Traceback" not in result.stdout.str()
