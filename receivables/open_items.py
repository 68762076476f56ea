"""The canonical shape of receivables: transactions' payment schedules (open items) and cash receipts.

Shaped like Oracle Receivables so a data engineer maps ``AR_PAYMENT_SCHEDULES_ALL`` and
``AR_CASH_RECEIPTS_ALL`` one to one; every receivables rule (aging, dunning, cash application,
provision) reads these names and nothing else. Money is int64 cents in the item's currency; dates are
``datetime64[ns]`` at midnight. Amounts follow Oracle's signs: invoices and debit memos positive,
credit memos negative; ``amount_due_remaining_cents`` is what is still open after applications.
"""

from __future__ import annotations

from billing.columns import Column, Dataset

TRX_CLASSES = ("INV", "CM", "DM")
ITEM_STATUSES = ("OP", "CL")  # open, closed (Oracle's payment-schedule status codes)
RECEIPT_STATUSES = ("APP", "UNAPP", "UNID", "ACC", "REV")  # applied, unapplied, unidentified, on account, reversed

OPEN_ITEMS = Dataset(
    "open_items", ("payment_schedule_id",),
    "One row per installment of a receivable (AR_PAYMENT_SCHEDULES_ALL).", (
        Column("payment_schedule_id", "string", "Installment key."),
        Column("trx_number", "string", "Transaction number printed on the document (the close's document key)."),
        Column("trx_class", "string", "INV invoice, CM credit memo, DM debit memo.", allowed=TRX_CLASSES),
        Column("customer_id", "string", "Bill-to customer."),
        Column("business_unit", "string", "Operating unit that issued the document."),
        Column("currency", "string", "ISO 4217 currency of the document."),
        Column("trx_date", "date", "Transaction (issue) date."),
        Column("due_date", "date", "Due date of this installment."),
        Column("installment", "int64", "Installment number, 1 for single-term documents."),
        Column("amount_due_original_cents", "int64", "Amount of the installment when issued (CM negative)."),
        Column("amount_due_remaining_cents", "int64", "Still open after applications (0 when closed)."),
        Column("amount_in_dispute_cents", "int64", "Part of the open amount under an open dispute."),
        Column("status", "string", "OP open, CL closed.", allowed=ITEM_STATUSES),
    ))

CASH_RECEIPTS = Dataset(
    "cash_receipts", ("cash_receipt_id",),
    "Money received (AR_CASH_RECEIPTS_ALL): one row per receipt, applied or not.", (
        Column("cash_receipt_id", "string", "Receipt key (bank reference + entry id for statement lines)."),
        Column("receipt_number", "string", "Bank or lockbox reference."),
        Column("customer_id", "string", "Payer, once identified.", nullable=True),
        Column("currency", "string", "ISO 4217 currency of the receipt."),
        Column("amount_cents", "int64", "Amount received (negative for a returned payment)."),
        Column("receipt_date", "date", "Value date."),
        Column("status", "string", "APP, UNAPP, UNID, ACC or REV.", allowed=RECEIPT_STATUSES),
    ))
