"""The cold-cost estimate of a whole spec, per phase, for the benchmarks that set it beside a measured cold run.

Not a benchmark itself: bench_quickstart.py and bench_office31_cpu_profile.py import it (it sits beside them).
It estimates every item the spec collects, on an empty cache, as the plugin does before a cold run's first item
(robustgate.plugin.cold_costs), and sums the models' phases.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

PHASE_NAMES = {"attacks": "attack"}  # the estimate's phase names against results.json's timings


def estimated_phases(spec_path: Path, profile: str | None = None) -> tuple[dict[str, float], float]:
    """Seconds per phase (results.json's names) the spec's cold run is estimated to take, and the seconds the
    estimate itself took (its rates timed, its datasets read)."""
    from robustgate.cache import ArtifactCache
    from robustgate.evaluation import SpecEvaluation
    from robustgate.evaluation.cold_cost import corruption_rates, estimate, measure_rates
    from robustgate.plan import planned_pairs
    from robustgate.spec import load_cases

    started, phases = time.perf_counter(), {}
    corrupting = corruption_rates()
    for spec in load_cases(spec_path, profile):
        evaluation = SpecEvaluation.build(spec, ArtifactCache(None))
        for cost in estimate(evaluation, spec.name, planned_pairs(spec), partial(measure_rates, spec), corrupting):
            for phase, seconds in cost.phases.items():
                name = PHASE_NAMES.get(phase, phase)
                phases[name] = phases.get(name, 0.0) + seconds
    return phases, time.perf_counter() - started
