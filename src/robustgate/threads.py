"""Torch threads under pytest-xdist: a worker evaluates on its share of the cores and builds models on all of them.

Each of `pytest -n N`'s workers would run torch on every core, so N workers oversubscribe the machine and
run slower than one. Evaluation (predictions, attacks, corruptions, int8 kernels included) gives the same bits
at any thread count (tests/test_threads.py holds that), so a worker evaluates on cores // N threads. Training
does not: the thread count changes the order in which weight gradients are summed, so weights trained on
fewer threads would differ from a serial run's. Building a model (training, compression with its fine-tuning)
therefore keeps torch's default count, and `-n N` gives a serial run's results on the same machine.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from robustgate.latency.measure import torch_threads

_build_threads: int | None = None  # torch's own count, while this process evaluates on a share of it
# Torch's count when robustgate was loaded (pytest loads the plugin before any item pins threads): every
# build runs on it, so a model built inside a pinned section (latency timing on 1 thread restores the
# baseline) gets the same weights, and the same cache key, as one built anywhere else in the run.
DEFAULT_THREADS = torch.get_num_threads()


@contextlib.contextmanager
def evaluation_share(workers: int) -> Iterator[None]:
    """Evaluate on this process's share of the cores while ``workers`` processes share the machine."""
    global _build_threads
    if workers <= 1:
        yield
        return
    default, outer = torch.get_num_threads(), _build_threads
    _build_threads = default
    try:
        with torch_threads(max(1, default // workers)):
            yield
    finally:
        _build_threads = outer


@contextlib.contextmanager
def build_threads() -> Iterator[None]:
    """Build a model (train, compress) on torch's default thread count, so its weights equal a serial run's."""
    with torch_threads(build_thread_count()):
        yield


def build_thread_count() -> int:
    """The thread count models are built on (a cache key part of trained weights: it changes their bits)."""
    return _build_threads if _build_threads is not None else DEFAULT_THREADS
