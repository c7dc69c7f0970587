"""``budget:``: the seconds and images one contract item may spend evaluating, so that a spec asking for more
than CI can give fails that item cleanly ("budget exceeded") instead of hanging the job.

Only the item's own evaluation counts: predictions, corruptions and attacks. Building models (training,
compression) is shared by many items and cached, so it is never cut off and never charged; a hung build is a
job for pytest-timeout. Images are counted when the item asks for them, whether they come from the cache or
not, so the same spec exceeds its ``samples`` budget on a warm run exactly as on a cold one. Seconds are
checked between batches, so a budget ends the item within one batch of running out.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

from robustgate.errors import RobustgateError
from robustgate.phases import PhaseClock
from robustgate.spec.model import BudgetParams

BUILD_PHASES = frozenset({"training", "compression"})


class BudgetExceeded(RobustgateError):
    """An item that ran out of its ``budget:``: pytest fails it and the reports call it an error (no gate read), never a pass."""


class ItemMeter:
    """What one item has spent of its budget, read from the spec evaluation's phase clock."""

    def __init__(self, budget: BudgetParams, clock: PhaseClock, hint: str) -> None:
        self.budget = budget
        self.clock = clock
        self.hint = hint
        self.images = 0
        self._before = clock.snapshot()

    def count(self, images: int, doing: str) -> None:
        self.images += images
        if self.budget.samples is not None and self.images > self.budget.samples:
            raise BudgetExceeded(
                f"budget exceeded: this item asks for {self.images} images ({doing}), its budget is "
                f"samples: {self.budget.samples}", hint=self.hint)

    def check(self, doing: str) -> None:
        if self.budget.seconds is None or self.clock.inside(BUILD_PHASES):
            return
        spent = self.clock.seconds_since(self._before, excluding=BUILD_PHASES)
        if spent > self.budget.seconds:
            raise BudgetExceeded(
                f"budget exceeded: this item evaluated for {spent:.3g} s ({doing}), its budget is "
                f"seconds: {self.budget.seconds:g}", hint=self.hint)


_meter: ContextVar[ItemMeter | None] = ContextVar("robustgate_budget_meter", default=None)


@contextlib.contextmanager
def metered(meter: ItemMeter | None) -> Iterator[None]:
    """Charge the evaluation run inside this block to ``meter`` (None: no budget)."""
    token = _meter.set(meter)
    try:
        yield
    finally:
        _meter.reset(token)


def count_images(images: int, doing: str) -> None:
    """Charge ``images`` images about to be evaluated (from the cache or not) to the running item's budget."""
    meter = _meter.get()
    if meter is not None:
        meter.count(images, doing)


def check_time(doing: str) -> None:
    """Between batches: end the running item if it has used up its seconds."""
    meter = _meter.get()
    if meter is not None:
        meter.check(doing)
