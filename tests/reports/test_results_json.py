"""results.json and summary.md: written at the end of every run with contracts, failed or interrupted,
valid against the published schema, and holding what the items measured."""

from __future__ import annotations

import json

import jsonschema
import pytest

from robustgate.reports.results import SCHEMA
from tiny_spec_edits import edit, no_drop_allowed


def _results(pytester: pytest.Pytester) -> dict:
    doc = json.loads((pytester.path / "reports" / "results.json").read_text())
    jsonschema.validate(doc, SCHEMA)
    return doc


@pytest.mark.cold_cache  # asserts that training, compression and prediction all ran
def test_a_run_writes_schema_valid_results_and_a_markdown_summary(tiny_project: pytest.Pytester, write_spec, junit_properties) -> None:
    spec = (tiny_project.path / "robustness_specs" / "tiny.yaml").read_text()
    write_spec(no_drop_allowed(spec), "tiny.yaml")
    result = tiny_project.runpytest("--robustgate-cache-dir=cache", "-p", "no:cacheprovider", "--junitxml=j.xml")
    result.assert_outcomes(passed=2, failed=1)
    # the terminal table shows the baseline's own accuracy beside the drop gate relative to it
    result.stdout.fnmatch_lines(["3 contracts: 2 pass, 1 fail",
                                 "*int8*accuracy[[]printed]*FAIL*drop *(one-sided 97.5% upper bound *) <= 0, baseline accuracy 0.*"])
    doc = _results(tiny_project)
    assert doc["exit_status"] == 1 and doc["interrupted"] is False
    assert doc["environment"]["torch"] and doc["environment"]["quantized_engine"]
    assert [spec["name"] for spec in doc["specs"].values()] == ["tiny"]
    items = {item["nodeid"]: item for item in doc["items"]}
    assert len(items) == 3
    junit = junit_properties(tiny_project.path / "j.xml")
    broken = next(item for item in items.values() if item["outcome"] == "failed")
    assert broken["model"] == "int8" and broken["contract"] == "accuracy[printed]"
    assert broken["kind"] == "accuracy" and broken["datasets"] == ["printed"]
    gate = next(g for g in broken["gates"] if g["metric"] == "drop")
    assert gate["threshold"] == 0.0 and gate["passed"] is False and gate["read"] == "one-sided 97.5% upper bound"
    props = next(p for name, p in junit.items() if name.endswith("accuracy[printed]"))
    assert broken["metrics"]["drop"] == pytest.approx(float(props["robustgate.drop"]))
    timings = doc["timings"]
    assert timings["total_seconds"] >= timings["contracts_seconds"] > 0
    phases = {key: seconds for key, seconds in timings.items() if key in ("training_seconds", "compression_seconds", "prediction_seconds")}
    assert len(phases) == 3 and all(seconds > 0 for seconds in phases.values())  # a cold cache: all three ran
    assert sum(phases.values()) <= timings["contracts_seconds"]
    assert sum(sum(item["phases"].values()) for item in items.values()) == pytest.approx(sum(phases.values()))
    summary = (tiny_project.path / "reports" / "summary.md").read_text()
    assert "**3 contracts: 2 pass, 1 fail**" in summary
    assert "| robustness_specs/tiny.yaml | int8 | accuracy[printed] | FAIL | drop " in summary
    assert f"<= 0, baseline accuracy {broken['metrics']['baseline_accuracy']:.4f} |" in summary


def test_errors_and_skips_are_recorded_with_their_message(tiny_project: pytest.Pytester, write_spec) -> None:
    spec = (tiny_project.path / "robustness_specs" / "tiny.yaml").read_text()
    spec += "  - latency: {p90_ms: 1000, min_queries: 10, min_seconds: 0.0, warmup: 1, variants: [int8]}\n"
    write_spec(edit(spec, "tinynet:build", "tinynet:nan_net"), "tiny.yaml")
    tiny_project.runpytest("-p", "no:cacheprovider", "--benchmark-skip")
    doc = _results(tiny_project)
    outcomes = {item["contract"]: item["outcome"] for item in doc["items"] if item["model"] == "int8"}
    assert outcomes["latency"] == "skipped"
    errors = [item for item in doc["items"] if item["outcome"] == "error"]
    assert errors and all(item["message"] for item in errors)
    assert all("training diverged" in item["message"] and "tiny.yaml:4" in item["message"] for item in errors)


