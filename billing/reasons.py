"""Why a line is not billed: the reason codes, their category and their precedence.

A line gets the FIRST reason in PRECEDENCE that applies to it. The order is a deliberate convention
(documented in docs/CONVENTIONS.md): data problems first (they must be fixed whatever else holds),
then scope and pricing, then item-level holds, then customer-level holds, then timing, and the cap
last, so that held or deferred lines never consume a cap's headroom.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Category = Literal["exception", "not_billable", "hold", "deferred"]


@dataclass(frozen=True)
class Reason:
    code: str
    category: Category
    meaning: str


PRECEDENCE: tuple[Reason, ...] = (
    Reason("data_quality", "exception", "Quarantined by a data-quality expectation."),
    Reason("duplicate", "exception", "Same person, date, project, type and quantity as another item."),
    Reason("invalid_currency", "exception", "Currency not valid for the period (e.g. BGN after 2025)."),
    Reason("previously_billed", "not_billable", "Billed in an earlier period; nothing to bill now."),
    Reason("non_billable", "not_billable", "Billable flag is off."),
    Reason("covered_by_fixed_fee", "not_billable", "Cost on a fixed-fee or milestone contract."),
    Reason("out_of_scope", "exception", "No scope line of the signed quote covers the item."),
    Reason("missing_bill_rate", "exception", "No bill rate for the role on the item's date."),
    Reason("outside_contract_term", "hold", "Date outside the contract or scope line term."),
    Reason("awaiting_approval", "hold", "Timecard or expense report not approved."),
    Reason("bill_hold", "hold", "Put on hold by a billing specialist."),
    Reason("credit_hold", "hold", "Customer is on credit hold."),
    Reason("missing_po", "hold", "Customer requires a PO number and none is on file."),
    Reason("invoice_frequency", "deferred", "Not an invoicing month for the customer (quarterly)."),
    Reason("over_cap", "hold", "Beyond the not-to-exceed amount of the scope line."),
)

BY_CODE: dict[str, Reason] = {r.code: r for r in PRECEDENCE}
RANK: dict[str, int] = {r.code: i for i, r in enumerate(PRECEDENCE)}
EXCEPTIONS = tuple(r.code for r in PRECEDENCE if r.category == "exception")
