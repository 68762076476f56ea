"""Oracle E-Business Suite (Projects and Receivables) connector: projects, expenditure items, billing
events and prior invoice lines in the canonical schema, plus AR open items and receipts for later use.

The EBS tables are described once, as SQLAlchemy Core metadata built from an `EbsLayout`: every table
and column has a *logical* name the code uses (``tables.expenditure_items.c.raw_cost``) and a
*physical* name a site can override to its own schema, views or descriptive flexfields::

    layout = DEFAULT_LAYOUT.override(
        schema="APPS",
        tables={"expenditure_items": "xx_pa_billing_items_v"},
        columns={"projects": {"contract_ref": "attribute7"}},
    )
    source = OracleConnector(OracleSettings.from_env(), tables=EbsTables(layout))
    items = source.read("expenditure_items", Period.parse("2026-10"))

Conventions of the EBS tables (as in a real EBS instance):
- amounts are ``NUMBER`` in *major* units with two decimals (``raw_cost`` 1234.50 = 123450 cents) and
  quantities ``NUMBER`` in units with up to three decimals (7.5 hours = 7500 thousandths). The
  conversion to canonical integers is exact (``Decimal``, never float): a value with more decimals
  than the canonical unit holds is refused with the row and column, not rounded. All supported
  contract currencies have two minor units; a zero-decimal currency (JPY) would need its own scale.
- flags are ``'Y'``/``'N'`` (``bill_hold_flag`` ``'O'``, "hold once", counts as held);
- keys the close uses are the EBS reference columns (``segment1`` for projects,
  ``orig_transaction_reference`` for items imported through Transaction Import, falling back to the
  numeric ``expenditure_item_id``); numeric surrogate ids only join tables.
- the contract and scope line live in descriptive flexfields (``attribute1``) by default: where a site
  keeps them elsewhere, override the layout.

Every statement is a Core ``select()`` with bound parameters (see `statements`); the period filters
run in the database; rows are streamed in chunks (``stream_results`` + ``yield_per``) and
concatenated; dropped connections are retried, bad credentials fail at once.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from pydantic import BaseModel, Field, SecretStr, ValidationError, model_validator
from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    ForeignKey,
    MetaData,
    Numeric,
    Select,
    String,
    Table,
    and_,
    bindparam,
    case,
    event,
    select,
)
from sqlalchemy.engine import URL, Engine

from billing import columns as col
from billing.periods import Period
from billing.schema import SchemaError, SchemaProblem, conform
from connectors.base import PermanentSourceError, TransientSourceError

log = logging.getLogger(__name__)

MONEY_SCALE = 2     # EBS amounts: major units, two decimals -> integer cents
QUANTITY_SCALE = 3  # EBS quantities: units, up to three decimals -> integer thousandths
_MONEY = Numeric(22, MONEY_SCALE)
_QTY = Numeric(22, QUANTITY_SCALE)
_ID = BigInteger
_FLAG = String(1)


# --- layout: physical names in one place -----------------------------------------------------------
# logical table -> (default physical table, ((logical column, default physical column, type, options)))
# Options: pk (primary key), null (nullable), fk ("logical_table.logical_column").
_SPEC: dict[str, tuple[str, tuple[tuple[str, str, Any, dict[str, Any]], ...]]] = {
    "operating_units": ("hr_operating_units", (
        ("organization_id", "organization_id", _ID, {"pk": True}),
        ("short_code", "short_code", String(30), {}),               # canonical business_unit
        ("name", "name", String(240), {}),
    )),
    "projects": ("pa_projects_all", (
        ("project_id", "project_id", _ID, {"pk": True}),
        ("segment1", "segment1", String(25), {}),                   # project number = canonical key
        ("project_name", "long_name", String(240), {}),
        ("org_id", "org_id", _ID, {"fk": "operating_units.organization_id"}),
        ("contract_ref", "attribute1", String(150), {}),            # contract number (DFF)
    )),
    "tasks": ("pa_tasks", (
        ("task_id", "task_id", _ID, {"pk": True}),
        ("project_id", "project_id", _ID, {"fk": "projects.project_id"}),
        ("task_number", "task_number", String(25), {}),
        ("task_name", "task_name", String(240), {}),
    )),
    "expenditure_items": ("pa_expenditure_items_all", (
        ("expenditure_item_id", "expenditure_item_id", _ID, {"pk": True}),
        ("item_ref", "orig_transaction_reference", String(60), {"null": True}),
        ("project_id", "project_id", _ID, {"fk": "projects.project_id"}),
        ("task_id", "task_id", _ID, {"fk": "tasks.task_id"}),
        ("org_id", "org_id", _ID, {"null": True}),
        ("expenditure_item_date", "expenditure_item_date", Date, {}),
        ("person_ref", "employee_number", String(30), {"null": True}),
        ("job_name", "job_name", String(240), {"null": True}),
        ("expenditure_type", "expenditure_type", String(30), {}),
        ("quantity", "quantity", _QTY, {}),
        ("raw_cost", "raw_cost", _MONEY, {}),
        ("burdened_cost", "burdened_cost", _MONEY, {"null": True}),
        ("billable_flag", "billable_flag", _FLAG, {}),
        ("bill_hold_flag", "bill_hold_flag", _FLAG, {}),
        ("approval_status", "expenditure_status_code", String(30), {}),   # APPROVED, SUBMITTED, ...
        ("billed_period", "billed_period_name", String(15), {"null": True}),  # YYYY-MM
        ("adjusted_item_ref", "adjusted_item_reference", String(60), {"null": True}),
        ("adjustment_type", "adjustment_type_code", String(30), {"null": True}),  # REVERSAL, TRANSFER_*
    )),
    "events": ("pa_events", (
        ("event_id", "event_id", _ID, {"pk": True}),
        ("event_ref", "pm_event_reference", String(60), {}),        # canonical milestone_id
        ("project_id", "project_id", _ID, {"null": True, "fk": "projects.project_id"}),
        ("event_num", "event_num", _ID, {}),
        ("event_type", "event_type", String(30), {}),
        ("scope_line_ref", "attribute1", String(150), {}),          # contract line (DFF)
        ("description", "description", String(240), {}),
        ("bill_amount", "bill_amount", _MONEY, {}),
        ("completion_date", "completion_date", Date, {"null": True}),
    )),
    "invoice_items": ("pa_draft_invoice_items", (
        ("draft_invoice_num", "draft_invoice_num", _ID, {"pk": True}),
        ("line_num", "line_num", _ID, {"pk": True}),
        ("invoice_number", "ra_invoice_number", String(60), {}),
        ("period_name", "invoice_period_name", String(15), {}),     # YYYY-MM
        ("contract_ref", "agreement_num", String(50), {}),
        ("scope_line_ref", "attribute1", String(150), {}),
        ("line_type", "invoice_line_type", String(30), {}),         # canonical source_kind
        ("source_ref", "source_reference", String(60), {}),
        ("quantity", "bill_quantity", _QTY, {}),
        ("amount", "amount", _MONEY, {}),
    )),
    "customer_trx": ("ra_customer_trx_all", (
        ("customer_trx_id", "customer_trx_id", _ID, {"pk": True}),
        ("trx_number", "trx_number", String(20), {}),
        ("trx_date", "trx_date", Date, {}),
        ("customer_ref", "bill_to_account_number", String(30), {}),
        ("currency", "invoice_currency_code", String(15), {}),
        ("org_id", "org_id", _ID, {"null": True, "fk": "operating_units.organization_id"}),
        ("contract_ref", "interface_header_attribute1", String(150), {"null": True}),
        ("purchase_order", "purchase_order", String(50), {"null": True}),
    )),
    "payment_schedules": ("ar_payment_schedules_all", (
        ("payment_schedule_id", "payment_schedule_id", _ID, {"pk": True}),
        ("customer_trx_id", "customer_trx_id", _ID, {"null": True, "fk": "customer_trx.customer_trx_id"}),
        ("cash_receipt_id", "cash_receipt_id", _ID, {"null": True}),
        ("trx_number", "trx_number", String(30), {}),
        ("item_class", "class", String(20), {}),                    # INV, CM, DM, PMT, ...
        ("customer_ref", "customer_account_number", String(30), {}),
        ("currency", "invoice_currency_code", String(15), {}),
        ("amount_due_original", "amount_due_original", _MONEY, {}),
        ("amount_due_remaining", "amount_due_remaining", _MONEY, {}),
        ("amount_in_dispute", "amount_in_dispute", _MONEY, {"null": True}),
        ("due_date", "due_date", Date, {}),
        ("status", "status", String(30), {}),                       # OP open, CL closed
        ("org_id", "org_id", _ID, {"null": True, "fk": "operating_units.organization_id"}),
    )),
    "cash_receipts": ("ar_cash_receipts_all", (
        ("cash_receipt_id", "cash_receipt_id", _ID, {"pk": True}),
        ("receipt_number", "receipt_number", String(30), {}),
        ("receipt_date", "receipt_date", Date, {}),
        ("customer_ref", "customer_account_number", String(30), {"null": True}),
        ("currency", "currency_code", String(15), {}),
        ("amount", "amount", _MONEY, {}),
        ("status", "status", String(30), {}),                       # APP, UNAPP, UNID, REV, ...
        ("org_id", "org_id", _ID, {"null": True, "fk": "operating_units.organization_id"}),
    )),
}


def check_layout(spec: Mapping, tables: Mapping[str, str], columns: Mapping[str, Mapping[str, str]],
                 what: str) -> None:
    """A layout may rename only tables and columns the connector knows; anything else is a typo."""
    for t in [*tables, *columns]:
        if t not in spec:
            raise ValueError(f"unknown {what} table {t!r}; known: {', '.join(spec)}")
    for t, cols in columns.items():
        known = {c[0] for c in spec[t][1]}
        for c in cols:
            if c not in known:
                raise ValueError(f"unknown column {c!r} of {what} table {t!r}; known: {', '.join(sorted(known))}")


@dataclass(frozen=True)
class EbsLayout:
    """Physical table and column names of the EBS objects the connector reads (logical -> physical).

    Only differences from the defaults need to be given; `schema` is the owner (e.g. ``"APPS"``) or
    None for the connecting user's own objects and synonyms.
    """

    schema: str | None = None
    tables: Mapping[str, str] = field(default_factory=dict)
    columns: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_layout(_SPEC, self.tables, self.columns, "EBS")

    def override(self, schema: str | None = None, tables: Mapping[str, str] | None = None,
                 columns: Mapping[str, Mapping[str, str]] | None = None) -> EbsLayout:
        merged = {t: dict(c) for t, c in self.columns.items()}
        for t, c in (columns or {}).items():
            merged.setdefault(t, {}).update(c)
        return EbsLayout(schema if schema is not None else self.schema, {**self.tables, **(tables or {})},
                         merged)

    def table_name(self, logical: str) -> str:
        return self.tables.get(logical, _SPEC[logical][0])

    def column_name(self, table: str, logical: str) -> str:
        default = next(c[1] for c in _SPEC[table][1] if c[0] == logical)
        return self.columns.get(table, {}).get(logical, default)


DEFAULT_LAYOUT = EbsLayout()


def _name(name: str) -> str:
    # Oracle folds unquoted names to upper case; SQLAlchemy quotes upper-case names and leaves lower-case
    # ones bare. "APPS" and "apps" are the same object in Oracle, so write it bare (and case-insensitive).
    return name.lower() if name.isupper() else name


class EbsTables:
    """The EBS tables as SQLAlchemy Core metadata; columns are addressed by logical name (``.c.raw_cost``)."""

    def __init__(self, layout: EbsLayout = DEFAULT_LAYOUT):
        self.layout = layout
        schema = _name(layout.schema) if layout.schema else None
        self.metadata = MetaData(schema=schema)
        prefix = f"{schema}." if schema else ""
        for logical, (_, spec) in _SPEC.items():
            cols = []
            for key, _, type_, opts in spec:
                args: list[Any] = []
                if "fk" in opts:
                    t, c = opts["fk"].split(".")
                    args.append(ForeignKey(f"{prefix}{_name(layout.table_name(t))}.{_name(layout.column_name(t, c))}"))
                cols.append(Column(_name(layout.column_name(logical, key)), type_, *args, key=key,
                                   primary_key=opts.get("pk", False), nullable=opts.get("null", False)))
            setattr(self, logical, Table(_name(layout.table_name(logical)), self.metadata, *cols))

    # typed attributes for readers and linters
    operating_units: Table
    projects: Table
    tasks: Table
    expenditure_items: Table
    events: Table
    invoice_items: Table
    customer_trx: Table
    payment_schedules: Table
    cash_receipts: Table


DEFAULT_TABLES = EbsTables()


# --- statements -------------------------------------------------------------------------------------
OPEN_ITEM_COLUMNS = ("trx_number", "item_class", "customer_ref", "business_unit", "currency", "trx_date",
                     "due_date", "amount_due_original_cents", "amount_due_remaining_cents",
                     "amount_in_dispute_cents", "contract_ref", "purchase_order")
CASH_RECEIPT_COLUMNS = ("receipt_number", "receipt_date", "customer_ref", "business_unit", "currency",
                        "amount_cents", "status")
OPEN_ITEM_CLASSES = ("INV", "CM", "DM")


def statements(period: Period, tables: EbsTables = DEFAULT_TABLES) -> dict[str, Select]:
    """The SELECT of each dataset for closing `period`; every value from outside is a bound parameter.

    Columns are labelled with canonical names where the value maps one to one; conversions (cents,
    flags, codes) happen in Python, exactly. Rows come in surrogate-key order.
    """
    t = tables
    before = bindparam("before_date", period.next().start, type_=Date)   # <= period end, time-of-day safe
    ou, pr, ei, ev, ii = t.operating_units, t.projects, t.expenditure_items, t.events, t.invoice_items
    ps, trx, cr = t.payment_schedules, t.customer_trx, t.cash_receipts
    projects = (
        select(pr.c.segment1.label(col.PROJECT_ID), pr.c.project_name.label("project_name"),
               pr.c.contract_ref.label(col.CONTRACT_ID), ou.c.short_code.label(col.BUSINESS_UNIT))
        .select_from(pr.join(ou, pr.c.org_id == ou.c.organization_id))
        .order_by(pr.c.project_id)
    )
    items = (
        select(ei.c.expenditure_item_id, ei.c.item_ref, pr.c.segment1.label(col.PROJECT_ID),
               ei.c.expenditure_item_date.label("expenditure_date"), ei.c.person_ref.label("person_id"),
               ei.c.job_name.label(col.ROLE), ei.c.expenditure_type, ei.c.quantity, ei.c.raw_cost,
               ei.c.billable_flag, ei.c.bill_hold_flag, ei.c.approval_status,
               ei.c.billed_period.label("billed_period"), ei.c.adjusted_item_ref.label("adjusts_item_id"),
               ei.c.adjustment_type)
        .select_from(ei.join(pr, ei.c.project_id == pr.c.project_id))
        .where(ei.c.expenditure_item_date < before)
        .order_by(ei.c.expenditure_item_id)
    )
    # As of the period end: a milestone accepted after it is still open, so its date reads as null.
    milestones = (
        select(ev.c.event_ref.label("milestone_id"), ev.c.scope_line_ref.label(col.SCOPE_LINE_ID),
               ev.c.description, ev.c.bill_amount,
               case((ev.c.completion_date < before, ev.c.completion_date), else_=None).label("completed_date"))
        .where(ev.c.event_type == bindparam("milestone_event_type", "Milestone"))
        .order_by(ev.c.event_id)
    )
    prior = (
        select(ii.c.invoice_number.label("invoice_id"), ii.c.line_num.label("line_no"),
               ii.c.period_name.label("period"), ii.c.contract_ref.label(col.CONTRACT_ID),
               ii.c.scope_line_ref.label(col.SCOPE_LINE_ID), ii.c.line_type.label("source_kind"),
               ii.c.source_ref.label("source_id"), ii.c.quantity, ii.c.amount)
        .where(ii.c.period_name < bindparam("period", str(period), type_=String))   # YYYY-MM sorts as text
        .order_by(ii.c.draft_invoice_num, ii.c.line_num)
    )
    open_items = (
        select(ps.c.trx_number, ps.c.item_class, ps.c.customer_ref, ou.c.short_code.label(col.BUSINESS_UNIT),
               ps.c.currency, trx.c.trx_date, ps.c.due_date, ps.c.amount_due_original,
               ps.c.amount_due_remaining, ps.c.amount_in_dispute, trx.c.contract_ref, trx.c.purchase_order)
        .select_from(ps.outerjoin(trx, ps.c.customer_trx_id == trx.c.customer_trx_id)
                     .outerjoin(ou, ps.c.org_id == ou.c.organization_id))
        .where(and_(ps.c.status == bindparam("open_status", "OP"),
                    ps.c.item_class.in_(bindparam("open_classes", OPEN_ITEM_CLASSES, expanding=True)),
                    sa.or_(trx.c.trx_date.is_(None), trx.c.trx_date < before)))
        .order_by(ps.c.payment_schedule_id)
    )
    receipts = (
        select(cr.c.receipt_number, cr.c.receipt_date, cr.c.customer_ref,
               ou.c.short_code.label(col.BUSINESS_UNIT), cr.c.currency, cr.c.amount, cr.c.status)
        .select_from(cr.outerjoin(ou, cr.c.org_id == ou.c.organization_id))
        .where(and_(cr.c.receipt_date >= bindparam("from_date", period.start, type_=Date),
                    cr.c.receipt_date < before))
        .order_by(cr.c.cash_receipt_id)
    )
    return {"projects": projects, "expenditure_items": items, "milestones": milestones,
            "prior_invoice_lines": prior, "open_items": open_items, "cash_receipts": receipts}


# --- settings and engine ----------------------------------------------------------------------------
class OracleSettings(BaseModel):
    """How to reach the EBS database. Give `dsn` (Easy Connect or TNS alias) or host + service_name.

    Example: ``OracleSettings(user="XXBILL_RO", password="...", host="ebsdb", service_name="EBSPROD")``
    or ``OracleSettings.from_env()`` with ORACLE_USER, ORACLE_PASSWORD, ORACLE_DSN (or ORACLE_HOST,
    ORACLE_PORT, ORACLE_SERVICE_NAME), optionally ORACLE_SCHEMA, ORACLE_ARRAYSIZE, ORACLE_PREFETCHROWS,
    ORACLE_CHUNK_SIZE, ORACLE_RETRIES.
    """

    user: str
    password: SecretStr
    dsn: str | None = None
    host: str | None = None
    port: int = 1521
    service_name: str | None = None
    schema_: str | None = Field(None, alias="schema", description="Owner of the EBS objects, e.g. APPS.")
    arraysize: int = Field(5000, gt=0, description="Rows per round-trip after the first (cursor.arraysize).")
    prefetchrows: int = Field(5000, ge=0, description="Rows returned by the execute round-trip.")
    chunk_size: int = Field(50_000, gt=0, description="Rows per chunk handed to pandas.")
    retries: int = Field(3, ge=0, description="Retries of a read after a dropped connection.")
    retry_delay_seconds: float = Field(2.0, ge=0)

    model_config = {"populate_by_name": True}

    @model_validator(mode="after")
    def _target(self) -> OracleSettings:
        if not self.dsn and not (self.host and self.service_name):
            raise ValueError("give dsn, or host and service_name")
        return self

    @classmethod
    def from_env(cls, prefix: str = "ORACLE_", environ: Mapping[str, str] | None = None) -> OracleSettings:
        """Read the settings when the run starts (never at import); secrets are not echoed in errors."""
        env = os.environ if environ is None else environ
        names = ["user", "password", "dsn", "host", "port", "service_name", "schema", "arraysize",
                 "prefetchrows", "chunk_size", "retries", "retry_delay_seconds"]
        values = {n: env[prefix + n.upper()] for n in names if env.get(prefix + n.upper())}
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(f"{prefix}{'.'.join(map(str, e['loc'])).upper() or 'DSN'}: {e['msg']}"
                                 for e in exc.errors())
            raise PermanentSourceError(f"Oracle settings incomplete: {problems}") from None

    def url(self) -> URL:
        if self.dsn:  # the DSN goes to oracledb through connect_args (see create_engine)
            return URL.create("oracle+oracledb", username=self.user, password=self.password.get_secret_value())
        return URL.create("oracle+oracledb", username=self.user, password=self.password.get_secret_value(),
                          host=self.host, port=self.port, query={"service_name": self.service_name or ""})


def create_engine(settings: OracleSettings) -> Engine:
    """An engine for python-oracledb (thin mode) with the fetch tuning of `settings`."""
    connect_args = {"dsn": settings.dsn} if settings.dsn else {}
    engine = sa.create_engine(settings.url(), arraysize=settings.arraysize, pool_pre_ping=True,
                              connect_args=connect_args)
    _tune_fetch(engine, settings.arraysize, settings.prefetchrows)
    return engine


def _tune_fetch(engine: Engine, arraysize: int, prefetchrows: int) -> None:
    # The dialect sets cursor.arraysize; prefetchrows has no engine option, so set it per cursor.
    @event.listens_for(engine, "before_cursor_execute")
    def _set(conn, cursor, statement, parameters, context, executemany):
        if hasattr(cursor, "prefetchrows"):
            cursor.prefetchrows = prefetchrows
            cursor.arraysize = arraysize


# --- errors -----------------------------------------------------------------------------------------
# Checked first: a connect error can wrap a credentials error (DPY-6005 ... ORA-01017).
_PERMANENT_MARKERS = (
    "ORA-01017",  # invalid username/password
    "ORA-28000",  # account locked
    "ORA-28001",  # password expired
    "ORA-01045",  # lacks CREATE SESSION
    "ORA-00942",  # table or view does not exist
    "ORA-00904",  # invalid identifier
    "ORA-01031",  # insufficient privileges
    "DPY-4001",   # no credentials specified
    "password authentication failed",
    "no such table", "no such column", "does not exist",
)
_TRANSIENT_MARKERS = (
    "DPY-4011",   # the database or network closed the connection
    "DPY-1001",   # not connected
    "DPY-6005",   # cannot connect (network)
    "ORA-03113",  # end-of-file on communication channel
    "ORA-03114",  # not connected
    "ORA-03135",  # connection lost contact
    "ORA-12170", "ORA-12537", "ORA-12541", "ORA-12547",  # timeouts, listener gone
    "ORA-00028",  # session killed
    "ORA-01033", "ORA-01089",  # instance starting / shutting down
    "ORA-02396",  # idle time exceeded
)


def classify(exc: BaseException) -> type[TransientSourceError] | type[PermanentSourceError] | None:
    """Whether a database error is worth a retry; None for errors that are not the database's (bugs)."""
    text = f"{exc} {getattr(exc, 'orig', '')}"
    db_error = isinstance(exc, sa.exc.DBAPIError) or type(exc).__module__.startswith(("oracledb", "sqlite3",
                                                                                       "psycopg"))
    if not db_error:
        return None
    if any(m in text for m in _PERMANENT_MARKERS):
        return PermanentSourceError
    if getattr(exc, "connection_invalidated", False) or any(m in text for m in _TRANSIENT_MARKERS):
        return TransientSourceError
    if isinstance(exc, sa.exc.OperationalError) or type(exc).__name__ in ("OperationalError", "InterfaceError"):
        return TransientSourceError
    return PermanentSourceError


