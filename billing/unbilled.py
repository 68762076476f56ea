"""Unbilled costs and amounts at period end, aged by expenditure (service) date, each with its reason."""

from __future__ import annotations

import numpy as np
import pandas as pd

from billing.money import div_round_half_up
from billing.periods import Period
from billing.reasons import BY_CODE

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
    return pd.Series(np.select([a <= 30, a <= 60, a <= 90], list(BUCKET_NAMES[:3]), default="90+"),
                     index=age_days.index, dtype="string")


def unbilled_items(lines: pd.DataFrame, period: Period) -> pd.DataFrame:
    """Every line not billed in full: its unbilled amount and cost, age, bucket and reason."""
    u = lines[lines["reason"].notna()].copy()
    u["age_days"] = (period.end_ts - u["service_date"]).dt.days.astype("int64")
    u["aging_bucket"] = aging_bucket(u["age_days"])
    u["reason_category"] = u["reason"].map(lambda r: BY_CODE[r].category).astype("string")
    # A line billed in part (over a cap) carries its cost with the billed part: only the unbilled
    # share of the cost is reported, in proportion to the amount, so billed + unbilled cost = cost.
    partial = (u["billed_cents"] != 0) & (u["amount_cents"] != 0)
    if partial.any():
        share = u.loc[partial]
        u.loc[partial, "cost_cents"] = [
            _share(int(c), int(x), int(a)) for c, x, a in
            zip(share["cost_cents"], share["unbilled_cents"], share["amount_cents"], strict=True)]
    return u[UNBILLED_COLUMNS].reset_index(drop=True)


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
