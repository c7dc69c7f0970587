"""The line a run prints before its first item when models are to be built and evaluated on a cold cache."""

from __future__ import annotations

import time
from functools import partial
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from robustgate.plugin.hooks import RobustgateSession
    from robustgate.spec.model import Contract, Spec


def announce_cold_costs(session: RobustgateSession, items: list[pytest.Item]) -> None:
    """Print, per model the selected items need and the cache lacks, its estimated cold cost when over a minute
    (:mod:`robustgate.evaluation.cold_cost`). Advisory: a spec it cannot estimate gets one line saying why, and
    its items then report their own errors."""
    from robustgate.evaluation.cold_cost import ANNOUNCED, corruption_rates, duration, estimate, measure_rates
    from robustgate.plan import missing_data, missing_runtime

    specs: dict[tuple[object, str | None], tuple[Spec, list[tuple[str, Contract]]]] = {}
    for item in items:
        spec, contract = getattr(item, "spec", None), getattr(item, "contract", None)
        if spec is not None and contract is not None:
            specs.setdefault((spec.path, spec.case), (spec, []))[1].append((item.variant, contract))  # type: ignore[attr-defined]
    started, costs, corrupting = time.perf_counter(), [], corruption_rates()
    for spec, pairs in specs.values():
        label = f"[{spec.name}{f'::{spec.case}' if spec.case else ''}]"
        if missing_data(spec):  # its items skip, saying why
            continue
        pairs = [(model, contract) for model, contract in pairs if missing_runtime(spec, model) is None]
        try:
            costs += estimate(session.evaluation(spec), label, pairs, partial(measure_rates, spec), corrupting)
        except Exception as err:  # an estimate must never stop a run; the items say what is wrong with the spec
            session.progress(f"{label} no cold-cost estimate: {type(err).__name__}: {str(err).splitlines()[0]}")
    shown = [cost for cost in costs if cost.seconds >= ANNOUNCED]
    if not shown:
        return
    total = sum(cost.seconds for cost in costs)
    session.progress(f"nothing cached for {len(costs)} model(s): about {duration(total)} to build and evaluate on "
                     f"this machine (estimated in {time.perf_counter() - started:.0f} s from rates measured now)")
    for cost in shown:
        session.progress(f"  {cost.line()}")
