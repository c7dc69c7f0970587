"""The quickstart serially and under pytest-xdist: wall time, and whether the results are the serial run's.

    .venv/bin/python -u benchmarks/bench_parallel.py [--runs 3] [--workers 2]

Each run is a fresh pytest process on an empty cache (cold: the baseline is trained, int8 built, everything
evaluated), in rounds: serial, then `-n N` (xdist's default `--dist load`), then `-n N --dist loadscope`
(a model's items kept on one worker). Every parallel run's outcomes and metrics are compared with the first
serial run's, bit for bit; latency items are left out (they are skipped under xdist, and timings differ run
to run by nature). Medians over the rounds; compare the ratios, the machine is shared.
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

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "robustness_specs" / "quickstart.yaml"


def run(work: Path, name: str, extra: list[str]) -> tuple[float, dict[str, tuple[str, dict]]]:
    """(wall seconds, non-latency results by node id) of one cold quickstart run."""
    report = work / f"{name}-report"
    command = [sys.executable, "-m", "pytest", str(SPEC), "-q", "-p", "no:cacheprovider",
               f"--robustgate-cache-dir={work / f'{name}-cache'}", f"--robustgate-report={report}", *extra]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1):
        sys.exit(f"{name} run broke (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    doc = json.loads((report / "results.json").read_text())
    results = {item["nodeid"]: (item["outcome"], item["metrics"]) for item in doc["items"] if item["contract"] != "latency"}
    return seconds, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    modes = {
        "serial": [],
        f"-n {args.workers}": ["-n", str(args.workers)],
        f"-n {args.workers} --dist loadscope": ["-n", str(args.workers), "--dist", "loadscope"],
    }
    seconds: dict[str, list[float]] = {mode: [] for mode in modes}
    equal: dict[str, list[bool]] = {mode: [] for mode in modes}
    reference: dict[str, tuple[str, dict]] | None = None
    with tempfile.TemporaryDirectory(prefix="robustgate-parallel-") as folder:
        for round_ in range(args.runs):
            for index, (mode, extra) in enumerate(modes.items()):
                wall, results = run(Path(folder), f"r{round_}-m{index}", extra)
                reference = reference or results
                seconds[mode].append(wall)
                equal[mode].append(results == reference)
                print(f"round {round_ + 1}: {mode:<24} {wall:7.1f} s  {len(results)} items, equal to serial: {results == reference}")
    assert reference is not None
    serial = statistics.median(seconds["serial"])
    print(f"\nquickstart, cold, {args.runs} runs each; {len(reference)} items compared (latency left out)")
    print(f"{'mode':<26}{'median s':>9}{'min':>8}{'max':>8}{'vs serial':>11}   results equal to serial")
    for mode, times in seconds.items():
        median = statistics.median(times)
        print(f"{mode:<26}{median:>9.1f}{min(times):>8.1f}{max(times):>8.1f}{median / serial:>10.2f}x"
              f"   {sum(equal[mode])}/{len(times)}")


if __name__ == "__main__":
    main()
