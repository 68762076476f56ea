"""The datasets collections reads besides open items and receipts: applications, accounts, notes.

Open items and cash receipts keep their canonical shape in `receivables.open_items`; this module adds
what the collections rules need to know about payments and customers, in the same conventions (money
int64 cents in the record's currency, dates ``datetime64[ns]`` at midnight).
"""

from __future__ import annotations

import pandas as pd

from billing.columns import CURRENCIES, CUSTOMER_CLASSES, Column, Dataset
from billing.schema import SchemaError, SchemaProblem
from receivables.open_items import CASH_RECEIPTS, OPEN_ITEMS

RECEIPT_APPLICATIONS = Dataset(
    "receipt_applications", ("application_id",),
    "Receipts and credit memos applied to open items (AR_RECEIVABLE_APPLICATIONS_ALL).", (
        Column("application_id", "string", "Application key."),
        Column("cash_receipt_id", "string", "Receipt applied; null for a credit-memo application.", nullable=True),
        Column("payment_schedule_id", "string", "Installment the money was applied to."),
        Column("customer_id", "string", "Customer of the installment."),
        Column("currency", "string", "ISO 4217 currency of the installment."),
        Column("amount_applied_cents", "int64", "Amount applied (reduces the installment's remaining amount)."),
        Column("apply_date", "date", "Day the money reached the installment (the receipt's value date)."),
    ))

COLLECTION_ACCOUNTS = Dataset(
    "collection_accounts", ("customer_id",),
    "What collections needs per customer: contact, class, limit, collector and the do-not-dun flag.", (
        Column("customer_id", "string", "Customer key (the close's customer_id)."),
        Column("customer_name", "string", "Legal name printed on letters."),
        Column("customer_class", "string", "enterprise, public_sector or smb (all business debtors).",
               allowed=CUSTOMER_CLASSES),
        Column("currency", "string", "Main currency of the account.", allowed=CURRENCIES),
        Column("billing_email", "string", "Where letters and statements go.", nullable=True),
        Column("credit_limit_cents", "Int64", "Credit limit in the account currency; null = no limit.",
               nullable=True),
        Column("collector", "string", "Collector who works the account."),
        Column("do_not_dun", "bool", "True: no dunning letters (the reason says why)."),
        Column("do_not_dun_reason", "string", "Why the account is not dunned.", nullable=True),
    ))

ACCOUNT_NOTES = Dataset(
    "account_notes", ("note_id",),
    "Collector notes per customer, with promises to pay where the customer made one.", (
        Column("note_id", "string", "Note key."),
        Column("customer_id", "string", "Customer the note is about."),
        Column("note_date", "date", "Day the note was written."),
        Column("author", "string", "Who wrote it."),
        Column("text", "string", "The note."),
        Column("promise_date", "date", "Day the customer promised to pay by; null = no promise.", nullable=True),
        Column("promise_amount_cents", "Int64", "Amount promised; null = no promise.", nullable=True),
        Column("currency", "string", "Currency of the promise.", nullable=True),
    ))

DATASETS: dict[str, Dataset] = {d.name: d for d in (
    OPEN_ITEMS, CASH_RECEIPTS, RECEIPT_APPLICATIONS, COLLECTION_ACCOUNTS, ACCOUNT_NOTES)}


class ReceivablesInputError(SchemaError):
    """Receivables data that the rules refuse (unknown currency, negative limit...): names record and field."""


def check_inputs(data: dict[str, pd.DataFrame], origin: str = "receivables") -> None:
    """Refuse what the rules cannot handle safely, naming the dataset, record key and field.

    Beyond the dtypes (checked by `billing.schema.conform`): currencies must be known ISO codes the
    project supports and credit limits must not be negative.
    """
    problems: list[SchemaProblem] = []
    for name, dataset in DATASETS.items():
        df = data.get(name)
        if df is None or df.empty:
            continue
        key = dataset.key[0]
        if "currency" in df.columns:
            cur = df["currency"]
            bad = cur.notna() & ~cur.isin(CURRENCIES)
            for k, v in zip(df.loc[bad, key].head(20), cur[bad].head(20), strict=True):
                problems.append(SchemaProblem(f"{origin}:{name} {key}={k}", None, "currency",
                                              f"unknown currency {v!r}; supported: {', '.join(CURRENCIES)}"))
    accounts = data.get("collection_accounts")
    if accounts is not None and len(accounts):
        lim = accounts["credit_limit_cents"]
        bad = lim.notna() & (lim.fillna(0) < 0)
        for k, v in zip(accounts.loc[bad, "customer_id"].head(20), lim[bad].head(20), strict=True):
            problems.append(SchemaProblem(f"{origin}:collection_accounts customer_id={k}", None,
                                          "credit_limit_cents", f"credit limit {v} is negative"))
    if problems:
        raise ReceivablesInputError(problems)
