"""`robustgate validate` checks specs without building anything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def validate(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "robustgate.cli", "validate", *map(str, files)], capture_output=True, text=True, cwd=ROOT
    )


def test_valid_spec_is_summarised_and_exits_zero() -> None:
    result = validate(ROOT / "robustness_specs" / "quickstart.yaml")
    assert result.returncode == 0, result.stderr
    assert "ok: " in result.stdout and "(5 datasets, 2 models, 6 contracts, 8 items)" in result.stdout


def test_invalid_spec_reports_every_problem_and_exits_one(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("robustgate: 1\nmodel: {arch: x, weights: w.pt}\ndatasets: {}\ncontracts:\n  - acuracy: {on: y}\n")
    good = ROOT / "robustness_specs" / "quickstart.yaml"
    result = validate(bad, good)
    assert result.returncode == 1
    assert "bad.yaml:2: model: missing required key 'input'" in result.stderr
    assert "bad.yaml:5: contracts[0].acuracy: unknown contract kind 'acuracy': did you mean 'accuracy'?" in result.stderr
    assert "Traceback" not in result.stderr
    assert "ok: " in result.stdout  # the good file is still checked


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    result = validate(tmp_path / "nope.yaml")
    assert result.returncode == 1
    assert "nope.yaml: cannot read spec file: No such file or directory" in result.stderr
