"""Where a run's time goes (training, compression, prediction, attacks, corruption, latency), for results.json.

Phases nest (a compression step may predict to calibrate): time is charged to the innermost phase only,
so the phases add up to the time spent in them, never more.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager


class PhaseClock:
    def __init__(self) -> None:
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self._open: list[str] = []
        self._since = 0.0

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self._charge()
        self._open.append(name)
        try:
            yield
        finally:
            self._charge()
            self._open.pop()

    def _charge(self) -> None:
        now = time.perf_counter()
        if self._open:
            self.seconds[self._open[-1]] += now - self._since
        self._since = now

    def snapshot(self) -> dict[str, float]:
        self._charge()
        return dict(self.seconds)

    def inside(self, names: frozenset[str]) -> bool:
        """Whether one of the phases ``names`` is open (maybe with another nested inside it)."""
        return any(name in names for name in self._open)

    def seconds_since(self, before: dict[str, float], excluding: frozenset[str] = frozenset()) -> float:
        """Seconds charged to phases other than ``excluding`` since the snapshot ``before``, up to now."""
        self._charge()
        return sum(s - before.get(name, 0.0) for name, s in self.seconds.items() if name not in excluding)

    def since(self, before: dict[str, float]) -> dict[str, float]:
        """Seconds per phase spent after the snapshot ``before`` (a copy of :attr:`seconds`)."""
        return {name: s - before.get(name, 0.0) for name, s in self.seconds.items() if s - before.get(name, 0.0) > 0}