def _first_line(exc: BaseException) -> str:
    inner = getattr(exc, "orig", None) or exc
    return (str(inner).strip().splitlines() or [type(inner).__name__])[0]


# --- the connector ----------------------------------------------------------------------------------
class OracleConnector:
    """Reads the close's datasets from Oracle EBS.

    `settings` (or ORACLE_* at the first read) builds an oracledb engine; tests pass `engine` (any
    SQLAlchemy engine holding the same tables, e.g. SQLite or PostgreSQL filled by `load_sample`).
    `tables` carries the site's layout. Example::

        OracleConnector(OracleSettings.from_env()).read("expenditure_items", Period.parse("2026-10"))
    """

    name = "oracle"
    datasets = ("projects", "expenditure_items", "milestones", "prior_invoice_lines")

    def __init__(self, settings: OracleSettings | None = None, engine: Engine | None = None,
                 tables: EbsTables | None = None, chunk_size: int | None = None, retries: int | None = None,
                 retry_delay_seconds: float | None = None, sleep: Callable[[float], None] = time.sleep):
        self._settings = settings
        self._engine = engine
        if tables is None:
            schema = settings.schema_ if settings else None
            tables = EbsTables(EbsLayout(schema=schema)) if schema else DEFAULT_TABLES
        self.tables = tables
        self.chunk_size = chunk_size or (settings.chunk_size if settings else 50_000)
        self.retries = retries if retries is not None else (settings.retries if settings else 3)
        self.retry_delay_seconds = (retry_delay_seconds if retry_delay_seconds is not None
                                    else (settings.retry_delay_seconds if settings else 2.0))
        self._sleep = sleep

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._settings = self._settings or OracleSettings.from_env()
            self._engine = create_engine(self._settings)
        return self._engine

    def read(self, dataset: str, period: Period) -> pd.DataFrame:
        if dataset not in self.datasets:
            raise PermanentSourceError(f"oracle does not deliver {dataset!r}; it delivers {', '.join(self.datasets)}")
        stmt = statements(period, self.tables)[dataset]
        raw = self._fetch(stmt, dataset)
        return _CONVERTERS[dataset](raw, self._origin(dataset))

    def open_items(self, as_of: Period) -> pd.DataFrame:
        """Open AR payment schedules (INV, CM, DM) of invoices dated on or before the period end."""
        raw = self._fetch(statements(as_of, self.tables)["open_items"], "open_items")
        origin = self._origin("open_items")
        out = pd.DataFrame({
            "trx_number": raw["trx_number"].astype("string"), "item_class": raw["item_class"].astype("string"),
            "customer_ref": raw["customer_ref"].astype("string"),
            "business_unit": raw[col.BUSINESS_UNIT].astype("string"), "currency": raw["currency"].astype("string"),
            "trx_date": _dates(raw["trx_date"]), "due_date": _dates(raw["due_date"]),
            "amount_due_original_cents": exact_units(raw["amount_due_original"], MONEY_SCALE, origin,
                                                "amount_due_original"),
            "amount_due_remaining_cents": exact_units(raw["amount_due_remaining"], MONEY_SCALE, origin,
                                                 "amount_due_remaining"),
            "amount_in_dispute_cents": exact_units(raw["amount_in_dispute"].where(raw["amount_in_dispute"].notna(),
                                                                            Decimal(0)),
                                              MONEY_SCALE, origin, "amount_in_dispute"),
            "contract_ref": raw["contract_ref"].astype("string"),
            "purchase_order": raw["purchase_order"].astype("string"),
        })
        return out[list(OPEN_ITEM_COLUMNS)]

    def cash_receipts(self, period: Period) -> pd.DataFrame:
        """Cash receipts dated within the period."""
        raw = self._fetch(statements(period, self.tables)["cash_receipts"], "cash_receipts")
        return pd.DataFrame({
            "receipt_number": raw["receipt_number"].astype("string"), "receipt_date": _dates(raw["receipt_date"]),
            "customer_ref": raw["customer_ref"].astype("string"),
            "business_unit": raw[col.BUSINESS_UNIT].astype("string"), "currency": raw["currency"].astype("string"),
            "amount_cents": exact_units(raw["amount"], MONEY_SCALE, self._origin("cash_receipts"), "amount"),
            "status": raw["status"].astype("string"),
        })[list(CASH_RECEIPT_COLUMNS)]

    # -- I/O --------------------------------------------------------------------------------------------
    def _origin(self, what: str) -> str:
        return f"oracle:{what}"

    def _fetch(self, stmt: Select, what: str) -> pd.DataFrame:
        attempt = 0
        while True:
            try:
                return self._fetch_once(stmt)
            except Exception as exc:
                kind = classify(exc)
                if kind is None:
                    raise
                message = f"oracle: reading {what} failed: {_first_line(exc)}"
                if kind is PermanentSourceError:
                    raise PermanentSourceError(message) from exc
                attempt += 1
                if attempt > self.retries:
                    raise TransientSourceError(f"{message} (after {attempt} attempts)") from exc
                delay = self.retry_delay_seconds * 2 ** (attempt - 1)
                log.warning("%s; retry %d of %d in %.1f s", message, attempt, self.retries, delay)
                self._sleep(delay)

    def _fetch_once(self, stmt: Select) -> pd.DataFrame:
        keys = [c.key for c in stmt.selected_columns]
        chunks: list[pd.DataFrame] = []
        with self.engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=self.chunk_size).execute(stmt)
            for part in result.partitions():
                # Column-wise, as plain objects: Decimals stay Decimals (exact), and it is ~4x faster
                # than DataFrame.from_records on Row objects.
                columns = list(zip(*part, strict=True)) if part else [()] * len(keys)
                chunks.append(pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in zip(keys, columns,
                                                                                          strict=True)}))
        if not chunks:
            return pd.DataFrame({k: pd.Series([], dtype=object) for k in keys})
        return pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]


