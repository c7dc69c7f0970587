"""Building blocks for the parameter models of every registered kind.

Each dataset kind, compression step and contract kind declares its keys as a
:class:`Params` model in its own module; the spec validator looks the model up
in the kind's registry. Fields typed :data:`DatasetRef` name another dataset of
the spec, fields typed :data:`ModelRef` a model of it; both are checked to exist.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo


class Params(BaseModel):
    """Frozen, strict parameters: unknown keys are errors, values are not coerced
    (``min: true`` or ``min: "0.9"`` is a type error, not 1.0 or 0.9), and never change after parsing.
    Numbers are finite: a ``.nan`` threshold fails every comparison and ``.inf`` passes every one."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, strict=True, allow_inf_nan=False)


class _RefMarker:
    """Marks a field whose value names something else in the spec."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


DATASET_REF = _RefMarker("DatasetRef")
DatasetRef = Annotated[str, DATASET_REF, Field(min_length=1)]
"""The name of a dataset declared under ``datasets:``."""

MODEL_REF = _RefMarker("ModelRef")
ModelRef = Annotated[str, MODEL_REF, Field(min_length=1)]
"""The name of a model of the spec: ``baseline`` or a variant (``CASE::MODEL``, another matrix case's, is
checked where the cases are known)."""

Probability = Annotated[float, Field(ge=0.0, le=1.0)]


def one_or_per_name(upper: float | None, example: str) -> Any:
    """Checks a threshold given once (a number) or per name (``{printed: 0.05}``) in one step, so a mistake
    gets one message rather than one per branch of the union (number, mapping) it is typed as."""

    def parse(value: Any, info: ValidationInfo) -> Any:
        named = isinstance(value, dict)
        for name, number in (value.items() if named else [(None, value)]):
            where, shown = (f"'{name}': ", f" (not {number!r})") if named else ("", "")
            if named and not isinstance(name, str):
                raise ValueError(f"{name!r} is not a name; expected a number or a mapping such as {example}")
            if isinstance(number, bool) or not isinstance(number, (int, float)):
                raise ValueError(f"{where}expected a number or a mapping such as {example}{shown}")
            if not math.isfinite(number):
                raise ValueError(f"{where}{info.field_name} needs finite numbers{shown}")
            if upper is not None and not 0 <= number <= upper:
                raise ValueError(f"{where}must be between 0 and {upper:g}{shown}")
        return value

    return BeforeValidator(parse)


def _is_ref(marker: _RefMarker, annotation: Any, metadata: list[Any]) -> bool:
    if any(m is marker for m in metadata):
        return True
    return get_origin(annotation) is Annotated and any(m is marker for m in get_args(annotation)[1:])


def _refs(marker: _RefMarker, params: BaseModel, loc: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every (location, name) a parameter model refers to with fields ``marker`` marks, nested models included."""
    for name, field in type(params).model_fields.items():
        value = getattr(params, name)
        key = field.alias or name
        if value is None:
            continue
        if _is_ref(marker, field.annotation, field.metadata):
            yield loc + (key,), value
        elif get_origin(field.annotation) is list and _is_ref(marker, get_args(field.annotation)[0], []):
            yield from ((loc + (key, i), name) for i, name in enumerate(value))
        elif isinstance(value, BaseModel):
            yield from _refs(marker, value, loc + (key,))


def dataset_refs(params: BaseModel, loc: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every (location, dataset name) a parameter model refers to, nested models included."""
    return _refs(DATASET_REF, params, loc)


def model_refs(params: BaseModel, loc: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every (location, model name) a parameter model refers to, nested models included."""
    return _refs(MODEL_REF, params, loc)
