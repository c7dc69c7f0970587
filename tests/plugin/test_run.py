"""End to end: train, quantize, evaluate and gate a real (tiny) model through pytest."""

from __future__ import annotations


import pytest
from tiny_spec_edits import edit



@pytest.mark.cold_cache  # asserts the training and compressing lines of a cold run
def test_contracts_pass_and_metrics_reach_junit(tiny_project: pytest.Pytester, junit_properties) -> None:
    result = tiny_project.runpytest("--junitxml=junit.xml", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "*robustgate: [[]tiny] training tinynet:build on 'digits-train' (1438 images)*",
            "*robustgate: [[]tiny] compressing: ptq*",
            "*= robustgate =*",
            "3 contracts: 3 pass",
            "*baseline*accuracy[[]handwritten]*PASS*accuracy 0.* (one-sided 97.5% lower bound 0.*) >= 0.5*",
            "*int8*accuracy[[]printed]*PASS*drop *(one-sided 97.5% upper bound *) <= 0.15*",
        ]
    )
    cases = junit_properties(tiny_project.path / "junit.xml")
    int8 = next(props for name, props in cases.items() if "int8" in name and "printed" in name)
    assert 0.0 <= float(int8["robustgate.accuracy"]) <= 1.0
    assert int(int8["robustgate.n"]) == 200
    assert float(int8["robustgate.drop_low"]) <= float(int8["robustgate.drop"]) <= float(int8["robustgate.drop_high"])
    assert 0.0 <= float(int8["robustgate.mcnemar_p"]) <= 1.0
    assert int8["robustgate.verdict"] == "pass"
    # int8 weights take about a quarter of the fp32 bytes.
    assert float(int8["robustgate.size_ratio"]) < 0.5


def test_broken_contract_fails_with_a_verdict_table(tiny_project: pytest.Pytester, write_spec) -> None:
    spec = (tiny_project.path / "robustness_specs" / "tiny.yaml").read_text()
    write_spec(edit(spec, "min: 0.5", "min: 0.999"), "tiny.yaml")
    result = tiny_project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "robustgate contract broken: baseline :: accuracy[[]handwritten]   (robustness_specs/tiny.yaml:17)",
            "*gate*measured*read as*threshold*result*",
            "*accuracy*one-sided 97.5% lower bound 0.*>= 0.999*FAIL*",
            "*accuracy 0.*, 95% interval [[]0.*, 0.*]*n = 359*",
            "*spec: - accuracy: {on: handwritten, min: 0.999, max_drop: 0.10}*",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_point_confidence_reads_estimates(tiny_project: pytest.Pytester, write_spec) -> None:
    spec = (tiny_project.path / "robustness_specs" / "tiny.yaml").read_text()
    write_spec(edit(spec, "seed: 0", "seed: 0\nconfidence: point"), "tiny.yaml")
    result = tiny_project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    assert "bound" not in result.stdout.str().split("= robustgate =")[1]


@pytest.mark.cold_cache  # compares a cold run with a warm one
def test_warm_rerun_trains_and_compresses_nothing(tiny_project: pytest.Pytester) -> None:
    cold = tiny_project.runpytest("--robustgate-cache-dir", "cache")
    cold.assert_outcomes(passed=3)
    warm = tiny_project.runpytest("--robustgate-cache-dir", "cache")
    warm.assert_outcomes(passed=3)
    assert "training" in cold.stdout.str() and "compressing" in cold.stdout.str()
    assert "training" not in warm.stdout.str() and "compressing" not in warm.stdout.str()
    warm.stdout.fnmatch_lines(["cache: * artifacts reused, 0 built *"])
    rows = lambda r: [line for line in r.stdout.lines if line.startswith("robustness_specs/tiny.yaml ") and "PASS" in line]  # noqa: E731
    assert len(rows(cold)) == 3 and rows(cold) == rows(warm)


@pytest.mark.cold_cache  # asserts that no default cache folder appears
def test_runs_without_cache_are_deterministic(tiny_project: pytest.Pytester, junit_properties) -> None:
    runs = []
    for name in ("a.xml", "b.xml"):
        tiny_project.runpytest("--robustgate-no-cache", f"--junitxml={name}").assert_outcomes(passed=3)
        runs.append(junit_properties(tiny_project.path / name))
    metrics = lambda cases: {c: {k: v for k, v in p.items() if k.startswith("robustgate.")} for c, p in cases.items()}  # noqa: E731
    assert metrics(runs[0]) == metrics(runs[1])
    assert not (tiny_project.path / ".robustgate-cache").exists()


def test_last_failed_reruns_only_the_broken_contract(tiny_project: pytest.Pytester, write_spec) -> None:
    spec = (tiny_project.path / "robustness_specs" / "tiny.yaml").read_text()
    write_spec(edit(spec, "max_drop: 0.15", "max_drop: 0.15, min: 0.999, variants: [int8]"), "tiny.yaml")
    tiny_project.runpytest().assert_outcomes(passed=2, failed=1)
    rerun = tiny_project.runpytest("--lf", "-v")
    rerun.assert_outcomes(failed=1, deselected=2)
    rerun.stdout.fnmatch_lines(["*int8::accuracy[[]printed] FAILED*"])


def test_quiet_run_prints_no_progress(tiny_project: pytest.Pytester) -> None:
    result = tiny_project.runpytest("-q", "--robustgate-no-cache")
    result.assert_outcomes(passed=3)
    assert "training" not in result.stdout.str()
    result.stdout.fnmatch_lines(["3 contracts: 3 pass"])


