"""Wall time of each compressor on the quickstart model: cold (built) and cached (restored).

    .venv/bin/python benchmarks/bench_compressor_time.py [--runs 3]

The quickstart spec plus one variant per compressor. The baseline is trained once
into a temporary cache first and is not timed; "cold" is a variant built into an
empty cache, "cached" is the same variant restored by a new evaluation from it.
A PT2E variant compiles with inductor in both phases (a compiled graph is not a
cacheable tensor); inductor's own on-disk cache, warm after the first run, shortens
both.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from robustgate.cache import ArtifactCache
from robustgate.spec import load_spec
from robustgate.evaluation import SpecEvaluation

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = """
variants:
  int8: {ptq: {backend: x86, calibrate: {on: digits-train, samples: 256}}}
  int8-eager: {ptq: {method: eager}}
  int8-dynamic: {ptq: {method: dynamic}}
  int8-pt2e: {ptq: {backend: pt2e}}
  pruned: {prune: {method: l1, ratio: 0.5, finetune: {on: digits-train, epochs: 1}}}
  student: {distill: {student: {arch: torchvision:resnet18, kwargs: {num_classes: 10}, width: 0.5}, epochs: 2}}
contracts:
  - accuracy: {on: handwritten, max_drop: 0.05}
"""


def spec_with_variants(folder: Path):
    text = (ROOT / "robustness_specs" / "quickstart.yaml").read_text()
    head = text[: text.index("variants:")]
    path = folder / "bench.yaml"
    path.write_text(head + VARIANTS)
    return load_spec(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        spec = spec_with_variants(Path(folder))
        base_cache = Path(folder) / "baseline"
        SpecEvaluation.build(spec, ArtifactCache(base_cache)).models.baseline()  # trained once, not timed
        for run in range(args.runs):
            for name in spec.variants:
                cache_dir = Path(folder) / f"run{run}-{name}"
                cache_dir.mkdir()
                for entry in base_cache.iterdir():  # start each cold build from the trained baseline only
                    (cache_dir / entry.name).symlink_to(entry)
                times = results.setdefault(name, {"cold": [], "cached": []})
                for phase in ("cold", "cached"):
                    models = SpecEvaluation.build(spec, ArtifactCache(cache_dir)).models
                    models.baseline()
                    start = time.perf_counter()
                    models.model(name)
                    times[phase].append(time.perf_counter() - start)
    print(f"compressor wall time on the quickstart model, median of {args.runs} runs (seconds)")
    print(f"{'variant':<14}{'cold':>9}{'cached':>9}   steps")
    for name, times in results.items():
        steps = ", ".join(step.kind for step in spec.variants[name].steps)
        print(f"{name:<14}{statistics.median(times['cold']):>9.2f}{statistics.median(times['cached']):>9.2f}   {steps}")


if __name__ == "__main__":
    main()
