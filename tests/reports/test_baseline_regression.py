"""Baselines across releases: --robustgate-save-baseline writes one, --robustgate-baseline reads it,
and ``max_regression`` gates compare every named metric with the previous release's value."""

from __future__ import annotations

import json

import jsonschema
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from robustgate.checks.outcome import Outcome
from robustgate.checks import metric_direction
from robustgate.checks.regression import PerImage, Previous, add_regression_gates
from robustgate.errors import RobustgateError
from robustgate.reports.results import SCHEMA
from tiny_spec_edits import edit

GATED = """\
  - accuracy: {on: handwritten, min: 0.5, max_regression: {accuracy: 0.05, bytes: 0}}
  - accuracy: {on: printed, max_regression: {accuracy: 0.05}, variants: [int8]}
"""
RUN = ("-p", "no:cacheprovider")


def _spec(tiny_project: pytest.Pytester, write_spec, epochs: int = 10) -> None:
    spec = (tiny_project.path / "robustness_specs" / "tiny.yaml").read_text()
    head = edit(spec.split("contracts:")[0], "epochs: 10", f"epochs: {epochs}")
    write_spec(head + "contracts:\n" + GATED, "tiny.yaml")


def _items(path) -> dict[str, dict]:
    doc = json.loads(path.read_text())
    jsonschema.validate(doc, SCHEMA)
    return {f"{item['model']}::{item['contract']}": item for item in doc["items"]}


def test_a_saved_baseline_gates_the_next_release_image_by_image(tiny_project: pytest.Pytester, write_spec) -> None:
    _spec(tiny_project, write_spec)
    first = tiny_project.runpytest(*RUN, "--robustgate-save-baseline=prev.json")
    # without a previous release: the gates with others pass on those, with a warning; regression-only ones skip
    first.assert_outcomes(passed=2, skipped=1, warnings=3)
    first.stdout.fnmatch_lines(["*RegressionWarning*max_regression not read: no --robustgate-baseline*"])
    saved = json.loads((tiny_project.path / "prev.json").read_text())
    jsonschema.validate(saved, SCHEMA)
    packed = saved["per_image"]["robustness_specs/tiny.yaml::int8::accuracy[handwritten]"]["accuracy"]
    first_items = _items(tiny_project.path / "reports" / "results.json")
    assert packed["n"] == first_items["int8::accuracy[handwritten]"]["metrics"]["n"]
    skipped = first_items["int8::accuracy[printed]"]  # skipped, yet measured: the next release compares with it
    assert skipped["outcome"] == "skipped" and skipped["metrics"]["accuracy"] > 0
    assert "robustness_specs/tiny.yaml::int8::accuracy[printed]" in saved["per_image"]

    same = tiny_project.runpytest(*RUN, "--robustgate-baseline=prev.json")
    same.assert_outcomes(passed=3)
    items = _items(tiny_project.path / "reports" / "results.json")
    gate = next(g for g in items["int8::accuracy[handwritten]"]["gates"] if g["metric"] == "regression.accuracy")
    assert gate["estimate"] == 0.0 and gate["read"] == "one-sided 97.5% upper bound, paired"
    size = next(g for g in items["int8::accuracy[handwritten]"]["gates"] if g["metric"] == "regression.bytes")
    assert size["estimate"] == 0 and size["read"] == "point" and size["passed"]  # lower is better, compared as counted
    assert 0.0 < gate["value"] < 0.05  # identical predictions: the bound is the sampling margin, not zero
    assert items["int8::accuracy[printed]"]["previous"]["accuracy"] == items["int8::accuracy[printed]"]["metrics"]["accuracy"]
    assert "Compared with the previous release `" in (tiny_project.path / "reports" / "summary.md").read_text()

    _spec(tiny_project, write_spec, epochs=1)  # a worse next release: one epoch of training instead of ten
    worse = tiny_project.runpytest(*RUN, "--robustgate-baseline=prev.json")
    items = _items(tiny_project.path / "reports" / "results.json")
    regressed = items["int8::accuracy[handwritten]"]
    assert regressed["outcome"] == "failed", regressed
    gate = next(g for g in regressed["gates"] if g["metric"] == "regression.accuracy")
    assert gate["passed"] is False and gate["estimate"] == pytest.approx(
        regressed["previous"]["accuracy"] - regressed["metrics"]["accuracy"]
    )
    worse.stdout.fnmatch_lines(["*regression.accuracy*paired*<= 0.05*FAIL*"])


