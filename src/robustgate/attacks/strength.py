"""Attack strengths as people write them: ``8/255`` (pixel levels of an 8-bit image) or ``0.03``."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, StringConstraints


def parse_strength(value: Any) -> Any:
    """``"8/255"`` -> 0.0313...; numbers pass through; anything else is left for pydantic to refuse."""
    if isinstance(value, str):
        text = value.strip()
        numerator, slash, denominator = text.partition("/")
        try:
            number = float(Fraction(int(numerator), int(denominator))) if slash else float(text)
        except (ValueError, ZeroDivisionError):
            raise ValueError("expected a number or a fraction such as 8/255") from None
        if not math.isfinite(number):
            raise ValueError("expected a number or a fraction such as 8/255")
        return number
    return value


# What a spec may write, for the JSON Schema of specs (`robustgate schema`): a number, or text that parse_strength
# reads (a fraction such as 8/255, or a number)
_AS_TEXT = r"^\s*([0-9]+\s*/\s*[0-9]+|([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?)\s*$"
Written = float | Annotated[str, StringConstraints(pattern=_AS_TEXT)]

Strength = Annotated[float, BeforeValidator(parse_strength, json_schema_input_type=Written), Field(ge=0.0)]


def _strengths(upper: float | None) -> Any:
    def parse(value: Any) -> Any:
        values = value if isinstance(value, list) else [value]
        parsed = [parse_strength(v) for v in values]
        for original, number in zip(values, parsed):
            if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
                raise ValueError("expected a number or a fraction such as 8/255")
            if number < 0 or (upper is not None and number > upper):
                bounds = "at least 0" if upper is None else f"between 0 and {upper:g}"
                raise ValueError(f"must be {bounds}" + (f" (not {original})" if isinstance(value, list) else ""))
        if isinstance(value, list) and not parsed:
            raise ValueError("an empty list sweeps nothing; give at least one value")
        return [float(n) for n in parsed] if isinstance(value, list) else float(parsed[0])

    return BeforeValidator(parse, json_schema_input_type=Written | list[Written])


# One strength or a sweep, parsed in one step so a mistake gets one message, not one per union branch.
Strengths = Annotated[float | list[float], _strengths(None)]
Shares = Annotated[float | list[float], _strengths(1.0)]


def format_strength(value: float) -> str:
    """``8/255`` when the value is a whole number of 8-bit levels, else the number."""
    levels = value * 255
    if value > 0 and abs(levels - round(levels)) < 1e-9:
        return f"{round(levels)}/255"
    return f"{value:g}"
