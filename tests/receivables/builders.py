"""Small, readable open items and policies for the collections rules' tests."""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
import yaml

from billing.schema import conform
from receivables.datasets import ACCOUNT_NOTES, COLLECTION_ACCOUNTS, RECEIPT_APPLICATIONS
from receivables.dunning import DEFAULT_POLICY_PATH, parse_policy
from receivables.open_items import CASH_RECEIPTS, OPEN_ITEMS


def item(ps: str, due: str, remaining: int, *, customer: str = "C1", currency: str = "EUR", original: int | None = None,
         dispute: int = 0, cls: str = "INV", status: str | None = None, trx: str | None = None, installment: int = 1,
         trx_date: str | None = None) -> dict:
    return {"payment_schedule_id": ps, "trx_number": trx or f"T-{ps}", "trx_class": cls, "customer_id": customer,
            "business_unit": "BG01", "currency": currency, "trx_date": pd.Timestamp(trx_date or due) - pd.Timedelta(
                days=0 if trx_date else 30), "due_date": pd.Timestamp(due), "installment": installment,
            "amount_due_original_cents": remaining if original is None else original,
            "amount_due_remaining_cents": remaining, "amount_in_dispute_cents": dispute,
            "status": status or ("OP" if remaining != 0 else "CL")}


def items(*rows: dict) -> pd.DataFrame:
    return conform(pd.DataFrame(list(rows)), OPEN_ITEMS, origin="test")


def receipts(*rows: tuple) -> pd.DataFrame:
    """(customer, currency, cents, date[, status])"""
    df = pd.DataFrame([{"cash_receipt_id": f"R{i}", "receipt_number": f"B{i}", "customer_id": r[0], "currency": r[1],
                        "amount_cents": r[2], "receipt_date": pd.Timestamp(r[3]),
                        "status": r[4] if len(r) > 4 else "APP"} for i, r in enumerate(rows)],
                      columns=CASH_RECEIPTS.names)
    return conform(df, CASH_RECEIPTS, origin="test")


def applications(*rows: tuple) -> pd.DataFrame:
    """(payment_schedule_id, cents, date)"""
    df = pd.DataFrame([{"application_id": f"A{i}", "cash_receipt_id": f"R{i}", "payment_schedule_id": r[0],
                        "customer_id": "C1", "currency": "EUR", "amount_applied_cents": r[1],
                        "apply_date": pd.Timestamp(r[2])} for i, r in enumerate(rows)],
                      columns=RECEIPT_APPLICATIONS.names)
    return conform(df, RECEIPT_APPLICATIONS, origin="test")


def accounts(*rows: dict) -> pd.DataFrame:
    base = {"customer_name": "Customer", "customer_class": "enterprise", "currency": "EUR",
            "billing_email": "ap@example.com", "credit_limit_cents": None, "collector": "Ann", "do_not_dun": False,
            "do_not_dun_reason": None}
    return conform(pd.DataFrame([{**base, **r} for r in rows], columns=COLLECTION_ACCOUNTS.names),
                   COLLECTION_ACCOUNTS, origin="test")


def notes(*rows: dict) -> pd.DataFrame:
    return conform(pd.DataFrame(list(rows), columns=ACCOUNT_NOTES.names), ACCOUNT_NOTES, origin="test")


def raw_policy() -> dict:
    return yaml.safe_load(Path(DEFAULT_POLICY_PATH).read_text())


def policy(**changes):
    """The shipped policy with `changes` applied (dotted paths: "levels.0.days_past_due")."""
    raw = copy.deepcopy(raw_policy())
    for path, value in changes.items():
        node = raw
        parts = path.split("__")
        for p in parts[:-1]:
            node = node[int(p)] if p.isdigit() else node[p]
        last = parts[-1]
        node[int(last) if last.isdigit() else last] = value
    return parse_policy(raw, "test-policy.yaml")


def history(*rows: tuple) -> pd.DataFrame:
    """(payment_schedule_id, level, date)"""
    return pd.DataFrame({"payment_schedule_id": [r[0] for r in rows], "level": [r[1] for r in rows],
                         "action_date": pd.to_datetime([r[2] for r in rows])})
