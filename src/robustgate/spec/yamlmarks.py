"""YAML as plain data plus the line every key came from.

Specs are data: only ``yaml.SafeLoader`` is used, so Python tags are rejected.
PyYAML silently keeps the last of two equal keys; we refuse them instead,
because a duplicated contract key is almost always a copy-paste mistake.
"""

from __future__ import annotations

from typing import Any

import re

import yaml

from robustgate.errors import SpecError
from robustgate.spec.paths import ENV_REFERENCE

Loc = tuple[str | int, ...]


class SpecLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans: only true/false are booleans.

    YAML 1.1 reads ``on``, ``off``, ``yes`` and ``no`` as booleans, which would
    turn the contract key ``on:`` into ``True:``.
    """


SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


class LineMap:
    """Maps a location in the parsed data (a tuple of keys and indices) to its 1-based line."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lines: dict[Loc, int] = {}

    def record(self, loc: Loc, line: int) -> None:
        self._lines[loc] = line

    def copy(self) -> "LineMap":
        """An independent map (each matrix case records its own substituted keys)."""
        other = LineMap(self.path)
        other._lines = dict(self._lines)
        return other

    def line(self, loc: Loc) -> int:
        """Line of ``loc``, or of its nearest recorded ancestor (a missing key reports its parent)."""
        # Keys are recorded as written; YAML may have made `8:` an int key, so look both forms up.
        loc = tuple(part if (self._known(loc, i, part)) else str(part) for i, part in enumerate(loc))
        while loc:
            if loc in self._lines:
                return self._lines[loc]
            loc = loc[:-1]
        return self._lines.get((), 1)

    def _known(self, loc: Loc, index: int, part: str | int) -> bool:
        prefix = tuple(loc[:index])
        return (prefix + (part,)) in self._lines or (prefix + (str(part),)) not in self._lines

    def where(self, loc: Loc) -> str:
        return f"{self.path}:{self.line(loc)}"


# `${NAME}` is how specs reference the environment, but its braces end a YAML flow mapping
# (`{office31: ${OFFICE31_ROOT}, domain: webcam}`); it is swapped for private-use characters
# while parsing and swapped back in the parsed strings. Line numbers are unaffected.
_ENV_PLACEHOLDER = re.compile("\\$\ue000([A-Za-z_][A-Za-z0-9_]*)\ue001")
# Matrix variant names (`pruned-{ratio}`) have the same problem inside `variants: [pruned-{ratio}]`;
# a `{key}` glued to a name is a template, never the start of a flow mapping.
_TEMPLATE_REFERENCE = re.compile(r"(?<=[A-Za-z0-9_.+-])\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)\}")
_TEMPLATE_PLACEHOLDER = re.compile("\ue002([A-Za-z_][A-Za-z0-9_.]*)\ue003")


def _restore_env_references(value: Any) -> Any:
    if isinstance(value, str):
        return _TEMPLATE_PLACEHOLDER.sub(r"{\1}", _ENV_PLACEHOLDER.sub(r"${\1}", value))
    if isinstance(value, dict):
        return {_restore_env_references(k): _restore_env_references(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore_env_references(v) for v in value]
    return value


def load_yaml_with_lines(text: str, path: str) -> tuple[Any, LineMap]:
    """Parse ``text`` safely; return the data and a :class:`LineMap` of every key and item."""
    lines = LineMap(path)
    text = ENV_REFERENCE.sub("$\ue000\\1\ue001", text)
    text = _TEMPLATE_REFERENCE.sub("\ue002\\1\ue003", text)
    try:
        node = yaml.compose(text, Loader=SpecLoader)
        loader = SpecLoader(text)  # a SafeLoader: Python tags are refused
        try:
            data = loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.constructor.ConstructorError as err:
        if "could not determine a constructor for the tag" not in str(err.problem):
            raise _yaml_error(err, path) from None
        mark = err.problem_mark
        raise SpecError(
            f"YAML tag not allowed: {err.problem}",
            where=f"{path}:{mark.line + 1 if mark else 1}",
            hint="specs are plain data: remove the `!!python/...` (or other custom) tag",
        ) from None
    except yaml.MarkedYAMLError as err:
        raise _yaml_error(err, path) from None
    except yaml.YAMLError as err:
        raise SpecError(f"not valid YAML: {err}", where=f"{path}:1") from None
    if node is not None:
        _walk(node, (), lines)
    return _restore_env_references(data), lines


def _yaml_error(err: yaml.MarkedYAMLError, path: str) -> SpecError:
    mark = err.problem_mark or err.context_mark
    problem = " ".join(filter(None, [err.context, err.problem]))
    return SpecError(
        f"not valid YAML: {problem}",
        where=f"{path}:{mark.line + 1 if mark else 1}",
        hint="check indentation and quoting on that line (tabs are not allowed in YAML)",
    )


def _walk(node: yaml.Node, loc: Loc, lines: LineMap) -> None:
    lines.record(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = _restore_env_references(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise SpecError(
                    f"key '{key}' appears twice (first on line {seen[key]})",
                    where=f"{lines.path}:{line}",
                    hint="remove or rename one of them; YAML keeps only the last",
                )
            seen[key] = line
            _walk(value_node, loc + (key,), lines)
            lines.record(loc + (key,), line)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, loc + (index,), lines)
