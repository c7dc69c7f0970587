"""End to end: latency contracts as pytest-benchmark benchmarks, on the tiny CNN and its int8 variant."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from robustgate.errors import SpecError
from robustgate.spec import load_spec
from tiny_spec_edits import edit

SLOW_NET = '''
import time
from torch import nn
from tinynet import build


class Sleepy(nn.Module):
    """A deliberately slowed layer: 3 ms of sleep on every forward."""

    def forward(self, x):
        time.sleep(0.003)
        return x


def slow(num_classes: int = 10) -> nn.Module:
    return nn.Sequential(Sleepy(), *build(num_classes))
'''

pytestmark = pytest.mark.serial  # latency is timed (pytest-benchmark) only on a machine the test has to itself

FAST = "min_queries: 30, min_seconds: 0.05, warmup: 3"


@pytest.fixture
def latency_project(tiny_project: pytest.Pytester, write_spec) -> pytest.Pytester:
    tiny_project.makepyfile(slownet=SLOW_NET)
    spec = (tiny_project.path / "robustness_specs" / "tiny.yaml").read_text()
    spec = edit(
        spec,
        "variants:\n",
        "variants:\n  slowed: {distill: {student: {arch: slownet:slow, kwargs: {num_classes: 10}}, epochs: 1}}\n",
    )
    spec += f"  - latency: {{p90_ms: 1000, max_ms: 5000, throughput: 1, {FAST}}}\n"
    spec += f"  - latency: {{min_speedup: 1.5, {FAST}, variants: [slowed]}}\n"
    write_spec(spec, "tiny.yaml")
    return tiny_project


def test_latency_items_are_benchmarks_with_percentiles_and_a_failing_slowed_model(latency_project: pytest.Pytester) -> None:
    result = latency_project.runpytest("-p", "no:cacheprovider", "--benchmark-json=bench.json", "-k", "latency")
    # baseline, int8 and slowed pass the absolute gates; the slowed student is 3 ms slower per query than the baseline
    result.assert_outcomes(passed=3, failed=1, deselected=5)
    result.stdout.fnmatch_lines(
        [
            "robustgate contract broken: slowed :: latency[[]min_speedup]*",
            "*speedup*>= 1.5*FAIL*",
            "*measured in eager PyTorch * (quantized engine *) on *, * cores, 1 thread(s); batch 1, * queries*",
        ]
    )
    data = json.loads((latency_project.path / "bench.json").read_text())
    benches = {b["name"]: b for b in data["benchmarks"]}
    assert set(benches) == {"baseline::latency", "int8::latency", "slowed::latency[max_ms+p90_ms+throughput]", "slowed::latency[min_speedup]"}
    extra = benches["int8::latency"]["extra_info"]
    assert extra["p50_ms"] <= extra["p90_ms"] <= extra["p99_ms"] <= extra["max_ms"]
    assert extra["p90_ms"] <= extra["p90_ms_high"]
    assert extra["queries"] == benches["int8::latency"]["stats"]["rounds"] >= 30
    assert extra["machine"]["threads"] == 1 and extra["machine"]["quantized_engine"]
    assert extra["machine"]["runtime"].startswith("eager PyTorch")
    assert extra["throughput"] > 0 and extra["load_seconds"] > 0 and extra["peak_memory_mb"] > 0
    slowed = benches["slowed::latency[min_speedup]"]["extra_info"]
    assert slowed["speedup"] < 1 and slowed["p50_ms"] >= 3.0  # the sleep is in every query
    # min_queries: 30 is 3 block pairs; the run times the 6 a one-sided 97.5% bound on the median ratio needs
    assert slowed["queries"] >= 60 and 0 < slowed["speedup_low"] <= slowed["speedup"]


def test_benchmark_skip_skips_latency_items_and_nothing_else(latency_project: pytest.Pytester) -> None:
    result = latency_project.runpytest("-p", "no:cacheprovider", "--benchmark-skip")
    outcomes = result.parseoutcomes()
    # the 4 latency items skip; the 5 accuracy items all run (the 1-epoch slowed student fails its accuracy)
    assert outcomes["skipped"] == 4 and outcomes.get("passed", 0) + outcomes.get("failed", 0) == 5
    assert "latency" not in "".join(line for line in result.stdout.lines if "FAILED" in line)
    only = latency_project.runpytest("-p", "no:cacheprovider", "--benchmark-only", "-k", "not slowed")
    only_outcomes = only.parseoutcomes()
    assert only_outcomes["passed"] == 2 and only_outcomes["skipped"] == 3  # the accuracy items are not benchmarks


def test_benchmark_disable_runs_latency_items_once_untimed_and_skips_their_gates(latency_project: pytest.Pytester, junit_properties) -> None:
    result = latency_project.runpytest(
        "-p", "no:cacheprovider", "--benchmark-disable", "-k", "latency", "--junitxml=j.xml"
    )
    result.assert_outcomes(skipped=4, deselected=5)  # an unmeasured gate is not a kept one, nor a broken one
    result.stdout.fnmatch_lines(["*SKIP*not timed (--benchmark-disable): the model answered one untimed query*"])
    props = junit_properties(latency_project.path / "j.xml")
    assert all(p["robustgate.outcome"] == "skipped" for p in props.values())


def test_latency_items_are_timed_under_xdist_when_forced(latency_project: pytest.Pytester) -> None:
    # unforced they skip: tests/reports/test_results_json.py::test_parallel_workers_give_the_serial_runs_results_in_one_report
    forced = latency_project.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "1", "-k", "int8 and latency", "--robustgate-force-latency"
    )
    forced.assert_outcomes(passed=1)  # pytest-benchmark switches itself off under xdist; robustgate times it


SPEC = """\
robustgate: 1
name: s
model: {arch: torchvision:resnet18, kwargs: {num_classes: 10}, weights: train, train: {on: a, epochs: 1}, input: {size: [32, 32]}}
datasets:
  a: {builtin: digits, domain: handwritten}
