"""Payment plans: installments for a customer's overdue balance, manager approval, missed installments.

- A plan covers chosen overdue items of one customer in one currency; its total is their overdue amount.
- Installments are equal (integer division); the remainder goes on the last, as fixed fees do.
- A plan is created ``pending`` and becomes ``active`` only when someone other than its preparer
  approves it (billing.approvals.check_segregation); a rejection makes it ``rejected``.
- Missed installment: payments are the customer's receipts in the plan currency dated from the
  approval day on; installment k is missed when the as-of date is more than ``grace_days`` after its
  due date and those payments are less than installments 1..k together. The plan is then ``broken``
  and its items go back on the dunning ladder at the level they had reached (the ladder's history is
  kept; only the plan exclusion ends). When payments cover the total, the plan is ``completed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from billing.approvals import check_segregation

PLAN_STATUSES = ("pending", "active", "rejected", "broken", "completed")


class PlanError(ValueError):
    """A plan is refused; the message names the plan or customer and the field."""


@dataclass(frozen=True)
class PlanProposal:
    customer_id: str
    currency: str
    items: tuple[str, ...]
    total_cents: int
    installments: pd.DataFrame  # seq, due_date, amount_cents


def propose(customer_id: str, currency: str, overdue_items: pd.DataFrame, n_installments: int,
            first_due: date, every_days: int = 30, max_installments: int = 12) -> PlanProposal:
    """Split the overdue amount of `overdue_items` (payment_schedule_id, overdue_cents) into installments."""
    where = f"payment plan for {customer_id}"
    if not 1 <= n_installments <= max_installments:
        raise PlanError(f"{where}: installments {n_installments} must be between 1 and {max_installments}")
    if every_days < 1:
        raise PlanError(f"{where}: every_days {every_days} must be at least 1")
    total = int(overdue_items["overdue_cents"].sum())
    if total <= 0:
        raise PlanError(f"{where}: the items have no overdue amount to plan")
    share = total // n_installments
    amounts = np.full(n_installments, share, dtype=np.int64)
    amounts[-1] += total - share * n_installments
    dues = [pd.Timestamp(first_due) + pd.Timedelta(days=every_days * k) for k in range(n_installments)]
    inst = pd.DataFrame({"seq": np.arange(1, n_installments + 1), "due_date": pd.to_datetime(dues),
                         "amount_cents": amounts})
    return PlanProposal(customer_id, currency, tuple(sorted(overdue_items["payment_schedule_id"].astype(str))),
                        total, inst)


def approve(plan_id: str, status: str, preparer: str, approver: str) -> str:
    """The approver's name if the pending plan may be approved by them; PlanError otherwise."""
    if status != "pending":
        raise PlanError(f"payment plan {plan_id}: status is {status!r}; only a pending plan can be approved")
    try:
        return check_segregation(preparer, approver)
    except ValueError as exc:
        raise PlanError(f"payment plan {plan_id}: {exc}") from None


def check_installments(plans: pd.DataFrame, installments: pd.DataFrame, receipts: pd.DataFrame, as_of,
                       grace_days: int) -> pd.DataFrame:
    """For each active plan: paid, due so far, the first missed installment and the new status.

    `plans`: plan_id, customer_id, currency, total_cents, status, approved_on. `installments`: plan_id,
    seq, due_date, amount_cents. `receipts`: CASH_RECEIPTS (customer_id, currency, amount_cents,
    receipt_date, status). Returns plan_id, paid_cents, due_cents, missed_seq (0 = none), new_status.
    """
    cols = ["plan_id", "paid_cents", "due_cents", "missed_seq", "new_status"]
    active = plans[plans["status"] == "active"]
    if active.empty:
        return pd.DataFrame(columns=cols)
    day = pd.Timestamp(as_of)
    rec = receipts[(receipts["status"] != "REV") & (receipts["receipt_date"] <= day)]
    rows = []
    for p in active.itertuples(index=False):
        paid = int(rec.loc[(rec["customer_id"] == p.customer_id) & (rec["currency"] == p.currency)
                           & (rec["receipt_date"] >= pd.Timestamp(p.approved_on)), "amount_cents"].sum())
        inst = installments[installments["plan_id"] == p.plan_id].sort_values("seq")
        cum = inst["amount_cents"].cumsum().to_numpy()
        overdue_by = (day - pd.Timedelta(days=grace_days)) > inst["due_date"]
        missed = inst["seq"].to_numpy()[overdue_by.to_numpy() & (cum > paid)]
        due_so_far = int(inst.loc[inst["due_date"] <= day, "amount_cents"].sum())
        if paid >= int(p.total_cents):
            status = "completed"
        elif len(missed):
            status = "broken"
        else:
            status = "active"
        rows.append({"plan_id": p.plan_id, "paid_cents": paid, "due_cents": due_so_far,
                     "missed_seq": int(missed[0]) if len(missed) else 0, "new_status": status})
    return pd.DataFrame(rows, columns=cols)


def items_under_active_plans(plans: pd.DataFrame, plan_items: pd.DataFrame) -> set[str]:
    if plans is None or plans.empty:
        return set()
    ids = set(plans.loc[plans["status"] == "active", "plan_id"])
    return set(plan_items.loc[plan_items["plan_id"].isin(ids), "payment_schedule_id"])
