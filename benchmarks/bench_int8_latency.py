"""int8 against fp32 latency at batch 1: the quickstart model (32x32) and ResNet-18 at 224x224.

    .venv/bin/python benchmarks/bench_int8_latency.py [--queries 300]

Single queries alternate between fp32 and int8 in one process (so machine noise
hits both alike); the table gives median and p90 latency and the median of the
per-pair fp32/int8 ratios. The int8 models come from robustgate's own ptq step.
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
from robustgate.compressors.int8.engine import quantized_engine
from robustgate.compressors.ptq import PTQParams
from robustgate.data.imageset import ImageSet
from robustgate.models.classifier import Classifier, Normalize
from robustgate.spec import load_spec
from robustgate.evaluation import SpecEvaluation

ROOT = Path(__file__).resolve().parents[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def interleaved(fp32: torch.nn.Module, int8: torch.nn.Module, x: torch.Tensor, queries: int) -> tuple[list, list]:
    times = {"fp32": [], "int8": []}
    with torch.inference_mode(), quantized_engine("x86"):
        for _ in range(20):
            fp32(x), int8(x)
        for _ in range(queries):
            for name, model in (("fp32", fp32), ("int8", int8)):
                start = time.perf_counter()
                model(x)
                times[name].append((time.perf_counter() - start) * 1e3)
    return times["fp32"], times["int8"]


def quickstart_models() -> tuple[Classifier, Classifier, tuple[int, int]]:
    spec = load_spec(ROOT / "robustness_specs" / "quickstart.yaml")
    models = SpecEvaluation.build(spec, ArtifactCache(ROOT / ".robustgate-cache"), print).models
    return models.model("baseline").model, models.model("int8").model, spec.model.input.size


def resnet18_224() -> tuple[Classifier, Classifier, tuple[int, int]]:
    torch.manual_seed(0)
    fp32 = Classifier(Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)), torchvision.models.resnet18()).eval()
    calibration = ImageSet(torch.randint(0, 256, (64, 3, 224, 224), dtype=torch.uint8), torch.zeros(64, dtype=torch.int64), ("x",))
    ctx = StepContext(lambda _: calibration, "x", torch.zeros(2, 3, 224, 224), 0, lambda _: None)
    int8 = compression_steps.get("ptq").apply(fp32, PTQParams(), ctx)
    return fp32, int8, (224, 224)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch 1, {args.queries} interleaved queries each")
    print(f"{'model':<24}{'fp32 p50':>9}{'fp32 p90':>9}{'int8 p50':>9}{'int8 p90':>9}{'speed-up':>9}  (ms)")
    for name, build in (("quickstart resnet18 32", quickstart_models), ("resnet18 224", resnet18_224)):
        fp32, int8, size = build()
        x = torch.rand(1, 3, *size)
        t32, t8 = interleaved(fp32.eval(), int8.eval(), x, args.queries)
        speedup = statistics.median(a / b for a, b in zip(t32, t8))
        print(
            f"{name:<24}{statistics.median(t32):>9.2f}{percentile(t32, 0.9):>9.2f}"
            f"{statistics.median(t8):>9.2f}{percentile(t8, 0.9):>9.2f}{speedup:>8.2f}x"
        )


if __name__ == "__main__":
    main()
