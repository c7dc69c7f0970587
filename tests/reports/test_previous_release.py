"""The previous release, pytest-free: which max_regression gates it lets an item read, and why not the others."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from robustgate.checks.outcome import Outcome
from robustgate.errors import RobustgateError
from robustgate.reports.previous_release import PreviousRelease, read_regression_gates

NODEID = "s.yaml::int8::accuracy[digits]"


def _release(tmp_path: Path, settings: str = "abc") -> PreviousRelease:
    item = {"nodeid": NODEID, "metrics": {"accuracy": 0.9, "n": 100}, "settings": settings, "outcome": "passed"}
    path = tmp_path / "v1.json"
    path.write_text(json.dumps({"schema_version": 2, "items": [item]}))
    return PreviousRelease.load(path)


def _read(release: PreviousRelease | None, nodeid: str = NODEID, settings: str = "abc") -> tuple[list[str], Outcome]:
    outcome = Outcome("accuracy[digits]", "int8", metrics={"accuracy": 0.85, "n": 100})
    return read_regression_gates(outcome, {"accuracy": 0.01}, release, nodeid, settings, "point"), outcome


def test_without_a_release_or_with_other_settings_no_gate_is_read_and_the_note_says_why(tmp_path: Path) -> None:
    unread, outcome = _read(None)
    assert unread == ["no --robustgate-baseline PREV.json was given"] and not outcome.gates
    assert outcome.notes == ["max_regression not read: no --robustgate-baseline PREV.json was given"]
    unread, _ = _read(_release(tmp_path), settings="changed")
    assert unread and unread[0].startswith("the contract's settings changed since the baseline v1.json")


def test_a_release_is_compared_by_item_and_refused_for_a_spec_it_never_held(tmp_path: Path) -> None:
    unread, outcome = _read(_release(tmp_path))
    assert unread == [] and [(g.metric, g.estimate, g.passed) for g in outcome.gates] == [("regression.accuracy",
                                                                                          pytest.approx(0.05), False)]
    assert _read(_release(tmp_path), nodeid="s.yaml::int8::size")[0] == [
        "the baseline v1.json has no result for this item (a new contract?)"]
    with pytest.raises(RobustgateError, match="holds no results of other.yaml"):
        _read(_release(tmp_path), nodeid="other.yaml::int8::accuracy[digits]")
