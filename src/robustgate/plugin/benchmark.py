"""Latency items as pytest-benchmark benchmarks: its fixture runs the timed rounds, so its storage,
``--benchmark-json``, ``--benchmark-compare(-fail)`` and skip/only options treat them as their own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from robustgate.checks.outcome import Outcome
from robustgate.latency.machine import describe
from robustgate.latency.measure import Query, RoundRunner, loop_runner


def under_xdist(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def disabled_by_user(config: pytest.Config) -> bool:
    return bool(config.getoption("benchmark_disable", default=False))


def previous_p50_ms(config: pytest.Config, nodeid: str) -> float | None:
    """This item's p50 in the run ``--benchmark-compare`` loaded (the latest one holding it), if any."""
    session = getattr(config, "_benchmarksession", None)
    for _, mapping in sorted((getattr(session, "compared_mapping", None) or {}).items(), reverse=True):
        stored = mapping.get(nodeid)
        if stored:
            extra = stored.get("extra_info", {})
            return float(extra["p50_ms"]) if "p50_ms" in extra else float(stored["stats"]["median"]) * 1000
    return None


def benchmark_runner(benchmark: Any) -> RoundRunner:
    """A round runner whose rounds are the ``benchmark`` fixture's (its stats, storage and comparisons)."""

    def run(query: Query, rounds: int, before: Callable[[], None] | None) -> np.ndarray:
        if benchmark.disabled:  # pytest-benchmark switches itself off under xdist: time it ourselves
            return loop_runner(query, rounds, before)
        benchmark.pedantic(query, setup=before, rounds=rounds, iterations=1, warmup_rounds=0)
        return np.asarray(benchmark.stats.stats.data, dtype=float)

    return run


def fill_extra_info(benchmark: Any, outcome: Outcome, params: Any, runtime: str) -> None:
    """Percentiles and the machine (as ``params``, the latency contract's, pinned it, and the ``runtime`` that ran
    the model) go into the benchmark's extra_info, and so into --benchmark-json."""
    if benchmark.disabled:
        return
    keep = ("p50_ms", "p90_ms", "p99_ms", "p50_ms_high", "p90_ms_high", "p99_ms_high", "max_ms", "mean_ms",
            "queries", "speedup", "speedup_low", "throughput", "load_seconds", "peak_memory_mb", "slowdown")
    benchmark.extra_info.update({k: outcome.metrics[k] for k in keep if k in outcome.metrics})
    benchmark.extra_info["machine"] = describe(params.threads, runtime)
