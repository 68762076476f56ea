from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.money import (
    cents_to_decimal,
    decimal_texts,
    div_round_half_up,
    format_cents,
    mul_div_round,
    parse_amount_to_cents,
)


def test_half_rounds_away_from_zero_for_debits_and_credits():
    assert div_round_half_up(5, 2) == 3      # 2.5 -> 3
    assert div_round_half_up(-5, 2) == -3    # -2.5 -> -3, a credit mirrors its debit
    assert div_round_half_up(7, 4) == 2      # 1.75 -> 2
    assert div_round_half_up(5, 4) == 1      # 1.25 -> 1
    assert div_round_half_up(-6, 4) == -2    # -1.5 -> -2


def test_vectorised_rounding_matches_scalar():
    s = pd.Series([5, -5, 7, 149, -150, 0], dtype="int64")
    assert div_round_half_up(s, 100).tolist() == [0, -0, 0, 1, -2, 0]


def test_labor_amount_is_exact_where_float_rounding_fails():
    # 0.25 h at 123.45/h = 30.8625 -> 30.86; 1.5 h at 100.01 = 150.015 -> 150.02 (float gives 150.01)
    assert mul_div_round(np.array([250, 1500]), np.array([12345, 10001]), 1000).tolist() == [3086, 15002]


def test_product_overflow_is_refused():
    with pytest.raises(OverflowError):
        mul_div_round(np.array([2**40]), np.array([2**40]), 1)


@given(st.integers(-10**12, 10**12), st.integers(1, 10**6))
def test_rounding_is_within_half_and_sign_symmetric(n, d):
    q = div_round_half_up(n, d)
    assert abs(Decimal(n) / d - q) <= Decimal(1) / 2
    assert div_round_half_up(-n, d) == -q
    assert int(div_round_half_up(np.array([n]), d)[0]) == q


def test_cents_text_round_trip():
    assert str(cents_to_decimal(-123456)) == "-1234.56"
    assert str(cents_to_decimal(7500, 3)) == "7.500"
    assert format_cents(123456789, "EUR") == "1,234,567.89 EUR"
    assert parse_amount_to_cents("1,234.5") == 123450
    with pytest.raises(ValueError, match="more than two decimals"):
        parse_amount_to_cents("1.234")


@given(st.lists(st.one_of(st.none(), st.integers(-(2**63) + 1, 2**63 - 1)), max_size=50), st.sampled_from([0, 2, 3]))
def test_a_whole_column_as_decimal_text_reads_like_each_value_as_a_decimal(values, places):
    col = pd.Series(pd.array(values, dtype="Int64"))
    expected = [None if v is None else str(cents_to_decimal(v, places)) for v in values]
    assert decimal_texts(col, places).tolist() == expected


def test_decimal_text_of_a_plain_integer_column_keeps_its_index():
    col = pd.Series([123456, -5, 0, -100], index=[7, 8, 9, 10], dtype="int64")
    out = decimal_texts(col)
    assert out.tolist() == ["1234.56", "-0.05", "0.00", "-1.00"] and list(out.index) == [7, 8, 9, 10]
