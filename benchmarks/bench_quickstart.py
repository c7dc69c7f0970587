"""Wall time of the quickstart through pytest: cold (empty cache, includes training) and warm.

    .venv/bin/python benchmarks/bench_quickstart.py [--runs 3]

Each run is a fresh `pytest -p no:hypothesispytest robustness_specs/quickstart.yaml` process (what
scripts/quickstart.sh runs, its cold-cost estimate included); cold runs get a new empty cache folder, warm runs
reuse the one a cold run filled. Prints the process wall time (imports included) with min/median/max against
issue 23's targets, then the median seconds per phase from each run's results.json (where the time goes), beside
the cold-cost estimate of each phase (cold_estimate.py: the estimate a cold run prints, summed over models).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cold_estimate import estimated_phases

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"cold": 60.0, "warm": 8.0}  # seconds of wall time, median of the runs
PHASES = ("training", "compression", "prediction", "corruption", "attack", "latency", "collection")


def run_quickstart(cache: Path, reports: Path) -> tuple[float, dict[str, float]]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:hypothesispytest", "robustness_specs/quickstart.yaml",
         "-p", "no:cacheprovider", "--robustgate-cache-dir", str(cache), "--robustgate-report", str(reports)],
        cwd=ROOT, capture_output=True, text=True,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"quickstart failed:\n{done.stdout}\n{done.stderr}")
    timings = json.loads((reports / "results.json").read_text())["timings"]
    phases = {name: timings.get(f"{name}_seconds", 0.0) for name in PHASES}
    phases["contracts, outside those"] = timings["contracts_seconds"] - sum(phases.values()) + phases["collection"]
    phases["outside robustgate (imports, pytest, reports)"] = elapsed - timings["total_seconds"]
    return elapsed, phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    walls: dict[str, list[float]] = {"cold": [], "warm": []}
    phases: dict[str, list[dict[str, float]]] = {"cold": [], "warm": []}
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as folder:
            cache = Path(folder) / "cache"
            for kind in ("cold", "warm"):
                wall, spent = run_quickstart(cache, Path(folder) / f"reports-{kind}")
                walls[kind].append(wall)
                phases[kind].append(spent)
    print(f"quickstart wall time, {args.runs} fresh processes each (seconds)")
    print(f"{'run':<6}{'median':>9}{'min':>9}{'max':>9}   target")
    for kind, times in walls.items():
        print(f"{kind:<6}{statistics.median(times):>9.1f}{min(times):>9.1f}{max(times):>9.1f}   <= {TARGETS[kind]:g}")
    estimated, took = estimated_phases(ROOT / "robustness_specs" / "quickstart.yaml")
    print(f"\nmedian seconds per phase; the cold-cost estimate (made in {took:.1f} s, in this process)")
    print(f"{'phase':<48}{'cold':>8}{'warm':>8}{'estimate':>10}")
    for name in phases["cold"][0]:
        cold, warm = (statistics.median(run[name] for run in phases[kind]) for kind in ("cold", "warm"))
        guess = f"{estimated[name]:>10.1f}" if name in estimated else ""
        print(f"{name:<48}{cold:>8.1f}{warm:>8.1f}{guess}")
    counted = [name for name in estimated if name in phases["cold"][0]]
    cold_counted = statistics.median(sum(run[name] for name in counted) for run in phases["cold"])
    print(f"{'the estimated phases, together':<48}{cold_counted:>8.1f}{'':>8}{sum(estimated[n] for n in counted):>10.1f}")


if __name__ == "__main__":
    main()
