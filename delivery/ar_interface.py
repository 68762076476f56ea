"""ERP AR interface: invoice lines as rows of Oracle Receivables' ``RA_INTERFACE_LINES_ALL``.

AutoInvoice imports from this table. Each document becomes one LINE row per printed line and, where
the document carries tax, one TAX row per LINE row linked to it (``LINK_TO_LINE_*``), so the
receivable AutoInvoice creates equals the invoice the customer received (the UBL file, the PDF) to the
cent: the LINE amounts add up to the document's net and the TAX amounts to its tax.

How a document is identified (the interface line descriptive flexfield, context
``ArInterfaceSettings.context``): ``INTERFACE_LINE_ATTRIBUTE1`` = document key, ``ATTRIBUTE2`` = line
number, ``ATTRIBUTE3`` = ``LINE`` or ``TAX``, ``ATTRIBUTE4`` = the hand-off's idempotency key. A
grouping rule on ATTRIBUTE1 makes one transaction per document; transaction numbers are left to the
batch source's automatic numbering (``TRX_NUMBER`` is 20 characters, shorter than our keys).

Exactly once: all rows of a document are inserted in one transaction; a second delivery of the same
document with the same idempotency key finds them and inserts nothing; the same document key under
another idempotency key is refused (a handed-off document is never re-imported). The table has a
unique constraint on (context, ATTRIBUTE1-3), so two concurrent deliveries cannot both insert.

Money: ``NUMBER`` columns are ``Numeric`` with a fixed scale and bound as exact ``Decimal`` (amounts
in major units: 2 decimals, 0 for JPY). Credit memos carry negative amounts and no payment terms
(AutoInvoice refuses terms on a credit memo).

The table is created from this module's own MetaData (``create_table=True``) for tests, demos and a
staging database; against a real E-Business Suite pass ``create_table=False`` and ``schema="AR"``.
Example::

    target = ArInterfaceTarget("postgresql+psycopg2://ar@erp-stage/ar", ArInterfaceSettings(
        batch_source_name="BILLING CYCLE", currencies=("EUR", "GBP", "USD"), org_ids={"DE01": 204}))
    target.deliver(document, lines, idempotency_key)   # -> "RA_INTERFACE_LINES_ALL:BILLING_CYCLE:INV-..."
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

import pandas as pd
from pydantic import BaseModel, Field
from sqlalchemy import (
    Column,
    Date,
    Engine,
    MetaData,
    Numeric,
    String,
    Table,
    UniqueConstraint,
    create_engine,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError

from billing.money import div_round_half_up
from delivery.base import CheckedDocument, check_document, percent_decimal, skip_reason, skipped
from delivery.errors import DeliveryRejected

TABLE_NAME = "RA_INTERFACE_LINES_ALL"
N_ATTRIBUTES = 15
DESCRIPTION_LENGTH = 240


def ra_interface_lines_all(metadata: MetaData, schema: str | None = None) -> Table:
    """The columns of RA_INTERFACE_LINES_ALL that AutoInvoice needs for our documents (Oracle names)."""
    attrs = [Column(f"INTERFACE_LINE_ATTRIBUTE{i}", String(150)) for i in range(1, N_ATTRIBUTES + 1)]
    links = [Column(f"LINK_TO_LINE_ATTRIBUTE{i}", String(150)) for i in range(1, N_ATTRIBUTES + 1)]
    return Table(
        TABLE_NAME, metadata,
        Column("INTERFACE_LINE_ID", Numeric(15, 0)),          # AutoInvoice fills it from its sequence
        Column("INTERFACE_LINE_CONTEXT", String(30), nullable=False),
        *attrs,
        Column("BATCH_SOURCE_NAME", String(50), nullable=False),
        Column("SET_OF_BOOKS_ID", Numeric(15, 0)),
        Column("ORG_ID", Numeric(15, 0)),
        Column("LINE_TYPE", String(20), nullable=False),       # LINE or TAX
        Column("DESCRIPTION", String(DESCRIPTION_LENGTH), nullable=False),
        Column("CURRENCY_CODE", String(15), nullable=False),
        Column("AMOUNT", Numeric(22, 2)),
        Column("QUANTITY", Numeric(22, 3)),
        Column("UNIT_SELLING_PRICE", Numeric(22, 2)),
        Column("CUST_TRX_TYPE_NAME", String(20)),
        Column("TERM_NAME", String(15)),
        Column("ORIG_SYSTEM_BILL_CUSTOMER_REF", String(240)),
        Column("ORIG_SYSTEM_BILL_ADDRESS_REF", String(240)),
        Column("CONVERSION_TYPE", String(30), nullable=False),
        Column("CONVERSION_DATE", Date),
        Column("CONVERSION_RATE", Numeric(22, 10)),
        Column("TRX_DATE", Date),
        Column("GL_DATE", Date),
        Column("TRX_NUMBER", String(20)),
        Column("PURCHASE_ORDER", String(50)),
        Column("TAX_CODE", String(50)),
        Column("TAX_RATE", Numeric(9, 4)),
        Column("LINK_TO_LINE_CONTEXT", String(30)),
        *links,
        Column("COMMENTS", String(240)),
        UniqueConstraint("INTERFACE_LINE_CONTEXT", "INTERFACE_LINE_ATTRIBUTE1", "INTERFACE_LINE_ATTRIBUTE2",
                         "INTERFACE_LINE_ATTRIBUTE3", name="UQ_RA_IFACE_LINE_DFF"),
        schema=schema,
    )


class ArInterfaceSettings(BaseModel):
    """How our documents map onto AutoInvoice's set-up (batch source, transaction types, terms, rates)."""

    batch_source_name: str = Field("BILLING CYCLE", max_length=50,
                                   description="AutoInvoice batch source (imported, automatic numbering).")
    context: str = Field("BILLING_CYCLE", max_length=30, description="Interface line DFF context.")
    invoice_trx_type: str = Field("Invoice", max_length=20, description="Transaction type for invoices.")
    credit_memo_trx_type: str = Field("Credit Memo", max_length=20,
                                      description="Transaction type for credit memos.")
    term_name_format: str = Field("NET {days}", description="Payment terms name from the net days.")
    conversion_type: str = Field("Corporate", max_length=30,
                                 description="Rate type for documents not in the ledger currency.")
    ledger_currencies: dict[str, str] = Field(
        default_factory=lambda: {"BG01": "EUR", "DE01": "EUR", "UK01": "GBP", "US01": "USD"},
        description="Business unit -> ledger (functional) currency: a document in it goes as User, rate 1.")
    org_ids: dict[str, int] = Field(default_factory=dict,
                                    description="Business unit -> ORG_ID (operating unit); empty: single org.")
    set_of_books_id: int | None = Field(None, description="Ledger id, where the interface needs it.")
    currencies: tuple[str, ...] | None = Field(
        None, description="Currencies the ledger takes (FND_CURRENCIES enabled); None: every close currency.")
    tax_lines: bool = Field(True, description="Pass the document's tax as TAX rows linked to the lines.")
    tax_code_format: str = Field("VAT {percent}%", description="TAX_CODE of a TAX row from the rate.")


