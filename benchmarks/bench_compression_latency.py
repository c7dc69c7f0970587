"""Latency of compressed variants against fp32, through robustgate's own compression steps.

    .venv/bin/python benchmarks/bench_compression_latency.py [--queries 100] [--threads 2]

Models: ResNet-18 at 224x224 (random weights; latency does not depend on them) and
the quickstart model (ResNet-18 trained on the digits at 32x32, from the cache).
Variants: int8 through each static path (torch.ao FX and eager under the x86
engine, torchao PT2E compiled by inductor), 50%-pruned (L1, no fine-tuning: speed
only), and 50%-pruned then int8 (FX). Each query is timed with the variants
interleaved in one process (so machine noise hits all alike); the table gives median
latency and the median of per-query fp32/variant ratios, at batch 1 and batch 32.
The time each variant took to build (PT2E: including its inductor compile) is printed
before its model's rows; variants are built afresh for each batch size.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torchvision

from robustgate.cache import ArtifactCache
from robustgate.compressors import StepContext, compression_steps
from robustgate.compressors.prune import PruneParams
from robustgate.compressors.ptq import PTQParams
from robustgate.data.imageset import ImageSet
from robustgate.models.classifier import Classifier, Normalize
from robustgate.spec import load_spec
from robustgate.evaluation import SpecEvaluation

ROOT = Path(__file__).resolve().parents[1]


def variants(fp32: Classifier, size: int) -> dict[str, Classifier]:
    images = torch.randint(0, 256, (64, 3, size, size), dtype=torch.uint8)
    calibration = ImageSet(images, torch.arange(64) % 2, ("a", "b"))
    ctx = StepContext(lambda _: calibration, "calibration", torch.zeros(2, 3, size, size), 0, lambda _: None)
    ptq, prune = compression_steps.get("ptq"), compression_steps.get("prune")
    built: dict[str, Classifier] = {"fp32": fp32.eval()}
    seconds: dict[str, float] = {}
    recipes = {
        "int8-fx": lambda: ptq.apply(fp32, PTQParams(), ctx),
        "int8-eager": lambda: ptq.apply(fp32, PTQParams(method="eager"), ctx),
        "int8-pt2e": lambda: ptq.apply(fp32, PTQParams(backend="pt2e"), ctx),  # compiles inside the step
        "pruned50": lambda: prune.apply(fp32, PruneParams(method="l1", ratio=0.5), ctx),
        "pruned50+int8": lambda: ptq.apply(built["pruned50"], PTQParams(), ctx),
    }
    for name, recipe in recipes.items():
        start = time.perf_counter()
        built[name] = recipe()
        seconds[name] = time.perf_counter() - start
    print("  build time: " + ", ".join(f"{name} {s:.1f} s" for name, s in seconds.items()))
    return built


def interleaved(models: dict[str, Classifier], x: torch.Tensor, queries: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in models}
    with torch.inference_mode():
        for _ in range(5):
            for model in models.values():
                model(x)
        for _ in range(queries):
            for name, model in models.items():
                start = time.perf_counter()
                model(x)
                times[name].append((time.perf_counter() - start) * 1e3)
    return times


def resnet18_224() -> tuple[Classifier, int]:
    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=10)
    return Classifier(Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)), net).eval(), 224


def quickstart() -> tuple[Classifier, int]:
    spec = load_spec(ROOT / "robustness_specs" / "quickstart.yaml")
    return SpecEvaluation.build(spec, ArtifactCache(ROOT / ".robustgate-cache"), print).models.baseline().model, spec.model.input.size[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, {args.queries} interleaved queries per variant")
    for label, build in (("resnet18 224", resnet18_224), ("quickstart 32", quickstart)):
        fp32, size = build()
        print(label)
        for batch in (1, 32):
            # Built afresh per batch size: the x86 engine's oneDNN kernels specialise to the first
            # batch size they see, and a deployed model serves one.
            models = variants(fp32, size)
            if batch == 1:
                print(f"{'model':<16}{'batch':>6}  " + "".join(f"{name:>22}" for name in models))
            queries = args.queries if batch == 1 else max(10, args.queries // 5)
            times = interleaved(models, torch.rand(batch, 3, size, size), queries)
            cells = []
            for samples in times.values():
                speedup = statistics.median(a / b for a, b in zip(times["fp32"], samples))
                cells.append(f"{statistics.median(samples):9.2f} ms ({speedup:4.2f}x)")
            print(f"{label:<16}{batch:>6}  " + "".join(f"{cell:>22}" for cell in cells))


if __name__ == "__main__":
    main()
