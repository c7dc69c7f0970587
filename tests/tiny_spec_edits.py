"""Edits of spec text that tests share, each failing loudly when its anchor no longer matches.

``str.replace`` matches nothing silently: a test that edits a spec through an anchor that changed (a reworded
line of conftest.py's TINY_SPEC, a key renamed) would run the unedited spec and could pass for the wrong
reason. :func:`edit` is the one way tests edit spec and YAML text.
"""

from __future__ import annotations

STATIC_INT8 = "int8: {ptq: {backend: x86, calibrate: {on: digits-train, samples: 128}}}"


def edit(text: str, old: str, new: str, count: int = 1) -> str:
    """``text`` with ``old`` replaced by ``new``; ``old`` must occur exactly ``count`` times."""
    found = text.count(old)
    assert found == count, f"spec edit: anchor {old!r} occurs {found} times, expected {count}"
    return text.replace(old, new)


def no_drop_allowed(spec: str) -> str:
    """The tiny spec with `max_drop: 0` on printed, a gate that must FAIL on any CPU. It fails while the upper bound
    of int8's drop stays above 0; static int8 gains or loses printed digits by the CPU's kernels, and under
    ATen AVX2 kernels on 1 thread it gained 7 net (drop -0.035, bound -0.0045: the gate passed; bench_cross_cpu.py).
    Dynamic int8 (the Linear layer only) predicts as its baseline does, so the bound is the sampling margin, > 0."""
    spec = edit(spec, "on: printed, max_drop: 0.15", "on: printed, max_drop: 0.0")
    return edit(spec, STATIC_INT8, "int8: {ptq: {method: dynamic}}")