def test_a_plain_results_file_is_a_baseline_compared_as_independent_proportions(tiny_project: pytest.Pytester, write_spec) -> None:
    _spec(tiny_project, write_spec)
    tiny_project.runpytest(*RUN, "--robustgate-save-baseline=prev.json")
    (tiny_project.path / "plain.json").write_text((tiny_project.path / "reports" / "results.json").read_text())
    # no per-image results: the accuracies and image counts of the two runs, as independent proportions,
    # whose interval on 200 printed digits is too wide to show that nothing was lost (paired, it passed)
    tiny_project.runpytest(*RUN, "--robustgate-baseline=plain.json").assert_outcomes(passed=2, failed=1)
    gate = next(g for g in _items(tiny_project.path / "reports" / "results.json")["int8::accuracy[printed]"]["gates"])
    assert gate["metric"] == "regression.accuracy" and gate["read"] == "one-sided 97.5% upper bound, unpaired"
    assert gate["estimate"] == 0.0 and 0.05 < gate["value"] < 0.15 and gate["passed"] is False


def test_an_unreadable_baseline_stops_the_run_with_one_message(tiny_project: pytest.Pytester) -> None:
    (tiny_project.path / "old.json").write_text(json.dumps({"schema_version": 0, "items": []}))
    result = tiny_project.runpytest(*RUN, "--robustgate-baseline=old.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--robustgate-baseline: *old.json: the baseline has results schema version 0*"])
    missing = tiny_project.runpytest(*RUN, "--robustgate-baseline=nowhere.json")
    missing.stderr.fnmatch_lines(["*nowhere.json: cannot read the baseline*"])


@pytest.mark.parametrize(
    ("gate", "message"),
    [
        ("max_regression: {n: 0.1}", "'n' is not a metric that can regress"),
        ("max_regression: {accuracy_low: 0.1}", "'accuracy_low' is not a metric that can regress"),
        ("max_regression: {accuracy: -0.1}", "expected how much worse accuracy may get, a number >= 0"),
        ("max_regression: {}", "an empty mapping gates nothing"),
    ],
)
def test_malformed_regression_gates_are_spec_errors(tiny_project: pytest.Pytester, write_spec, gate: str, message: str) -> None:
    spec = (tiny_project.path / "robustness_specs" / "tiny.yaml").read_text()
    write_spec(spec + f"  - accuracy: {{on: printed, {gate}}}\n", "tiny.yaml")
    result = tiny_project.runpytest(*RUN, "--collect-only")
    result.stdout.fnmatch_lines([f"*tiny.yaml:19: *max_regression*{message}*"])


def test_latency_must_name_its_metric(tiny_project: pytest.Pytester, write_spec) -> None:
    spec = (tiny_project.path / "robustness_specs" / "tiny.yaml").read_text()
    write_spec(spec + "  - latency: {p90_ms: 100, max_regression: 0.5}\n", "tiny.yaml")
    tiny_project.runpytest(*RUN, "--collect-only").stdout.fnmatch_lines(["*tiny.yaml:19: *max_regression: name the metrics this contract*"])


def _outcome(**metrics: float) -> Outcome:
    return Outcome(contract="latency", variant="int8", metrics=dict(metrics))


