"""The phase clock charges nested phases to the innermost one, so phases never add up to more than ran."""

from __future__ import annotations

import time

from robustgate.phases import PhaseClock


def test_nested_phases_are_charged_to_the_innermost() -> None:
    clock = PhaseClock()
    start = time.perf_counter()
    with clock.phase("compression"):
        time.sleep(0.02)
        with clock.phase("prediction"):
            time.sleep(0.03)
        time.sleep(0.01)
    elapsed = time.perf_counter() - start
    assert clock.seconds["prediction"] >= 0.03 and clock.seconds["compression"] >= 0.03
    assert sum(clock.seconds.values()) <= elapsed  # charged once: the inner sleep is not the outer phase's too


def test_since_reports_only_new_time() -> None:
    clock = PhaseClock()
    with clock.phase("training"):
        time.sleep(0.01)
    before = dict(clock.seconds)
    with clock.phase("attack"):
        time.sleep(0.01)
    assert set(clock.since(before)) == {"attack"}