INTERRUPT = """
import pytest

def pytest_runtest_logreport(report):
    if report.when == "call" and "accuracy[handwritten]" in report.nodeid:
        raise KeyboardInterrupt
"""


def test_an_interrupted_run_still_writes_what_ran_and_counts_what_did_not(tiny_project: pytest.Pytester) -> None:
    tiny_project.makeconftest(INTERRUPT)
    # in a subprocess: an in-process run's KeyboardInterrupt would stop this test session too
    result = tiny_project.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    doc = _results(tiny_project)
    assert doc["interrupted"] is True and len(doc["items"]) == 1 and doc["items"][0]["outcome"] == "passed"
    assert doc["not_run"] == ["robustness_specs/tiny.yaml::int8::accuracy[handwritten]",
                              "robustness_specs/tiny.yaml::int8::accuracy[printed]"]
    head = "3 contracts: 1 pass, 2 did not run (the run was interrupted)"
    result.stdout.fnmatch_lines([head, "did not run: robustness_specs/tiny.yaml::int8::accuracy[[]handwritten], *"])
    summary = (tiny_project.path / "reports" / "summary.md").read_text()
    assert f"**{head}**" in summary and "The run was interrupted" in summary
    assert f"<h1>robustgate: {head}</h1>" in (tiny_project.path / "reports" / "report.html").read_text()


def test_a_run_stopped_by_maxfail_says_which_contracts_did_not_run(tiny_project: pytest.Pytester, write_spec) -> None:
    spec = (tiny_project.path / "robustness_specs" / "tiny.yaml").read_text()
    write_spec(edit(spec, "min: 0.5", "min: 0.999"), "tiny.yaml")
    result = tiny_project.runpytest("-p", "no:cacheprovider", "-x")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["3 contracts: 1 fail, 2 did not run (the run stopped early)"])
    assert len(_results(tiny_project)["not_run"]) == 2


def test_runs_without_contracts_write_no_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain():\n    assert True\n")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    assert not (pytester.path / "reports").exists()


def test_robustgate_report_re_renders_the_summary_and_refuses_other_versions(tiny_project: pytest.Pytester, tmp_path) -> None:
    from robustgate.cli import main

    tiny_project.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=3)
    reports = tiny_project.path / "reports"
    assert main(["report", str(reports / "results.json"), "--md", str(tmp_path / "again.md")]) == 0
    assert (tmp_path / "again.md").read_text() == (reports / "summary.md").read_text()
    doc = json.loads((reports / "results.json").read_text())
    (tmp_path / "future.json").write_text(json.dumps({**doc, "schema_version": 99}))
    assert main(["report", str(tmp_path / "future.json")]) == 1
    assert main(["report", "--schema"]) == 0


PLOTTED = """\
  - attack: {kind: fgsm, eps: [0, 2/255, 8/255], on: handwritten, samples: 32, min: 0.0}
  - corruptions: {on: handwritten, suite: [contrast, gaussian_noise], severities: [1, 5], samples: 40, min_accuracy: 0.0}
"""


def test_the_html_report_is_self_contained_with_a_plot_per_kind(tiny_project: pytest.Pytester, write_spec) -> None:
    import base64
    import io
    import re
    from html.parser import HTMLParser

    from PIL import Image

    spec = (tiny_project.path / "robustness_specs" / "tiny.yaml").read_text()
    write_spec(spec + PLOTTED, "tiny.yaml")
    tiny_project.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=7)
    page = (tiny_project.path / "reports" / "report.html").read_text()

    class Links(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.sources: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.sources += [value or "" for name, value in attrs if name in ("src", "href")]

    links = Links()
    links.feed(page)
    images = [source for source in links.sources if not source.startswith("#")]  # links within the page fetch nothing
    assert images and all(source.startswith("data:image/png;base64,") for source in images), "nothing fetched"
    for source in images:
        with Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1]))) as image:
            image.verify()
    titles = re.findall(r"<h[23]>(.*?)</h[23]>", page)  # h3: a figure inside its contract kind's section
    assert "Accuracy by model and dataset" in titles
    assert any(t.startswith("Robust accuracy against attack strength") for t in titles)
    assert "Corruption accuracy" in titles and page.count("<figure data-plot='corruptions'>") == 2  # baseline and int8
    assert page.count("<tr><td data-label='model'>") == 7 and "<meta name='viewport'" in page