def test_lower_is_better_metrics_regress_upwards() -> None:
    outcome = _outcome(p90_ms=6.0, speedup=1.5)
    add_regression_gates(outcome, {"p90_ms": 0.5, "speedup": 0.2}, Previous({"p90_ms": 5.0, "speedup": 2.0}), 0.95)
    latency, speedup = outcome.gates
    assert latency.estimate == pytest.approx(1.0) and not latency.passed and latency.read == "point"
    assert speedup.estimate == pytest.approx(0.5) and not speedup.passed
    faster = _outcome(p90_ms=4.0)
    add_regression_gates(faster, {"p90_ms": 0.0}, Previous({"p90_ms": 5.0}), 0.95)
    assert faster.gates[0].passed and faster.metrics["previous.p90_ms"] == 5.0


def test_a_metric_the_contract_does_not_measure_is_a_clear_error() -> None:
    with pytest.raises(RobustgateError, match="max_regression names 'p90_ms'.*it can compare: accuracy"):
        add_regression_gates(Outcome("accuracy[x]", "int8", {"accuracy": 0.9, "n": 10}), {"p90_ms": 1.0}, Previous({}), 0.95)


def test_a_metric_the_previous_release_lacks_is_noted_not_gated() -> None:
    outcome = _outcome(accuracy=0.9)
    add_regression_gates(outcome, {"accuracy": 0.01}, Previous({"accuracy": None}), 0.95)
    assert not outcome.gates and "has no value for accuracy" in outcome.notes[0]


def test_other_images_are_compared_as_independent_proportions() -> None:
    before = PerImage("set-a", torch.tensor([True] * 90 + [False] * 10))
    now = PerImage("set-b", torch.tensor([True] * 88 + [False] * 12))
    outcome = Outcome("accuracy[x]", "int8", {"accuracy": 0.88}, per_image={"accuracy": now})
    add_regression_gates(outcome, {"accuracy": 0.05}, Previous({"accuracy": 0.9}, {"accuracy": before}), 0.95)
    gate = outcome.gates[0]
    assert gate.read == "one-sided 97.5% upper bound, unpaired" and gate.value > gate.estimate == pytest.approx(0.02)
    assert not gate.passed  # 100 images cannot show that 2 points lost are fewer than 5


@given(st.lists(st.booleans(), min_size=1, max_size=300))
def test_per_image_results_survive_packing(bits: list[bool]) -> None:
    packed = PerImage("id", torch.tensor(bits)).to_json()
    assert json.loads(json.dumps(packed)) == packed
    assert PerImage.from_json(packed).correct.tolist() == bits


def test_every_metric_name_reads_one_way() -> None:
    assert metric_direction("accuracy@webcam") and metric_direction("robust_accuracy@8/255")
    assert metric_direction("p99_ms") is False and metric_direction("relative_mce") is False
    assert metric_direction("n") is None and metric_direction("accuracy_high") is None


def test_a_baseline_of_another_spec_path_fails_the_items_instead_of_passing_them(tiny_project: pytest.Pytester, write_spec) -> None:
    _spec(tiny_project, write_spec)
    moved = {"schema_version": 1, "items": [{"nodeid": "robustness_specs/old.yaml::int8::accuracy[printed]", "metrics": {"accuracy": 0.7}}]}
    (tiny_project.path / "moved.json").write_text(json.dumps(moved))
    result = tiny_project.runpytest(*RUN, "--robustgate-baseline=moved.json")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(["*tiny.yaml:17: the baseline *moved.json holds no results of robustness_specs/tiny.yaml "
                                 "(it has: robustness_specs/old.yaml)*", "*fix: run pytest from the rootdir*"])


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ({"per_image": ["x"]}, "'per_image' is not a mapping"),
        ({"per_image": {"a::b": {"accuracy": {"images": "i", "n": 9, "correct": "AA=="}}}}, "'n' = 9 does not match 1 packed bytes"),
        ({"per_image": {"a::b": {"accuracy": {"images": "i", "n": 3, "correct": "not base64!"}}}}, "per_image of a::b, accuracy"),
        ({"items": [{"nodeid": "a::b", "metrics": {"accuracy": "high"}}]}, "the metrics of a::b are not all numbers"),
        ({"items": [{"metrics": {}}]}, "items[0] has no 'nodeid' string"),
    ],
)
def test_a_damaged_baseline_is_one_clear_error(tmp_path, damage: dict, message: str) -> None:
    from robustgate.reports.previous_release import PreviousRelease

    path = tmp_path / "prev.json"
    path.write_text(json.dumps({"schema_version": 1, "items": [], **damage}))
    with pytest.raises(RobustgateError, match="the baseline is damaged") as caught:
        PreviousRelease.load(path)
    assert message in str(caught.value) and str(path) in str(caught.value)


