"""A run killed with SIGKILL (a CI job cancelled, a machine out of memory) leaves a cache from which the next
run measures exactly what a clean run does; damaged entries are found by their checksum and rebuilt.

The runs are real pytest subprocesses on the tiny project. A conftest written into the project kills the
process from inside at a chosen point, so each point is hit every time rather than by a timer's luck:
mid-training (the 25th optimizer step), after int8 compression but before its entry is written, between
evaluations (the third prediction computed but not written), and in the middle of a cache write (its
temporary file written and flushed, not yet renamed into place).
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from robustgate.cache_inventory import CURRENT, TEMPORARY, prune, scan
from tiny_spec_edits import edit

KILLER = '''
import os
import signal

import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

from robustgate.cache import ArtifactCache

POINT = os.environ.get("KILL_AT", "")


def die(*_):
    os.kill(os.getpid(), signal.SIGKILL)


def after_building(kind, count):
    """Kill once the ``count``-th artifact of ``kind`` is built, before it is stored."""
    original = ArtifactCache.get_or_create
    built = [0]

    def get_or_create(self, kind_, key, create):
        def create_then_die():
            value = create()
            built[0] += kind_ == kind
            if built[0] == count:
                die()
            return value

        return original(self, kind_, key, create_then_die)

    ArtifactCache.get_or_create = get_or_create


if POINT == "training":
    steps = [0]

    def count_step(optimizer, args, kwargs):
        steps[0] += 1
        if steps[0] == 25:
            die()

    register_optimizer_step_pre_hook(count_step)
elif POINT == "compression":
    after_building("steps", 1)
elif POINT == "evaluation":
    after_building("logits", 3)
elif POINT == "cache-write":
    fsync = os.fsync

    def fsync_then_die(fd):
        fsync(fd)
        die()  # the entry's bytes are written and on disk, not yet renamed into place

    os.fsync = fsync_then_die
'''

POINTS = ("training", "compression", "evaluation", "cache-write")


def _measured(project: pytest.Pytester, report: str) -> dict[str, tuple[str, dict]]:
    doc = json.loads((project.path / report / "results.json").read_text())
    return {item["nodeid"]: (item["outcome"], item["metrics"]) for item in doc["items"]}


def _run(project: pytest.Pytester, cache: str, report: str, monkeypatch: pytest.MonkeyPatch, kill_at: str = ""):
    monkeypatch.setenv("KILL_AT", kill_at)
    return project.runpytest_subprocess(f"--robustgate-cache-dir={cache}", f"--robustgate-report={report}",
                                        "-p", "no:cacheprovider")


@pytest.mark.cold_cache  # kills runs while they build
def test_runs_killed_at_every_point_leave_a_cache_that_resumes_to_the_clean_runs_results(
    tiny_project: pytest.Pytester, write_spec, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One cache through four kills in a row, as a CI job cancelled again and again would leave it; each run
    resumes from what the last one stored, and the run that finally completes measures what a clean run does."""
    write_spec(edit((tiny_project.path / "robustness_specs" / "tiny.yaml").read_text(), "epochs: 10", "epochs: 3"), "tiny.yaml")
    tiny_project.makeconftest(KILLER)
    _run(tiny_project, "clean-cache", "clean", monkeypatch)
    clean = _measured(tiny_project, "clean")
    assert len(clean) == 3 and {outcome for outcome, _ in clean.values()} <= {"passed", "failed"}  # 3 epochs: weak
    entries = len(scan(tiny_project.path / "clean-cache"))

    cache = tiny_project.path / "cache"
    stored = []
    for point in POINTS:
        killed = _run(tiny_project, cache.name, f"killed-{point}", monkeypatch, kill_at=point)
        assert killed.ret == -signal.SIGKILL, f"{point}: the run was not killed\n{killed.stdout.str()}"
        assert not (tiny_project.path / f"killed-{point}" / "results.json").exists()
        left = scan(cache)
        assert all(found.state in (CURRENT, TEMPORARY) for found in left), point  # nothing torn or half-read
        assert any(found.state == TEMPORARY for found in left) == (point == "cache-write"), point
        stored.append(sum(found.state == CURRENT for found in left))
    # Each run went on from what the last stored: nothing; the weights and the baseline's prediction before the
    # int8 compression was cut; the int8 model and two more predictions; the one write left, cut mid-way.
    assert stored == [0, 2, 5, 5] and entries == 6

    _run(tiny_project, cache.name, "resumed", monkeypatch)
    assert _measured(tiny_project, "resumed") == clean
    # the write the kill interrupted left its temporary file; prune removes it and nothing usable
    pruned = prune(cache)
    assert [found.state for found in pruned.removed] == [TEMPORARY] and not pruned.busy
    assert [found.state for found in scan(cache)] == [CURRENT] * entries


