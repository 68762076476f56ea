"""Late-payment interest and fixed compensation (Directive 2011/7/EU) for business debtors.

- Rate: the ECB reference rate of the half-year the day falls in (the rate in force on 1 January or
  1 July, shipped as data in ``receivables/data/ecb_reference_rates.csv``) plus the policy's margin
  (8 points by default).
- Simple daily interest from the day after the due date: an amount paid on day P was late for the
  days due+1 .. P; an amount still open on the as-of date for the days due+1 .. as-of. Each day
  accrues at its own half-year's rate, so a period that crosses 1 January or 1 July is split.
- Interest is computed from the payment history, not from today's balance: paying the principal stops
  the interest running but never erases what accrued (it stays a separate claim).
- Interest of an item = sum over days and amounts of amount x (reference + margin) bp / (day_count x
  10,000), summed exactly and rounded once, half away from zero (billing.money).
- Fixed compensation: the policy's amount per currency (EUR 40.00) once per late invoice (per
  transaction number, not per installment).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from billing.money import div_round_half_up
from receivables.aging import as_day

RATES_PATH = Path(__file__).parent / "data" / "ecb_reference_rates.csv"


class InterestRateMissing(ValueError):
    """A day to charge falls outside the reference-rate table: the table needs its next half-year."""


def load_reference_rates(path: str | Path = RATES_PATH) -> pd.DataFrame:
    """The shipped ECB reference rates: half_year_start (datetime64), rate_bp (int64)."""
    df = pd.read_csv(path, comment="#", dtype={"rate_bp": "int64"}, parse_dates=["half_year_start"])
    df.attrs["origin"] = str(path)
    starts = df["half_year_start"]
    bad = ~((starts.dt.day == 1) & starts.dt.month.isin([1, 7]))
    if bad.any():
        raise ValueError(f"{path}: half_year_start {starts[bad].iloc[0].date()} is not 1 January or 1 July")
    return df.sort_values("half_year_start").reset_index(drop=True)


class RateCalendar:
    """Cumulative reference-rate days: sum of rate_bp over (d0, d1] in O(1) per pair."""

    def __init__(self, rates: pd.DataFrame):
        self.origin = rates.attrs.get("origin", "reference rates")
        starts = rates["half_year_start"].to_numpy(dtype="datetime64[D]")
        self.first = starts[0]
        last = pd.Timestamp(starts[-1])
        self.end = np.datetime64((last + pd.DateOffset(months=6) - pd.Timedelta(days=1)).date(), "D")
        days = np.arange(self.first, self.end + 1, dtype="datetime64[D]")
        idx = np.searchsorted(starts, days, side="right") - 1
        daily = rates["rate_bp"].to_numpy(dtype=np.int64)[idx]
        # cum[k] = sum of the rates of the first k days (cum[0] = 0 is the day before `first`).
        self.cum = np.concatenate([[0], np.cumsum(daily)])

    def rate_days(self, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """Sum of daily reference rates over the days start+1 .. end (0 where end <= start)."""
        start = start.astype("datetime64[D]")
        end = np.maximum(end.astype("datetime64[D]"), start)
        for d in (start, end):
            if len(d) and (d.min() < self.first - 1 or d.max() > self.end):
                worst = d.max() if d.max() > self.end else d.min()
                raise InterestRateMissing(
                    f"{self.origin}: no ECB reference rate for {worst}; the table covers {self.first} to "
                    f"{self.end}: add the half-year's rate")
        return self.cum[(end - self.first + 1).astype(np.int64)] - self.cum[(start - self.first + 1).astype(np.int64)]


def late_interest(items: pd.DataFrame, applications: pd.DataFrame, as_of, rates: pd.DataFrame,
                  interest_policy, customer_classes: pd.Series) -> pd.DataFrame:
    """Interest and fixed compensation per late invoice installment, as of `as_of`.

    `items`: open items (open and closed); `applications`: receipt applications (payment_schedule_id,
    amount_applied_cents, apply_date); `customer_classes`: customer_id -> customer_class. Returns
    payment_schedule_id, trx_number, customer_id, currency, due_date, late_days (of the amount still
    open), interest_cents, compensation_cents; only rows with something to claim.
    """
    cols = ["payment_schedule_id", "trx_number", "customer_id", "currency", "due_date", "late_days",
            "interest_cents", "compensation_cents"]
    if not interest_policy.enabled or items.empty:
        return pd.DataFrame(columns=cols)
    day = as_day(as_of)
    classes = items["customer_id"].map(customer_classes)
    sel = (items["trx_class"].isin(["INV", "DM"]) & classes.isin(list(interest_policy.customer_classes))
           & (items["due_date"].to_numpy(dtype="datetime64[ns]").astype("datetime64[D]") < day))
    it = items.loc[sel].reset_index(drop=True)
    if it.empty:
        return pd.DataFrame(columns=cols)
    cal = RateCalendar(rates)
    due = it["due_date"].to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")
    remaining = np.clip(it["amount_due_remaining_cents"].to_numpy(dtype=np.int64), 0, None)
    asof_arr = np.full(len(it), day)
    margin = int(interest_policy.margin_bp)
    late_days = np.maximum((asof_arr - due).astype(np.int64), 0)
    numer = remaining * (cal.rate_days(due, asof_arr) + margin * late_days)
    late_paid = np.zeros(len(it), dtype=bool)

    apps = applications[applications["payment_schedule_id"].isin(set(it["payment_schedule_id"]))]
    apps = apps[apps["apply_date"].to_numpy(dtype="datetime64[ns]").astype("datetime64[D]") <= day]
    if len(apps):
        pos = pd.Series(np.arange(len(it)), index=it["payment_schedule_id"].to_numpy())
        row = pos.loc[apps["payment_schedule_id"].to_numpy()].to_numpy()
        paid_on = apps["apply_date"].to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")
        a_due = due[row]
        days = np.maximum((paid_on - a_due).astype(np.int64), 0)
        amount = np.clip(apps["amount_applied_cents"].to_numpy(dtype=np.int64), 0, None)
        contrib = amount * (cal.rate_days(a_due, paid_on) + margin * days)
        np.add.at(numer, row, contrib)
        late_paid_rows = row[(days > 0) & (amount > 0)]
        late_paid[late_paid_rows] = True
    interest = div_round_half_up(numer, int(interest_policy.day_count) * 10_000)
    late = ((remaining > 0) & (late_days > 0)) | late_paid
    comp_amount = it["currency"].map(interest_policy.fixed_compensation).fillna(0).to_numpy(dtype=np.int64)
    # Once per invoice: on its first late installment.
    late_rows = it.loc[late].sort_values(["trx_number", "installment"])
    first = np.zeros(len(it), dtype=bool)
    first[late_rows.drop_duplicates("trx_number").index.to_numpy()] = True
    compensation = np.where(first, comp_amount, 0)
    out = it[["payment_schedule_id", "trx_number", "customer_id", "currency", "due_date"]].assign(
        late_days=np.where(remaining > 0, late_days, 0), interest_cents=interest, compensation_cents=compensation)
    return out[(out["interest_cents"] > 0) | (out["compensation_cents"] > 0)].reset_index(drop=True)[cols]
