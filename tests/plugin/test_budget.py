"""`budget:` ends an item that evaluates too much with one clear failure, never a pass and never a hung job;
building models is shared and is never charged to an item."""

from __future__ import annotations

import json
import time

import pytest

from robustgate.budget import BudgetExceeded, ItemMeter, check_time, count_images, metered
from robustgate.phases import PhaseClock
from robustgate.spec.model import BudgetParams
from tiny_spec_edits import edit


def _items(project: pytest.Pytester) -> dict[str, dict]:
    doc = json.loads((project.path / "reports" / "results.json").read_text())
    return {item["nodeid"].split("::", 1)[1]: item for item in doc["items"]}


@pytest.mark.cold_cache  # compares a cold run with a warm one
def test_an_image_budget_fails_the_item_the_same_way_cold_and_warm(tiny_project: pytest.Pytester, write_spec) -> None:
    spec = (tiny_project.path / "robustness_specs" / "tiny.yaml").read_text()
    write_spec(edit(spec, "seed: 0\n", "seed: 0\nbudget: {samples: 500}\n"), "tiny.yaml")
    for run in ("cold", "warm"):  # counted when asked for, so a cached prediction counts the same
        result = tiny_project.runpytest("--robustgate-cache-dir=cache", "-p", "no:cacheprovider")
        result.assert_outcomes(passed=2, failed=1)
        out = result.stdout.str()
        assert "Traceback" not in out, run
        # int8 on handwritten: its own 359 images and the baseline's 359 to compare with
        result.stdout.fnmatch_lines(["*tiny.yaml:18: budget exceeded: this item asks for 718 images (baseline on "
                                     "'handwritten'), its budget is samples: 500",
                                     "*fix: raise the spec's (line 4) `budget:`, or evaluate fewer images*"])
        item = _items(tiny_project)["int8::accuracy[handwritten]"]
        # pytest fails it; robustgate's reports call it an error: the contract was not evaluated, no gate was read
        assert item["outcome"] == "error" and not item["gates"] and "budget exceeded" in item["message"]


def test_a_contracts_own_budget_replaces_the_specs(tiny_project: pytest.Pytester, write_spec) -> None:
    spec = (tiny_project.path / "robustness_specs" / "tiny.yaml").read_text()
    spec = edit(spec, "seed: 0\n", "seed: 0\nbudget: {samples: 100}\n")
    spec = edit(spec, "  - accuracy: {on: printed, max_drop: 0.15}\n",
                "  - accuracy: {on: printed, max_drop: 0.15}\n    budget: {samples: 400}\n")
    write_spec(spec, "tiny.yaml")
    tiny_project.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1, failed=2)
    items = _items(tiny_project)
    assert items["int8::accuracy[printed]"]["outcome"] == "passed"  # 2 x 200 images: within its own 400
    assert "its budget is samples: 100" in items["baseline::accuracy[handwritten]"]["message"]


@pytest.mark.cold_cache  # asserts what the run stored
def test_a_time_budget_stops_an_attack_between_batches_and_stores_nothing(tiny_project: pytest.Pytester, write_spec) -> None:
    spec = (tiny_project.path / "robustness_specs" / "tiny.yaml").read_text()
    spec += "  - attack: {kind: pgd, eps: 8/255, steps: 200, on: handwritten, min: 0.0, variants: [baseline]}\n"
    spec += "    budget: {seconds: 0.5}\n"
    write_spec(spec, "tiny.yaml")
    result = tiny_project.runpytest("--robustgate-cache-dir=cache", "-p", "no:cacheprovider", "-k", "attack")
    result.assert_outcomes(failed=1, deselected=3)
    result.stdout.fnmatch_lines(["*tiny.yaml:19: budget exceeded: this item evaluated for * s (attacking), its budget "
                                 "is seconds: 0.5"])
    assert "Traceback" not in result.stdout.str()
    assert not (tiny_project.path / "cache" / "attacks").exists() or not any((tiny_project.path / "cache" / "attacks").rglob("*.pt"))


@pytest.mark.cold_cache  # needs the run to train
def test_training_is_never_charged_to_an_item(tiny_project: pytest.Pytester, write_spec) -> None:
    """Ten epochs of training take longer than the budget; the item only predicts 359 images in two batches."""
    spec = (tiny_project.path / "robustness_specs" / "tiny.yaml").read_text()
    write_spec(edit(spec, "seed: 0\n", "seed: 0\nbudget: {seconds: 1}\n"), "tiny.yaml")
    result = tiny_project.runpytest("--robustgate-cache-dir=cache", "-p", "no:cacheprovider", "-k", "baseline")
    result.assert_outcomes(passed=1, deselected=2)
    assert _items(tiny_project)["baseline::accuracy[handwritten]"]["phases"]["training"] > 1


def test_the_meter_charges_evaluation_phases_only() -> None:
    clock = PhaseClock()
    meter = ItemMeter(BudgetParams(seconds=0.05), clock, hint="raise it")
    with metered(meter):
        with clock.phase("training"):
            time.sleep(0.1)
            check_time("calibrating")  # inside a build: never cut, whatever was spent
        check_time("predicting")  # the training's 0.1 s is not the item's
        with clock.phase("prediction"):
            time.sleep(0.06)
            with pytest.raises(BudgetExceeded, match=r"evaluated for 0\.0[6-9]\d* s \(predicting\), its budget is seconds: 0\.05"):
                check_time("predicting")
    check_time("predicting")  # outside any item: no budget


def test_images_are_counted_across_requests() -> None:
    meter = ItemMeter(BudgetParams(samples=100), PhaseClock(), hint="")
    with metered(meter):
        count_images(60, "baseline on 'test'")
        with pytest.raises(BudgetExceeded, match=r"asks for 120 images \(int8 on 'test'\), its budget is samples: 100"):
            count_images(60, "int8 on 'test'")
