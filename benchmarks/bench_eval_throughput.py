"""Clean-accuracy evaluation throughput: the harness against a hand-written inference loop.

    .venv/bin/python benchmarks/bench_eval_throughput.py [--repeats 7]

Both paths evaluate the same model (the quickstart's trained ResNet-18, built
through the cache) on the same uint8 images; the harness path is
`Predictions.logits` with caching off, so it does the full evaluation each time.
Runs alternate between the two paths; the ratio is the median of per-pair ratios.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from robustgate.cache import ArtifactCache
from robustgate.spec import load_spec
from robustgate.evaluation import SpecEvaluation
from robustgate.evaluation.predictions import Predictions

ROOT = Path(__file__).resolve().parents[1]


def hand_written(model: torch.nn.Module, images: torch.Tensor, batch: int = 256) -> torch.Tensor:
    out = []
    with torch.inference_mode():
        for start in range(0, len(images), batch):
            out.append(model(images[start : start + batch].float() / 255.0))
    return torch.cat(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    spec = load_spec(ROOT / "robustness_specs" / "quickstart.yaml")
    evaluation = SpecEvaluation.build(spec, ArtifactCache(ROOT / ".robustgate-cache"), print)
    model = evaluation.models.baseline().model.eval()  # trains once if needed
    print(f"{'dataset':<14}{'images':>7}{'harness img/s':>15}{'loop img/s':>12}{'ratio':>8}")
    for dataset in ("handwritten", "printed"):
        images = evaluation.datasets[dataset].images
        hand_written(model, images)  # warm-up
        ratios, harness_rates, loop_rates = [], [], []
        for _ in range(args.repeats):
            # the cached model under test, predicting through an uncached store: only evaluation is timed
            harness = Predictions(spec, ArtifactCache(None), evaluation.datasets, evaluation.clock, evaluation.models, print)
            start = time.perf_counter()
            harness.logits("baseline", dataset)
            t_harness = time.perf_counter() - start
            start = time.perf_counter()
            hand_written(model, images)
            t_loop = time.perf_counter() - start
            ratios.append(t_loop / t_harness)
            harness_rates.append(len(images) / t_harness)
            loop_rates.append(len(images) / t_loop)
        print(
            f"{dataset:<14}{len(images):>7}{statistics.median(harness_rates):>15.0f}"
            f"{statistics.median(loop_rates):>12.0f}{statistics.median(ratios):>8.2f}"
        )
    print("ratio = harness throughput / hand-written throughput (median of interleaved pairs); target >= 0.9")


if __name__ == "__main__":
    main()