contracts:
"""


@pytest.mark.parametrize(
    ("contract", "expected"),
    [
        ("latency: {batch_size: 0, p90_ms: 5}", "batch_size"),
        ("latency: {p90_ms: -5}", "p90_ms"),
        ("latency: {min_speedup: 0}", "min_speedup"),
        ("latency: {threads: 0, p50_ms: 5}", "threads"),
        ("latency: {batch_size: 1}", "a latency contract needs a gate"),
        ("latency: {p95_ms: 5}", "unknown key 'p95_ms'"),
    ],
)
def test_impossible_latency_settings_are_one_clear_error(tmp_path: Path, contract: str, expected: str) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC + "  - " + contract + "\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert "spec.yaml:7" in str(info.value) and expected in str(info.value), str(info.value)


def test_max_slowdown_compares_with_the_run_benchmark_compare_loads(tiny_project: pytest.Pytester, write_spec, junit_properties) -> None:
    spec = (tiny_project.path / "robustness_specs" / "tiny.yaml").read_text()
    write_spec(spec + f"  - latency: {{max_slowdown: 100, {FAST}, variants: [int8]}}\n", "tiny.yaml")
    args = ("-p", "no:cacheprovider", "-k", "latency", "--benchmark-storage=file://./stored")
    first = tiny_project.runpytest(*args, "--benchmark-autosave", "--junitxml=first.xml")
    first.assert_outcomes(skipped=1)  # nothing to compare with yet: the only gate is not read, neither kept nor broken
    first.stdout.fnmatch_lines(["*max_slowdown needs an earlier run to compare with*--benchmark-compare*gates nothing else*"])
    second = tiny_project.runpytest(*args, "--benchmark-compare", "--junitxml=second.xml")
    second.assert_outcomes(passed=1)
    props = next(iter(junit_properties(tiny_project.path / "second.xml").values()))
    assert float(props["robustgate.previous_p50_ms"]) > 0 and 0.1 < float(props["robustgate.slowdown"]) < 10
    write_spec(spec + f"  - latency: {{max_slowdown: 0.001, {FAST}, variants: [int8]}}\n", "tiny.yaml")
    third = tiny_project.runpytest(*args, "--benchmark-compare")
    third.assert_outcomes(failed=1)
    third.stdout.fnmatch_lines(["*slowdown*<= 0.001*FAIL*"])
