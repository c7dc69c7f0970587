"""Attack strengths parse as people write them and print back the same way."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from robustgate.attacks.strength import format_strength, parse_strength


@given(st.integers(min_value=1, max_value=255))
def test_eight_bit_levels_round_trip(levels: int) -> None:
    value = parse_strength(f"{levels}/255")
    assert value == pytest.approx(levels / 255)
    assert format_strength(value) == f"{levels}/255"


@given(st.floats(min_value=0, max_value=10, allow_nan=False))
def test_numbers_pass_through_and_print_parseably(value: float) -> None:
    assert parse_strength(value) == value
    assert parse_strength(format_strength(value)) == pytest.approx(value, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("text", ["8/0", "eight", "8/255/2", "1/2.5", "nan", "inf"])
def test_text_that_is_no_fraction_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="expected a number or a fraction such as 8/255"):
        parse_strength(text)