# Logs every artifact a run builds (not loads): kind, key and the xdist worker that built it.
BUILD_LOGGER = '''
import os

from robustgate.cache import ArtifactCache

original = ArtifactCache.get_or_create


def get_or_create(self, kind, key, create):
    def create_and_log():
        value = create()
        with open(os.environ["BUILD_LOG"], "a") as log:
            log.write(f"{kind} {key} {os.environ.get('PYTEST_XDIST_WORKER', 'serial')}\\n")
        return value

    return original(self, kind, key, create_and_log)


ArtifactCache.get_or_create = get_or_create
'''


@pytest.mark.cold_cache  # counts what each run builds
@pytest.mark.serial  # starts two workers of its own
def test_parallel_workers_give_the_serial_runs_results_in_one_report(
    tiny_project: pytest.Pytester, write_spec, junit_properties, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`-n 2` measures exactly what a serial run does (each run into a fresh cache, so nothing is shared but the
    code); the workers share their cache through its file locks, so each model and each prediction is built
    once, by one worker, and the controller writes one results.json, JUnit XML and baseline file holding every
    worker's items."""
    spec = (tiny_project.path / "robustness_specs" / "tiny.yaml").read_text()
    spec = edit(spec, "int8: {ptq:", "pruned: {prune: {method: l1, ratio: 0.5}}\n  int8: {ptq:")
    spec += "  - latency: {p90_ms: 5000, min_queries: 5, min_seconds: 0.0, warmup: 1, variants: [int8]}\n"
    write_spec(spec, "tiny.yaml")
    tiny_project.makeconftest(BUILD_LOGGER)
    monkeypatch.setenv("BUILD_LOG", str(tiny_project.path / "serial-builds.log"))
    serial = tiny_project.runpytest_subprocess("--robustgate-cache-dir=serial", "-p", "no:cacheprovider",
                                               "--robustgate-report=serial-report")
    monkeypatch.setenv("BUILD_LOG", str(tiny_project.path / "parallel-builds.log"))
    parallel = tiny_project.runpytest_subprocess("--robustgate-cache-dir=parallel", "-p", "no:cacheprovider", "-n", "2",
                                                 "--robustgate-report=parallel-report", "-v", "-rs", "--junitxml=j.xml",
                                                 "--robustgate-save-baseline=prev.json")
    outcomes = serial.parseoutcomes()
    assert outcomes.get("passed", 0) + outcomes.get("failed", 0) == 6
    # the one latency item is not timed beside another worker (it would measure the neighbour's load)
    assert parallel.parseoutcomes() == {**outcomes, "passed": outcomes["passed"] - 1, "skipped": 1}
    parallel.stdout.fnmatch_lines(["*latency is not timed under pytest-xdist*--robustgate-force-latency*"])
    workers = {line.split("]")[0] for line in parallel.stdout.lines if line.startswith("[gw") and "ED " in line}
    assert workers == {"[gw0", "[gw1"}  # both workers ran contracts

    def builds(log: str) -> list[tuple[str, str, str]]:
        return [tuple(line.split()) for line in (tiny_project.path / log).read_text().splitlines()]

    built = builds("parallel-builds.log")
    assert sorted(kind for kind, _, _ in built if kind != "logits") == ["steps", "steps", "weights"]  # train once, compress twice
    assert len({(kind, key) for kind, key, _ in built}) == len(built)  # nothing built twice, by one worker or two
    assert {(kind, key) for kind, key, _ in built} == {(kind, key) for kind, key, _ in builds("serial-builds.log")}

    def measured(folder: str) -> dict[str, dict]:
        doc = json.loads((tiny_project.path / folder / "results.json").read_text())
        jsonschema.validate(doc, SCHEMA)
        assert all(item["gates"] for item in doc["items"] if item["outcome"] != "skipped")
        return {item["nodeid"]: {k: v for k, v in item["metrics"].items() if k != "interval_level"}
                for item in doc["items"] if item["contract"] != "latency"}

    assert len(measured("serial-report")) == 5 and measured("serial-report") == measured("parallel-report")
    per_image = json.loads((tiny_project.path / "prev.json").read_text())["per_image"]  # packed outcomes cross too
    assert sorted(per_image) == sorted(measured("parallel-report"))
    junit = junit_properties(tiny_project.path / "j.xml")  # the workers' metrics reach the controller's XML too
    assert len(junit) == 6 and sum("robustgate.accuracy" in props for props in junit.values()) == 5