# --- EBS -> canonical --------------------------------------------------------------------------------
def exact_units(values: Iterable[Any], scale: int, origin: str, column: str) -> pd.Series:
    """NUMBER values (Decimal; int or str accepted) to integers of 10**-scale units, refusing inexact ones.

    ``exact_units([Decimal("12.34")], 2, ...)`` -> 1234; ``Decimal("12.345")`` raises SchemaError naming
    `origin`, the 1-based row and `column` (sub-cent amounts are a data problem, not a rounding choice).
    """
    values = list(values)
    out = np.zeros(len(values), dtype=np.int64)
    missing = np.zeros(len(values), dtype=bool)
    problems: list[SchemaProblem] = []
    for pos, v in enumerate(values):
        if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
            missing[pos] = True
            continue
        d = v if isinstance(v, Decimal) else Decimal(str(v))
        scaled = d.scaleb(scale)
        whole = int(scaled)
        if whole != scaled:
            problems.append(SchemaProblem(origin, pos + 1, column,
                                          f"{d} has more than {scale} decimals; refusing to round"))
        out[pos] = whole
    if problems:
        raise SchemaError(problems)
    s = pd.Series(out, dtype="Int64")
    return s.mask(pd.Series(missing)) if missing.any() else s.astype("int64")


def _dates(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, errors="raise").astype("datetime64[ns]").reset_index(drop=True)


