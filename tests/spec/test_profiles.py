"""Profiles: ``profiles: {cpu: {...}}`` merged over a spec when selected, with errors on the profile's lines."""

from __future__ import annotations

import pytest

from robustgate.cli import main
from robustgate.errors import SpecError
from robustgate.spec import load_spec

SPEC = """\
robustgate: 1
name: study
device: cuda
model:
  arch: resnet18
  kwargs: {num_classes: 10}
  weights: train
  train: {on: train, epochs: 30, lr: 0.001}
  input: {size: [224, 224]}
datasets:
  train: {builtin: digits, domain: handwritten, part: train}
  test: {builtin: digits, domain: handwritten, part: test}
contracts:
  - accuracy: {on: test, min: 0.9}
profiles:
  cpu:
    device: cpu
    model:
      train: {epochs: 2}
      input: {size: [32, 32]}
    datasets:
      test: {builtin: digits, domain: handwritten, part: test, samples: 100}
  typo:
    model:
      train: {epoch: 2}
"""


@pytest.fixture
def spec_path(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text(SPEC)
    return path


def test_a_profile_merges_mappings_key_by_key_and_replaces_the_rest(spec_path) -> None:
    full, cpu = load_spec(spec_path), load_spec(spec_path, "cpu")
    assert full.profile is None and full.device == "cuda" and full.model.train.epochs == 30
    assert cpu.profile == "cpu" and cpu.device == "cpu" and cpu.model.input.size == (32, 32)
    assert cpu.model.train.epochs == 2 and cpu.model.train.lr == 0.001 and cpu.model.train.on == "train"  # merged
    assert cpu.datasets["test"].params.samples == 100 and cpu.datasets["train"].params.samples is None
    assert cpu.contracts == full.contracts


def test_an_error_in_a_profile_points_at_the_profile(spec_path) -> None:
    with pytest.raises(SpecError, match=r"study.yaml:25: model.train.epoch: unknown key 'epoch'; did you mean 'epochs'"):
        load_spec(spec_path, "typo")
    load_spec(spec_path)  # unselected, the broken profile does not break the spec


def test_an_unknown_profile_lists_the_spec_s_profiles(spec_path) -> None:
    with pytest.raises(SpecError, match="profile 'gpu' is not in this spec; its profiles are: cpu, typo"):
        load_spec(spec_path, "gpu")


def test_a_spec_without_profiles_ignores_the_selection(tmp_path) -> None:
    path = tmp_path / "plain.yaml"
    path.write_text(SPEC.split("profiles:")[0])
    assert load_spec(path, "cpu").profile is None


@pytest.mark.parametrize(("body", "message"), [
    ("profiles: [cpu]", "profiles: expected a mapping of names to partial specs"),
    ("profiles: {cpu: {robustgate: 2}}", "profiles.cpu: a profile cannot set robustgate"),
])
def test_malformed_profiles_are_spec_errors(tmp_path, body: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(SPEC.split("profiles:")[0] + body + "\n")
    with pytest.raises(SpecError, match=message):
        load_spec(path, "cpu")


def test_validate_checks_every_profile_and_pytest_takes_one(spec_path, pytester: pytest.Pytester, capsys) -> None:
    assert main(["validate", "--profile", "cpu", str(spec_path)]) == 0
    assert "(profile cpu)" in capsys.readouterr().out
    assert main(["validate", str(spec_path)]) == 1  # the spec, cpu, then the broken `typo` profile
    out, err = capsys.readouterr()
    assert out.count("ok: ") == 2 and "(profile cpu)" in out and "model.train.epoch: unknown key 'epoch'" in err
    folder = pytester.mkdir("robustness_specs")
    (folder / "study.yaml").write_text(SPEC)
    result = pytester.runpytest("--collect-only", "-q", "--robustgate-profile", "gpu")
    result.stdout.fnmatch_lines(["*profile 'gpu' is not in this spec; its profiles are: cpu, typo*"])
    assert pytester.runpytest("--collect-only", "-q", "--robustgate-profile", "cpu").ret == 0
