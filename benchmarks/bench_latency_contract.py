"""How far the latency contract can be trusted, on the quickstart's ResNet-18 (32x32) and its int8
variant (from the cache; the quickstart builds them), 1 thread, batch 1:

1. stability: the same model measured twice in one run (p50 and p90 should agree within 5%),
   on an idle machine and with a second process spinning on one core;
2. the int8/fp32 speed-up as the contract measures it (median of interleaved block-pair ratios) against
   the ratio of torch.utils.benchmark.Timer medians (should agree within 10%);
3. harness overhead per query: the contract's p50 against a bare ``model(x)`` loop's.

    .venv/bin/python benchmarks/bench_latency_contract.py
"""

from __future__ import annotations

import multiprocessing
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.utils.benchmark as tb

from robustgate.cache import ArtifactCache
from robustgate.checks.latency import LatencyParams
from robustgate.latency.measure import query_of, torch_threads
from robustgate.spec import load_spec
from robustgate.evaluation import SpecEvaluation

ROOT = Path(__file__).resolve().parents[1]
PARAMS = LatencyParams(p90_ms=1000, min_speedup=1.0, min_queries=300, min_seconds=2.0, warmup=20)


def spin(stop: float) -> None:
    while time.time() < stop:
        pass


def percentiles(evaluation: SpecEvaluation, variant: str) -> tuple[float, float]:
    ms = evaluation.latency.measure(variant, PARAMS.model_copy(update={"min_speedup": None})).seconds * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 90))


def agreement(a: tuple[float, float], b: tuple[float, float]) -> str:
    return " ".join(f"{name} {x:.3f}/{y:.3f} ms ({abs(x - y) / min(x, y):.1%})" for name, x, y in zip(("p50", "p90"), a, b))


def main() -> None:
    spec = load_spec(ROOT / "robustness_specs" / "quickstart.yaml")
    evaluation = SpecEvaluation.build(spec, ArtifactCache(ROOT / ".robustgate-cache"))
    print(f"quickstart ResNet-18 32x32, batch 1, 1 thread; {PARAMS.min_queries}+ queries, >= {PARAMS.min_seconds} s each")

    print("\n1. stability: the same model measured twice in one run")
    for variant in ("baseline", "int8"):
        print(f"  idle    {variant:<8} {agreement(percentiles(evaluation, variant), percentiles(evaluation, variant))}")
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        busy = pool.apply_async(spin, (time.time() + 60,))
        for variant in ("baseline", "int8"):
            print(f"  loaded  {variant:<8} {agreement(percentiles(evaluation, variant), percentiles(evaluation, variant))}")
        pool.terminate()
        del busy

    print("\n2. int8 speed-up: contract (interleaved pairs) vs torch.utils.benchmark.Timer")
    result = evaluation.latency.measure("int8", PARAMS)
    contract = float(np.median(result.speedups))
    batch = torch.rand(1, 3, 32, 32)
    with torch_threads(1):
        medians = {}
        for variant in ("baseline", "int8"):
            model = evaluation.models.restored(variant)[0]
            timer = tb.Timer("query()", globals={"query": query_of(model, batch)}, num_threads=1)
            medians[variant] = timer.blocked_autorange(min_run_time=3).median
    timer_ratio = medians["baseline"] / medians["int8"]
    print(f"  contract {contract:.2f}x   Timer {timer_ratio:.2f}x   difference {abs(contract - timer_ratio) / timer_ratio:.1%}")

    print("\n3. harness overhead per query (contract p50 - bare loop p50)")
    for variant in ("baseline", "int8"):
        model = evaluation.models.restored(variant)[0]
        query = query_of(model, batch)
        with torch_threads(1):
            for _ in range(20):
                query()
            bare = []
            for _ in range(500):
                start = time.perf_counter_ns()
                with torch.inference_mode():
                    model(batch)
                bare.append((time.perf_counter_ns() - start) / 1e6)
        p50, _ = percentiles(evaluation, variant)
        gap = p50 - statistics.median(bare)
        print(f"  {variant:<8} contract p50 {p50:.4f} ms, bare loop p50 {statistics.median(bare):.4f} ms, gap {gap * 1000:+.1f} us")


if __name__ == "__main__":
    main()