def _flag(values: pd.Series, true_codes: Iterable[str] = ("Y",)) -> pd.Series:
    return values.astype("string").str.strip().str.upper().isin(list(true_codes)).astype("bool")


def _projects(raw: pd.DataFrame, origin: str) -> pd.DataFrame:
    return conform(raw, col.PROJECTS, origin=origin)


def _expenditure_items(raw: pd.DataFrame, origin: str) -> pd.DataFrame:
    # Items entered in EBS itself have no import reference: their key is the numeric id.
    ids = raw["expenditure_item_id"].map(lambda v: None if v is None else str(int(v)))
    df = pd.DataFrame({
        "item_id": raw["item_ref"].where(raw["item_ref"].notna(), ids),
        col.PROJECT_ID: raw[col.PROJECT_ID], "expenditure_date": _dates(raw["expenditure_date"]),
        "person_id": raw["person_id"], col.ROLE: raw[col.ROLE],
        "expenditure_type": raw["expenditure_type"].astype("string").str.lower(),
        "quantity_milli": exact_units(raw["quantity"], QUANTITY_SCALE, origin, "quantity"),
        "raw_cost_cents": exact_units(raw["raw_cost"], MONEY_SCALE, origin, "raw_cost"),
        "billable": _flag(raw["billable_flag"]),
        "bill_hold": _flag(raw["bill_hold_flag"], ("Y", "O")),  # 'O' = hold once
        "approved": raw["approval_status"].astype("string").str.upper().eq("APPROVED").fillna(False)
        .astype("bool"),
        "billed_period": raw["billed_period"], "adjusts_item_id": raw["adjusts_item_id"],
        "adjustment_type": raw["adjustment_type"].astype("string").str.lower(),
    })
    return conform(df, col.EXPENDITURE_ITEMS, origin=origin)


