"""The cold-cost estimate a run prints before its first item: what it counts, that it sees the cache, and the line."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from robustgate.cache import ArtifactCache
from robustgate.evaluation import SpecEvaluation
from robustgate.evaluation.cold_cost import Rates, estimate, measure_rates
from robustgate.plan import planned_pairs
from robustgate.spec import load_spec
from robustgate.spec.model import BASELINE

from conftest import TINY_NET

SPEC = """\
robustgate: 1
name: costed
model: {arch: tinynet:build, kwargs: {num_classes: 10}, weights: train,
        train: {on: train, epochs: 3}, input: {size: [16, 16]}}
datasets:
  train: {builtin: digits, domain: handwritten, part: train}
  test: {builtin: digits, domain: handwritten, part: test}
  printed: {builtin: digits, domain: printed, samples: 100}
variants:
  pruned: {prune: {method: l1, ratio: 0.5, finetune: {on: train, epochs: 2}}}
  int8: {ptq: {backend: x86, calibrate: {on: train, samples: 64}}}
contracts:
  - accuracy: {on: test, min: 0.5}
  - accuracy: {on: test, min: 0.4}
  - shift: {source: test, targets: [printed], min: 0.1}
  - attack: {kind: pgd, eps: [1/255, 2/255], steps: 5, samples: 20, on: test, min: 0.01, diagnostics: false}
"""
RATES = Rates(forward=1e-3, train=1e-2, attack=3e-3, macs=1000)


@pytest.fixture
def spec_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    (tmp_path / "tinynet.py").write_text(TINY_NET)
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC)
    sys.modules.pop("tinynet", None)
    yield path
    # a tinynet left imported would stand in for every later test's own tinynet.py in this process (their pytester
    # runs import `tinynet:build` from sys.modules), and their edits to it would go unseen
    sys.modules.pop("tinynet", None)


def costs_of(evaluation: SpecEvaluation, models: tuple[str, ...]) -> dict[str, dict[str, float]]:
    pairs = [(model, contract) for model, contract in planned_pairs(evaluation.spec) if model in models]
    found = estimate(evaluation, "[costed]", pairs, lambda: RATES, lambda name, data: 0.0)
    return {cost.model: cost.phases for cost in found}


def test_the_estimate_counts_epochs_images_steps_and_legs(spec_path: Path) -> None:
    evaluation = SpecEvaluation.build(load_spec(spec_path), ArtifactCache(None))
    train, test = len(evaluation.datasets["train"]), len(evaluation.datasets["test"])
    costs = costs_of(evaluation, (BASELINE, "pruned", "int8"))
    assert costs[BASELINE]["training"] == pytest.approx(3 * train * 1e-2)
    # the two accuracy contracts read one set: predicted once; the shift contract adds the printed one
    assert costs[BASELINE]["prediction"] == pytest.approx((test + 100) * 1e-3)
    pgd = 20 * 2 * 5  # images x strengths x steps
    assert costs[BASELINE]["attacks"] == pytest.approx(pgd * 3e-3)
    # the pruned network keeps half of each layer's channels: a quarter of the arithmetic
    assert costs["pruned"]["compression"] == pytest.approx(2 * train * 1e-2 / 4)
    assert costs["pruned"]["attacks"] == pytest.approx(pgd * 3e-3 / 4)
    assert costs["int8"]["compression"] == pytest.approx(64 * 1e-3)  # calibration
    # int8: the twin leg (twice an fp32 step) and 200 gradient-free queries per image; its transfer leg
    # reuses the baseline's attack, which this run makes
    queries = 20 * 2 * 200 * 1e-3 * 0.5
    assert costs["int8"]["attacks"] == pytest.approx(pgd * 3e-3 * 2 + queries)
    alone = costs_of(SpecEvaluation.build(load_spec(spec_path), ArtifactCache(None)), ("int8",))
    assert alone["int8"]["attacks"] == pytest.approx(pgd * 3e-3 * 3 + queries)  # its own transfer attack
    assert "training" not in alone["int8"]  # the baseline's training is the baseline's cost


def test_only_what_the_cache_lacks_is_estimated(spec_path: Path, tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path / "cache")
    models = (BASELINE, "pruned", "int8")
    assert set(costs_of(SpecEvaluation.build(load_spec(spec_path), cache), models)) == set(models)
    SpecEvaluation.build(load_spec(spec_path), cache).models.model("int8")  # trains the baseline, quantizes it
    evaluation = SpecEvaluation.build(load_spec(spec_path), cache)
    assert evaluation.models.stored_steps(BASELINE) == (True,)
    assert evaluation.models.stored_steps("int8") == (True,)
    assert evaluation.models.stored_steps("pruned") == (False,)
    assert set(costs_of(evaluation, models)) == {"pruned"}
    assert evaluation.models._baseline is None  # keys only: nothing was loaded or trained to know


def test_rates_are_measured_on_the_spec_architecture(spec_path: Path) -> None:
    rates = measure_rates(load_spec(spec_path))
    assert 0 < rates.forward < rates.train  # a training step is a forward pass and more
    assert 0 < rates.attack and rates.macs > 0


ANNOUNCE_ALL = "import robustgate.evaluation.cold_cost as c\nc.ANNOUNCED = 0.0\n"  # a tiny spec costs seconds


@pytest.mark.cold_cache  # a cold run announces, a warm one does not
def test_a_cold_run_says_what_each_model_will_cost_before_it_starts(tiny_project: pytest.Pytester) -> None:
    tiny_project.makeconftest(ANNOUNCE_ALL)
    cold = tiny_project.runpytest("--robustgate-cache-dir", "cache", "-p", "no:cacheprovider")
    cold.assert_outcomes(passed=3)
    cold.stdout.fnmatch_lines([
        # "about 40 s" or "about 1 min": the rates are timed now, on a machine other tests may be loading
        "robustgate: nothing cached for 2 model(s): about * to build and evaluate on this machine (estimated in *",
        "robustgate:   [[]tiny] baseline: about * (*training *",
        "robustgate:   [[]tiny] int8: about * (*",
        "robustgate: [[]tiny] training tinynet:build on 'digits-train' (1438 images)*",  # after the estimate
    ])
    warm = tiny_project.runpytest("--robustgate-cache-dir", "cache", "-p", "no:cacheprovider")
    warm.assert_outcomes(passed=3)
    assert "nothing cached" not in warm.stdout.str()
    quiet = tiny_project.runpytest("--robustgate-no-cache", "-q", "-p", "no:cacheprovider")
    quiet.assert_outcomes(passed=3)
    assert "nothing cached" not in quiet.stdout.str()


def test_a_spec_that_cannot_be_estimated_says_so_and_its_items_report(tiny_project: pytest.Pytester) -> None:
    tiny_project.makeconftest(ANNOUNCE_ALL)
    spec = tiny_project.path / "robustness_specs" / "tiny.yaml"
    spec.write_text(spec.read_text().replace("{builtin: digits, domain: handwritten, part: train}",
                                             "{imagefolder: no-such-folder}"))
    result = tiny_project.runpytest("--robustgate-no-cache", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["robustgate: [[]tiny] no cold-cost estimate: *no-such-folder*"])
    result.assert_outcomes(failed=3)
