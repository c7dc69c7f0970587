"""The quickstart killed with SIGKILL at random moments, again and again on one cache, then run to the end.

    .venv/bin/python benchmarks/bench_kill_resume.py [--kills 6] [--seed 0] [--work DIR]

First a clean run (empty cache) gives the reference results and its wall time T. Then one cache goes through
``--kills`` runs, each killed at a moment drawn uniformly from [0.05 T, 0.95 T] of its own run (seeded), so
kills land in training, compression, evaluation, attacks and cache writes alike; then one run completes on that
cache. The table shows, per kill, what the cache held afterwards (usable entries, temporary files left by a cut
write, damaged entries), and at the end whether the completed run's outcomes and metrics equal the clean run's.
Latency items are left out of the comparison: their timings differ run to run by nature.
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
    cache = work / "cache"
    print(f"{'run':>3} {'killed at':>10} {'usable':>7} {'cut writes':>10} {'damaged':>8}")
    for run in range(1, args.kills + 1):
        moment = rng.uniform(0.05, 0.95) * clean_seconds
        _, killed = pytest_run(cache, work / f"killed-{run}", moment)
        states = [found.state for found in scan(cache)]
        note = "" if killed else "  (finished before the kill)"
        print(f"{run:>3} {moment:>9.1f}s {states.count(CURRENT):>7} {states.count(TEMPORARY):>10} "
              f"{states.count(DAMAGED):>8}{note}")
    seconds, _ = pytest_run(cache, work / "resumed", None)
    same = measured(work / "resumed") == clean
    print(f"\ncompleting run: {seconds:.1f} s; outcomes and metrics equal to the clean run's: {same}")
    print(f"(caches and reports in {work})")


if __name__ == "__main__":
    main()