def _milestones(raw: pd.DataFrame, origin: str) -> pd.DataFrame:
    df = raw.assign(amount_cents=exact_units(raw["bill_amount"], MONEY_SCALE, origin, "bill_amount"),
                    completed_date=_dates(raw["completed_date"]))
    return conform(df, col.MILESTONES, origin=origin)


def _prior_invoice_lines(raw: pd.DataFrame, origin: str) -> pd.DataFrame:
    df = raw.assign(line_no=raw["line_no"].map(lambda v: None if v is None else int(v)),
                    quantity_milli=exact_units(raw["quantity"], QUANTITY_SCALE, origin, "quantity"),
                    amount_cents=exact_units(raw["amount"], MONEY_SCALE, origin, "amount"))
    return conform(df, col.PRIOR_INVOICE_LINES, origin=origin)


_CONVERTERS: dict[str, Callable[[pd.DataFrame, str], pd.DataFrame]] = {
    "projects": _projects, "expenditure_items": _expenditure_items, "milestones": _milestones,
    "prior_invoice_lines": _prior_invoice_lines,
}


# --- local twin: schema and sample data -------------------------------------------------------------
def create_schema(engine: Engine, tables: EbsTables = DEFAULT_TABLES) -> None:
    """Create the EBS tables of `tables` (for tests, demos and benchmarks; never against EBS itself)."""
    tables.metadata.create_all(engine)


