"""Spec matrix: one file, a grid of studies. ``matrix: {arch: [resnet18, resnet50], source: [amazon, webcam]}``
makes the spec four *cases* (``resnet18-amazon`` ...), each a whole spec with its own baseline, variants and
contracts, collected as ``office31_paper.yaml::resnet18-amazon::int8::accuracy[webcam]``.

A value is a scalar or a mapping with a ``name`` (``{name: amazon, targets: [webcam, dslr]}``). Anywhere in the
spec, ``{key}`` stands for the value's name and ``{key.field}`` for a field of a mapping value; a string that is
one placeholder and nothing else takes the value itself, typed (``targets: "{source.targets}"`` is a list,
``epochs: "{arch.epochs}"`` a number). Placeholders that name no matrix key are left alone, so variant templates
(``pruned-{ratio}``) keep working. ``exclude: [{arch: resnet50, source: webcam}]`` drops combinations.

Expansion happens on the parsed YAML, after a profile is merged (a profile may shrink the matrix) and before
validation, so every case is validated as an ordinary spec and its errors point at the spec's lines.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from collections.abc import Iterator
from typing import Any

from robustgate.errors import SpecError
from robustgate.spec.variant_templates import paths_of
from robustgate.spec.yamlmarks import LineMap, Loc

MATRIX_KEY = "matrix"
EXCLUDE_KEY = "exclude"
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_VALUE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+]*$")  # no '-': it joins the names into the case's
# `${NAME}` is an environment reference, never a placeholder.
PLACEHOLDER = re.compile(r"(?<!\$)\{([A-Za-z_][A-Za-z0-9_]*)(?:\.([A-Za-z_][A-Za-z0-9_]*))?\}")


@dataclass(frozen=True)
class Case:
    """One combination of the matrix: its name (the values' names joined by '-'), its values and its spec data."""

    name: str
    values: dict[str, Any]
    data: dict[str, Any] = field(repr=False)
    lines: LineMap = field(repr=False)  # the spec's lines, plus those of this case's substituted keys

    def describe(self) -> str:
        """``arch=resnet18, source=amazon``."""
        return _describe(self.values)


def _describe(values: dict[str, Any]) -> str:
    return ", ".join(f"{key}={_name(value)}" for key, value in values.items())


def expand_cases(data: dict[str, Any], lines: LineMap) -> list[Case] | None:
    """The cases of a spec with ``matrix:``, in the order written; None for a spec without one."""
    if MATRIX_KEY not in data:
        return None
    axes, excluded = _read_matrix(data[MATRIX_KEY], lines)
    base = {key: value for key, value in data.items() if key != MATRIX_KEY}
    used = {match.group(1) for text in _strings(base) for match in PLACEHOLDER.finditer(text)}
    for key in axes:
        if key not in used:
            unquoted = _unquoted_use(base, key)
            raise SpecError(
                f"matrix.{key}: no `{{{key}}}` in the spec uses it, so every case would be the same spec"
                + (f"; line {lines.line(unquoted)} has {{{key}}} unquoted, which YAML reads as a mapping" if unquoted else ""),
                where=lines.where((MATRIX_KEY, key)),
                hint=f"write \"{{{key}}}\" (in quotes) where the value goes, e.g. arch: \"{{{key}}}\", "
                     f"or remove {key} from the matrix",
            )
    _check_variant_templates(base, axes, lines)
    cases = []
    for combination in itertools.product(*axes.values()):
        values = dict(zip(axes, combination))
        names = {key: _name(value) for key, value in values.items()}
        if any(all(names[key] == name for key, name in rule.items()) for rule in excluded):
            continue
        name, case_lines = "-".join(names.values()), lines.copy()
        try:
            cases.append(Case(name, values, _substitute(base, values, (), (), case_lines), case_lines))
        except SpecError as err:
            err.message += f"\n  (in matrix case {name}: {_describe(values)})"
            raise
    if not cases:
        raise SpecError("matrix: `exclude:` removes every combination, so the spec has no case to run",
                        where=lines.where((MATRIX_KEY, EXCLUDE_KEY)))
    return cases


def _read_matrix(matrix: Any, lines: LineMap) -> tuple[dict[str, list[Any]], list[dict[str, str]]]:
    where = lines.where((MATRIX_KEY,))
    example = "e.g. matrix: {arch: [resnet18, resnet50], source: [amazon, webcam]}"
    if not isinstance(matrix, dict) or not [key for key in matrix if key != EXCLUDE_KEY]:
        raise SpecError(f"matrix: expected a mapping of keys to lists of values, {example}", where=where)
    axes: dict[str, list[Any]] = {}
    for key, values in matrix.items():
        if key == EXCLUDE_KEY:
            continue
        loc: Loc = (MATRIX_KEY, key)
        if not isinstance(key, str) or not _KEY.match(key):
            raise SpecError(f"matrix key {key!r} must be a name of letters, digits and _ (it is written {{{key}}})",
                            where=lines.where(loc))
        if not isinstance(values, list) or not values:
            raise SpecError(f"matrix.{key}: expected a non-empty list of values, {example}", where=lines.where(loc))
        seen: set[str] = set()
        for index, value in enumerate(values):
            problem = _value_problem(value)
            if problem is None and _name(value) in seen:
                problem = f"the name '{_name(value)}' appears twice; every value of a matrix key needs its own"
            if problem:
                raise SpecError(f"matrix.{key}[{index}]: {problem}", where=lines.where(loc + (index,)))
            seen.add(_name(value))
        axes[key] = values
    return axes, _read_exclude(matrix.get(EXCLUDE_KEY), axes, lines)


def _value_problem(value: Any) -> str | None:
    if isinstance(value, dict):
        if "name" not in value:
            return "a mapping value needs a `name:` (it names the case), e.g. {name: amazon, targets: [webcam, dslr]}"
        value = value["name"]
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return "expected a scalar (text or a number) or a mapping with a `name:`"
    if not _VALUE_NAME.match(_name(value)):
        return f"the name {_name(value)!r} may only use letters, digits and _ . + (it becomes part of test ids)"
    return None


def _read_exclude(rules: Any, axes: dict[str, list[Any]], lines: LineMap) -> list[dict[str, str]]:
    if rules is None:
        return []
    loc: Loc = (MATRIX_KEY, EXCLUDE_KEY)
    if not isinstance(rules, list) or not all(isinstance(rule, dict) and rule for rule in rules):  # [] excludes nothing
        raise SpecError("matrix.exclude: expected a list of partial combinations, e.g. [{arch: resnet50, source: dslr}]",
                        where=lines.where(loc))
    parsed = []
    for index, rule in enumerate(rules):
        for key, name in rule.items():
            names = [_name(value) for value in axes.get(key, [])]
            if key not in axes:
                problem = f"'{key}' is not a matrix key (the keys are: {', '.join(axes)})"
            elif _format(name) not in names:
                problem = f"'{name}' is not a value of {key} (its values are: {', '.join(names)})"
            else:
                continue
            raise SpecError(f"matrix.exclude[{index}]: {problem}", where=lines.where(loc + (index, key)),
                            hint="fix the name, or drop the rule (a profile that narrows the matrix gives its own exclude:)")
        parsed.append({key: _format(name) for key, name in rule.items()})
    return parsed


def _name(value: Any) -> str:
    return _format(value["name"] if isinstance(value, dict) else value)


def _format(value: Any) -> str:
    """Text of a value as written, without exponent or rounding (0.00001 stays 0.00001, never 1e-05)."""
    return format(Decimal(repr(value)), "f") if isinstance(value, float) else str(value)


def _unquoted_use(node: Any, key: str, loc: Loc = ()) -> Loc | None:
    """Where ``{key}`` was written unquoted, which YAML reads as the mapping ``{key: null}``."""
    if isinstance(node, dict):
        if len(node) == 1 and key in node and node[key] is None:
            return loc
        children: Iterable[tuple[Any, Any]] = node.items()
    elif isinstance(node, list):
        children = enumerate(node)
    else:
        return None
    for part, child in children:
        found = _unquoted_use(child, key, loc + (part,))
        if found is not None:
            return found
    return None


def _check_variant_templates(base: dict[str, Any], axes: dict[str, list[Any]], lines: LineMap) -> None:
    """A matrix key that a variant template also uses (``pruned-{ratio}`` with ``ratio: [...]`` in its steps)
    would fill the template with the case's value and leave the variant's list unexplained: refuse it."""
    variants = base.get("variants")
    if not isinstance(variants, dict):
        return
    for name, body in variants.items():
        if not isinstance(name, str) or not isinstance(body, dict):
            continue  # validation reports those
        for match in PLACEHOLDER.finditer(name):
            key = match.group(1)
            if match.group(2) is None and key in axes and next(paths_of(body, key), None) is not None:
                raise SpecError(
                    f"variants.{name}: {{{key}}} is both a matrix key and this variant's template key (its `{key}:` list)",
                    where=lines.where(("variants", name)),
                    hint=f"rename the matrix key, e.g. base_{key}, and its placeholders",
                )


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _substitute(node: Any, values: dict[str, Any], source: Loc, target: Loc, lines: LineMap) -> Any:
    """``node`` with the case's values filled in; lines of renamed keys are recorded under their new names."""
    if target != source:
        lines.record(target, lines.line(source))
    if isinstance(node, dict):
        filled: dict[Any, Any] = {}
        origin: dict[Any, Any] = {}
        for key, value in node.items():
            new_key = _fill(key, values, source + (key,), lines, whole=False) if isinstance(key, str) else key
            if new_key in filled:  # `"{source}": ...` beside `amazon: ...` in the amazon case
                raise SpecError(
                    f"'{origin[new_key]}' and '{key}' both become '{new_key}' in this case",
                    where=lines.where(source + (key,)),
                    hint=f"name them apart (the other is on line {lines.line(source + (origin[new_key],))})",
                )
            origin[new_key] = key
            filled[new_key] = _substitute(value, values, source + (key,), target + (new_key,), lines)
        return filled
    if isinstance(node, list):
        return [_substitute(value, values, source + (i,), target + (i,), lines) for i, value in enumerate(node)]
    if isinstance(node, str):
        return _fill(node, values, source, lines, whole=True)
    return node


def _fill(text: str, values: dict[str, Any], loc: Loc, lines: LineMap, whole: bool) -> Any:
    match = PLACEHOLDER.fullmatch(text)
    if whole and match and match.group(1) in values:
        return _lookup(match, values, loc, lines)

    def replace(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            return match.group(0)  # not a matrix key: a variant template's placeholder, filled later
        value = _lookup(match, values, loc, lines)
        if isinstance(value, (dict, list)) or isinstance(value, bool) or value is None:
            raise SpecError(
                f"{match.group(0)} is {type(value).__name__} here, which cannot be written inside text",
                where=lines.where(loc),
                hint=f"make the whole value the placeholder (\"{match.group(0)}\") to use it as it is",
            )
        return _format(value)

    return PLACEHOLDER.sub(replace, text)


def _lookup(match: re.Match[str], values: dict[str, Any], loc: Loc, lines: LineMap) -> Any:
    key, member = match.group(1), match.group(2)
    value = values[key]
    if member is None:
        return _name(value) if isinstance(value, dict) else value
    if not isinstance(value, dict) or member not in value:
        raise SpecError(
            f"{match.group(0)}: the {key} value '{_name(value)}' has no field '{member}'",
            where=lines.where(loc),
            hint=f"give every value of matrix.{key} a `{member}:` (values are then mappings with a name)",
        )
    return value[member]
