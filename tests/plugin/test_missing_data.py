"""``missing: skip``: a spec written for data not every machine has (Office-31) skips all its items with one
message saying what is missing and where to get it, and runs them once the data is there."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from office31_tree import office31_tree

from robustgate.data.office31 import OFFICE31_CLASSES

SPEC = """\
robustgate: 1
name: office-tiny
model:
  arch: tinynet:build
  kwargs: {num_classes: 31}
  weights: train
  train: {on: amazon-train, epochs: 3, lr: 0.01}
  input: {size: [16, 16], mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]}
datasets:
  amazon-train: {office31: ${OFFICE31_ROOT}, domain: amazon, part: train, split: 0.5, missing: skip}
  amazon-test: {office31: ${OFFICE31_ROOT}, domain: amazon, part: test, split: 0.5, missing: skip}
  webcam: {office31: ${OFFICE31_ROOT}, domain: webcam, missing: skip}
variants:
  int8: {ptq: {backend: x86, calibrate: {on: amazon-train, samples: 31}}}
contracts:
  - accuracy: {on: amazon-test, min: 0.0}
  - shift: {source: amazon-test, targets: [webcam], max_drop: 1.0}
"""


@pytest.fixture
def office_project(tiny_project: pytest.Pytester, write_spec) -> pytest.Pytester:
    write_spec(SPEC, "tiny.yaml")
    return tiny_project


def _skips(pytester: pytest.Pytester) -> tuple[pytest.RunResult, list[dict]]:
    result = pytester.runpytest("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(skipped=3)  # accuracy on the baseline and int8, shift (a drop gate) on int8
    items = json.loads((pytester.path / "reports" / "results.json").read_text())["items"]
    assert len(items) == 3 and all(item["outcome"] == "skipped" for item in items)
    assert len({item["message"] for item in items}) == 1  # one message for every item
    return result, items


def test_an_unset_root_skips_every_item_saying_what_and_where_to_get_it(office_project: pytest.Pytester, monkeypatch) -> None:
    monkeypatch.delenv("OFFICE31_ROOT", raising=False)
    result, items = _skips(office_project)
    message = items[0]["message"]
    assert message.startswith("datasets amazon-train, amazon-test, webcam not on this machine (missing: skip): "
                              "environment variable OFFICE31_ROOT is not set")
    assert "Saenko et al. 2010" in message and "<root>/{amazon,dslr,webcam}/images/<class>/*.jpg" in message
    result.stdout.fnmatch_lines(["SKIPPED * OFFICE31_ROOT is not set*"])


def test_a_root_missing_a_class_skips_naming_it(office_project: pytest.Pytester, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("OFFICE31_ROOT", str(office31_tree(tmp_path / "office31", classes=OFFICE31_CLASSES[:-1])))
    _, items = _skips(office_project)
    assert "1 of Office-31's 31 classes is missing" in items[0]["message"] and "trash_can" in items[0]["message"]


def test_a_complete_tree_runs_the_spec(office_project: pytest.Pytester, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("OFFICE31_ROOT", str(office31_tree(tmp_path / "office31")))
    result = office_project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    items = json.loads((office_project.path / "reports" / "results.json").read_text())["items"]
    accuracy = next(item for item in items if item["model"] == "baseline" and item["contract"].startswith("accuracy"))
    assert accuracy["metrics"]["n"] == 31 * 2  # half of 4 images a class: the test part holds every class
