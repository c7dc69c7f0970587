"""Spec files become items with readable ids that -k, --lf and -x understand."""

from __future__ import annotations

import pytest


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


def test_malformed_spec_fails_collection_with_file_line_and_no_traceback(
    tiny_project: pytest.Pytester, write_spec
) -> None:
    text = (tiny_project.path / "robustness_specs" / "tiny.yaml").read_text().replace("epochs: 10", "epoch: 10")
    write_spec(text, "tiny.yaml")
    result = tiny_project.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        ["*robustness_specs/tiny.yaml:8: model.train.epoch: unknown key 'epoch'; did you mean 'epochs'?*"]
    )
    assert "Traceback" not in result.stdout.str()


def test_two_contracts_on_one_dataset_get_distinct_ids(tiny_project: pytest.Pytester, write_spec) -> None:
    text = (tiny_project.path / "robustness_specs" / "tiny.yaml").read_text()
    write_spec(text + "  - accuracy: {on: printed, max_relative_drop: 0.2}\n", "tiny.yaml")
    result = tiny_project.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["*int8::accuracy[[]printed]", "*int8::accuracy[[]printed#2]"])


def test_contract_restricted_to_variants(tiny_project: pytest.Pytester, write_spec) -> None:
    text = (tiny_project.path / "robustness_specs" / "tiny.yaml").read_text()
    write_spec(text + "  - accuracy: {on: printed, min: 0.1}\n    variants: [int8]\n", "tiny.yaml")
    result = tiny_project.runpytest("--collect-only", "-q")
    out = result.stdout.str()
    assert "int8::accuracy[printed#2]" in out
    assert "baseline::accuracy[printed]" not in out
