"""The canonical schema of the close: every dataset, column, dtype, meaning and unit, in one place.

Connectors deliver these columns; the billing rules read and write only these names. A data engineer
mapping a new source maps onto this module and nothing else.

Conventions (see docs/CONVENTIONS.md):
- money is integer cents (``int64``) in the currency of the record's contract;
- quantities are integer thousandths of a unit (``quantity_milli``: 7.5 hours = 7500);
- percentages are integer basis points (``markup_bp``: 15.00% = 1500);
- dates are ``datetime64[ns]`` at midnight, no time zone (a billing date, not an instant).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

DType = Literal["string", "int64", "Int64", "bool", "date"]


@dataclass(frozen=True)
class Column:
    name: str
    dtype: DType
    meaning: str
    nullable: bool = False
    allowed: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Dataset:
    name: str
    key: tuple[str, ...]
    meaning: str
    columns: tuple[Column, ...] = field(default_factory=tuple)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")


# --- value sets -------------------------------------------------------------------------------------
BILLING_TYPES = ("time_and_materials", "fixed_fee", "milestone", "recurring", "expense")
INVOICE_GROUPINGS = ("per_contract", "per_project", "consolidated")
INVOICE_FREQUENCIES = ("monthly", "quarterly")
DELIVERY_CHANNELS = ("email", "portal", "edi", "post", "peppol")
BACKUP_REQUIREMENTS = ("none", "timesheet_detail", "expense_receipts")
CUSTOMER_CLASSES = ("enterprise", "public_sector", "smb")
EXPENDITURE_TYPES = ("labor", "travel", "lodging", "meals", "materials", "subcontract", "software")
ADJUSTMENT_TYPES = ("reversal", "transfer_out", "transfer_in")
# ISO 4217 codes the close accepts. BGN is valid only for periods before 2026-01 (Bulgaria joined the
# euro on 2026-01-01); the rule lives in billing.rules, not here.
CURRENCIES = ("EUR", "USD", "GBP", "BGN", "CHF", "SEK", "NOK", "DKK", "PLN", "CZK", "RON", "HUF", "CAD",
              "AUD", "JPY")
# Minor units per currency; all supported currencies have 2 (JPY would be 0) and the close refuses
# others rather than guess.
MINOR_UNITS = {c: 2 for c in CURRENCIES} | {"JPY": 0}


def _c(name: str, dtype: DType, meaning: str, nullable: bool = False,
       allowed: tuple[str, ...] | None = None) -> Column:
    return Column(name, dtype, meaning, nullable, allowed)


# --- column names as constants (no stray string literals in the rules) ----------------------------
CUSTOMER_ID = "customer_id"
CONTRACT_ID = "contract_id"
PROJECT_ID = "project_id"
SCOPE_LINE_ID = "scope_line_id"
ITEM_ID = "item_id"
BUSINESS_UNIT = "business_unit"
CURRENCY = "currency"
ROLE = "role"

CUSTOMERS = Dataset("customers", ("customer_id",), "Bill-to customers and their invoicing requirements.", (
    _c("customer_id", "string", "Customer key in the CRM (Salesforce Account number)."),
    _c("customer_name", "string", "Legal name printed on invoices."),
    _c("customer_class", "string", "Segment for credit and provisioning.", allowed=CUSTOMER_CLASSES),
    _c("currency", "string", "ISO 4217 invoice currency.", allowed=CURRENCIES),
    _c("payment_terms_days", "int64", "Days from invoice date to due date (net terms)."),
    _c("invoice_grouping", "string", "How lines are grouped into invoices.", allowed=INVOICE_GROUPINGS),
    _c("invoice_frequency", "string", "monthly: every close; quarterly: closes of Mar, Jun, Sep, Dec.",
       allowed=INVOICE_FREQUENCIES),
    _c("delivery_channel", "string", "Submission channel for invoices.", allowed=DELIVERY_CHANNELS),
    _c("billing_email", "string", "Address invoices and letters go to.", nullable=True),
    _c("peppol_endpoint_id", "string", "Peppol participant id (scheme:id) for e-invoices.", nullable=True),
    _c("po_required", "bool", "True if every invoice must carry a purchase-order number."),
    _c("po_number", "string", "Customer's current purchase-order number.", nullable=True),
    _c("backup_required", "string", "Backup documentation sent with each invoice.",
       allowed=BACKUP_REQUIREMENTS),
    _c("credit_hold", "bool", "True if billing is on hold for credit reasons."),
    _c("credit_limit_cents", "Int64", "Credit limit in invoice-currency cents; null = no limit.",
       nullable=True),
    _c("tax_country", "string", "ISO 3166-1 alpha-2 country of taxation."),
    _c("tax_rate_bp", "int64", "VAT/sales-tax rate in basis points (2000 = 20.00%)."),
))

CONTRACTS = Dataset("contracts", ("contract_id",), "Signed contracts (from the accepted quote).", (
    _c("contract_id", "string", "Contract key."),
    _c("customer_id", "string", "Bill-to customer."),
    _c("contract_name", "string", "Contract title shown on invoices."),
    _c("business_unit", "string", "Operating unit that owns and bills the contract."),
    _c("currency", "string", "ISO 4217 contract currency; all amounts of the contract are in it.",
       allowed=CURRENCIES),
    _c("start_date", "date", "First day work may be billed (inclusive)."),
    _c("end_date", "date", "Last day work may be billed (inclusive)."),
    _c("po_number", "string", "PO for this contract; overrides the customer's PO.", nullable=True),
))

SCOPE_LINES = Dataset("scope_lines", ("scope_line_id",), "What the quote sold: one line per service line.", (
    _c("scope_line_id", "string", "Scope (quote) line key."),
    _c("contract_id", "string", "Contract the line belongs to."),
    _c("quote_id", "string", "Quote the line came from.", nullable=True),
    _c("service_line", "string", "Service line (practice) sold."),
    _c("billing_type", "string", "How the line is billed.", allowed=BILLING_TYPES),
    _c("role", "string", "T&M: the role this line covers; null = every role of the contract.",
       nullable=True),
    _c("amount_cents", "Int64", "fixed_fee: total fee; recurring: monthly fee; else null.", nullable=True),
    _c("installments", "Int64", "fixed_fee: number of equal monthly installments from start_date "
       "(null or 0 = billed by milestones).", nullable=True),
    _c("not_to_exceed_cents", "Int64", "Cap on everything billed on this line, all periods; null = none.",
       nullable=True),
    _c("markup_bp", "Int64", "expense: markup on cost in basis points; null = at cost.", nullable=True),
    _c("start_date", "date", "First day of the line's term (inclusive)."),
    _c("end_date", "date", "Last day of the line's term (inclusive)."),
))

RATE_CARD = Dataset("rate_card", ("contract_id", "role", "effective_from"), "Bill rates per contract and role.", (
    _c("contract_id", "string", "Contract the rate applies to."),
    _c("role", "string", "Labor role."),
    _c("bill_rate_cents", "int64", "Bill rate per hour in contract-currency cents."),
    _c("effective_from", "date", "First day the rate applies (inclusive)."),
    _c("effective_to", "date", "Last day the rate applies (inclusive); null = open-ended.", nullable=True),
))

PROJECTS = Dataset("projects", ("project_id",), "Delivery projects, each under one contract.", (
    _c("project_id", "string", "Project key (Oracle Projects segment1)."),
    _c("project_name", "string", "Project name."),
    _c("contract_id", "string", "Contract the project delivers."),
    _c("business_unit", "string", "Operating unit of the project (equals its contract's)."),
))

EXPENDITURE_ITEMS = Dataset("expenditure_items", ("item_id",), "Time and cost booked to projects.", (
    _c("item_id", "string", "Expenditure item key."),
    _c("project_id", "string", "Project charged."),
    _c("expenditure_date", "date", "Day the work was done or the cost incurred."),
    _c("person_id", "string", "Employee (labor) or claimant (expense).", nullable=True),
    _c("role", "string", "Labor role; null for expenses.", nullable=True),
    _c("expenditure_type", "string", "labor or an expense category.", allowed=EXPENDITURE_TYPES),
    _c("quantity_milli", "int64", "Quantity in thousandths (hours for labor; units for expenses); "
       "negative on a reversal."),
    _c("raw_cost_cents", "int64", "Raw cost in contract-currency cents; negative on a reversal."),
    _c("billable", "bool", "Billable flag from the project plan."),
    _c("bill_hold", "bool", "True if a billing specialist put the item on hold."),
    _c("approved", "bool", "True once the timecard or expense report is approved."),
    _c("billed_period", "string", "Period (YYYY-MM) the item was billed in; null = not yet billed.",
       nullable=True),
    _c("adjusts_item_id", "string", "The item this one reverses or transfers; null otherwise.",
       nullable=True),
    _c("adjustment_type", "string", "reversal, transfer_out (from this project) or transfer_in.",
       nullable=True, allowed=ADJUSTMENT_TYPES),
))

MILESTONES = Dataset("milestones", ("milestone_id",), "Billing milestones of milestone-type scope lines.", (
    _c("milestone_id", "string", "Milestone key."),
    _c("scope_line_id", "string", "Milestone scope line."),
    _c("description", "string", "What was delivered."),
    _c("amount_cents", "int64", "Amount billed on completion."),
    _c("completed_date", "date", "Day the customer accepted it; null = not complete.", nullable=True),
))

PRIOR_INVOICE_LINES = Dataset("prior_invoice_lines", ("invoice_id", "line_no"),
                              "Lines billed in earlier periods (for caps, installments, reversals).", (
    _c("invoice_id", "string", "Invoice number issued."),
    _c("line_no", "int64", "Line number on the invoice."),
    _c("period", "string", "Period billed (YYYY-MM)."),
    _c("contract_id", "string", "Contract billed."),
    _c("scope_line_id", "string", "Scope line billed."),
    _c("source_kind", "string", "labor, expense, fixed_fee, milestone, recurring or manual."),
    _c("source_id", "string", "Item, milestone, installment or tracker row billed."),
    _c("quantity_milli", "int64", "Quantity billed in thousandths."),
    _c("amount_cents", "int64", "Net amount billed in contract-currency cents."),
))

TRACKER_ADDITIONS = Dataset("tracker_additions", ("addition_id",), "Manual additions from a billing tracker.", (
    _c("addition_id", "string", "Row key in the tracker."),
    _c("contract_id", "string", "Contract to bill."),
    _c("project_id", "string", "Project, where the addition belongs to one.", nullable=True),
    _c("description", "string", "Invoice line text."),
    _c("amount_cents", "int64", "Amount to bill (negative for a manual credit)."),
    _c("service_date", "date", "Day the service was delivered."),
    _c("source", "string", "Where the row came from (file, sheet, row)."),
    _c("entered_by", "string", "Who entered it."),
))

INPUT_DATASETS: dict[str, Dataset] = {d.name: d for d in (
    CUSTOMERS, CONTRACTS, SCOPE_LINES, RATE_CARD, PROJECTS, EXPENDITURE_ITEMS, MILESTONES,
    PRIOR_INVOICE_LINES, TRACKER_ADDITIONS,
)}

# --- computed datasets ------------------------------------------------------------------------------
SOURCE_KINDS = ("labor", "expense", "fixed_fee", "milestone", "recurring", "manual")

BILLING_LINES = Dataset("billing_lines", ("line_id",), "One row per candidate billing event of the period.", (
    _c("line_id", "string", "Deterministic key: source_kind:source_id."),
    _c("period", "string", "Period closed (YYYY-MM)."),
    _c("business_unit", "string", "Operating unit."),
    _c("customer_id", "string", "Bill-to customer."),
    _c("contract_id", "string", "Contract."),
    _c("project_id", "string", "Project; null for contract-level lines.", nullable=True),
    _c("scope_line_id", "string", "Scope line matched; null when none matched.", nullable=True),
    _c("billing_type", "string", "Billing type of the scope line.", nullable=True),
    _c("source_kind", "string", "What produced the line.", allowed=SOURCE_KINDS),
    _c("source_id", "string", "Item, milestone, installment or tracker row."),
    _c("service_date", "date", "Expenditure, completion or service date."),
    _c("description", "string", "Invoice line text."),
    _c("role", "string", "Labor role.", nullable=True),
    _c("person_id", "string", "Person.", nullable=True),
    _c("expenditure_type", "string", "Expenditure type.", nullable=True),
    _c("currency", "string", "Contract currency."),
    _c("quantity_milli", "int64", "Quantity in thousandths."),
    _c("unit_price_cents", "Int64", "Bill rate per unit; null when not priced per unit.", nullable=True),
    _c("cost_cents", "int64", "Raw cost carried by the line (0 for fees)."),
    _c("amount_cents", "int64", "Candidate amount: what the line bills before holds and caps."),
    _c("billed_cents", "int64", "Part of the candidate billed this period."),
    _c("unbilled_cents", "int64", "Part not billed this period (amount - billed)."),
    _c("reason", "string", "Why (part of) the line is not billed; null when fully billed.",
       nullable=True),
    _c("adjusts_item_id", "string", "Item reversed or transferred by this line.", nullable=True),
    _c("adjustment_type", "string", "reversal, transfer_out or transfer_in.", nullable=True),
    _c("credits_prior_billing", "bool", "True when the line credits an item billed in an earlier period: "
       "it goes on a credit memo, never netted into an invoice."),
))


def schema_markdown() -> str:
    """The schema as Markdown (docs/SCHEMA.md is generated from this)."""
    out = ["# Canonical schema", "", "Generated from `billing/columns.py`; do not edit by hand.", ""]
    for d in (*INPUT_DATASETS.values(), BILLING_LINES):
        out += [f"## {d.name}", "", d.meaning, "", f"Key: `{', '.join(d.key)}`", "",
                "| column | dtype | null | meaning |", "|---|---|---|---|"]
        for c in d.columns:
            allowed = f" One of: {', '.join(c.allowed)}." if c.allowed else ""
            out.append(f"| `{c.name}` | {c.dtype} | {'yes' if c.nullable else 'no'} | {c.meaning}{allowed} |")
        out.append("")
    return "\n".join(out)
