"""Exact money: integer cents and one rounding rule for the whole project.

The rule: divide exact integers and round half away from zero ("half-up, sign-aware"), so a credit
rounds exactly like the debit it reverses: 2.5 -> 3 and -2.5 -> -3. Every amount the close computes
(labor, markups, proration, tax) goes through one of the two functions below.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd


def div_round_half_up(numerator, denominator: int):
    """numerator / denominator rounded half away from zero; numerator int array/Series/int, denominator > 0."""
    if isinstance(denominator, (int, np.integer)) and denominator <= 0:
        raise ValueError("denominator must be positive")
    if isinstance(numerator, (int, np.integer)) and isinstance(denominator, (int, np.integer)):
        q, r = divmod(abs(int(numerator)), int(denominator))
        q += 1 if 2 * r >= denominator else 0
        return -q if numerator < 0 else q
    num = numerator.to_numpy(dtype=np.int64) if isinstance(numerator, pd.Series) else np.asarray(
        numerator, dtype=np.int64)
    den = np.asarray(denominator, dtype=np.int64)
    if np.any(den <= 0):
        raise ValueError("denominator must be positive")
    mag = np.abs(num)
    q, r = np.divmod(mag, den)
    q = q + (2 * r >= den)
    out = np.where(num < 0, -q, q)
    if isinstance(numerator, pd.Series):
        return pd.Series(out, index=numerator.index, dtype="int64")
    return out


def mul_div_round(a, b, denominator: int):
    """a * b / denominator rounded half away from zero, with an overflow guard on the product."""
    a_ = a.to_numpy(dtype=np.int64) if isinstance(a, pd.Series) else np.asarray(a, dtype=np.int64)
    b_ = b.to_numpy(dtype=np.int64) if isinstance(b, pd.Series) else np.asarray(b, dtype=np.int64)
    limit = np.iinfo(np.int64).max
    if a_.size and b_.size and np.max(np.abs(a_)).astype(float) * np.max(np.abs(b_)).astype(float) >= limit:
        raise OverflowError("amount product exceeds int64; check quantities and rates")
    out = div_round_half_up(a_ * b_, denominator)
    if isinstance(a, pd.Series):
        return pd.Series(out, index=a.index, dtype="int64")
    return out


def cents_to_decimal(cents: int, minor_units: int = 2) -> Decimal:
    """Integer minor units to a Decimal in major units (for files and e-invoices)."""
    return (Decimal(int(cents)) / (Decimal(10) ** minor_units)).quantize(
        Decimal(1).scaleb(-minor_units), rounding=ROUND_HALF_UP)


def decimal_texts(values: pd.Series, minor_units: int = 2) -> pd.Series:
    """A column of integer minor units as exact decimal text in major units, the whole column at once:
    the same text as ``str(cents_to_decimal(v, minor_units))`` for every value (123456 -> '1234.56',
    -5 -> '-0.05', 7 with 0 places -> '7'); missing values stay missing (None)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(values.to_numpy(dtype=object, na_value=None) if values.hasnans else
                   values.to_numpy(dtype=np.int64), type=pa.int64())
    magnitude = pc.abs_checked(arr)
    if minor_units == 0:
        text = pc.cast(magnitude, pa.string())
    else:
        scale = 10 ** minor_units
        whole = pc.divide(magnitude, scale)  # integer division of non-negative integers: exact
        frac = pc.subtract(magnitude, pc.multiply(whole, scale))
        text = pc.binary_join_element_wise(pc.cast(whole, pa.string()),
                                           pc.utf8_lpad(pc.cast(frac, pa.string()), minor_units, "0"), ".")
    text = pc.if_else(pc.less(arr, 0), pc.binary_join_element_wise("-", text, ""), text)
    out = text.to_numpy(zero_copy_only=False).astype(object)
    return pd.Series(out, index=values.index, dtype=object)


def format_cents(cents: int, currency: str = "") -> str:
    """1234567 -> '12,345.67' (with the currency code appended when given)."""
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(int(cents)), 100)
    text = f"{sign}{whole:,}.{frac:02d}"
    return f"{text} {currency}" if currency else text


def parse_amount_to_cents(text: str) -> int:
    """'1,234.5' -> 123450; exact (Decimal), refuses more than two decimals."""
    d = Decimal(str(text).replace(",", "").strip())
    cents = d * 100
    if cents != cents.to_integral_value():
        raise ValueError(f"amount {text!r} has more than two decimals")
    return int(cents)
