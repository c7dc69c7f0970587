"""``latency:`` contracts: per-query latency percentiles, speed-up over the baseline, throughput.

Percentile gates read a distribution-free upper confidence bound (see
:mod:`robustgate.latency.percentiles`) under a numeric ``confidence``, so a gate needs enough
queries for its percentile: the contract raises ``min_queries`` to what the bound requires.
Speed-ups are the median of per-pair ratios of interleaved baseline and candidate query blocks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field, ValidationInfo, model_validator

from robustgate.checks.accuracy import reading
from robustgate.checks.base import ContractKind, Evaluation, contract_kinds
from robustgate.checks.outcome import Gate, Outcome
from robustgate.spec.fields import Params, gated_elsewhere
from robustgate.spec.model import BASELINE

if TYPE_CHECKING:
    import numpy as np

    from robustgate.latency.measure import LatencyResult


class LatencyParams(Params):
    batch_size: int = Field(1, ge=1)
    threads: int = Field(1, ge=1)  # torch intra-op threads while timing (restored afterwards)
    warmup: int = Field(10, ge=0)  # untimed queries first
    min_queries: int = Field(100, ge=1)
    min_seconds: float = Field(1.0, ge=0.0)  # keep querying until this much time is spent
    p50_ms: float | None = Field(None, gt=0.0)
    p90_ms: float | None = Field(None, gt=0.0)
    p99_ms: float | None = Field(None, gt=0.0)
    max_ms: float | None = Field(None, gt=0.0)
    min_speedup: float | None = Field(None, gt=0.0)  # baseline time / this model's time, interleaved
    max_slowdown: float | None = Field(None, gt=0.0)  # p50 / the p50 stored by an earlier run (--benchmark-compare)
    throughput: float | None = Field(None, gt=0.0)  # images/s at throughput_batch
    throughput_batch: int = Field(32, ge=1)

    @model_validator(mode="after")
    def _some_gate(self, info: ValidationInfo) -> "LatencyParams":
        gates = (self.p50_ms, self.p90_ms, self.p99_ms, self.max_ms, self.min_speedup, self.max_slowdown, self.throughput)
        if all(g is None for g in gates) and not gated_elsewhere(info):
            raise ValueError(
                "a latency contract needs a gate: p50_ms, p90_ms, p99_ms, max_ms, min_speedup, max_slowdown or throughput"
            )
        given = [(key, getattr(self, key)) for key in ("p50_ms", "p90_ms", "p99_ms", "max_ms")]
        ceilings = [(key, value) for key, value in given if value is not None]
        for (lower, low), (higher, high) in zip(ceilings, ceilings[1:]):
            if high < low:  # a higher percentile is never faster: the lower one's ceiling could never be what fails
                raise ValueError(
                    f"{higher}: {high:g} is below {lower}: {low:g}, but {higher} is never faster than {lower}, "
                    f"so {lower} gates nothing; did you swap them?"
                )
        return self

    def percentiles(self) -> dict[str, float]:
        """The percentiles this contract reports, by metric name."""
        return {"p50": 0.50, "p90": 0.90, "p99": 0.99}

    def gated_percentiles(self) -> list[float]:
        limits = {0.50: self.p50_ms, 0.90: self.p90_ms, 0.99: self.p99_ms}
        return [q for q, limit in limits.items() if limit is not None]


class LatencyContract(ContractKind):
    Params = LatencyParams
    gate_keys = frozenset({"p50_ms", "p90_ms", "p99_ms", "max_ms", "min_speedup", "max_slowdown", "throughput"})

    def label(self, params: LatencyParams) -> str:
        """Empty at batch 1 on one thread (``latency``); else ``latency[batch8:threads4]``."""
        shown = [f"batch{params.batch_size}" if params.batch_size != 1 else "", f"threads{params.threads}" if params.threads != 1 else ""]
        return ":".join(part for part in shown if part)

    def applies_to_baseline(self, params: LatencyParams) -> bool:
        return any(g is not None for g in (params.p50_ms, params.p90_ms, params.p99_ms, params.max_ms, params.throughput))

    def check(self, evaluation: Evaluation, variant: str, params: LatencyParams) -> Outcome:
        import numpy as np  # numpy and scipy (percentiles) only when timing: validating a spec must not import them

        from robustgate.latency.percentiles import median_lower_bound, quantile, queries_for_bound

        outcome = Outcome(contract="latency", variant=variant)
        result: LatencyResult = evaluation.latency(variant, params)
        m = outcome.metrics
        m.update(load_seconds=result.load_seconds, batch_size=params.batch_size, threads=params.threads)
        if result.peak_memory_mb is not None:
            m["peak_memory_mb"] = result.peak_memory_mb
        machine = result.machine
        outcome.notes.append(
            f"measured on {machine.get('cpu')}, {machine.get('cores')} cores, {params.threads} thread(s), torch "
            f"{machine.get('torch')}, quantized engine {machine.get('quantized_engine')}; batch {params.batch_size}, "
            f"{len(result.seconds)} queries"
        )
        level, read = reading(evaluation.confidence, "upper")
        _, read_low = reading(evaluation.confidence, "lower")
        one_sided = (1 + level) / 2  # the upper end of a two-sided interval at `level`, as other gates read it
        ms = result.seconds * 1000
        m.update(queries=len(ms), mean_ms=float(ms.mean()), max_ms=float(ms.max()), interval_level=level)
        outcome.series["latency_ms"] = distribution(ms)
        if result.reference is not None and variant != BASELINE:
            outcome.series["baseline_latency_ms"] = distribution(result.reference * 1000)
        limits = {"p50": params.p50_ms, "p90": params.p90_ms, "p99": params.p99_ms}
        for name, q in params.percentiles().items():
            value = quantile(ms, q, one_sided)
            m[f"{name}_ms"] = value.estimate
            m[f"{name}_ms_high"] = value.upper
            m[f"queries_for_{name}_bound"] = queries_for_bound(q, one_sided)
            if limits[name] is not None:
                bound = value.estimate if read == "point" else value.upper
                outcome.gates.append(Gate(f"{name}_ms", "<=", limits[name], value.estimate, bound, read))
        if params.max_ms is not None:
            outcome.gates.append(Gate("max_ms", "<=", params.max_ms, m["max_ms"], m["max_ms"], "exact"))
        if result.reference is not None and result.speedups is not None and variant != BASELINE:
            ratios = result.speedups
            speedup, low = float(np.median(ratios)), median_lower_bound(ratios, one_sided)
            m.update(speedup=speedup, speedup_low=low, speedup_pairs=len(ratios),
                     baseline_p50_ms=float(np.median(result.reference) * 1000))
            if params.min_speedup is not None:
                value = speedup if read_low == "point" else low
                outcome.gates.append(Gate("speedup", ">=", params.min_speedup, speedup, value, read_low))
        if result.throughput_seconds is not None:
            calls = result.throughput_seconds
            rate = params.throughput_batch / float(np.median(calls))
            slow = quantile(calls, 0.5, one_sided).upper
            low_rate = params.throughput_batch / slow if np.isfinite(slow) else float("nan")
            m.update(throughput=rate, throughput_low=low_rate)
            if params.throughput is not None:
                value = rate if read_low == "point" else low_rate
                outcome.gates.append(Gate("throughput", ">=", params.throughput, rate, value, read_low))
        if params.max_slowdown is not None:
            if result.previous_p50_ms is None:
                why = ("max_slowdown needs an earlier run to compare with: save one with --benchmark-autosave and pass "
                       "--benchmark-compare; the gate was not read")
                outcome.findings.append(why)
                outcome.unread.append(why)
            else:
                slowdown = m["p50_ms"] / result.previous_p50_ms
                m.update(previous_p50_ms=result.previous_p50_ms, slowdown=slowdown)
                outcome.gates.append(Gate("slowdown", "<=", params.max_slowdown, slowdown, slowdown, "point"))
        return outcome


def distribution(values: np.ndarray, points: int = 101) -> list[float]:
    """The 0th to 100th percentiles: enough to draw a distribution, a fixed size whatever the query count."""
    import numpy as np

    return [float(v) for v in np.quantile(values, np.linspace(0, 1, points))]


contract_kinds.register("latency")(LatencyContract())