def drop_schema(engine: Engine, tables: EbsTables = DEFAULT_TABLES) -> None:
    tables.metadata.drop_all(engine)


def load_sample(engine: Engine, datasets: Mapping[str, pd.DataFrame], tables: EbsTables = DEFAULT_TABLES,
                batch_size: int = 10_000) -> dict[str, int]:
    """Fill the EBS tables from canonical datasets (e.g. `sample_company.generate`); returns rows per table.

    The reverse of the connector's mapping, so that reading back yields the same canonical frames.
    Projects are needed by expenditure items (their project must be among the projects).
    """
    rows = _ebs_rows(datasets)
    counts: dict[str, int] = {}
    with engine.begin() as conn:
        for logical in ("operating_units", "projects", "tasks", "expenditure_items", "events", "invoice_items"):
            recs = rows.get(logical, [])
            table: Table = getattr(tables, logical)
            for start in range(0, len(recs), batch_size):
                conn.execute(table.insert(), recs[start:start + batch_size])
            counts[logical] = len(recs)
    return counts


def _money(cents: Any) -> Decimal:
    return Decimal(int(cents)).scaleb(-MONEY_SCALE)


def _qty(milli: Any) -> Decimal:
    return Decimal(int(milli)).scaleb(-QUANTITY_SCALE)


