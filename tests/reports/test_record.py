"""One record per item: built from the check's outcome, carried as plain data, and rendered as JUnit properties and
as a results.json item that the schema accepts."""

from __future__ import annotations

import json
import math

import jsonschema

from robustgate.checks.outcome import Gate, Outcome
from robustgate.reports.record import ItemRecord
from robustgate.reports.results import SCHEMA, upgraded


def _record() -> ItemRecord:
    return ItemRecord(nodeid="s.yaml::int8::attack[pgd:0+8/255@digits]", spec="s.yaml", model="int8",
                      contract="attack[pgd:0+8/255@digits]", kind="attack", datasets=["digits"], technique="ptq",
                      settings="abc")


def _outcome(estimate: float) -> Outcome:
    outcome = Outcome("attack[pgd:0+8/255@digits]", "int8", metrics={"robust_accuracy@0": 0.9, "robust_accuracy@8/255": estimate,
                                                                     "n": 64, "relative_drop": math.nan},
                      gates=[Gate("robust_accuracy@8/255", ">=", 0.5, estimate, estimate - 0.05, "one-sided 97.5% lower bound")],
                      notes=["a note"], caveats=["no transfer leg"])
    outcome.axes = {"0": {"strength": 0.0}, "8/255": {"strength": 8 / 255}}
    return outcome


def test_a_record_travels_as_plain_data_and_keeps_raw_numbers() -> None:
    record = _record()
    record.measured(_outcome(0.4), {"attack": 1.5}, per_image=False)
    wire = json.loads(json.dumps(record.to_wire()))  # what pytest-xdist could carry: plain data only
    again = ItemRecord.from_wire(wire)
    assert again.gates == record.gates and again.axes == record.axes and again.phases == {"attack": 1.5}
    assert math.isnan(again.metrics["relative_drop"])  # raw: JUnit shows nan as today, results.json writes null


def test_failed_means_a_broken_gate_and_error_means_nothing_was_read() -> None:
    broken, unreadable = _record(), _record()
    broken.measured(_outcome(0.4), {}, per_image=False)
    broken.ended(passed=False, skipped=False, message="ignored", duration=2.0)
    unreadable.ended(passed=False, skipped=False, message="RuntimeError: boom", duration=1.0)
    assert (broken.outcome, broken.message, broken.verdict) == ("failed", "", "fail")
    assert (unreadable.outcome, unreadable.message, unreadable.verdict) == ("error", "RuntimeError: boom", None)


def test_junit_properties_render_the_record_under_todays_names() -> None:
    record = _record()
    record.measured(_outcome(0.7), {}, per_image=False)
    record.ended(passed=True, skipped=False, message="", duration=2.0)
    properties = dict(record.junit_properties())
    assert properties["robustgate.model"] == "int8" and properties["robustgate.datasets"] == "digits"
    assert properties["robustgate.robust_accuracy@8/255"] == 0.7 and properties["robustgate.n"] == 64
    assert properties["robustgate.notes"] == "a note" and "robustgate.findings" not in properties
    assert properties["robustgate.verdict"] == "pass" and properties["robustgate.outcome"] == "passed"
    assert properties["robustgate.headline"].startswith("WEAKER PROTOCOL (no transfer leg): robust_accuracy@8/255 0.7000")
    skipped = _record()
    skipped.ended(passed=False, skipped=True, message="no data", duration=0.0)
    assert [name for name, _ in skipped.junit_properties()][-2:] == ["robustgate.settings", "robustgate.outcome"]


def test_the_results_item_is_valid_and_current() -> None:
    record = _record()
    record.measured(_outcome(0.7), {}, per_image=False)
    record.ended(passed=True, skipped=False, message="", duration=2.0)
    item = record.results_item()
    assert item["metrics"]["relative_drop"] is None and item["gates"][0]["passed"] is True and "per_image" not in item
    doc = {"schema_version": 2, "exit_status": 0, "environment": {k: "x" for k in SCHEMA["properties"]["environment"]["required"]},
           "specs": {}, "items": [item], "timings": {"total_seconds": 1.0}}
    jsonschema.validate(doc, SCHEMA)
    assert upgraded(doc) is doc  # it has every field this version writes: nothing to derive


def test_items_written_before_axes_gain_them_from_the_metric_names_of_their_release() -> None:
    old = _record().results_item()
    old.pop("axes")
    old["metrics"] = {"robust_accuracy@0": 0.9, "robust_accuracy@8/255": 0.4, "robust_accuracy_low@8/255": 0.3}
    grid = {**old, "kind": "corruptions", "metrics": {"accuracy@fog/3": 0.5, "accuracy@fog": 0.6, "drop@fog": 0.1}}
    doc = upgraded({"schema_version": 2, "items": [old, grid]})
    assert doc["items"][0]["axes"] == {"0": {"strength": 0.0}, "8/255": {"strength": 8 / 255}}
    assert doc["items"][1]["axes"] == {"fog/3": {"corruption": "fog", "severity": 3}}
