"""Wall time of the quickstart through pytest: cold (empty cache, includes training) and warm.

    .venv/bin/python benchmarks/bench_quickstart.py [--runs 3]

Each run is a fresh `pytest robustness_specs/quickstart.yaml -q` process; cold runs
get a new empty cache folder, warm runs reuse the one a cold run filled.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_quickstart(cache: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "robustness_specs/quickstart.yaml", "-q", "-p", "no:cacheprovider",
         "--robustgate-cache-dir", str(cache)],
        cwd=ROOT, capture_output=True, text=True,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"quickstart failed:\n{done.stdout}\n{done.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    cold, warm = [], []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as folder:
            cache = Path(folder) / "cache"
            cold.append(run_quickstart(cache))
            warm.append(run_quickstart(cache))
    print(f"quickstart wall time, {args.runs} runs each (seconds)")
    print(f"{'run':<6}{'median':>9}{'min':>9}{'max':>9}   target")
    for name, times, target in (("cold", cold, "< 180"), ("warm", warm, "< 20")):
        print(f"{name:<6}{statistics.median(times):>9.1f}{min(times):>9.1f}{max(times):>9.1f}   {target}")


if __name__ == "__main__":
    main()
