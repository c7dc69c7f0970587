"""Malformed specs fail with one SpecError naming `file:line`, the key path and what was expected.

Every spec below is written out in full so the asserted line numbers can be read off the text:
the first line after the opening quotes is line 1. The tests run inside ``tmp_path`` so the
location is shown as ``spec.yaml:N``.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from tiny_spec_edits import edit

from robustgate.errors import SpecError
from robustgate.spec import load_spec


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str) -> str:
    """The message of the single SpecError that loading ``text`` raises."""
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    return str(info.value)


def problems(message: str) -> list[tuple[int, str]]:
    """(line, text) of every problem a SpecError lists (one or many)."""
    found = [(int(m.group(1)), m.group(2)) for m in re.finditer(r"spec\.yaml:(\d+): (.*)", message)]
    assert found, f"no spec.yaml:LINE location in {message!r}"
    return found


def single(message: str) -> tuple[int, str]:
    """The one problem of a message that must report exactly one, as (line, text)."""
    first_line = message.splitlines()[0]
    match = re.fullmatch(r"spec\.yaml:(\d+): (.*)", first_line)
    assert match, f"expected one 'spec.yaml:LINE: problem', got {message!r}"
    return int(match.group(1)), match.group(2)


VALID = """
robustgate: 1
model:
  arch: torchvision:resnet18
  weights: train
  train: {on: train, epochs: 6}
  input: {size: [32, 32]}
datasets:
  train: {builtin: digits, domain: handwritten, part: train}
  test: {builtin: digits, domain: handwritten, part: test}
variants:
  int8: {ptq: {backend: x86}}
contracts:
  - accuracy: {on: test, min: 0.9}
