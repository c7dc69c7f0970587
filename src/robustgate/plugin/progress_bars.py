"""tqdm bars on pytest's terminal while an item runs: drawn past pytest's output capture, as progress lines are."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from robustgate.progress import Bar, BarFactory


class _PastCapture:
    """A file for tqdm that writes on the terminal reporter with pytest's capture suspended."""

    def __init__(self, reporter: Any, capture: Any) -> None:
        self.reporter, self.capture = reporter, capture

    def write(self, text: str) -> None:
        with self.capture.global_and_fixture_disabled() if self.capture else contextlib.nullcontext():
            self.reporter.write(text, flush=True)

    def flush(self) -> None:
        return None


def terminal_bars(config: pytest.Config) -> BarFactory | None:
    """Bars for this session, or None where they would not be seen or would clutter a log: under ``-q``, in a
    pytest-xdist worker (its output is not shown), and when the output is not a terminal (a CI log keeps the
    progress lines, not a bar redrawn a hundred times)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or config.get_verbosity() < 0 or hasattr(config, "workerinput") or not reporter.isatty():
        return None
    stream = _PastCapture(reporter, config.pluginmanager.get_plugin("capturemanager"))

    @contextlib.contextmanager
    def opened(total: int, what: str, unit: str) -> Iterator[Bar]:
        from tqdm import tqdm  # only when a bar is drawn

        with stream.capture.global_and_fixture_disabled() if stream.capture else contextlib.nullcontext():
            reporter.ensure_newline()  # the bar takes its own line, after pytest's dots
        drawn = tqdm(total=total, desc=f"robustgate: {what}", unit=unit, file=stream, leave=False, mininterval=0.5,
                     ncols=shutil.get_terminal_size().columns, smoothing=0.1)
        _open.append(drawn)
        try:
            yield drawn
        finally:
            _open.remove(drawn)
            drawn.close()

    return opened


_open: list[Any] = []  # the bars on the terminal now (nested: an attack inside a corruption sweep never happens, but may)


@contextlib.contextmanager
def bars_cleared() -> Iterator[None]:
    """Around a progress line: the open bars step off their line, and are drawn again below it."""
    for drawn in _open:
        drawn.clear()
    try:
        yield
    finally:
        for drawn in _open:
            drawn.refresh()
