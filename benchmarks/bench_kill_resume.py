"""The quickstart killed with SIGKILL at random moments, each time resumed to the end on the cache it left.

    .venv/bin/python -u benchmarks/bench_kill_resume.py [--kills 6] [--seed 0] [--work DIR]

First a clean run (empty cache) gives the reference results and its wall time T. Then ``--kills`` trials,
each on a fresh cache: a run is killed at a moment drawn uniformly from its own slice of [0.05 T, 0.95 T]
(the slices split that span evenly, so kills land in training, compression, evaluation, attacks and cache
writes alike; seeded), then the next run completes on that cache. The table shows, per trial, what the killed
run left (usable entries by kind, temporary files of a cut write, damaged entries), the completing run's wall
time, and whether its outcomes and metrics equal the clean run's. Latency items are left out of the
comparison: their timings differ run to run by nature. (tests/plugin/test_crash_safety.py kills one cache
again and again at chosen points.)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "robustness_specs" / "quickstart.yaml"


def pytest_run(cache: Path, report: Path, kill_after: float | None) -> tuple[float, bool]:
    """Run the quickstart; with ``kill_after``, SIGKILL it that many seconds in. (wall seconds, was killed)"""
    command = [sys.executable, "-m", "pytest", str(SPEC), "-q", "-p", "no:cacheprovider",
               f"--robustgate-cache-dir={cache}", f"--robustgate-report={report}"]
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        process.wait(timeout=kill_after)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return time.perf_counter() - start, process.returncode == -signal.SIGKILL


def measured(report: Path) -> dict[str, tuple[str, dict]]:
    doc = json.loads((report / "results.json").read_text())
    return {item["nodeid"]: (item["outcome"], item["metrics"]) for item in doc["items"] if item["contract"] != "latency"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, help="a folder for the caches and reports (default: a temporary one)")
    args = parser.parse_args()
    from robustgate.cache_inventory import CURRENT, DAMAGED, TEMPORARY, scan

    work = args.work or Path(tempfile.mkdtemp(prefix="robustgate-kill-"))
    clean_seconds, _ = pytest_run(work / "clean-cache", work / "clean", None)
    clean = measured(work / "clean")
    print(f"clean run: {clean_seconds:.1f} s, {len(clean)} items compared (latency left out)\n")

    rng = random.Random(args.seed)
    kinds = ("weights", "steps", "logits", "attacks")
    print(f"{'trial':>5} {'killed at':>10} " + " ".join(f"{k:>8}" for k in kinds)
          + f" {'cut writes':>10} {'damaged':>8} {'resumed':>8}  equal to clean")
    equal = 0
    for trial in range(args.kills):
        low = 0.05 + 0.9 * trial / args.kills
        moment = rng.uniform(low, low + 0.9 / args.kills) * clean_seconds
        cache = work / f"cache-{trial}"
        _, killed = pytest_run(cache, work / f"killed-{trial}", moment)
        found = scan(cache)
        usable = [entry.kind for entry in found if entry.state == CURRENT]
        states = [entry.state for entry in found]
        seconds, _ = pytest_run(cache, work / f"resumed-{trial}", None)
        same = measured(work / f"resumed-{trial}") == clean
        equal += same
        note = "" if killed else "  (finished before the kill)"
        print(f"{trial + 1:>5} {moment:>9.1f}s " + " ".join(f"{usable.count(k):>8}" for k in kinds)
              + f" {states.count(TEMPORARY):>10} {states.count(DAMAGED):>8} {seconds:>7.1f}s  {same}{note}")
    print(f"\n{equal} of {args.kills} resumed runs gave the clean run's outcomes and metrics")
    print(f"(caches and reports in {work})")


if __name__ == "__main__":
    main()
