"""What every hand-off target shares: routing, the checks run before anything is written, exact money.

A target receives one document (a row of the store's ``documents`` table plus ``document_key``) and
its printed lines (rows of ``document_lines``). Before it writes anything it turns them into a
``CheckedDocument`` with ``check_document``, which refuses (``DeliveryRejected``, naming the document
key and the field) anything a downstream system would choke on: a missing field, a currency outside
the target's list, lines that do not add up to the document's net, net + tax != gross.

Routing (decided here, documented in docs/DELIVERY.md): a target that is ``customer_facing`` never
receives a cost transfer (no receivable, nothing for the customer to see); a target with ``channels``
only takes documents whose ``delivery_channel`` is one of them. A document a target does not take is
"delivered" as a no-op whose reference says why (``"skipped: channel email"``), so the store records
that the target had nothing to do and the document can be handed off.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import pandas as pd

from billing.columns import MINOR_UNITS
from billing.money import cents_to_decimal
from connectors.targets import Lines, line_records
from delivery.errors import DeliveryRejected

RECEIVABLE_TYPES = ("invoice", "credit_memo")
SKIPPED_PREFIX = "skipped: "


def skipped(reason: str) -> str:
    """The reference a target returns for a document it does not take."""
    return SKIPPED_PREFIX + reason


def skip_reason(document: Mapping, *, customer_facing: bool, channels: Iterable[str] | None) -> str | None:
    """Why a target with these properties does not take ``document`` (None: it does)."""
    doc_type = document.get("document_type")
    if customer_facing and doc_type == "cost_transfer":
        return "cost_transfer is not sent to a customer-facing target"
    if channels is not None:
        channel = document.get("delivery_channel")
        if channel not in set(channels):
            return f"channel {channel}"
    return None


def minor_units(currency: str) -> int:
    return MINOR_UNITS[currency]


def to_major(cents: int, currency: str) -> Decimal:
    """Integer minor units to an exact Decimal in major units (2 decimals for EUR, 0 for JPY)."""
    return cents_to_decimal(int(cents), MINOR_UNITS[currency])


def money_text(cents: int, currency: str, grouping: bool = False) -> str:
    """Exact decimal text in major units: 123456 EUR -> '1234.56' (or '1,234.56' with grouping)."""
    d = to_major(cents, currency)
    return f"{d:,f}" if grouping else f"{d:f}"


def quantity_decimal(quantity_milli: int) -> Decimal:
    """Thousandths of a unit to an exact Decimal without trailing zeros: 7500 -> 7.5, 10000 -> 10."""
    d = (Decimal(int(quantity_milli)) / 1000).normalize()
    return d.quantize(Decimal(1)) if d == d.to_integral_value() else d


def percent_decimal(rate_bp: int) -> Decimal:
    """Basis points to a percentage without trailing zeros: 1900 -> 19, 2050 -> 20.5."""
    d = (Decimal(int(rate_bp)) / 100).normalize()
    return d.quantize(Decimal(1)) if d == d.to_integral_value() else d


def _missing(v) -> bool:
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    return isinstance(v, str) and not v.strip()


def optional_text(v) -> str | None:
    return None if _missing(v) else str(v).strip()


def _int_or_none(v) -> int | None:
    if _missing(v):
        return None
    if isinstance(v, float) and not v.is_integer():
        raise ValueError(f"{v!r} is not a whole number")
    return int(v)


def _date(v) -> date | None:
    if _missing(v):
        return None
    ts = pd.Timestamp(v)
    if pd.isna(ts):
        return None
    return ts.date()


@dataclass(frozen=True)
class CheckedLine:
    line_no: int
    description: str
    quantity_milli: int
    unit_price_cents: int | None
    amount_cents: int
    source_kind: str | None
    contract_id: str | None
    project_id: str | None
    scope_line_id: str | None
    role: str | None
    expenditure_type: str | None
    item_count: int | None


@dataclass(frozen=True)
class CheckedDocument:
    """A document with every field a target needs, typed, and lines that add up to its net."""

    document_key: str
    document_type: str
    period: str
    business_unit: str | None
    customer_id: str
    currency: str
    issue_date: date
    due_date: date | None
    po_number: str | None
    delivery_channel: str | None
    tax_rate_bp: int
    net_cents: int
    tax_cents: int
    gross_cents: int
    content_hash: str | None
    reverses_key: str | None
    lines: tuple[CheckedLine, ...]

    @property
    def minor_units(self) -> int:
        return MINOR_UNITS[self.currency]

    def major(self, cents: int) -> Decimal:
        return to_major(cents, self.currency)

    @property
    def payment_terms_days(self) -> int | None:
        return None if self.due_date is None else (self.due_date - self.issue_date).days


def check_document(document: Mapping, lines: Lines, target: str,
                   currencies: Iterable[str] | None = None) -> CheckedDocument:
    """Type and check one receivable document and its lines; raise ``DeliveryRejected`` naming the field.

    ``currencies``: the ISO codes this target takes (None: every currency the close supports).
    """
    key = optional_text(document.get("document_key")) or "<no document_key>"

    def reject(field: str, message: str, rule: str | None = None):
        raise DeliveryRejected(key, target, field, message, rule)

    if key == "<no document_key>":
        reject("document_key", "the document has no key")
    for f in ("document_type", "period", "customer_id", "currency", "issue_date", "net_cents", "tax_cents",
              "gross_cents", "tax_rate_bp"):
        if _missing(document.get(f)):
            reject(f, "is missing")
    doc_type = str(document["document_type"])
    if doc_type not in RECEIVABLE_TYPES:
        reject("document_type", f"{doc_type!r} is not a receivable document (invoice or credit_memo)")
    currency = str(document["currency"]).strip().upper()
    if currency not in MINOR_UNITS:
        reject("currency", f"{currency!r} is not a currency the close supports")
    if currencies is not None and currency not in set(currencies):
        reject("currency", f"{currency} is not accepted by {target} (accepted: {', '.join(sorted(currencies))})")
    try:
        issue_date = _date(document["issue_date"])
        due_date = _date(document.get("due_date"))
    except (ValueError, TypeError) as exc:
        reject("issue_date", f"not a date: {exc}")
    if due_date is not None and due_date < issue_date:
        reject("due_date", f"{due_date} is before the issue date {issue_date}")
    try:
        net, tax, gross = (_int_or_none(document[f]) for f in ("net_cents", "tax_cents", "gross_cents"))
        rate = _int_or_none(document["tax_rate_bp"])
    except (ValueError, TypeError) as exc:
        reject("net_cents", f"amounts must be whole cents: {exc}")
    if rate < 0:
        reject("tax_rate_bp", f"{rate} is negative")
    if net + tax != gross:
        reject("gross_cents", f"net {net} + tax {tax} != gross {gross} (cents)")

    records = line_records(lines)
    if not records:
        reject("lines", "the document has no lines")
    checked = []
    for r in records:
        no = _int_or_none(r.get("line_no"))
        where = f"lines[{no}]"
        if no is None:
            reject("lines.line_no", "a line has no line number")
        desc = optional_text(r.get("description"))
        if desc is None:
            reject(f"{where}.description", "is empty")
        try:
            qty = _int_or_none(r.get("quantity_milli"))
            price = _int_or_none(r.get("unit_price_cents"))
            amount = _int_or_none(r.get("amount_cents"))
        except (ValueError, TypeError) as exc:
            reject(f"{where}.amount_cents", f"not whole minor units: {exc}")
        if amount is None:
            reject(f"{where}.amount_cents", "is missing")
        if qty is None:
            reject(f"{where}.quantity_milli", "is missing")
        checked.append(CheckedLine(
            line_no=no, description=desc, quantity_milli=qty, unit_price_cents=price, amount_cents=amount,
            source_kind=optional_text(r.get("source_kind")), contract_id=optional_text(r.get("contract_id")),
            project_id=optional_text(r.get("project_id")), scope_line_id=optional_text(r.get("scope_line_id")),
            role=optional_text(r.get("role")), expenditure_type=optional_text(r.get("expenditure_type")),
            item_count=_int_or_none(r.get("item_count"))))
    checked.sort(key=lambda x: x.line_no)
    nos = [x.line_no for x in checked]
    if len(set(nos)) != len(nos):
        reject("lines.line_no", "line numbers repeat")
    total = sum(x.amount_cents for x in checked)
    if total != net:
        reject("net_cents", f"the lines add up to {total} cents, the document's net is {net}")

    return CheckedDocument(
        document_key=key, document_type=doc_type, period=str(document["period"]),
        business_unit=optional_text(document.get("business_unit")), customer_id=str(document["customer_id"]),
        currency=currency, issue_date=issue_date, due_date=due_date,
        po_number=optional_text(document.get("po_number")),
        delivery_channel=optional_text(document.get("delivery_channel")), tax_rate_bp=rate,
        net_cents=net, tax_cents=tax, gross_cents=gross, content_hash=optional_text(document.get("content_hash")),
        reverses_key=optional_text(document.get("reverses_key")), lines=tuple(checked))
