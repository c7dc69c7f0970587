"""The suite's `xdist_group` marks keep a module's costly fixtures (ExecuTorch programs, per-architecture models) on
one worker under scripts/test.sh's ``--dist loadgroup``. pytest 9.2 with pytest-xdist 3.8.0 silently stopped
grouping (pytest-xdist issue 1386): each worker rebuilt them, and CI ran minutes longer. This catches a pin that
brings that back."""

from __future__ import annotations

import re

import pytest

GROUPED = """
import pytest

pytestmark = pytest.mark.xdist_group("costly")

@pytest.mark.parametrize("i", range(6))
def test_grouped(i):
    pass
"""


def test_grouped_tests_run_on_one_worker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_grouped=GROUPED)
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "loadgroup", "-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=6)
    workers = set(re.findall(r"\[(gw\d)\] .*PASSED test_grouped\.py::test_grouped\[\d\]@costly", result.stdout.str()))
    assert len(workers) == 1, result.stdout.str()
