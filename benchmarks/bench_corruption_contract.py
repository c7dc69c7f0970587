"""Wall time of a full ImageNet-C contract (15 corruptions x 5 severities) on the quickstart model,
cold (nothing about the corruptions cached) and cached, through pytest as a user runs it.

The model and its int8 variant are built first (untimed), so "cold" times corrupting the 359
handwritten test digits 75 times and predicting them with both models, plus the bootstrap.

    .venv/bin/python benchmarks/bench_corruption_contract.py [--cached-runs 3]
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
CONTRACT = "  - corruptions: {on: handwritten, suite: common, max_relative_mce: 1.5}\n"


def spec_text() -> str:
    text = (ROOT / "robustness_specs" / "quickstart.yaml").read_text()
    head = text[: text.index("contracts:")]
    return head + "contracts:\n  - accuracy: {on: handwritten, min: 0.5}\n" + CONTRACT


def run(spec: Path, cache: Path, select: str) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", str(spec), "-q", "-p", "no:cacheprovider", f"--robustgate-cache-dir={cache}", "-k", select],
        cwd=spec.parent, capture_output=True, text=True,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"pytest failed:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cached-runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        spec = folder / "corruptions.yaml"
        spec.write_text(spec_text())
        cache = folder / "cache"
        build = run(spec, cache, "accuracy")
        cold = run(spec, cache, "corruptions")
        cached = [run(spec, cache, "corruptions") for _ in range(args.cached_runs)]
    print("quickstart ResNet-18 (32x32) + int8, 359 images, 15 corruptions x 5 severities (pytest wall time, s)")
    print(f"{'build models (untimed setup)':<34}{build:>8.1f}")
    print(f"{'corruptions contract, cold':<34}{cold:>8.1f}")
    print(f"{'corruptions contract, cached':<34}{statistics.median(cached):>8.1f}   (median of {len(cached)})")


if __name__ == "__main__":
    main()
