"""Collections metrics per currency: DSO, overdue share, amount in dispute, promises kept.

- DSO (days sales outstanding, in tenths of a day) = open AR x days / sales of the last `days` days
  (invoices and debit memos dated as-of - days + 1 .. as-of), rounded half away from zero.
- Overdue share (basis points) = open amount past due (days past due > 0, invoices and debit memos) /
  open AR of invoices and debit memos.
- Amount in dispute = per open item the larger of the source's amount in dispute and the register's
  open disputes, never more than what remains open (as in receivables.dunning).
- Promises: a promise counts once its date has passed; it is kept when the customer's receipts in the
  promise's currency from the note's day to the promise date (inclusive) reach the amount promised.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from billing.money import div_round_half_up
from receivables.aging import days_past_due


def metrics(items: pd.DataFrame, receipts: pd.DataFrame, notes: pd.DataFrame, as_of,
            days: int = 90, disputed: pd.Series | None = None) -> pd.DataFrame:
    """currency, open_ar_cents, sales_cents, dso_tenths, overdue_cents, overdue_bp, disputed_cents,
    promises_due, promises_kept."""
    day = pd.Timestamp(as_of).normalize()
    op = items[items["status"] == "OP"]
    sales_window = items[items["trx_class"].isin(["INV", "DM"]) & (items["trx_date"] <= day)
                         & (items["trx_date"] > day - pd.Timedelta(days=days))]
    invdm = op[op["trx_class"].isin(["INV", "DM"])]
    dpd = days_past_due(invdm, day)
    overdue = pd.Series(np.where(dpd > 0, invdm["amount_due_remaining_cents"], 0), index=invdm.index)
    kept = promises_kept(notes, receipts, day)
    reg = op["payment_schedule_id"].map(disputed).fillna(0).to_numpy(dtype=np.int64) if disputed is not None and len(
        disputed) else np.zeros(len(op), dtype=np.int64)
    in_dispute = pd.Series(np.clip(np.maximum(op["amount_in_dispute_cents"].to_numpy(dtype=np.int64), reg), 0,
                                   np.clip(op["amount_due_remaining_cents"].to_numpy(dtype=np.int64), 0, None)),
                           index=op.index)
    rows = []
    for cur in sorted(set(op["currency"]) | set(sales_window["currency"])):
        ar = int(op.loc[op["currency"] == cur, "amount_due_remaining_cents"].sum())
        sales = int(sales_window.loc[sales_window["currency"] == cur, "amount_due_original_cents"].sum())
        base = int(invdm.loc[invdm["currency"] == cur, "amount_due_remaining_cents"].sum())
        over = int(overdue[invdm["currency"] == cur].sum())
        k = kept[kept["currency"] == cur] if len(kept) else kept
        rows.append({
            "currency": cur, "open_ar_cents": ar, "sales_cents": sales,
            "dso_tenths": int(div_round_half_up(ar * days * 10, sales)) if sales > 0 else None,
            "overdue_cents": over, "overdue_bp": int(div_round_half_up(over * 10_000, base)) if base > 0 else 0,
            "disputed_cents": int(in_dispute[op["currency"] == cur].sum()),
            "promises_due": len(k), "promises_kept": int(k["kept"].sum()) if len(k) else 0,
        })
    return pd.DataFrame(rows)


def promises_kept(notes: pd.DataFrame, receipts: pd.DataFrame, as_of) -> pd.DataFrame:
    """Each promise whose date has passed: note_id, customer_id, currency, promised, paid, kept."""
    cols = ["note_id", "customer_id", "currency", "promise_amount_cents", "paid_cents", "kept"]
    day = pd.Timestamp(as_of).normalize()
    if notes is None or notes.empty:
        return pd.DataFrame(columns=cols)
    due = notes[notes["promise_date"].notna() & (notes["promise_date"] < day)]
    rec = receipts[receipts["status"] != "REV"]
    rows = []
    for n in due.itertuples(index=False):
        paid = int(rec.loc[(rec["customer_id"] == n.customer_id) & (rec["currency"] == n.currency)
                           & (rec["receipt_date"] >= n.note_date) & (rec["receipt_date"] <= n.promise_date),
                           "amount_cents"].sum())
        rows.append({"note_id": n.note_id, "customer_id": n.customer_id, "currency": n.currency,
                     "promise_amount_cents": int(n.promise_amount_cents), "paid_cents": paid,
                     "kept": paid >= int(n.promise_amount_cents)})
    return pd.DataFrame(rows, columns=cols)