class ArInterfaceTarget:
    """Inserts each document's rows into RA_INTERFACE_LINES_ALL, one transaction per document.

    ``engine``: a SQLAlchemy Engine or URL. ``schema``: the table's schema (``"AR"`` on E-Business Suite).
    """

    name = "ar_interface"
    customer_facing = True     # a receivable: never a cost transfer
    channels = None            # every delivery channel is invoiced in AR

    def __init__(self, engine: Engine | str, settings: ArInterfaceSettings | None = None, *,
                 schema: str | None = None, create_table: bool = True):
        self.engine = create_engine(engine) if isinstance(engine, str) else engine
        self.settings = settings or ArInterfaceSettings()
        self.metadata = MetaData()
        self.table = ra_interface_lines_all(self.metadata, schema)
        if create_table:
            self.metadata.create_all(self.engine)

    def reference(self, document_key: str) -> str:
        return f"{TABLE_NAME}:{self.settings.context}:{document_key}"

    # -- build and check (no I/O) ------------------------------------------------------------------
    def rows(self, document: Mapping, lines: pd.DataFrame, idempotency_key: str) -> list[dict]:
        """The interface rows of one document, checked; raises ``DeliveryRejected`` naming the field."""
        s = self.settings
        doc = check_document(document, lines, self.name, s.currencies)
        key = doc.document_key

        def reject(field: str, message: str):
            raise DeliveryRejected(key, self.name, field, message, rule=TABLE_NAME)

        if len(key) > 150:
            reject("document_key", f"longer than the 150 characters of INTERFACE_LINE_ATTRIBUTE1 ({len(key)})")
        org_id = None
        if s.org_ids:
            if doc.business_unit not in s.org_ids:
                reject("business_unit", f"{doc.business_unit!r} has no ORG_ID in the AR settings")
            org_id = s.org_ids[doc.business_unit]
        credit = doc.document_type == "credit_memo"
        term = None
        if not credit:
            if doc.payment_terms_days is None:
                reject("due_date", "an invoice needs a due date for its payment terms")
            term = s.term_name_format.format(days=doc.payment_terms_days)
            if len(term) > 15:
                reject("due_date", f"terms name {term!r} is longer than TERM_NAME's 15 characters")
        if doc.po_number and len(doc.po_number) > 50:
            reject("po_number", f"longer than PURCHASE_ORDER's 50 characters ({len(doc.po_number)})")
        in_ledger_currency = s.ledger_currencies.get(doc.business_unit or "") == doc.currency
        # Every row carries every column (None where unused): one executemany, one shape.
        common = {c.name: None for c in self.table.columns} | {
            "INTERFACE_LINE_CONTEXT": s.context, "INTERFACE_LINE_ATTRIBUTE1": key,
            "INTERFACE_LINE_ATTRIBUTE4": idempotency_key, "BATCH_SOURCE_NAME": s.batch_source_name,
            "SET_OF_BOOKS_ID": s.set_of_books_id, "ORG_ID": org_id, "CURRENCY_CODE": doc.currency,
            "CUST_TRX_TYPE_NAME": s.credit_memo_trx_type if credit else s.invoice_trx_type,
            "TERM_NAME": term, "ORIG_SYSTEM_BILL_CUSTOMER_REF": doc.customer_id,
            "ORIG_SYSTEM_BILL_ADDRESS_REF": doc.customer_id,
            # AutoInvoice: a document in the ledger currency goes as User at rate 1; others at the
            # rate type's daily rate on the transaction date.
            "CONVERSION_TYPE": "User" if in_ledger_currency else s.conversion_type,
            "CONVERSION_RATE": Decimal(1) if in_ledger_currency else None,
            "CONVERSION_DATE": None if in_ledger_currency else doc.issue_date,
            "TRX_DATE": doc.issue_date, "GL_DATE": doc.issue_date, "TRX_NUMBER": None,
            "PURCHASE_ORDER": doc.po_number,
            "COMMENTS": f"Reverses {doc.reverses_key}"[:240] if doc.reverses_key else None,
        }
        rows = []
        for line in doc.lines:
            rows.append(common | {
                "INTERFACE_LINE_ATTRIBUTE2": str(line.line_no), "INTERFACE_LINE_ATTRIBUTE3": "LINE",
                "LINE_TYPE": "LINE", "DESCRIPTION": line.description[:DESCRIPTION_LENGTH],
                "AMOUNT": doc.major(line.amount_cents),
                "QUANTITY": Decimal(line.quantity_milli) / 1000,
                "UNIT_SELLING_PRICE": None if line.unit_price_cents is None else doc.major(line.unit_price_cents),
            })
        if s.tax_lines and doc.tax_cents != 0:
            percent = percent_decimal(doc.tax_rate_bp)
            for line, tax in zip(doc.lines, line_taxes(doc), strict=True):
                if tax == 0:
                    continue
                rows.append(common | {
                    "INTERFACE_LINE_ATTRIBUTE2": str(line.line_no), "INTERFACE_LINE_ATTRIBUTE3": "TAX",
                    "LINE_TYPE": "TAX", "DESCRIPTION": f"Tax {percent:f}% on line {line.line_no}",
                    "AMOUNT": doc.major(tax), "QUANTITY": None, "UNIT_SELLING_PRICE": None,
                    "TAX_CODE": s.tax_code_format.format(percent=f"{percent:f}"), "TAX_RATE": percent,
                    "LINK_TO_LINE_CONTEXT": s.context, "LINK_TO_LINE_ATTRIBUTE1": key,
                    "LINK_TO_LINE_ATTRIBUTE2": str(line.line_no), "LINK_TO_LINE_ATTRIBUTE3": "LINE",
                    "LINK_TO_LINE_ATTRIBUTE4": idempotency_key,
                })
        return rows

    def check(self, document: Mapping, lines: pd.DataFrame) -> None:
        """Everything ``deliver`` checks, without writing (a pre-flight before any target delivers)."""
        if skip_reason(document, customer_facing=self.customer_facing, channels=self.channels) is None:
            self.rows(document, lines, "0" * 64)

    # -- deliver -----------------------------------------------------------------------------------
    def deliver(self, document: dict, lines: pd.DataFrame, idempotency_key: str) -> str:
        if why := skip_reason(document, customer_facing=self.customer_facing, channels=self.channels):
            return skipped(why)
        key = str(document.get("document_key"))
        with self.engine.connect() as c:      # a repeat is a no-op even if the settings changed since
            if self._already_there(c, key, idempotency_key):
                return self.reference(key)
        rows = self.rows(document, lines, idempotency_key)   # refuses bad input before any write
        try:
            with self.engine.begin() as c:
                if self._already_there(c, key, idempotency_key):
                    return self.reference(key)
                c.execute(insert(self.table), rows)
        except IntegrityError:
            # Another process inserted the same document between our check and our insert.
            with self.engine.connect() as c:
                if self._already_there(c, key, idempotency_key):
                    return self.reference(key)
            raise
        return self.reference(key)

    def _already_there(self, conn, key: str, idempotency_key: str) -> bool:
        t = self.table.c
        keys = set(conn.execute(select(t["INTERFACE_LINE_ATTRIBUTE4"]).distinct().where(
            t["INTERFACE_LINE_CONTEXT"] == self.settings.context, t["INTERFACE_LINE_ATTRIBUTE1"] == key)).scalars())
        if not keys:
            return False
        if keys == {idempotency_key}:
            return True
        raise DeliveryRejected(key, self.name, "document_key", "already in the AR interface under another "
                               "idempotency key: a handed-off document is never imported twice",
                               rule=TABLE_NAME)

    def read_back(self, document_key: str) -> pd.DataFrame:
        """The interface rows of one document (for tests and reconciliation)."""
        t = self.table
        q = select(t).where(t.c["INTERFACE_LINE_CONTEXT"] == self.settings.context,
                            t.c["INTERFACE_LINE_ATTRIBUTE1"] == document_key)
        with self.engine.connect() as c:
            return pd.DataFrame(c.execute(q).mappings().all(), columns=[x.name for x in t.columns])


def line_taxes(doc: CheckedDocument) -> list[int]:
    """The document's tax spread over its lines, in cents, adding up to the document's tax exactly.

    Each line gets its own amount x rate rounded half away from zero; the difference from the
    document's tax (computed once on the net, EN 16931 BR-CO-17) goes to the line with the largest
    amount (the first such line), so the TAX rows add up to the tax the customer was invoiced.
    """
    taxes = [int(div_round_half_up(int(x.amount_cents) * doc.tax_rate_bp, 10_000)) for x in doc.lines]
    diff = doc.tax_cents - sum(taxes)
    if diff:
        biggest = max(range(len(doc.lines)), key=lambda i: (abs(doc.lines[i].amount_cents), -i))
        taxes[biggest] += diff
    return taxes
