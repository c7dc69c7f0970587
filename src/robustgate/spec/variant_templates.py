"""Variant templates: ``pruned-{ratio}: {prune: {ratio: [0.25, 0.5, 0.75]}}`` is three variants.

Every ``{key}`` in a variant's name names a key of its steps whose value is a
list; the variant expands into the product of those lists, each named by
filling the template. Lists that the name does not mention stay lists (a step
may take a list, e.g. layers to keep). (A spec's ``matrix:`` of cases is another thing: see
:mod:`robustgate.spec.cases`.)
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Iterator
from typing import Any

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class TemplateError(ValueError):
    """A template that does not match its variant's keys."""


def is_template(name: str) -> bool:
    return PLACEHOLDER.search(name) is not None


def expand_template(name: str, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``[(name, body)]`` for a plain variant; one entry per combination for a template."""
    keys = list(dict.fromkeys(PLACEHOLDER.findall(name)))
    if not keys:
        return [(name, body)]
    axes = []
    for key in keys:
        paths = list(paths_of(body, key))
        lists = [path for path in paths if isinstance(_get(body, path), list)]
        if len(lists) != 1:
            where = "none" if not lists else f"{len(lists)}"
            raise TemplateError(
                f"the name's {{{key}}} needs exactly one `{key}:` with a list of values in this variant, found {where}"
                + (" (give a list, e.g. ratio: [0.25, 0.5])" if paths and not lists else "")
            )
        values = _get(body, lists[0])
        if not values:
            raise TemplateError(f"`{key}:` is an empty list, so {name!r} expands to no variant")
        axes.append((key, lists[0], values))
    expanded = []
    for combination in itertools.product(*(values for _, _, values in axes)):
        concrete = copy.deepcopy(body)
        filled = {}
        for (key, path, _), value in zip(axes, combination):
            _set(concrete, path, value)
            filled[key] = _format(value)
        expanded.append((PLACEHOLDER.sub(lambda m: filled[m.group(1)], name), concrete))  # noqa: B023 (called here)
    return expanded


def _format(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def paths_of(node: Any, key: str, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path to a mapping key named ``key`` in ``node``."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                yield path + (k,)
            yield from paths_of(v, key, path + (k,))


def _get(node: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        node = node[part]
    return node


def _set(node: Any, path: tuple[Any, ...], value: Any) -> None:
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