@pytest.mark.cold_cache  # asserts that the edited model trains again
def test_editing_forward_invalidates_cached_results(tiny_project: pytest.Pytester, write_spec) -> None:
    module = tiny_project.path / "edited.py"
    module.write_text(
        "import tinynet\nfrom torch import nn\n\n\nclass Net(nn.Module):\n"
        "    def __init__(self, num_classes=10):\n        super().__init__()\n        self.body = tinynet.build(num_classes)\n\n"
        "    def forward(self, x):\n        return self.body(x)\n\n\ndef build(num_classes=10):\n    return Net(num_classes)\n"
    )
    spec = (tiny_project.path / "robustness_specs" / "tiny.yaml").read_text()
    write_spec(edit(spec, "tinynet:build", "edited:build"), "tiny.yaml")
    tiny_project.runpytest("--robustgate-cache-dir", "cache").assert_outcomes(passed=3)
    # Same class, same layers, same repr: only forward() changes, and with it every prediction.
    module.write_text(module.read_text().replace("return self.body(x)", "return -self.body(x)"))
    rerun = tiny_project.runpytest("--robustgate-cache-dir", "cache")
    assert "training" in rerun.stdout.str()


def test_training_with_dropout_is_deterministic(tiny_project: pytest.Pytester, write_spec, junit_properties) -> None:
    spec = (tiny_project.path / "robustness_specs" / "tiny.yaml").read_text()
    write_spec(edit(spec, "tinynet:build", "tinynet:with_dropout"), "tiny.yaml")
    runs = []
    for name in ("a.xml", "b.xml"):
        tiny_project.runpytest("--robustgate-no-cache", f"--junitxml={name}")
        runs.append({c: p.get("robustgate.accuracy") for c, p in junit_properties(tiny_project.path / name).items()})
    assert runs[0] == runs[1] and all(value is not None for value in runs[0].values())


def test_size_metrics_and_ratios_reach_junit(tiny_project: pytest.Pytester, junit_properties) -> None:
    tiny_project.runpytest("--junitxml=j.xml").assert_outcomes(passed=3)
    cases = junit_properties(tiny_project.path / "j.xml")
    base = next(p for n, p in cases.items() if "baseline" in n)
    int8 = next(p for n, p in cases.items() if "int8" in n)
    assert float(base["robustgate.size_ratio"]) == 1.0 and float(base["robustgate.params_ratio"]) == 1.0
    assert int(int8["robustgate.macs"]) == int(base["robustgate.macs"]) > 0  # int8 keeps the arithmetic
    assert float(int8["robustgate.size_ratio"]) < 0.5


def test_size_contracts_gate_bytes_params_and_macs(tiny_project: pytest.Pytester, write_spec) -> None:
    spec = (tiny_project.path / "robustness_specs" / "tiny.yaml").read_text()
    spec += "  - size: {max_ratio: 0.5}\n  - size: {max_params: 100}\n"
    write_spec(spec, "tiny.yaml")
    result = tiny_project.runpytest("-p", "no:cacheprovider", "-k", "size")
    # max_ratio is relative (int8 only); max_params is absolute (baseline and int8, both far above 100).
    result.assert_outcomes(passed=1, failed=2, deselected=3)
    result.stdout.fnmatch_lines(
        [
            "robustgate contract broken: baseline :: size   (robustness_specs/tiny.yaml:20)",
            "*params*exact*<= 100*FAIL*",
            "* MB (1.000 of the baseline), * params (1.000), * MACs (1.000)*",
            "*int8*size[[]max_ratio]*PASS*size_ratio 0.* <= 0.5*",
        ]
    )


@pytest.mark.cold_cache  # compares a cold run with a warm one
def test_every_ptq_path_is_a_variant_and_reruns_identically_from_the_cache(
    tiny_project: pytest.Pytester, write_spec, junit_properties
) -> None:
    spec = (tiny_project.path / "robustness_specs" / "tiny.yaml").read_text()
    write_spec(
        edit(
            spec,
            "  int8: {ptq: {backend: x86, calibrate: {on: digits-train, samples: 128}}}\n",
            "  int8: {ptq: {backend: x86, calibrate: {on: digits-train, samples: 128}}}\n"
            "  int8-qnnpack: {ptq: {backend: qnnpack, observer: minmax}}\n"
            "  int8-dynamic: {ptq: {method: dynamic}}\n"
            "  int8-pt2e: {ptq: {backend: pt2e}}\n",
        ),
        "tiny.yaml",
    )
    # In subprocesses: pytester's in-process runs unload what a run imported, and torch.compile's
    # modules cannot be imported twice in one process.
    cold = tiny_project.runpytest_subprocess("--robustgate-cache-dir=cache", "--junitxml=cold.xml")
    cold.assert_outcomes(passed=9)
    cold.stdout.fnmatch_lines(["*ptq: quantizing with the pt2e path*", "*ptq: compiling the int8 graph with inductor*"])
    warm = tiny_project.runpytest_subprocess("--robustgate-cache-dir=cache", "--junitxml=warm.xml")
    warm.assert_outcomes(passed=9)
    assert "compressing" not in warm.stdout.str()
    runs = [junit_properties(tiny_project.path / name) for name in ("cold.xml", "warm.xml")]
    metrics = lambda cases: {c: {k: v for k, v in p.items() if k.startswith("robustgate.")} for c, p in cases.items()}  # noqa: E731
    assert metrics(runs[0]) == metrics(runs[1])
    pt2e = next(props for name, props in runs[0].items() if "int8-pt2e" in name and "printed" in name)
    dynamic = next(props for name, props in runs[0].items() if "int8-dynamic" in name and "printed" in name)
    assert float(pt2e["robustgate.size_ratio"]) < 0.5
    # Dynamic int8 touches only the 32x10 Linear head: the CNN's size barely moves.
    assert float(dynamic["robustgate.size_ratio"]) == pytest.approx(1, abs=0.05)
