"""``--robustgate-shard I/N``: split a run's robustgate items across N CI machines, whole models at a time.

Items are grouped by model (spec file, matrix case, variant), so a shard builds and compresses a model only
if it gates it; groups go to shards deterministically from the collection alone: sorted by name, each to the
shard with the fewest items so far. Every machine collects the same items (the same checkout and arguments),
so the N shards partition the run: `robustgate merge` joins their results.json files into one report.
The assignment is made on the full collection, before ``-k`` or ``-m`` deselect, so it does not move when
those change. Other tests are not robustgate's to split: they run on every shard.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest

_SHARD = re.compile(r"(\d+)/(\d+)")


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/4"`` → ``(2, 4)``; a :class:`pytest.UsageError` saying the form for anything else.

    The option's ``type=``, so a malformed shard stops pytest while it parses its arguments, before anything
    is collected (a UsageError passes through argparse with its message as written)."""
    match = _SHARD.fullmatch(text.strip())
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise pytest.UsageError(
            f"--robustgate-shard {text}: expected I/N with 1 <= I <= N, e.g. --robustgate-shard 1/4 "
            "(this machine runs the first of four parts)"
        )
    return int(match.group(1)), int(match.group(2))


def model_of(item: pytest.Item) -> str | None:
    """The model an item gates, as its id names it (``spec.yaml::case::int8``); None for other tests."""
    if not hasattr(item, "contract"):
        return None
    return item.nodeid.rsplit("::", 1)[0]


def assign(models: Sequence[str], sizes: dict[str, int], count: int) -> dict[str, int]:
    """Shard index (0-based) per model: sorted by name, each to the currently smallest shard (ties: the lowest)."""
    loads = [0] * count
    shard_of = {}
    for model in sorted(models):
        shard = min(range(count), key=lambda k: (loads[k], k))
        shard_of[model] = shard
        loads[shard] += sizes[model]
    return shard_of


def select(items: list[pytest.Item], index: int, count: int) -> tuple[list[pytest.Item], list[pytest.Item], str]:
    """The items shard ``index`` of ``count`` (1-based) runs, those it leaves to others, and a line saying so."""
    sizes: dict[str, int] = {}
    for item in items:
        model = model_of(item)
        if model is not None:
            sizes[model] = sizes.get(model, 0) + 1
    shard_of = assign(list(sizes), sizes, count)
    kept: list[pytest.Item] = []
    left: list[pytest.Item] = []
    for item in items:
        model = model_of(item)
        (kept if model is None or shard_of[model] == index - 1 else left).append(item)
    mine = [model for model, shard in shard_of.items() if shard == index - 1]
    summary = (f"robustgate shard {index}/{count}: {sum(sizes[m] for m in mine)} of {sum(sizes.values())} contracts, "
               f"{len(mine)} of {len(sizes)} models")
    return kept, left, summary
