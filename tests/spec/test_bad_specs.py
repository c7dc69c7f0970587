"""The bad-spec corpus, ``tests/bad_specs/``: every file is a whole spec with one defect, and fails with exactly
the error its header states, located at ``FILE:LINE``, without a traceback, and never loads or passes.

A file starts with comment lines: what is wrong, then ``# error: PROBLEM`` and ``# line: N`` for each
``FILE:LINE: PROBLEM`` its error lists, in order (one pair, except where one mistake shows in two keys).
"""

from __future__ import annotations

import itertools
import re
import shutil
from pathlib import Path

import pytest

from robustgate.errors import SpecError
from robustgate.spec import load_cases
from robustgate.spec.parse import is_spec_file

CORPUS = Path(__file__).resolve().parents[1] / "bad_specs"
FILES = sorted(CORPUS.glob("*.yaml"))
# Files the plugin does not take for specs at all (no `robustgate:` key), so they give no collection error.
NOT_COLLECTED = {"empty_file.yaml"}


def header(path: Path) -> list[str]:
    """The comment lines a corpus file starts with (read as bytes: one file is deliberately not UTF-8)."""
    text = path.read_bytes().decode("utf-8", errors="replace")
    return list(itertools.takewhile(lambda line: line.startswith("#"), text.split("\n")))


def expected_problems(path: Path) -> list[tuple[int, str]]:
    """The (line, problem) pairs a file's header states, in order; fails on a header that states none or is malformed."""
    stated = [line for line in header(path) if line.startswith(("# error: ", "# line: "))]
    pairs = list(zip(stated[0::2], stated[1::2]))
    well_formed = len(stated) == 2 * len(pairs) and all(
        error.startswith("# error: ") and line.startswith("# line: ") for error, line in pairs
    )
    assert pairs and well_formed, f"{path.name}: the header needs `# error: PROBLEM` / `# line: N` pairs"
    return [(int(line.removeprefix("# line: ")), error.removeprefix("# error: ")) for error, line in pairs]


def problems_in(message: str, name: str) -> list[tuple[int, str]]:
    """(line, problem) of every ``NAME:LINE: problem`` an error message lists: one, or each of `N problems in NAME`."""
    return [(int(m[1]), m[2]) for m in re.finditer(rf"^\s*{re.escape(name)}:(\d+): (.*)$", message, flags=re.MULTILINE)]


def test_the_corpus_has_enough_specs_and_each_states_what_is_wrong_and_its_error() -> None:
    assert len(FILES) >= 40
    for path in FILES:
        comments = header(path)
        assert comments and not comments[0].startswith(("# error:", "# line:")), f"{path.name}: describe the defect first"
        assert expected_problems(path)


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_a_bad_spec_fails_with_exactly_the_error_its_header_states(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(CORPUS)  # the location then reads NAME.yaml:LINE
    with pytest.raises(SpecError) as info:
        load_cases(path, None)  # what the plugin's collector calls
    message = str(info.value)
    expected = expected_problems(path)
    assert problems_in(message, path.name) == expected, message
    if len(expected) == 1:  # a single problem is the message's first line, not a list of one
        line, problem = expected[0]
        assert message.splitlines()[0] == f"{path.name}:{line}: {problem}"
    assert "Traceback" not in message


def test_under_pytest_every_bad_spec_is_one_collection_error_and_nothing_passes(pytester: pytest.Pytester) -> None:
    folder = pytester.mkdir("robustness_specs")
    for path in FILES:
        shutil.copyfile(path, folder / path.name)
    collected = [path for path in FILES if path.name not in NOT_COLLECTED]
    assert [path.name for path in FILES if not is_spec_file(path)] == sorted(NOT_COLLECTED)

    result = pytester.runpytest("-p", "no:cacheprovider")

    result.assert_outcomes(errors=len(collected))  # and passed=0, failed=0
    out = result.stdout.str()
    assert sorted(re.findall(r"^ERROR robustness_specs/(\S+\.yaml)", out, flags=re.MULTILINE)) == [p.name for p in collected]
    for path in collected:
        for line, problem in expected_problems(path):
            assert f"robustness_specs/{path.name}:{line}: {problem}" in out, path.name
    for internal in ("Traceback", "site-packages", "src/robustgate"):
        assert internal not in out
