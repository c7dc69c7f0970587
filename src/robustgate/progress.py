"""Progress bars for long phases (training, attacks, corruptions), with an estimate of what is left.

Code that works long opens a bar with :func:`bar`; what the bar draws on is chosen by whoever runs it, through
:func:`drawn_by` (the pytest plugin draws tqdm bars on the terminal while an item runs, past pytest's output
capture; nothing is drawn under ``-q``, under pytest-xdist or when the output is not a terminal). Without one,
a bar costs nothing and draws nothing, so library code, tests and benchmarks need not care.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Protocol


class Bar(Protocol):
    def update(self, n: int = 1) -> object: ...

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None: ...


class _NoBar:
    def update(self, n: int = 1) -> object:
        return None

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        return None


BarFactory = Callable[[int, str, str], contextlib.AbstractContextManager[Bar]]
"""Opens a bar of ``total`` units named ``unit``, described by ``what``; closes it on exit."""

_factory: ContextVar[BarFactory | None] = ContextVar("robustgate_progress_bars", default=None)


@contextlib.contextmanager
def drawn_by(factory: BarFactory | None) -> Iterator[None]:
    """Within this block, :func:`bar` opens its bars with ``factory`` (None: draws none)."""
    token = _factory.set(factory)
    try:
        yield
    finally:
        _factory.reset(token)


@contextlib.contextmanager
def bar(total: int, what: str, unit: str = "it") -> Iterator[Bar]:
    """A progress bar of ``total`` ``unit``s for ``what``, drawn where :func:`drawn_by` says (or nowhere)."""
    factory = _factory.get()
    if factory is None or total <= 0:
        yield _NoBar()
        return
    with factory(total, what, unit) as opened:
        yield opened