def test_thresholds_are_not_settings_but_what_is_measured_is(write_spec) -> None:
    from robustgate.plugin.items import settings_digest
    from robustgate.spec import load_spec

    def digest(attack: str) -> str:
        path = write_spec(f"""\
            robustgate: 1
            model: {{arch: resnet18, weights: w.pt, input: {{size: [32, 32]}}}}
            datasets: {{test: {{builtin: digits, domain: handwritten}}}}
            contracts:
              - attack: {{{attack}}}
            """)
        return settings_digest(load_spec(path).contracts[0])

    same = digest("kind: pgd, eps: 8/255, on: test, min: 0.2")
    assert digest("kind: pgd, eps: 8/255, on: test, min: 0.3, max_regression: 0.01") == same
    assert digest("kind: pgd, eps: 4/255, on: test, min: 0.2") != same
    assert digest("kind: pgd, eps: 8/255, on: test, min: 0.2, steps: 20") != same


def test_the_paired_gate_reads_the_upper_bound_of_what_was_lost() -> None:
    before = PerImage("same", torch.tensor([True] * 80 + [False] * 20))
    now = PerImage("same", torch.tensor([True] * 70 + [False] * 30))  # 10 images lost, none gained
    outcome = Outcome("accuracy[x]", "int8", {"accuracy": 0.7}, per_image={"accuracy": now})
    add_regression_gates(outcome, {"accuracy": 0.15}, Previous({"accuracy": 0.8}, {"accuracy": before}), 0.95)
    gate = outcome.gates[0]
    assert gate.read == "one-sided 97.5% upper bound, paired" and gate.estimate == pytest.approx(0.1)
    assert 0.15 < gate.value < 0.2 and not gate.passed  # 10 of 100 lost: the bound passes 0.15


def test_timings_from_another_cpu_are_not_compared() -> None:
    outcome = _outcome(p90_ms=9.0, accuracy=0.9)
    unread = add_regression_gates(outcome, {"p90_ms": 0.5, "accuracy": 0.01},
                                  Previous({"p90_ms": 5.0, "accuracy": 0.9}, cpu="CPU A"), 0.95, cpu="CPU B")
    assert [g.metric for g in outcome.gates] == ["regression.accuracy"]
    assert unread == ["the baseline release timed p90_ms on another CPU (CPU A; this run: CPU B)"]


def test_only_proportions_of_images_get_an_unpaired_interval() -> None:
    outcome = Outcome("corruptions[x]", "int8", {"mean_corruption_accuracy": 0.6, "accuracy": 0.8, "n": 100})
    add_regression_gates(outcome, {"mean_corruption_accuracy": 0.1, "accuracy": 0.1},
                         Previous({"mean_corruption_accuracy": 0.65, "accuracy": 0.85, "n": 100}), 0.95)
    mean, accuracy = outcome.gates
    assert mean.read == "point" and mean.value == pytest.approx(0.05)  # a mean over conditions: not n coin flips
    assert accuracy.read == "one-sided 97.5% upper bound, unpaired" and accuracy.value > 0.05
