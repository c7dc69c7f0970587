"""Latency contracts' measurement: a fresh copy of a model timed on the CPU, now (never cached)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch

from robustgate.evaluation.models import ModelStore
from robustgate.latency.machine import describe
from robustgate.latency.measure import (
    LatencyResult, Plan, RoundRunner, loop_runner, peak_memory_mb, queries_needed, query_of, time_queries, torch_threads,
)
from robustgate.phases import PhaseClock
from robustgate.runtimes import runtime_of
from robustgate.spec.model import BASELINE, Spec


@dataclass(frozen=True)
class LatencyEvaluation:
    """Times one spec's models; ``runner`` runs the timed rounds (pytest-benchmark's, for a benchmark item),
    and ``previous_p50_ms`` is the p50 an earlier run measured for the contract (``max_slowdown``)."""

    spec: Spec
    models: ModelStore
    clock: PhaseClock
    progress: Callable[[str], None]
    runner: RoundRunner = loop_runner
    previous_p50_ms: float | None = None

    def timed_by(self, runner: RoundRunner, previous_p50_ms: float | None) -> LatencyEvaluation:
        """This evaluation with another round runner and earlier p50: what one benchmark item times with."""
        return replace(self, runner=runner, previous_p50_ms=previous_p50_ms)

    def smoke(self, variant: str, params: Any) -> None:
        """One untimed query, for runs that switch timing off (--benchmark-disable)."""
        model, _ = self.models.restored(variant)
        query_of(model, self._batch(params.batch_size))()

    def runtime(self, variant: str) -> str:
        """What runs ``variant`` when it is timed (an edge runtime, or eager PyTorch)."""
        return runtime_of(self.models.model(variant).model)

    def measure(self, variant: str, params: Any) -> LatencyResult:
        """Time ``variant`` under a latency contract on the CPU (never cached: timings are of this run)."""
        model, load_seconds = self.models.restored(variant)
        generator = torch.Generator().manual_seed(self.spec.seed)
        batch = self._batch(params.batch_size, generator)
        speedup = params.min_speedup is not None and variant != BASELINE
        confidence = self.spec.confidence
        one_sided = None if confidence == "point" else (1 + float(confidence)) / 2
        needed = queries_needed(params.min_queries, params.gated_percentiles(), speedup, one_sided)
        plan = Plan(warmup=params.warmup, min_queries=needed, min_seconds=params.min_seconds)
        self.progress(f"timing {variant}: batch {params.batch_size}, {params.threads} thread(s), at least {needed} queries")
        reference = query_of(self.models.restored(BASELINE)[0], batch) if speedup else None  # restored before threads are pinned
        with torch_threads(params.threads), self.clock.phase("latency"):
            timings = time_queries(query_of(model, batch), plan, self.runner, reference)
            throughput = None
            if params.throughput is not None:
                big = self._batch(params.throughput_batch, generator)
                throughput = time_queries(query_of(model, big), Plan(params.warmup and 3, 20, 0.0), loop_runner).seconds
            peak = peak_memory_mb(query_of(model, batch))
        return LatencyResult(
            seconds=timings.seconds, reference=timings.reference, speedups=timings.ratios, throughput_seconds=throughput,
            load_seconds=load_seconds, peak_memory_mb=peak, previous_p50_ms=self.previous_p50_ms,
            machine={**describe(params.threads, runtime_of(model)),  # on the CPU, whatever the spec's device
                     **({"spec_device": self.spec.device} if self.spec.device != "cpu" else {})},
        )

    def _batch(self, size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Random images at the model's input geometry (seeded through ``generator`` when timing)."""
        model_input = self.spec.model.input
        return torch.rand(size, model_input.channels, *model_input.size, generator=generator)
