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

    def __contains__(self, loc: object) -> bool:
        """Whether ``loc`` itself was written in the file (not just an ancestor of it)."""
        return loc in self._lines


# `${NAME}` is how specs reference the environment, but its braces end a YAML flow mapping
# (`{office31: ${OFFICE31_ROOT}, domain: webcam}`); it is swapped for private-use characters
# while parsing and swapped back in the parsed strings. Line numbers are unaffected.
_ENV_PLACEHOLDER = re.compile("\\$\ue000([A-Za-z_][A-Za-z0-9_]*)\ue001")
# Variant template names (`pruned-{ratio}`) have the same problem inside `variants: [pruned-{ratio}]`;
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
            raise _yaml_error(err, path, text) from None
        mark = err.problem_mark
        raise SpecError(
            f"YAML tag not allowed: {err.problem}",
            where=f"{path}:{mark.line + 1 if mark else 1}",
            hint="specs are plain data: remove the `!!python/...` (or other custom) tag",
        ) from None
    except yaml.MarkedYAMLError as err:
        raise _yaml_error(err, path, text) from None
    except yaml.reader.ReaderError as err:
        raise _character_error(err, text, path) from None
    except yaml.YAMLError as err:
        raise SpecError(f"not valid YAML: {err}", where=f"{path}:1") from None
    except RecursionError:  # PyYAML composes nested collections recursively
        raise _nesting_error(text, path) from None
    if node is not None:
        _walk(node, (), lines)
    return _restore_env_references(data), lines


def _yaml_error(err: yaml.MarkedYAMLError, path: str, text: str) -> SpecError:
    mark = err.problem_mark or err.context_mark
    if mark and _at_end(mark, text) and err.context_mark and not _at_end(err.context_mark, text):
        mark = err.context_mark  # found only at the end of the file (an unclosed bracket or quote): where it opened
    line = mark.line + 1 if mark else 1
    if mark and _at_end(mark, text):  # the last line with something on it, not the empty one after it
        line = min(line, text.rstrip().count("\n") + 1)
    problem = " ".join(filter(None, [err.context, err.problem]))
    hint = "check indentation and quoting on that line (tabs are not allowed in YAML)"
    if "expected a single document" in problem:
        hint = "a spec is one YAML document: remove the `---` line and what follows it, or move that to its own file"
    return SpecError(f"not valid YAML: {problem}", where=f"{path}:{line}", hint=hint)


def _at_end(mark: yaml.Mark, text: str) -> bool:
    return mark.index >= len(text)  # where PyYAML marks the end of the stream


def _character_error(err: yaml.reader.ReaderError, text: str, path: str) -> SpecError:
    """A control character (NUL, BEL ...) that YAML refuses, on its line rather than at a character offset."""
    line = text[: err.position].count("\n") + 1
    code = err.character if isinstance(err.character, int) else ord(err.character)
    return SpecError(
        f"not valid YAML: control character U+{code:04X} is not allowed in YAML text",
        where=f"{path}:{line}", hint="delete the stray character (retyping the line removes it)",
    )


_MAX_DEPTH = 100  # far deeper than any spec; PyYAML's recursion gives out a few hundred levels down


def _nesting_error(text: str, path: str) -> SpecError:
    """Brackets or indentation nested too deep to parse, at the line where the nesting passes ``_MAX_DEPTH``."""
    depth, line = 0, 1
    try:
        for token in yaml.scan(text, Loader=SpecLoader):  # the scanner is iterative: it does not recurse
            if isinstance(token, (yaml.FlowSequenceStartToken, yaml.FlowMappingStartToken,
                                  yaml.BlockSequenceStartToken, yaml.BlockMappingStartToken)):
                depth += 1
                if depth > _MAX_DEPTH:
                    line = token.start_mark.line + 1
                    break
            elif isinstance(token, (yaml.FlowSequenceEndToken, yaml.FlowMappingEndToken, yaml.BlockEndToken)):
                depth -= 1
    except yaml.YAMLError:
        pass  # the nesting is the problem to report; the line stays at the best guess so far
    return SpecError(f"not valid YAML: nested more than {_MAX_DEPTH} levels deep", where=f"{path}:{line}",
                     hint="a spec nests a few levels at most: look for brackets that are never closed")


def _walk(node: yaml.Node, loc: Loc, lines: LineMap) -> None:
    lines.record(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = _restore_env_references(key_node.value)
            line = key_node.start_mark.line + 1
            parsed = _parsed_key(key_node)
            if parsed != key:  # `5:` or `~:` are the keys 5 and None in the data: find their line by those too
                lines.record(loc + (parsed,), line)
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


def _parsed_key(node: yaml.Node) -> Any:
    """A plain scalar key as the loader reads it (``5`` -> 5, ``~`` -> None); other keys as written."""
    if not isinstance(node, yaml.ScalarNode) or node.tag == "tag:yaml.org,2002:str":
        return _restore_env_references(node.value)
    try:  # the composer already resolved its tag (int, null, ...): construct it, no second parse of its text
        return SpecLoader("").construct_object(node)
    except yaml.YAMLError:
        return node.value
