"""``latency:`` contracts: per-query latency percentiles, speed-up over the baseline, throughput.

Percentile gates read a distribution-free upper confidence bound (see
:mod:`robustgate.latency.percentiles`) under a numeric ``confidence``, so a gate needs enough
queries for its percentile: the contract raises ``min_queries`` to what the bound requires.
Speed-ups are the median of per-pair ratios of interleaved baseline and candidate query blocks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field, model_validator

from robustgate.checks.base import ContractKind, Evaluation, contract_kinds
from robustgate.checks.declaration import GateDecl, MetricDecl, reading
from robustgate.checks.outcome import Outcome
from robustgate.spec.fields import Params
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
    def _ordered_ceilings(self) -> "LatencyParams":
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


PERCENTILE_GATES = {name: GateDecl(f"{name}_ms", f"{name}_ms", "<=", "upper") for name in ("p50", "p90", "p99")}
MAX_MS = GateDecl("max_ms", "max_ms", "<=", "exact")  # the slowest query timed: no interval to read
MIN_SPEEDUP = GateDecl("min_speedup", "speedup", ">=", "lower", relative=True)
# against the p50 an earlier run stored: a ratio of two medians with no interval, read at its estimate
MAX_SLOWDOWN = GateDecl("max_slowdown", "slowdown", "<=", "point", relative=True)  # no interval: one stored p50
THROUGHPUT = GateDecl("throughput", "throughput", ">=", "lower")


class LatencyContract(ContractKind):
    Params = LatencyParams
    gates = (*PERCENTILE_GATES.values(), MAX_MS, MIN_SPEEDUP, MAX_SLOWDOWN, THROUGHPUT)
    metrics = (
        MetricDecl(r"p\d+_ms", False, pattern=True), MetricDecl("mean_ms", False), MetricDecl("max_ms", False),
        MetricDecl("speedup", True, low="speedup_low"), MetricDecl("throughput", True, low="throughput_low"),
        MetricDecl("slowdown", False), MetricDecl("peak_memory_mb", False),
        MetricDecl("queries", None), MetricDecl("interval_level", None),
    )
    needs = frozenset({"latency"})
    title = "Latency"
    summary = ("per-query latency percentiles (at their distribution-free upper bounds), speed-up over the baseline, "
               "throughput, and slowdown against an earlier run.")

    def label(self, params: LatencyParams) -> str:
        """Empty at batch 1 on one thread (``latency``); else ``latency[batch8:threads4]``."""
        shown = [f"batch{params.batch_size}" if params.batch_size != 1 else "", f"threads{params.threads}" if params.threads != 1 else ""]
        return ":".join(part for part in shown if part)

    def check(self, evaluation: Evaluation, variant: str, params: LatencyParams) -> Outcome:
        import numpy as np  # numpy and scipy (percentiles) only when timing: validating a spec must not import them

        from robustgate.latency.percentiles import median_lower_bound, quantile, queries_for_bound

        outcome = Outcome(contract="latency", variant=variant)
        result: LatencyResult = evaluation.latency.measure(variant, params)
        m = outcome.metrics
        m.update(load_seconds=result.load_seconds, batch_size=params.batch_size, threads=params.threads)
        if result.peak_memory_mb is not None:
            m["peak_memory_mb"] = result.peak_memory_mb
        machine = result.machine
        outcome.notes.append(
            f"measured in {machine.get('runtime')} on {machine.get('cpu')}, {machine.get('cores')} cores, "
            f"{params.threads} thread(s); batch {params.batch_size}, {len(result.seconds)} queries"
            + (f"; timed on the CPU, where edge models run, though the spec evaluates on {machine['spec_device']}"
               if "spec_device" in machine else "")
        )
        read = reading(evaluation.confidence)
        level = read.level
        one_sided = (1 + level) / 2  # the upper end of a two-sided interval at `level`, as other gates read it
        ms = result.seconds * 1000
        m.update(queries=len(ms), mean_ms=float(ms.mean()), max_ms=float(ms.max()), interval_level=level)
        outcome.series["latency_ms"] = distribution(ms)
        if result.reference is not None and variant != BASELINE:
            outcome.series["baseline_latency_ms"] = distribution(result.reference * 1000)
        for name, q in params.percentiles().items():
            value = quantile(ms, q, one_sided)
            m[f"{name}_ms"] = value.estimate
            m[f"{name}_ms_high"] = value.upper
            m[f"queries_for_{name}_bound"] = queries_for_bound(q, one_sided)
            gate, limit = PERCENTILE_GATES[name], getattr(params, f"{name}_ms")
            if limit is not None:
                outcome.gates.append(gate.judge(limit, value.estimate, value.estimate, value.upper, read))
        if params.max_ms is not None:
            outcome.gates.append(MAX_MS.judge(params.max_ms, m["max_ms"], m["max_ms"], m["max_ms"], read))
        if result.reference is not None and result.speedups is not None and variant != BASELINE:
            ratios = result.speedups
            speedup, low = float(np.median(ratios)), median_lower_bound(ratios, one_sided)
            m.update(speedup=speedup, speedup_low=low, speedup_pairs=len(ratios),
                     baseline_p50_ms=float(np.median(result.reference) * 1000))
            if params.min_speedup is not None:
                outcome.gates.append(MIN_SPEEDUP.judge(params.min_speedup, speedup, low, speedup, read))
        if result.throughput_seconds is not None:
            calls = result.throughput_seconds
            rate = params.throughput_batch / float(np.median(calls))
            slow = quantile(calls, 0.5, one_sided).upper
            low_rate = params.throughput_batch / slow if np.isfinite(slow) else float("nan")
            m.update(throughput=rate, throughput_low=low_rate)
            if params.throughput is not None:
                outcome.gates.append(THROUGHPUT.judge(params.throughput, rate, low_rate, rate, read))
        if params.max_slowdown is not None:
            if result.previous_p50_ms is None:
                why = ("max_slowdown needs an earlier run to compare with: save one with --benchmark-autosave and pass "
                       "--benchmark-compare; the gate was not read")
                outcome.findings.append(why)
                outcome.unread.append(why)
            else:
                slowdown = m["p50_ms"] / result.previous_p50_ms
                m.update(previous_p50_ms=result.previous_p50_ms, slowdown=slowdown)
                outcome.gates.append(MAX_SLOWDOWN.judge(params.max_slowdown, slowdown, slowdown, slowdown, read))
        return outcome


def distribution(values: np.ndarray, points: int = 101) -> list[float]:
    """The 0th to 100th percentiles: enough to draw a distribution, a fixed size whatever the query count."""
    import numpy as np

    return [float(v) for v in np.quantile(values, np.linspace(0, 1, points))]


contract_kinds.register("latency")(LatencyContract())
