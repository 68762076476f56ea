"""Credit exposure against each customer's limit, and the credit holds it sets and releases.

Exposure (in the account's currency) = open AR (remaining amounts of open items, credit memos
included) + unbilled from the latest close (store.Store.unbilled_by_customer(period)). Amounts in other
currencies are not converted: they are reported beside it, never silently added.
- over the limit (exposure > limit): set a ``credit_hold`` with the figures as its reason, unless the
  customer is already on hold; the close reads the same hold (billing.billable, extra_credit_holds);
- within the limit again: release the holds collections set (set_by = ``HOLD_ACTOR``); a hold a person
  set by hand is theirs to release;
- no limit (null): never held for exposure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from billing.money import format_cents

HOLD_ACTOR = "collections"


def exposure(items: pd.DataFrame, unbilled: pd.DataFrame, accounts: pd.DataFrame) -> pd.DataFrame:
    """One row per account: open_ar_cents, unbilled_cents, exposure_cents, limit, headroom, over_limit."""
    acc = accounts[["customer_id", "currency", "credit_limit_cents"]].copy()
    op = items[items["status"] == "OP"]
    ar = op.groupby(["customer_id", "currency"])["amount_due_remaining_cents"].sum()
    ub = (unbilled.groupby(["customer_id", "currency"])["unbilled_cents"].sum() if len(unbilled)
          else pd.Series([], dtype="int64"))
    key = pd.MultiIndex.from_frame(acc[["customer_id", "currency"]])
    acc["open_ar_cents"] = ar.reindex(key).fillna(0).astype("int64").to_numpy()
    acc["unbilled_cents"] = ub.reindex(key).fillna(0).astype("int64").to_numpy() if len(ub) else 0
    acc["exposure_cents"] = acc["open_ar_cents"] + acc["unbilled_cents"]
    other = op[~op.set_index(["customer_id", "currency"]).index.isin(key)]
    others = {c: ",".join(sorted(set(g))) for c, g in other.groupby("customer_id")["currency"]}
    acc["other_currency_open"] = [others.get(c, "") for c in acc["customer_id"]]
    limit = acc["credit_limit_cents"]
    acc["headroom_cents"] = (limit - acc["exposure_cents"]).astype("Int64")
    acc["over_limit"] = (limit.notna() & (acc["exposure_cents"] > limit.fillna(0))).astype(bool)
    return acc.reset_index(drop=True)


def hold_decisions(exp: pd.DataFrame, active_holds: pd.DataFrame) -> pd.DataFrame:
    """customer_id, action (set | release), reason. `active_holds`: customer_id, set_by of unreleased holds."""
    held = set(active_holds["customer_id"]) if len(active_holds) else set()
    ours_only = set()
    if len(active_holds):
        by = active_holds.groupby("customer_id")["set_by"].agg(lambda s: set(s) == {HOLD_ACTOR})
        ours_only = set(by[by].index)
    rows = []
    for r in exp.itertuples(index=False):
        figures = (f"exposure {format_cents(r.exposure_cents, r.currency)} (open AR "
                   f"{format_cents(r.open_ar_cents)} + unbilled {format_cents(r.unbilled_cents)})")
        if r.over_limit and r.customer_id not in held:
            rows.append((r.customer_id, "set", f"{figures} exceeds the credit limit "
                                               f"{format_cents(int(r.credit_limit_cents), r.currency)}"))
        elif not r.over_limit and r.customer_id in ours_only:
            limit = "no limit" if pd.isna(r.credit_limit_cents) else \
                f"the credit limit {format_cents(int(r.credit_limit_cents), r.currency)}"
            rows.append((r.customer_id, "release", f"{figures} is within {limit}"))
    return pd.DataFrame(rows, columns=["customer_id", "action", "reason"])


def over_limit_customers(exp: pd.DataFrame) -> np.ndarray:
    return exp.loc[exp["over_limit"], "customer_id"].to_numpy()
