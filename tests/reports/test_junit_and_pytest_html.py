"""Metrics reach the other reports a CI already reads: JUnit XML (any junit_family, without warnings;
from pytest-xdist workers: see test_results_json), where ``robustgate.outcome`` tells a broken contract from
one that could not be evaluated, and pytest-html's page (each row's gates, breakdown and plot)."""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ET

import pytest
from tiny_spec_edits import no_drop_allowed

RUN = ("-p", "no:cacheprovider")


def _cases(path) -> dict[str, dict[str, str]]:
    root = ET.parse(path).getroot()  # a real XML parser: the file must be well-formed
    return {
        f"{case.get('classname')}.{case.get('name')}": {p.get("name"): p.get("value") for p in case.iter("property")}
        for case in root.iter("testcase")
    }


@pytest.mark.parametrize("family", [None, "xunit1", "xunit2", "legacy"])
def test_junit_properties_under_every_family_without_warnings(tiny_project: pytest.Pytester, family: str | None) -> None:
    options = ["-o", f"junit_family={family}"] if family else []
    result = tiny_project.runpytest(*RUN, "--junitxml=j.xml", "-W", "error::pytest.PytestWarning", *options)
    result.assert_outcomes(passed=3, warnings=0)
    cases = _cases(tiny_project.path / "j.xml")
    assert len(cases) == 3
    for name, props in cases.items():
        assert props["robustgate.contract"] in name and props["robustgate.verdict"] == "pass"
        assert 0 < float(props["robustgate.accuracy"]) <= 1 and int(props["robustgate.n"]) > 0
    printed = next(props for name, props in cases.items() if name.endswith("accuracy[printed]"))
    assert float(printed["robustgate.drop_high"]) >= float(printed["robustgate.drop"])


PLOTTED = "  - corruptions: {on: handwritten, suite: [contrast, gaussian_noise], severities: [1, 5], samples: 40, min_accuracy: 0.0}\n"


def test_pytest_html_rows_carry_gates_and_plots(tiny_project: pytest.Pytester, write_spec) -> None:
    spec = (tiny_project.path / "robustness_specs" / "tiny.yaml").read_text()
    write_spec(no_drop_allowed(spec) + PLOTTED, "tiny.yaml")
    tiny_project.runpytest(*RUN, "--html=ph.html", "--self-contained-html").assert_outcomes(passed=4, failed=1)
    page = (tiny_project.path / "ph.html").read_text()
    # pytest-html keeps its rows as JSON in an attribute of the page
    blob = json.loads(html.unescape(re.search(r'data-jsonblob="(.*?)"', page, re.S).group(1)))
    extras = {
        test_id: " ".join(extra["content"] for run in runs for extra in run.get("extras", []))
        for test_id, runs in blob["tests"].items()
    }
    broken = next(text for test_id, text in extras.items() if test_id.endswith("int8::accuracy[printed]"))
    assert "<td>drop</td>" in broken and "&lt;= 0" in broken and "<b class='FAIL'>FAIL</b>" in broken
    assert "<td>baseline accuracy 0." in broken and "McNemar p = " in broken  # the baseline beside the relative gate
    heatmaps = [text for test_id, text in extras.items() if "corruptions[" in test_id]
    assert len(heatmaps) == 2 and all("data:image/png;base64," in text for text in heatmaps)


UNEVALUABLE = """\
  - accuracy: {on: handwritten, min: 0.5, variants: [int8]}
    budget: {samples: 10}
"""


def test_junit_tells_a_broken_contract_from_one_that_could_not_be_evaluated(tiny_project: pytest.Pytester, write_spec) -> None:
    """pytest writes an exception raised while a test runs as <failure>, whatever it is: the robustgate.outcome
    property says which: failed (a gate broken), error (over its budget: nothing was measured), passed."""
    spec = (tiny_project.path / "robustness_specs" / "tiny.yaml").read_text()
    write_spec(no_drop_allowed(spec) + UNEVALUABLE, "tiny.yaml")
    tiny_project.runpytest(*RUN, "--junitxml=j.xml").assert_outcomes(passed=2, failed=2)
    found = {}
    for case in ET.parse(tiny_project.path / "j.xml").getroot().iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        element = next((child for child in case if child.tag in ("failure", "error", "skipped")), None)
        found[(props["robustgate.model"], props["robustgate.contract"])] = (
            props["robustgate.outcome"], element.tag if element is not None else None,
            element.get("message", "") if element is not None else "")
    assert sorted(outcome for outcome, _, _ in found.values()) == ["error", "failed", "passed", "passed"]
    assert found[("int8", "accuracy[printed]")][:2] == ("failed", "failure")
    error = next(value for value in found.values() if value[0] == "error")
    assert error[1] == "failure" and "budget exceeded" in error[2]