@pytest.mark.cold_cache  # damages an entry and watches it rebuilt
def test_a_damaged_entry_is_found_by_its_checksum_discarded_and_rebuilt(
    tiny_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One flipped byte in the trained weights: still a loadable file, but not the model that was measured."""
    tiny_project.runpytest("--robustgate-cache-dir=cache", "-p", "no:cacheprovider").assert_outcomes(passed=3)
    clean = _measured(tiny_project, "reports")
    (weights,) = [found.path for found in scan(tiny_project.path / "cache") if found.kind == "weights"]
    data = bytearray(weights.read_bytes())
    data[-100] ^= 0xFF  # inside the last tensor's bytes
    weights.write_bytes(bytes(data))
    assert [found.problem for found in scan(tiny_project.path / "cache") if found.path == weights] == [
        "checksum mismatch: the payload changed after it was written"]

    rerun = tiny_project.runpytest("--robustgate-cache-dir=cache", "-p", "no:cacheprovider", "-W", "default")
    rerun.assert_outcomes(passed=3)
    rerun.stdout.fnmatch_lines([f"*robustgate: discarding damaged cache entry {weights}*checksum mismatch*rebuilding it*"])
    assert _measured(tiny_project, "reports") == clean
    assert {found.state for found in scan(tiny_project.path / "cache")} == {CURRENT}


def test_cache_info_and_prune_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import os
    import time

    import torch

    from robustgate.cache import ArtifactCache, content_key
    from robustgate.cli import main

    cache = ArtifactCache(tmp_path)
    for index in range(3):
        cache.get_or_create("logits", content_key("logits", index), lambda: torch.zeros(1000))
    cache.get_or_create("weights", content_key("weights"), lambda: {"w": torch.ones(20000)})
    old = cache.path("logits", content_key("logits", 0))
    os.utime(old, (time.time() - 10 * 86400,) * 2)  # last read ten days ago
    truncated = cache.path("logits", content_key("logits", 1))
    truncated.write_bytes(truncated.read_bytes()[:-10])
    leftover = cache.path("weights", content_key("weights")).with_name("x.pt1234.tmp")
    leftover.write_bytes(b"half")
    foreign = cache.path("steps", content_key("steps"))
    foreign.parent.mkdir(parents=True)
    torch.save({"w": torch.ones(3)}, foreign)  # a format-1 entry: a bare torch.save file

    assert main(["cache", "info", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"robustgate cache at {tmp_path}: 3 usable entries, 0.1 MB" in out
    assert "  logits           2     0.0 MB" in out and "  weights          1     0.1 MB" in out
    assert "unusable, damaged: 1 files" in out and f"{truncated}: truncated: " in out
    assert "unusable, left by an interrupted write: 1 files" in out
    assert "unusable, written by other robustgate code, library versions or CPU: 1 files" in out

    assert main(["cache", "prune", "--cache-dir", str(tmp_path), "--dry-run"]) == 0
    assert "would free" in capsys.readouterr().out and truncated.exists() and leftover.exists()
    assert main(["cache", "prune", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert not truncated.exists() and not leftover.exists() and not foreign.exists() and old.exists()
    assert "freed " in out and "in 3 files" in out
    assert main(["cache", "prune", "--cache-dir", str(tmp_path), "--older-than", "7"]) == 0
    assert f"removed {old} " in capsys.readouterr().out and not old.exists()
    assert [found.kind for found in scan(tmp_path)] == ["logits", "weights"]
    assert main(["cache", "info", "--cache-dir", str(tmp_path / "absent")]) == 1
    assert "no cache folder at" in capsys.readouterr().err
