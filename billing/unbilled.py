"""Unbilled costs and amounts at period end, aged by expenditure (service) date, each with its reason."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from billing.money import div_round_half_up
from billing.periods import Period
from billing.reasons import BY_CODE
from billing.schema import TEXT, text_array, text_series

# Buckets in days from the service date to the period end, inclusive on both ends.
AGING_BUCKETS = (("0-30", 0, 30), ("31-60", 31, 60), ("61-90", 61, 90), ("90+", 91, None))
BUCKET_NAMES = tuple(b[0] for b in AGING_BUCKETS)

UNBILLED_COLUMNS = [
    "line_id", "period", "business_unit", "customer_id", "contract_id", "project_id", "source_kind", "source_id",
    "service_date", "age_days", "aging_bucket", "reason", "reason_category", "currency", "cost_cents",
    "unbilled_cents",
]


def aging_bucket(age_days: pd.Series) -> pd.Series:
    """0-30, 31-60, 61-90 or 90+ (ages below 0, future-dated lines, fall in 0-30)."""
    a = age_days.to_numpy()
    bucket = np.select([a <= 30, a <= 60, a <= 90], [0, 1, 2], default=3).astype(np.int32)
    return text_series(pa.array(BUCKET_NAMES, type=TEXT).take(pa.array(bucket))).set_axis(age_days.index)


def unbilled_items(lines: pd.DataFrame, period: Period) -> pd.DataFrame:
    """Every line not billed in full: its unbilled amount and cost, age, bucket and reason."""
    keep = lines["reason"].notna().to_numpy()
    # Only the report's columns are carried (not a copy of every line column).
    wanted = [c for c in UNBILLED_COLUMNS if c in lines.columns] + ["amount_cents", "billed_cents"]
    u = _rows(lines[list(dict.fromkeys(wanted))], keep)
    u["age_days"] = (period.end_ts - u["service_date"]).dt.days.astype("int64")
    u["aging_bucket"] = aging_bucket(u["age_days"])
    u["reason_category"] = _categories(u["reason"])
    # A line billed in part (over a cap) carries its cost with the billed part: only the unbilled
    # share of the cost is reported, in proportion to the amount, so billed + unbilled cost = cost.
    partial = (u["billed_cents"] != 0) & (u["amount_cents"] != 0)
    if partial.any():
        share = u.loc[partial]
        u.loc[partial, "cost_cents"] = [
            _share(int(c), int(x), int(a)) for c, x, a in
            zip(share["cost_cents"], share["unbilled_cents"], share["amount_cents"], strict=True)]
    return u[UNBILLED_COLUMNS]


def _rows(frame: pd.DataFrame, keep: np.ndarray) -> pd.DataFrame:
    """The rows where `keep`, with a fresh RangeIndex; Arrow text columns filtered by Arrow."""
    mask = pa.array(keep)
    cols = {}
    for name in frame.columns:
        s = frame[name]
        if isinstance(s.dtype, pd.StringDtype) and s.dtype.storage == "pyarrow":
            cols[name] = text_series(pc.filter(text_array(s), mask))
        else:
            cols[name] = pd.Series(s.to_numpy()[keep] if s.dtype.kind in "iubfmM" else s.array[keep], copy=False)
    return pd.DataFrame(cols, copy=False)


def _categories(reason: pd.Series) -> pd.Series:
    """The category of each reason code (exception, not_billable, hold, deferred)."""
    enc = pc.dictionary_encode(text_array(reason))
    categories = pa.array([BY_CODE[r].category for r in enc.dictionary.to_pylist()], type=TEXT)
    return text_series(categories.take(enc.indices)).set_axis(reason.index)


def _share(cost: int, part: int, whole: int) -> int:
    sign = -1 if (whole < 0) else 1
    return div_round_half_up(cost * part * sign, abs(whole))


def aging_summary(unbilled: pd.DataFrame) -> pd.DataFrame:
    """Unbilled amount and cost by customer, currency and bucket (one row per customer and currency)."""
    if unbilled.empty:
        return pd.DataFrame(columns=["customer_id", "currency", *BUCKET_NAMES, "total_cents", "cost_cents"])
    amt = unbilled.pivot_table(index=["customer_id", "currency"], columns="aging_bucket", values="unbilled_cents",
                               aggfunc="sum", fill_value=0, observed=True)
    amt = amt.reindex(columns=list(BUCKET_NAMES), fill_value=0).astype("int64")
    amt["total_cents"] = amt.sum(axis=1)
    amt["cost_cents"] = unbilled.groupby(["customer_id", "currency"])["cost_cents"].sum()
    return amt.reset_index()
