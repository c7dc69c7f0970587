"""Contracts on images a model was fitted on fail, naming the set, unless the spec says it is intended."""

from __future__ import annotations

import json

import pytest
from tiny_spec_edits import edit


def test_evaluating_on_fitted_images_fails_unless_intended(tiny_project: pytest.Pytester, write_spec) -> None:
    spec = (tiny_project.path / "robustness_specs" / "tiny.yaml").read_text()
    every = "  handwritten: {builtin: digits, domain: handwritten, part: test}\n"
    spec = edit(spec, every, every + "  all-handwritten: {builtin: digits, domain: handwritten}\n")
    contracts = spec[spec.index("contracts:"):]
    spec = edit(spec, contracts, "contracts:\n"
                        "  - accuracy: {on: handwritten, min: 0.5}\n"  # held out: no finding
                        "  - accuracy: {on: all-handwritten, min: 0.5}\n"  # the test part and the training part
                        "  - accuracy: {on: digits-train, min: 0.5, seen_in_training: intended}\n")
    write_spec(spec, "tiny.yaml")
    result = tiny_project.runpytest("-p", "no:cacheprovider", "--robustgate-report=out")
    result.assert_outcomes(passed=4, failed=2)
    result.stdout.fnmatch_lines([
        "*seen_in_training@all-handwritten*1,438*exact*<= 0*FAIL*",
        "*finding: 1438 of the 1797 images of all-handwritten are ones the baseline model was fitted on: 1438 of them in "
        "digits-train (the baseline's training set); accuracy on them measures memory*seen_in_training: intended*",
    ])
    items = {(i["model"], i["contract"]): i for i in json.loads((tiny_project.path / "out" / "results.json").read_text())["items"]}
    for model in ("baseline", "int8"):
        assert items[(model, "accuracy[handwritten]")]["outcome"] == "passed"
        assert not any(g["metric"].startswith("seen_in_training") for g in items[(model, "accuracy[handwritten]")]["gates"])
        assert items[(model, "accuracy[all-handwritten]")]["outcome"] == "failed"
        intended = items[(model, "accuracy[digits-train]")]
        assert intended["outcome"] == "passed"
        assert any("1438 of the 1438 images of digits-train" in note and "(seen_in_training: intended)" in note
                   for note in intended["notes"])