def _py(value: Any) -> Any:
    """pandas scalars to DB-API values: NA -> None, Timestamp -> date."""
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.date()
    return value


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    cols = list(df.columns)
    return [{c: _py(v) for c, v in zip(cols, row, strict=True)} for row in df.itertuples(index=False, name=None)]


def _ebs_rows(datasets: Mapping[str, pd.DataFrame]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    projects = datasets.get("projects")
    proj_num: dict[str, int] = {}
    proj_org: dict[str, int] = {}
    if projects is not None:
        units = sorted(projects[col.BUSINESS_UNIT].unique())
        org = {u: 101 + i for i, u in enumerate(units)}
        out["operating_units"] = [{"organization_id": org[u], "short_code": u, "name": f"Operating unit {u}"}
                                  for u in units]
        proj_num = {p: i + 1 for i, p in enumerate(projects[col.PROJECT_ID])}
        out["projects"] = _records(pd.DataFrame({
            "project_id": range(1, len(projects) + 1), "segment1": projects[col.PROJECT_ID],
            "project_name": projects["project_name"], "org_id": projects[col.BUSINESS_UNIT].map(org),
            "contract_ref": projects[col.CONTRACT_ID]}))
        # One top task per project: the close bills at project level.
        out["tasks"] = [{"task_id": n, "project_id": n, "task_number": "1", "task_name": "Delivery"}
                        for n in proj_num.values()]
        proj_org = dict(zip(projects[col.PROJECT_ID], projects[col.BUSINESS_UNIT].map(org), strict=True))
    items = datasets.get("expenditure_items")
    if items is not None and len(items):
        unknown = sorted(set(items[col.PROJECT_ID]) - set(proj_num))
        if unknown:
            raise ValueError(f"expenditure items refer to projects not loaded: {', '.join(unknown[:5])}")
        pid = items[col.PROJECT_ID].map(proj_num)
        out["expenditure_items"] = _records(pd.DataFrame({
            "expenditure_item_id": range(1, len(items) + 1), "item_ref": items["item_id"],
            "project_id": pid, "task_id": pid, "org_id": items[col.PROJECT_ID].map(proj_org),
            "expenditure_item_date": items["expenditure_date"], "person_ref": items["person_id"],
            "job_name": items[col.ROLE], "expenditure_type": items["expenditure_type"],
            "quantity": [_qty(v) for v in items["quantity_milli"]],
            "raw_cost": (cost := [_money(v) for v in items["raw_cost_cents"]]), "burdened_cost": cost,
            "billable_flag": np.where(items["billable"], "Y", "N"),
            "bill_hold_flag": np.where(items["bill_hold"], "Y", "N"),
            "approval_status": np.where(items["approved"], "APPROVED", "SUBMITTED"),
            "billed_period": items["billed_period"], "adjusted_item_ref": items["adjusts_item_id"],
            "adjustment_type": items["adjustment_type"].str.upper()}))
    ms = datasets.get("milestones")
    if ms is not None and len(ms):
        out["events"] = _records(pd.DataFrame({
            "event_id": range(1, len(ms) + 1), "event_ref": ms["milestone_id"], "project_id": None,
            "event_num": range(1, len(ms) + 1), "event_type": "Milestone", "scope_line_ref": ms[col.SCOPE_LINE_ID],
            "description": ms["description"], "bill_amount": [_money(v) for v in ms["amount_cents"]],
            "completion_date": ms["completed_date"]}))
    prior = datasets.get("prior_invoice_lines")
    if prior is not None and len(prior):
        inv_num = pd.factorize(prior["invoice_id"])[0] + 1
        out["invoice_items"] = _records(pd.DataFrame({
            "draft_invoice_num": inv_num, "line_num": prior["line_no"], "invoice_number": prior["invoice_id"],
            "period_name": prior["period"], "contract_ref": prior[col.CONTRACT_ID],
            "scope_line_ref": prior[col.SCOPE_LINE_ID], "line_type": prior["source_kind"],
            "source_ref": prior["source_id"], "quantity": [_qty(v) for v in prior["quantity_milli"]],
            "amount": [_money(v) for v in prior["amount_cents"]]}))
    return out


def load_rows(engine: Engine, table: str, rows: Iterable[Mapping[str, Any]],
              tables: EbsTables = DEFAULT_TABLES) -> int:
    """Insert rows keyed by logical column names into one EBS table (e.g. AR fixtures); returns the count."""
    keys = getattr(tables, table).c.keys()
    recs = [{k: r.get(k) for k in keys} for r in rows]  # executemany needs the same keys in every row
    if recs:
        with engine.begin() as conn:
            conn.execute(getattr(tables, table).insert(), recs)
    return len(recs)