"""


def test_the_valid_base_spec_loads(tmp_path: Path) -> None:
    # Every malformed spec below is this one with a single defect, so its errors come from that defect.
    spec = load_spec(write(tmp_path, VALID))
    assert list(spec.datasets) == ["train", "test"]
    assert list(spec.variants) == ["int8"]
    assert [c.kind for c in spec.contracts] == ["accuracy"]
    assert spec.contracts[0].line == 13
    assert spec.variants["int8"].line == 11
    assert spec.datasets["test"].line == 9


# --- YAML syntax -------------------------------------------------------------------------------


def test_bad_indentation_points_at_the_misindented_line(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        """
        robustgate: 1
        model:
          arch: torchvision:resnet18
           weights: train
          input: {size: [32, 32]}
        datasets:
          test: {builtin: digits, domain: handwritten}
        contracts:
          - accuracy: {on: test, min: 0.9}
        """,
    )
    line, text = single(message)
    assert line == 4
    assert text.startswith("not valid YAML")
    assert "indentation" in message  # the hint says what to look at


def test_a_dedented_key_inside_a_mapping_points_at_its_line(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        """
        robustgate: 1
        model:
          arch: torchvision:resnet18
          weights: train
         kwargs: {num_classes: 10}
          input: {size: [32, 32]}
        datasets:
          test: {builtin: digits, domain: handwritten}
        contracts:
          - accuracy: {on: test, min: 0.9}
        """,
    )
    line, text = single(message)
    assert line == 5
    assert "not valid YAML" in text


def test_a_tab_is_reported_on_its_line_with_a_hint_about_tabs(tmp_path: Path) -> None:
    text = edit(VALID, "  weights: train\n", "\tweights: train\n")
    message = error_of(tmp_path, text)
    line, problem = single(message)
    assert line == 4
    assert "'\\t'" in problem
    assert "tabs are not allowed" in message


def test_an_unclosed_flow_mapping_is_a_yaml_error(tmp_path: Path) -> None:
    message = error_of(tmp_path, edit(VALID, "{on: test, min: 0.9}", "{on: test, min: 0.9"))
    line, problem = single(message)
    assert problem.startswith("not valid YAML")
    assert line >= 13  # the parser notices at the end of the document, never before the open brace


def test_a_duplicate_key_is_refused_with_both_lines(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        """
        robustgate: 1
        model:
          arch: torchvision:resnet18
          weights: train
          train: {on: train, epochs: 6}
          input: {size: [32, 32]}
        datasets:
          train: {builtin: digits, domain: handwritten, part: train}
          test: {builtin: digits, domain: handwritten, part: test}
          train: {builtin: digits, domain: printed}
        contracts:
          - accuracy: {on: test, min: 0.9}
        """,
    )
    line, problem = single(message)
    assert line == 10
    assert "key 'train' appears twice (first on line 8)" in problem
    assert "YAML keeps only the last" in message


def test_a_duplicate_key_inside_a_flow_mapping_is_refused(tmp_path: Path) -> None:
    message = error_of(tmp_path, edit(VALID, "{on: test, min: 0.9}", "{on: test, min: 0.9, min: 0.5}"))
    line, problem = single(message)
    assert line == 13
    assert "key 'min' appears twice" in problem


def test_a_duplicate_top_level_section_is_refused(tmp_path: Path) -> None:
    message = error_of(tmp_path, VALID + "variants:\n  int4: {ptq: {backend: x86}}\n")
    line, problem = single(message)
    assert line == 14
    assert "key 'variants' appears twice (first on line 10)" in problem


def test_a_python_tag_is_rejected_and_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    text = edit(VALID, "robustgate: 1\n", f'robustgate: 1\nname: !!python/object/apply:os.system ["touch {marker}"]\n')
    message = error_of(tmp_path, text)
    assert not marker.exists(), "a Python tag in a spec was executed"
    line, problem = single(message)
    assert line == 2
    assert "python/object/apply:os.system" in problem


def test_a_python_name_tag_is_rejected(tmp_path: Path) -> None:
    text = edit(VALID, "robustgate: 1\n", "robustgate: 1\nseed: !!python/name:os.getcwd\n")
    line, problem = single(error_of(tmp_path, text))
    assert line == 2
    assert "python/name:os.getcwd" in problem


def test_a_python_tag_error_does_not_blame_indentation(tmp_path: Path) -> None:
    text = edit(VALID, "robustgate: 1\n", 'robustgate: 1\nname: !!python/object/apply:os.system ["true"]\n')
    message = error_of(tmp_path, text)
    assert "indentation" not in message and "tabs" not in message
    assert "tag" in message


def test_a_file_that_is_not_a_mapping_is_not_a_spec(tmp_path: Path) -> None:
    message = error_of(tmp_path, "- robustgate: 1\n")
    line, problem = single(message)
    assert line == 1
    assert "not a robustgate spec" in problem
    assert "robustgate: 1" in message


def test_a_file_that_is_not_utf8_is_a_spec_error(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_bytes(edit(textwrap.dedent(VALID).lstrip("\n"), "robustgate: 1\n", "robustgate: 1\nname: caf\xe9\n").encode("latin-1"))
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert "spec.yaml" in str(info.value)


def test_a_missing_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path / "absent.yaml")
    assert "absent.yaml" in str(info.value)
    assert "cannot read" in str(info.value)


def test_outside_the_working_directory_the_location_is_the_full_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, edit(VALID, "epochs: 6", "epochs: six"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value).startswith(f"{path}:5: ")


# --- version and top-level keys ----------------------------------------------------------------


def test_an_unsupported_version_is_named(tmp_path: Path) -> None:
    line, problem = single(error_of(tmp_path, edit(VALID, "robustgate: 1", "robustgate: 2")))
    assert line == 1
    assert problem.startswith("robustgate: unsupported spec version 2")
    assert "reads version 1" in problem


def test_a_quoted_version_is_not_version_1(tmp_path: Path) -> None:
    line, problem = single(error_of(tmp_path, edit(VALID, "robustgate: 1", "robustgate: '1'")))
    assert line == 1
    assert "unsupported spec version '1'" in problem


def test_a_boolean_version_is_not_version_1(tmp_path: Path) -> None:
    line, problem = single(error_of(tmp_path, edit(VALID, "robustgate: 1", "robustgate: true")))
    assert line == 1
    assert "version" in problem


def test_an_unknown_top_level_key_suggests_the_closest(tmp_path: Path) -> None:
    text = edit(VALID, "robustgate: 1\n", "robustgate: 1\nnmae: x\n")
    line, problem = single(error_of(tmp_path, text))
    assert line == 2
    assert problem == "nmae: unknown key 'nmae'; did you mean 'name'?"


def test_a_misspelt_contracts_section_suggests_contracts(tmp_path: Path) -> None:
    message = error_of(tmp_path, edit(VALID, "contracts:", "contract:"))
    found = dict((text.split(":")[0], line) for line, text in problems(message))
    assert found["contract"] == 12
    assert "contract: unknown key 'contract'; did you mean 'contracts'?" in message
    # the section it should have been is then missing; that is the only other problem
    assert "missing required key 'contracts'" in message
    assert message.startswith("2 problems in spec.yaml:")


def test_confidence_above_one_is_refused(tmp_path: Path) -> None:
    text = edit(VALID, "robustgate: 1\n", "robustgate: 1\nconfidence: 1.5\n")
    line, problem = single(error_of(tmp_path, text))
    assert line == 2
    assert problem.startswith("confidence: ")
    assert "[0.5, 1)" in problem and "point" in problem
    assert "(got 1.5)" in problem


def test_a_non_numeric_confidence_is_one_clear_problem(tmp_path: Path) -> None:
    text = edit(VALID, "robustgate: 1\n", "robustgate: 1\nconfidence: high\n")
    line, problem = single(error_of(tmp_path, text))
    assert line == 2
    assert problem.startswith("confidence: ")


def test_an_unknown_device_is_refused(tmp_path: Path) -> None:
    text = edit(VALID, "robustgate: 1\n", "robustgate: 1\ndevice: tpu\n")
    line, problem = single(error_of(tmp_path, text))
    assert line == 2
    assert "device must be `cpu`, `cuda` or `cuda:N`" in problem
    assert "(got 'tpu')" in problem


# --- model ---------------------------------------------------------------------------------------


def test_an_unknown_nested_key_suggests_the_closest(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        """
        robustgate: 1
        model:
          arch: torchvision:resnet18
          weights: train
          train:
            on: train
            epoch: 6
          input: {size: [32, 32]}
        datasets:
          train: {builtin: digits, domain: handwritten, part: train}
        contracts:
          - accuracy: {on: train, min: 0.9}
        """,
    )
    line, problem = single(message)
    assert line == 7
    assert problem == "model.train.epoch: unknown key 'epoch'; did you mean 'epochs'?"


def test_a_wrong_type_names_the_key_the_expectation_and_the_value(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        """
        robustgate: 1
        model:
          arch: torchvision:resnet18
          weights: train
          train:
            on: train
            epochs: six
          input: {size: [32, 32]}
        datasets:
          train: {builtin: digits, domain: handwritten, part: train}
        contracts:
          - accuracy: {on: train, min: 0.9}
        """,
    )
    line, problem = single(message)
    assert line == 7
    assert problem.startswith("model.train.epochs: ")
    assert "valid integer" in problem
    assert "(got 'six')" in problem


def test_a_missing_required_key_is_reported_at_its_parent(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        """
        robustgate: 1
        datasets:
          train: {builtin: digits, domain: handwritten, part: train}
        model:
          weights: train
          train: {on: train}
          input: {size: [32, 32]}
        contracts:
          - accuracy: {on: train, min: 0.9}
        """,
    )
    line, problem = single(message)
    assert line == 4
    assert problem == "model: missing required key 'arch'"


def test_train_weights_without_a_train_section_say_what_to_add(tmp_path: Path) -> None:
    line, problem = single(error_of(tmp_path, edit(VALID, "  train: {on: train, epochs: 6}\n", "")))
    assert line == 2
    assert problem.startswith("model: weights: train needs a `train:` section")


def test_a_too_small_input_size_is_refused(tmp_path: Path) -> None:
    line, problem = single(error_of(tmp_path, edit(VALID, "size: [32, 32]", "size: [4, 32]")))
    assert line == 6
    assert problem.startswith("model.input.size: ")
    assert "at least 8 pixels" in problem


# --- datasets ------------------------------------------------------------------------------------


def test_a_dataset_with_two_source_keys_names_both(tmp_path: Path) -> None:
    text = edit(VALID, "test: {builtin: digits, domain: handwritten, part: test}", "test: {builtin: digits, imagefolder: data/test, domain: handwritten}")
    line, problem = single(error_of(tmp_path, text))
    assert line == 9
    assert problem == "datasets.test: a dataset takes one source key, but has builtin and imagefolder"


def test_a_dataset_without_a_source_key_says_so(tmp_path: Path) -> None:
    text = edit(VALID, "test: {builtin: digits, domain: handwritten, part: test}", "test: {domain: handwritten}")
    line, problem = single(error_of(tmp_path, text))
    assert line == 9
    assert problem == "datasets.test: a dataset needs one source key: builtin, from, imagefolder, office31"


def test_split_without_part_is_refused(tmp_path: Path) -> None:
    text = edit(VALID, "test: {builtin: digits, domain: handwritten, part: test}", "test: {builtin: digits, domain: handwritten, split: 0.7}")
    line, problem = single(error_of(tmp_path, text))
    assert line == 9
    assert problem.startswith("datasets.test: ")
    assert "`split:`" in problem and "`part:`" in problem


def test_a_severity_out_of_range_names_the_bound(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        """
        robustgate: 1
        model:
          arch: torchvision:resnet18
          weights: train
          train: {on: train}
          input: {size: [32, 32]}
        datasets:
          train: {builtin: digits, domain: handwritten, part: train}
          noisy:
            from: train
            corruption: gaussian_noise
            severity: 6
        contracts:
          - accuracy: {on: noisy, min: 0.5}
        """,
    )
    line, problem = single(message)
    assert line == 12
    assert problem == "datasets.noisy.severity: input should be less than or equal to 5 (got 6)"


def test_an_unknown_corruption_suggests_the_closest(tmp_path: Path) -> None:
    text = edit(VALID, "  test: {builtin: digits, domain: handwritten, part: test}\n", "  test: {builtin: digits, domain: handwritten, part: test}\n  noisy: {from: test, corruption: gausian_noise}\n")
    line, problem = single(error_of(tmp_path, text))
    assert line == 10
    assert problem.startswith("datasets.noisy")
    assert "unknown corruption 'gausian_noise'" in problem
    assert "did you mean 'gaussian_noise'?" in problem


def test_an_unknown_corruption_points_at_the_corruption_key(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        """
        robustgate: 1
        model:
          arch: torchvision:resnet18
          weights: train
          train: {on: train}
          input: {size: [32, 32]}
        datasets:
          train: {builtin: digits, domain: handwritten, part: train}
          noisy:
            from: train
            severity: 2
            corruption: gausian_noise
        contracts:
          - accuracy: {on: noisy, min: 0.5}
        """,
    )
    line, problem = single(message)
    assert line == 12
    assert problem.startswith("datasets.noisy.corruption: ")


def test_an_unknown_dataset_key_suggests_the_closest(tmp_path: Path) -> None:
    text = edit(VALID, "domain: handwritten, part: test}", "domain: handwritten, part: test, sampels: 100}")
    line, problem = single(error_of(tmp_path, text))
    assert line == 9
    assert problem == "datasets.test.sampels: unknown key 'sampels'; did you mean 'samples'?"


def test_an_unknown_dataset_in_from_suggests_the_closest(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        """
        robustgate: 1
        model:
          arch: torchvision:resnet18
          weights: train
          train: {on: train}
          input: {size: [32, 32]}
        datasets:
          train: {builtin: digits, domain: handwritten, part: train}
          handwritten: {builtin: digits, domain: handwritten, part: test}
          noisy:
            corruption: gaussian_noise
            from: handwriten
        contracts:
          - accuracy: {on: noisy, min: 0.5}
        """,
    )
    line, problem = single(message)
    assert line == 12
    assert problem == "datasets.noisy.from: unknown dataset 'handwriten'; did you mean 'handwritten'?"


def test_a_from_cycle_is_reported_once_with_its_members(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        """
        robustgate: 1
        model:
          arch: torchvision:resnet18
          weights: train
          train: {on: train}
          input: {size: [32, 32]}
        datasets:
          train: {builtin: digits, domain: handwritten, part: train}
          b: {from: c}
          c: {from: a}
          a:
            corruption: contrast
            from: b
        contracts:
          - accuracy: {on: a, min: 0.5}
        """,
    )
    line, problem = single(message)
    assert line == 13  # at its first member by name, `a`, on its `from:` line
    assert problem == "datasets.a.from: datasets derive from each other in a cycle: a → b → c → a"


def test_a_dataset_deriving_from_itself_is_a_cycle(tmp_path: Path) -> None:
    text = edit(VALID, "  test: {builtin: digits, domain: handwritten, part: test}", "  test: {from: test}")
    line, problem = single(error_of(tmp_path, text))
    assert line == 9
    assert problem == "datasets.test.from: datasets derive from each other in a cycle: test → test"


def test_a_dataset_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    text = edit(VALID, "  test: {builtin: digits, domain: handwritten, part: test}", "  test: digits")
    line, problem = single(error_of(tmp_path, text))
    assert line == 9
    assert problem == "datasets.test: expected a mapping such as {builtin: digits, domain: printed}"


def test_a_numeric_dataset_name_is_reported_on_its_own_line(tmp_path: Path) -> None:
    text = edit(VALID, "  test: {builtin: digits, domain: handwritten, part: test}", "  8: {builtin: digits, domain: printed}")
    text = edit(text, "on: test", "on: train")
    line, problem = single(error_of(tmp_path, text))
    assert line == 9
    assert problem == "datasets.8: dataset names must be text; quote it: '8'"


# --- variants ------------------------------------------------------------------------------------


def test_an_unknown_compression_step_suggests_the_closest(tmp_path: Path) -> None:
    line, problem = single(error_of(tmp_path, edit(VALID, "int8: {ptq:", "int8: {ptqq:")))
    assert line == 11
    assert problem == "variants.int8.ptqq: unknown compression step 'ptqq': did you mean 'ptq'?"


def test_an_unknown_step_option_value_lists_the_choices(tmp_path: Path) -> None:
    line, problem = single(error_of(tmp_path, edit(VALID, "backend: x86", "backend: arm")))
    assert line == 11
    assert problem.startswith("variants.int8.ptq.backend: ")
    assert "'x86'" in problem and "'qnnpack'" in problem
    assert "(got 'arm')" in problem


def test_a_variant_named_baseline_is_refused(tmp_path: Path) -> None:
    line, problem = single(error_of(tmp_path, edit(VALID, "  int8: {", "  baseline: {")))
    assert line == 11
    assert problem.startswith("variants.baseline: `baseline` is the uncompressed model")


@pytest.mark.parametrize("name", ["a::b", "int8[x]", "has space", "-lead"])
def test_a_variant_name_that_would_break_test_ids_is_refused(tmp_path: Path, name: str) -> None:
    line, problem = single(error_of(tmp_path, edit(VALID, "  int8: {", f"  '{name}': {{")))
    assert line == 11
    assert problem.startswith(f"variants.{name}: variant name {name!r} may only use")
    assert "_ . + -" in problem


def test_a_variant_without_steps_is_refused(tmp_path: Path) -> None:
    line, problem = single(error_of(tmp_path, edit(VALID, "  int8: {ptq: {backend: x86}}", "  int8:")))
    assert line == 11
    assert problem.startswith("variants.int8: a variant needs at least one compression step")


def test_ptq_options_that_contradict_each_other_name_the_step(tmp_path: Path) -> None:
    text = edit(VALID, "{ptq: {backend: x86}}", "{ptq: {backend: pt2e, method: eager}}")
    line, problem = single(error_of(tmp_path, text))
    assert line == 11
    assert problem.startswith("variants.int8.ptq: backend: pt2e has its own graph capture (torch.export)")
    assert "drop method:" in problem


def test_an_unknown_calibration_dataset_suggests_the_closest(tmp_path: Path) -> None:
    text = edit(VALID, "{ptq: {backend: x86}}", "{ptq: {backend: x86, calibrate: {on: trian}}}")
    line, problem = single(error_of(tmp_path, text))
    assert line == 11
    assert problem == "variants.int8.ptq.calibrate.on: unknown dataset 'trian'; did you mean 'train'?"


# --- contracts -----------------------------------------------------------------------------------


def test_an_unknown_contract_kind_suggests_the_closest(tmp_path: Path) -> None:
    line, problem = single(error_of(tmp_path, edit(VALID, "- accuracy:", "- acuracy:")))
    assert line == 13
    assert problem == "contracts[0].acuracy: unknown contract kind 'acuracy': did you mean 'accuracy'?"


def test_an_unknown_dataset_in_on_suggests_the_closest(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        """
        robustgate: 1
        model:
          arch: torchvision:resnet18
          weights: train
          train: {on: train}
          input: {size: [32, 32]}
        datasets:
          train: {builtin: digits, domain: handwritten, part: train}
          handwritten: {builtin: digits, domain: handwritten, part: test}
        contracts:
          - accuracy: {on: handwritten, min: 0.9}
          - accuracy:
              min: 0.5
              on: handwriten
        """,
    )
    line, problem = single(message)
    assert line == 14
    assert problem == "contracts[1].accuracy.on: unknown dataset 'handwriten'; did you mean 'handwritten'?"


def test_an_unknown_dataset_in_model_train_on_is_reported(tmp_path: Path) -> None:
    line, problem = single(error_of(tmp_path, edit(VALID, "train: {on: train,", "train: {on: trian,")))
    assert line == 5
    assert problem == "model.train.on: unknown dataset 'trian'; did you mean 'train'?"


def test_an_unknown_dataset_far_from_every_name_lists_the_names(tmp_path: Path) -> None:
    line, problem = single(error_of(tmp_path, edit(VALID, "{on: test, min", "{on: zzzzzz, min")))
    assert line == 13
    assert problem == "contracts[0].accuracy.on: unknown dataset 'zzzzzz'; expected one of: test, train"


def test_an_unknown_contract_key_suggests_the_closest(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        edit(VALID, "  - accuracy: {on: test, min: 0.9}", "  - accuracy:\n      on: test\n      min: 0.9\n      max_dorp: 0.1"),
    )
    line, problem = single(message)
    assert line == 16
    assert problem == "contracts[0].accuracy.max_dorp: unknown key 'max_dorp'; did you mean 'max_drop'?"


def test_an_accuracy_contract_without_a_gate_names_the_gates(tmp_path: Path) -> None:
    line, problem = single(error_of(tmp_path, edit(VALID, "{on: test, min: 0.9}", "{on: test}")))
    assert line == 13
    assert problem == "contracts[0].accuracy: an accuracy contract needs a gate: min, max_drop or max_relative_drop"


def test_an_accuracy_threshold_above_one_is_refused(tmp_path: Path) -> None:
    line, problem = single(error_of(tmp_path, edit(VALID, "min: 0.9", "min: 90")))
    assert line == 13
    assert problem == "contracts[0].accuracy.min: input should be less than or equal to 1 (got 90)"


def test_an_empty_contract_body_reports_the_missing_dataset(tmp_path: Path) -> None:
    line, problem = single(error_of(tmp_path, edit(VALID, "  - accuracy: {on: test, min: 0.9}", "  - accuracy:")))
    assert line == 13
    assert problem == "contracts[0].accuracy: missing required key 'on'"


def test_a_contract_restricted_to_an_unknown_variant_lists_the_variants(tmp_path: Path) -> None:
    line, problem = single(error_of(tmp_path, VALID + "    variants: [nope]\n"))
    assert line == 14
    assert problem == "contracts[0].variants: unknown variant 'nope'; expected one of: baseline, int8"


def test_a_misspelt_variant_restriction_suggests_the_closest(tmp_path: Path) -> None:
    text = edit(VALID, "{on: test, min: 0.9}", "{on: test, min: 0.9, variants: [baseline, int9]}")
    line, problem = single(error_of(tmp_path, text))
    assert line == 13
    assert problem == "contracts[0].variants: unknown variant 'int9'; did you mean 'int8'?"


def test_a_variant_restriction_that_is_not_a_list_is_refused(tmp_path: Path) -> None:
    line, problem = single(error_of(tmp_path, VALID + "    variants: 3\n"))
    assert line == 14
    assert problem == "contracts[0].variants: expected a list of variant names, e.g. variants: [int8]"


def test_a_variant_restriction_given_twice_is_refused(tmp_path: Path) -> None:
    text = edit(VALID, "{on: test, min: 0.9}", "{on: test, min: 0.9, variants: [int8]}") + "    variants: [int8]\n"
    line, problem = single(error_of(tmp_path, text))
    assert line == 13
    assert "`variants:` is given twice" in problem


def test_a_contract_with_two_kinds_is_refused(tmp_path: Path) -> None:
    text = VALID + "    size: {max_ratio: 0.3}\n"
    line, problem = single(error_of(tmp_path, text))
    assert line == 13
    assert problem.startswith("contracts[0]: each contract is one `kind: {...}` mapping")
    assert "accuracy" in problem


def test_contracts_given_as_a_mapping_are_refused(tmp_path: Path) -> None:
    text = edit(VALID, "  - accuracy: {on: test, min: 0.9}", "  accuracy: {on: test, min: 0.9}")
    line, problem = single(error_of(tmp_path, text))
    assert line == 12
    assert problem.startswith("contracts: input should be a valid list")


@pytest.mark.parametrize("body", ["[test, 0.9]", "test", "3"])
def test_a_contract_body_that_is_not_a_mapping_is_a_spec_error(tmp_path: Path, body: str) -> None:
    text = edit(VALID, "  - accuracy: {on: test, min: 0.9}", f"  - accuracy: {body}")
    line, problem = single(error_of(tmp_path, text))
    assert line == 13
    assert problem.startswith("contracts[0].accuracy")


# --- several problems at once --------------------------------------------------------------------


def test_every_problem_is_listed_in_line_order(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        """
        robustgate: 1
        model:
          arch: torchvision:resnet18
          weights: train
          train: {on: train}
          input: {size: [32, 32]}
        datasets:
          train: {builtin: digits, domain: handwritten, part: train}
          noisy: {from: train, corruption: gaussian_noise, severity: 9}
        variants:
          int8: {ptqq: {backend: x86}}
          int4: {ptq: {calibrate: {on: trian}}}
        contracts:
          - acuracy: {on: train, min: 0.9}
          - accuracy: {on: noisy}
          - accuracy: {on: nosy, min: 0.5}
        """,
    )
    assert message.startswith("6 problems in spec.yaml:\n")
    assert problems(message) == [
        (9, "datasets.noisy.severity: input should be less than or equal to 5 (got 9)"),
        (11, "variants.int8.ptqq: unknown compression step 'ptqq': did you mean 'ptq'?"),
        (12, "variants.int4.ptq.calibrate.on: unknown dataset 'trian'; did you mean 'train'?"),
        (14, "contracts[0].acuracy: unknown contract kind 'acuracy': did you mean 'accuracy'?"),
        (15, "contracts[1].accuracy: an accuracy contract needs a gate: min, max_drop or max_relative_drop"),
        (16, "contracts[2].accuracy.on: unknown dataset 'nosy'; did you mean 'noisy'?"),
    ]


def test_several_top_level_problems_are_all_listed(tmp_path: Path) -> None:
    text = edit(edit(VALID, "robustgate: 1\n", "robustgate: 1\nseed: x\ndevice: tpu\n"), "arch: torchvision:resnet18", "arch: ''")
    message = error_of(tmp_path, text)
    assert message.startswith("3 problems in spec.yaml:\n")
    assert [(line, text.split(":")[0]) for line, text in problems(message)] == [(2, "seed"), (3, "device"), (5, "model.arch")]


def test_a_model_error_does_not_hide_contract_errors(tmp_path: Path) -> None:
    text = edit(edit(edit(VALID, "epochs: 6", "epochs: six"), "- accuracy:", "- acuracy:"), "int8: {ptq:", "int8: {ptqq:")
    message = error_of(tmp_path, text)
    assert message.startswith("3 problems in spec.yaml:\n")
    assert [line for line, _ in problems(message)] == [5, 11, 13]


# --- YAML 1.2 booleans: on/off/yes/no are plain strings ------------------------------------------


def test_on_is_read_as_the_key_on(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, VALID))
    assert spec.model.train is not None and spec.model.train.on == "train"
    assert spec.contracts[0].params.on == "test"


def test_yes_no_on_off_are_strings_and_true_false_are_booleans(tmp_path: Path) -> None:
    spec = load_spec(
        write(
            tmp_path,
            """
            robustgate: 1
            name: yes
            model:
              arch: torchvision:resnet18
              weights: train
              train: {on: off, augment: false}
              input: {size: [32, 32]}
              trusted: true
            datasets:
              off: {builtin: digits, domain: handwritten, part: train}
              on: {builtin: digits, domain: handwritten, part: test}
              no: {from: on, corruption: contrast}
            contracts:
              - accuracy: {on: on, min: 0.9}
              - accuracy: {on: no, max_drop: 0.1}
            """,
        )
    )
    assert spec.name == "yes"
    assert list(spec.datasets) == ["off", "on", "no"]
    assert spec.model.train is not None and spec.model.train.on == "off"
    assert spec.model.train.augment is False
    assert spec.model.trusted is True
    assert spec.datasets["no"].params.from_ == "on"
    assert [c.params.on for c in spec.contracts] == ["on", "no"]
    assert [c.line for c in spec.contracts] == [14, 15]


def test_an_unquoted_yes_key_is_an_unknown_key_not_a_boolean(tmp_path: Path) -> None:
    line, problem = single(error_of(tmp_path, edit(VALID, "{on: test, min: 0.9}", "{on: test, min: 0.9, yes: 1}")))
    assert line == 13
    assert problem.startswith("contracts[0].accuracy.yes: unknown key 'yes'")


# --- found in review -------------------------------------------------------------------------------


def test_a_drop_only_contract_restricted_to_the_baseline_is_refused(tmp_path: Path) -> None:
    text = edit(VALID, "{on: test, min: 0.9}", "{on: test, max_drop: 0.0, variants: [baseline]}")
    line, problem = single(error_of(tmp_path, text))
    assert line == 13
    assert "only has gates relative to the baseline" in problem


def test_a_misspelt_source_key_suggests_the_closest(tmp_path: Path) -> None:
    text = edit(VALID, "test: {builtin: digits, domain: handwritten, part: test}", "test: {biltin: digits, domain: handwritten}")
    line, problem = single(error_of(tmp_path, text))
    assert (line, problem) == (9, "datasets.test: unknown key 'biltin'; did you mean 'builtin'?")


def test_a_misspelt_variants_restriction_key_suggests_variants(tmp_path: Path) -> None:
    text = edit(VALID, "  - accuracy: {on: test, min: 0.9}", "  - accuracy: {on: test, min: 0.9}\n    varients: [baseline]")
    line, problem = single(error_of(tmp_path, text))
    assert problem == "contracts[0].varients: unknown key 'varients'; did you mean 'variants'?"


def test_an_unknown_torchvision_architecture_is_caught_at_validation(tmp_path: Path) -> None:
    line, problem = single(error_of(tmp_path, edit(VALID, "torchvision:resnet18", "torchvision:resnt18")))
    assert problem == "model.arch: unknown torchvision architecture 'resnt18'; did you mean 'resnet18'?"


@pytest.mark.parametrize("value", ["true", '"0.9"'])
def test_thresholds_are_not_coerced_from_booleans_or_strings(tmp_path: Path, value: str) -> None:
    line, problem = single(error_of(tmp_path, edit(VALID, "min: 0.9", f"min: {value}")))
    assert problem.startswith("contracts[0].accuracy.min: input should be a valid number")


@pytest.mark.parametrize("name", ['""', "a::b", '"x[1]"'])
def test_dataset_names_must_be_id_safe(tmp_path: Path, name: str) -> None:
    text = edit(edit(VALID, "  test: {builtin", f"  {name}: {{builtin"), "on: test", f"on: {name}")
    message = error_of(tmp_path, text)
    assert "may only use letters, digits and _ . + -" in message


def test_an_unhashable_key_is_a_yaml_error_not_a_tag_error(tmp_path: Path) -> None:
    message = error_of(tmp_path, edit(VALID, "seed: 0", "seed: {[a]: 1}") if "seed: 0" in VALID else VALID + "x: {[a]: 1}\n")
    assert "not valid YAML" in message and "tag" not in message.split("fix:")[0]


@pytest.mark.parametrize("device", ["cuda:abc", "gpu", '"cuda:"'])
def test_malformed_device_names_are_refused(tmp_path: Path, device: str) -> None:
    message = error_of(tmp_path, edit(VALID, "robustgate: 1", f"robustgate: 1\ndevice: {device}"))
    assert "device must be `cpu`, `cuda` or `cuda:N`" in message


# --- attack contracts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("{kind: pgdd, eps: 8/255, on: test, min: 0.1}", "contracts[0].attack.kind: unknown attack 'pgdd'; did you mean 'pgd'?"),
        ("{kind: pgd, eps: -8/255, on: test, min: 0.1}", "contracts[0].attack.eps: must be at least 0 (got '-8/255')"),
        ("{kind: salt_pepper, amount: [0.1, 2], on: test, min: 0.1}", "contracts[0].attack.amount: must be between 0 and 1 (not 2)"),
        ("{kind: pgd, eps: 8, on: test, min: 0.1}", "contracts[0].attack: an Linf eps above 1 covers the whole [0, 1] pixel range; did you mean 8/255 rather than 8?"),
        ("{kind: pgd, eps: eight, on: test, min: 0.1}", "contracts[0].attack.eps: expected a number or a fraction such as 8/255 (got 'eight')"),
        ("{kind: pgd, on: test, min: 0.1}", "contracts[0].attack: an attack contract with kind pgd needs eps: (e.g. eps: 8/255)"),
        ("{kind: salt_pepper, eps: 0.1, on: test, min: 0.1}", "contracts[0].attack: salt_pepper is set by amount:, not eps:; write amount: 0.1"),
        ("{kind: fgsm, eps: 0.5, norm: L2, on: test, min: 0.1}", "contracts[0].attack: fgsm supports norm Linf, not L2"),
        ("{kind: pgd, eps: 8/255, on: test}", "contracts[0].attack: an attack contract needs a gate: min, max_drop, max_relative_drop or min_area"),
        ("{kind: pgd, eps: 8/255, on: test, min_area: 0.5}", "contracts[0].attack: min_area gates the area under a sweep: give eps: a list of at least two values"),
    ],
)
def test_a_bad_attack_contract_gives_one_clear_error(tmp_path: Path, body: str, problem: str) -> None:
    line, found = single(error_of(tmp_path, edit(VALID, "- accuracy: {on: test, min: 0.9}", f"- attack: {body}")))
    assert line == 13
    assert found.startswith(problem), found


def test_an_attack_sweep_and_fractions_load(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, VALID + "  - attack: {kind: pgd, eps: [0, 1/255, 8/255], on: test, min: 0.1}\n"))
    params = spec.contracts[1].params
    assert params.strengths == [0.0, pytest.approx(1 / 255), pytest.approx(8 / 255)] and params.sweep
