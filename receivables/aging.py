"""AR aging: open amounts per customer and currency by days past due.

Days past due = as-of date minus the installment's due date (a negative or zero value is current).
Buckets, both ends inclusive: current (<= 0), 1-30, 31-60, 61-90, 91-120, 120+ (121 and more).
Every open installment counts with its remaining amount and sign, credit memos included (an unapplied
credit ages like any item), so the buckets of a customer add up to its open balance to the cent.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

BUCKETS = ("current", "1-30", "31-60", "61-90", "91-120", "120+")
BUCKET_COLUMNS = ("current_cents", "days_1_30_cents", "days_31_60_cents", "days_61_90_cents",
                  "days_91_120_cents", "days_over_120_cents")
# Upper bound (inclusive) of each bucket but the last, in days past due.
_UPPER = np.array([0, 30, 60, 90, 120], dtype=np.int64)


def as_day(as_of) -> np.datetime64:
    return np.datetime64(pd.Timestamp(as_of).date(), "D")


def days_between(start: pd.Series | np.ndarray, end) -> np.ndarray:
    """Whole days from each date in `start` to `end` (end - start), as int64."""
    values = start.to_numpy(dtype="datetime64[ns]") if isinstance(start, pd.Series) else np.asarray(
        start, dtype="datetime64[ns]")
    return (as_day(end) - values.astype("datetime64[D]")).astype(np.int64)


def days_past_due(items: pd.DataFrame, as_of) -> np.ndarray:
    return days_between(items["due_date"], as_of)


def bucket_index(dpd: np.ndarray) -> np.ndarray:
    """0 for current ... 5 for 120+."""
    return np.searchsorted(_UPPER, dpd, side="left")


def open_only(items: pd.DataFrame) -> pd.DataFrame:
    return items[(items["status"] == "OP") & (items["amount_due_remaining_cents"] != 0)]


def age_items(items: pd.DataFrame, as_of) -> pd.DataFrame:
    """Open items with their days past due and bucket."""
    out = open_only(items).copy()
    dpd = days_past_due(out, as_of)
    out["days_past_due"] = dpd
    out["aging_bucket"] = pd.Categorical.from_codes(bucket_index(dpd), BUCKETS)
    return out


def aging(items: pd.DataFrame, as_of) -> pd.DataFrame:
    """One row per customer and currency: cents per bucket and the total (= sum of open amounts)."""
    op = open_only(items)
    if op.empty:
        return pd.DataFrame({c: pd.Series([], dtype="string" if c in ("customer_id", "currency") else "int64")
                             for c in ("customer_id", "currency", *BUCKET_COLUMNS, "total_cents")})
    codes, uniques = group_codes(op)
    bucket = bucket_index(days_past_due(op, as_of))
    # Integer sums (exact): one group per (customer, currency, bucket).
    combined = codes.astype(np.int64) * len(BUCKETS) + bucket
    sums = pd.Series(op["amount_due_remaining_cents"].to_numpy(dtype=np.int64)).groupby(combined).sum()
    grid = np.zeros((len(uniques), len(BUCKETS)), dtype=np.int64)
    idx = sums.index.to_numpy()
    grid[idx // len(BUCKETS), idx % len(BUCKETS)] = sums.to_numpy()
    out = pd.DataFrame(grid, columns=list(BUCKET_COLUMNS))
    out.insert(0, "currency", pd.array(uniques["currency"], dtype="string"))
    out.insert(0, "customer_id", pd.array(uniques["customer_id"], dtype="string"))
    out["total_cents"] = grid.sum(axis=1)
    return out


def group_codes(items: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
    """Dense codes of (customer, currency), sorted by customer then currency, and the pairs they stand for.

    Factorising the two columns apart and packing the codes is several times faster than a MultiIndex
    on a million rows.
    """
    cust_codes, cust = pd.factorize(items["customer_id"], sort=True)
    cur_codes, cur = pd.factorize(items["currency"], sort=True)
    packed = cust_codes.astype(np.int64) * max(len(cur), 1) + cur_codes
    codes, used = pd.factorize(packed, sort=True)
    pairs = pd.DataFrame({"customer_id": np.asarray(cust)[used // max(len(cur), 1)],
                          "currency": np.asarray(cur)[used % max(len(cur), 1)]})
    return codes.astype(np.int64), pairs
