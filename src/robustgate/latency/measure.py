"""Timing queries: warm-up, enough rounds, pinned threads, and baseline/candidate pairs interleaved."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
from torch import nn

Query = Callable[[], object]


class RoundRunner(Protocol):
    """Runs ``query`` for ``rounds`` timed rounds, calling ``before`` (untimed) ahead of each one;
    returns the seconds of every round. pytest-benchmark's ``pedantic`` is one (see the plugin)."""

    def __call__(self, query: Query, rounds: int, before: Callable[[], None] | None) -> np.ndarray: ...


def loop_runner(query: Query, rounds: int, before: Callable[[], None] | None) -> np.ndarray:
    """The runner without pytest-benchmark: a monotonic clock around each call."""
    seconds = np.empty(rounds)
    for i in range(rounds):
        if before is not None:
            before()
        start = time.perf_counter_ns()
        query()
        seconds[i] = (time.perf_counter_ns() - start) / 1e9
    return seconds


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Pin torch's intra-op threads for the measurement and restore the caller's setting after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def query_of(model: nn.Module, batch: torch.Tensor) -> Query:
    model.eval()

    def query() -> object:
        with torch.inference_mode():
            return model(batch)

    return query


@dataclass(frozen=True)
class Plan:
    warmup: int
    min_queries: int
    min_seconds: float
    max_queries: int = 100_000


def rounds_for(query: Query, plan: Plan) -> tuple[int, float]:
    """Warm up, then size the run: at least ``min_queries`` and enough to fill ``min_seconds``.
    Returns the rounds and the median warm-up query time (seconds)."""
    warm = loop_runner(query, max(plan.warmup, 1), None)
    typical = float(np.median(warm))
    wanted = math.ceil(plan.min_seconds / typical) if typical > 0 else plan.min_queries
    return min(max(plan.min_queries, wanted), plan.max_queries), typical


BLOCK = 10  # queries per model between switches when two models are interleaved
REWARM = 2  # untimed queries after a switch, so neither model is timed on the other's caches


def queries_needed(min_queries: int, gated: list[float], speedup: bool, one_sided: float | None) -> int:
    """Queries a latency contract times: ``min_queries``, raised to what each gated bound needs at the
    ``one_sided`` confidence (None: gates read point estimates). A percentile's upper bound needs its
    order-statistic count; a speed-up's lower bound (a sign-test bound on the median of block-pair
    ratios) needs ``queries_for_bound(0.5, c)`` pairs of ``BLOCK`` queries, without which it is undefined."""
    from robustgate.latency.percentiles import queries_for_bound

    if one_sided is None:
        return min_queries
    needed = [min_queries, *(queries_for_bound(q, one_sided) for q in gated)]
    if speedup:
        needed.append(BLOCK * queries_for_bound(0.5, one_sided))
    return max(needed)


@dataclass(frozen=True)
class Timings:
    seconds: np.ndarray  # the candidate's per-query times
    reference: np.ndarray | None = None  # the baseline's per-query times, interleaved with the candidate's
    ratios: np.ndarray | None = None  # reference / candidate, one per pair of interleaved blocks


def time_queries(query: Query, plan: Plan, runner: RoundRunner, reference: Query | None = None) -> Timings:
    """Per-query times of ``query``. With ``reference``, the two alternate in blocks of ``BLOCK``
    queries, each block preceded by ``REWARM`` untimed queries: slow drift of a shared machine hits
    both alike, and the ratio of each pair of block medians is one speed-up sample. (Alternating
    single queries would time each model on caches the other just evicted: measured here, that
    made a ResNet-18 int8/fp32 speed-up read 3.6x where either model timed alone gave 5.3x.)"""
    if reference is not None:
        rounds_for(reference, plan)
    rounds, _ = rounds_for(query, plan)
    if reference is None:
        return Timings(runner(query, rounds, None))
    rounds = BLOCK * math.ceil(rounds / BLOCK)
    blocks: list[np.ndarray] = []
    count = 0

    def before() -> None:
        nonlocal count
        if count % BLOCK == 0:
            for _ in range(REWARM):
                reference()
            blocks.append(loop_runner(reference, BLOCK, None))
            for _ in range(REWARM):
                query()
        count += 1

    seconds = runner(query, rounds, before)
    ref = np.concatenate(blocks[-(len(seconds) // BLOCK):])
    ratios = np.median(ref.reshape(-1, BLOCK), axis=1) / np.median(seconds.reshape(-1, BLOCK), axis=1)
    return Timings(seconds, ref, ratios)


def peak_memory_mb(query: Query) -> float | None:
    """Peak of the memory one query allocates on top of the model (activations, kernel workspaces),
    from torch.profiler's allocation events in time order; None where the profiler records none."""
    try:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as prof:
            query()
        events = prof.profiler.kineto_results.events()
        allocations = sorted((e.start_ns(), e.nbytes()) for e in events if e.name() == "[memory]")
    except (AttributeError, RuntimeError):  # a torch without kineto's event API
        return None
    live = peak = 0
    for _, nbytes in allocations:
        live += nbytes
        peak = max(peak, live)
    return peak / 1e6 if allocations else None


@dataclass
class LatencyResult:
    """What one latency contract measured on one model."""

    seconds: np.ndarray  # per query
    reference: np.ndarray | None = None  # the baseline's per-query times, interleaved in blocks
    speedups: np.ndarray | None = None  # baseline / candidate block medians, one per block pair
    throughput_seconds: np.ndarray | None = None  # per call at the throughput batch
    load_seconds: float = 0.0  # restoring the model from the cache
    peak_memory_mb: float | None = None
    previous_p50_ms: float | None = None  # from a stored earlier run (pytest-benchmark's --benchmark-compare)
    machine: dict[str, str | int] = field(default_factory=dict)
