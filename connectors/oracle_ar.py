"""Oracle Receivables (EBS AR, TCA, Advanced Collections) for collections: open items, receipts,
applications, collection accounts and notes, in the canonical shapes of receivables/.

Same rules as connectors/oracle.py (whose helpers this module imports): the tables are SQLAlchemy Core
metadata with logical names and site-overridable physical names; every statement is a Core
``select()`` with bound parameters only, compiled for Oracle and run unchanged on PostgreSQL and SQLite
in the tests; amounts are NUMBER in major units converted exactly (``exact_units``); reads are streamed,
dropped connections retried, bad credentials fail at once (`OracleConnector._fetch`).

Tables read (default physical names):

| logical | physical | what |
|---|---|---|
| customer_trx | ra_customer_trx_all | transaction headers (number, date, bill-to account) |
| payment_schedules | ar_payment_schedules_all | one row per installment: class, amounts due (original, |
| | | remaining, in dispute), due date, status |
| cash_receipts | ar_cash_receipts_all | receipts |
| applications | ar_receivable_applications_all | receipts and credit memos applied to installments |
| accounts, parties | hz_cust_accounts, hz_parties | account number (canonical customer_id), name |
| profiles | hz_customer_profiles | collector, dunning flag |
| profile_amounts | hz_cust_profile_amts | credit limit per currency |
| collectors | ar_collectors | collector names |
| contact_points | hz_contact_points | the account's billing email |
| notes, note_texts | jtf_notes_b, jtf_notes_tl | collector notes on the party |
| promises | iex_promise_details | promises to pay (linked to a note by a DFF, attribute1) |

Keys: customer_id is ``hz_cust_accounts.account_number``; payment_schedule_id is the natural key
``PS-<trx_number>-<terms_sequence_number>`` (numeric surrogate ids only join); receipts, applications
and notes keep their numeric ids as text. "Do not dun" is ``hz_customer_profiles.dunning_letters = 'N'``
with the reason in its ``attribute1``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
from sqlalchemy import BigInteger, Column, Date, MetaData, Numeric, Select, String, Table, and_, bindparam, cast, select
from sqlalchemy.engine import Engine

from billing.schema import conform
from connectors.base import PermanentSourceError
from connectors.oracle import MONEY_SCALE, OracleConnector, _dates, _name, check_layout, exact_units
from receivables.datasets import ACCOUNT_NOTES, COLLECTION_ACCOUNTS, RECEIPT_APPLICATIONS
from receivables.open_items import CASH_RECEIPTS, OPEN_ITEMS

_MONEY = Numeric(22, MONEY_SCALE)
_ID = BigInteger

_SPEC: dict[str, tuple[str, tuple[tuple[str, str, Any, bool], ...]]] = {
    # logical table -> (physical table, ((logical column, physical column, type, primary key)))
    "operating_units": ("hr_operating_units", (
        ("organization_id", "organization_id", _ID, True), ("short_code", "short_code", String(30), False))),
    "parties": ("hz_parties", (("party_id", "party_id", _ID, True), ("party_name", "party_name", String(360), False))),
    "accounts": ("hz_cust_accounts", (
        ("cust_account_id", "cust_account_id", _ID, True), ("account_number", "account_number", String(30), False),
        ("party_id", "party_id", _ID, False), ("customer_class", "customer_class_code", String(30), False),
        ("currency", "attribute2", String(15), False))),   # account currency (DFF)
    "contact_points": ("hz_contact_points", (
        ("contact_point_id", "contact_point_id", _ID, True), ("owner_table_id", "owner_table_id", _ID, False),
        ("contact_point_type", "contact_point_type", String(30), False),
        ("email_address", "email_address", String(2000), False), ("primary_flag", "primary_flag", String(1), False))),
    "collectors": ("ar_collectors", (("collector_id", "collector_id", _ID, True), ("name", "name", String(30), False))),
    "profiles": ("hz_customer_profiles", (
        ("cust_account_profile_id", "cust_account_profile_id", _ID, True),
        ("cust_account_id", "cust_account_id", _ID, False), ("collector_id", "collector_id", _ID, False),
        ("dunning_letters", "dunning_letters", String(1), False),
        ("no_dunning_reason", "attribute1", String(150), False))),
    "profile_amounts": ("hz_cust_profile_amts", (
        ("cust_acct_profile_amt_id", "cust_acct_profile_amt_id", _ID, True),
        ("cust_account_profile_id", "cust_account_profile_id", _ID, False),
        ("currency", "currency_code", String(15), False), ("credit_limit", "overall_credit_limit", _MONEY, False))),
    "customer_trx": ("ra_customer_trx_all", (
        ("customer_trx_id", "customer_trx_id", _ID, True), ("trx_number", "trx_number", String(200), False),
        ("trx_date", "trx_date", Date, False), ("bill_to_customer_id", "bill_to_customer_id", _ID, False),
        ("currency", "invoice_currency_code", String(15), False), ("org_id", "org_id", _ID, False))),
    "payment_schedules": ("ar_payment_schedules_all", (
        ("payment_schedule_id", "payment_schedule_id", _ID, True), ("customer_trx_id", "customer_trx_id", _ID, False),
        ("customer_id", "customer_id", _ID, False), ("trx_number", "trx_number", String(200), False),
        ("item_class", "class", String(20), False), ("currency", "invoice_currency_code", String(15), False),
        ("installment", "terms_sequence_number", _ID, False), ("trx_date", "trx_date", Date, False),
        ("due_date", "due_date", Date, False), ("amount_due_original", "amount_due_original", _MONEY, False),
        ("amount_due_remaining", "amount_due_remaining", _MONEY, False),
        ("amount_in_dispute", "amount_in_dispute", _MONEY, False), ("status", "status", String(30), False),
        ("org_id", "org_id", _ID, False))),
    "cash_receipts": ("ar_cash_receipts_all", (
        ("cash_receipt_id", "cash_receipt_id", _ID, True), ("receipt_number", "receipt_number", String(30), False),
        ("receipt_date", "receipt_date", Date, False), ("pay_from_customer", "pay_from_customer", _ID, False),
        ("currency", "currency_code", String(15), False), ("amount", "amount", _MONEY, False),
        ("status", "status", String(30), False))),
    "applications": ("ar_receivable_applications_all", (
        ("receivable_application_id", "receivable_application_id", _ID, True),
        ("cash_receipt_id", "cash_receipt_id", _ID, False),
        ("applied_payment_schedule_id", "applied_payment_schedule_id", _ID, False),
        ("amount_applied", "amount_applied", _MONEY, False), ("apply_date", "apply_date", Date, False),
        ("status", "status", String(30), False), ("application_type", "application_type", String(20), False))),
    "notes": ("jtf_notes_b", (
        ("jtf_note_id", "jtf_note_id", _ID, True), ("source_object_code", "source_object_code", String(240), False),
        ("source_object_id", "source_object_id", _ID, False), ("entered_date", "entered_date", Date, False),
        ("entered_by_name", "attribute1", String(150), False))),  # author's name (DFF)
    "note_texts": ("jtf_notes_tl", (
        ("jtf_note_id", "jtf_note_id", _ID, True), ("language", "language", String(4), True),
        ("notes", "notes", String(2000), False))),
    "promises": ("iex_promise_details", (
        ("promise_detail_id", "promise_detail_id", _ID, True), ("cust_account_id", "cust_account_id", _ID, False),
        ("promise_date", "promise_date", Date, False), ("promise_amount", "promise_amount", _MONEY, False),
        ("currency", "currency_code", String(15), False), ("status", "status", String(30), False),
        ("note_ref", "attribute1", String(150), False))),  # the jtf_note_id it was recorded with (DFF)
}


@dataclass(frozen=True)
class ArLayout:
    """Physical names of the AR objects (only differences from the defaults); `schema` e.g. ``"APPS"``."""

    schema: str | None = None
    tables: Mapping[str, str] = field(default_factory=dict)
    columns: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_layout(_SPEC, self.tables, self.columns, "AR")


class ArTables:
    """The AR tables as Core metadata; columns by logical name (``tables.payment_schedules.c.due_date``)."""

    def __init__(self, layout: ArLayout | None = None):
        layout = layout or ArLayout()
        self.layout = layout
        self.metadata = MetaData(schema=_name(layout.schema) if layout.schema else None)
        for logical, (physical, spec) in _SPEC.items():
            cols = [Column(_name(layout.columns.get(logical, {}).get(key, phys)), type_, key=key, primary_key=pk,
                           nullable=not pk)
                    for key, phys, type_, pk in spec]
            setattr(self, logical, Table(_name(layout.tables.get(logical, physical)), self.metadata, *cols))

    # typed attributes for readers and linters
    operating_units: Table
    parties: Table
    accounts: Table
    contact_points: Table
    collectors: Table
    profiles: Table
    profile_amounts: Table
    customer_trx: Table
    payment_schedules: Table
    cash_receipts: Table
    applications: Table
    notes: Table
    note_texts: Table
    promises: Table


DEFAULT_AR_TABLES = ArTables()


def statements(as_of: date, tables: ArTables = DEFAULT_AR_TABLES) -> dict[str, Select]:
    """The SELECT of each dataset as of `as_of`; every outside value is a bound parameter."""
    t = tables
    ps, ca, ou, cr, ra = t.payment_schedules, t.accounts, t.operating_units, t.cash_receipts, t.applications
    before = bindparam("before_date", as_of + timedelta(days=1), type_=Date)  # on or before as_of, time-safe
    open_items = (
        select(ps.c.trx_number, ps.c.installment, ps.c.item_class, ca.c.account_number.label("customer_id"),
               ou.c.short_code.label("business_unit"), ps.c.currency, ps.c.trx_date, ps.c.due_date,
               ps.c.amount_due_original, ps.c.amount_due_remaining, ps.c.amount_in_dispute, ps.c.status)
        .select_from(ps.join(ca, ps.c.customer_id == ca.c.cust_account_id)
                     .outerjoin(ou, ps.c.org_id == ou.c.organization_id))
        .where(and_(ps.c.item_class.in_(bindparam("classes", ("INV", "CM", "DM"), expanding=True)),
                    ps.c.trx_date < before))
        .order_by(ps.c.payment_schedule_id)
    )
    receipts = (
        select(cr.c.cash_receipt_id, cr.c.receipt_number, ca.c.account_number.label("customer_id"), cr.c.currency,
               cr.c.amount, cr.c.receipt_date, cr.c.status)
        .select_from(cr.outerjoin(ca, cr.c.pay_from_customer == ca.c.cust_account_id))
        .where(cr.c.receipt_date < before)
        .order_by(cr.c.cash_receipt_id)
    )
    applications = (
        select(ra.c.receivable_application_id, ra.c.cash_receipt_id, ps.c.trx_number, ps.c.installment,
               ca.c.account_number.label("customer_id"), ps.c.currency, ra.c.amount_applied, ra.c.apply_date)
        .select_from(ra.join(ps, ra.c.applied_payment_schedule_id == ps.c.payment_schedule_id)
                     .join(ca, ps.c.customer_id == ca.c.cust_account_id))
        .where(and_(ra.c.status == bindparam("applied_status", "APP"), ra.c.apply_date < before))
        .order_by(ra.c.receivable_application_id)
    )
    pa, pr, pa_amt, coll, cp = t.parties, t.profiles, t.profile_amounts, t.collectors, t.contact_points
    accounts = (
        select(ca.c.account_number.label("customer_id"), pa.c.party_name.label("customer_name"),
               ca.c.customer_class, ca.c.currency, cp.c.email_address.label("billing_email"), pa_amt.c.credit_limit,
               coll.c.name.label("collector"), pr.c.dunning_letters, pr.c.no_dunning_reason)
        .select_from(ca.join(pa, ca.c.party_id == pa.c.party_id)
                     .join(pr, pr.c.cust_account_id == ca.c.cust_account_id)
                     .outerjoin(coll, pr.c.collector_id == coll.c.collector_id)
                     .outerjoin(pa_amt, and_(pa_amt.c.cust_account_profile_id == pr.c.cust_account_profile_id,
                                             pa_amt.c.currency == ca.c.currency))
                     .outerjoin(cp, and_(cp.c.owner_table_id == pa.c.party_id,
                                         cp.c.contact_point_type == bindparam("email_type", "EMAIL"),
                                         cp.c.primary_flag == bindparam("primary_flag", "Y"))))
        .order_by(ca.c.cust_account_id)
    )
    notes = _notes_statement(t, before)
    return {"open_items": open_items, "cash_receipts": receipts, "receipt_applications": applications,
            "collection_accounts": accounts, "account_notes": notes}


def _notes_statement(t: ArTables, before) -> Select:
    nb, nt, pm, ca = t.notes, t.note_texts, t.promises, t.accounts
    return (
        select(nb.c.jtf_note_id, ca.c.account_number.label("customer_id"), nb.c.entered_date, nb.c.entered_by_name,
               nt.c.notes, pm.c.promise_date, pm.c.promise_amount, pm.c.currency)
        .select_from(nb.join(nt, and_(nt.c.jtf_note_id == nb.c.jtf_note_id,
                                      nt.c.language == bindparam("language", "US")))
                     .join(ca, ca.c.party_id == nb.c.source_object_id)
                     # The promise's DFF holds the note id as text: compare as text on every database.
                     .outerjoin(pm, pm.c.note_ref == cast(nb.c.jtf_note_id, String(150))))
        .where(and_(nb.c.source_object_code == bindparam("note_object", "PARTY"), nb.c.entered_date < before))
        .order_by(nb.c.jtf_note_id)
    )


def _ids(values: pd.Series) -> pd.Series:
    return values.map(lambda v: None if v is None or pd.isna(v) else str(int(v))).astype("string")


class OracleReceivablesConnector(OracleConnector):
    """Reads collections' datasets from Oracle EBS Receivables; same settings, engine and retries as
    `OracleConnector`. Example::

        ar = OracleReceivablesConnector(OracleSettings.from_env())
        items = ar.read("open_items", date(2026, 11, 5))
    """

    name = "oracle_ar"
    datasets = ("open_items", "cash_receipts", "receipt_applications", "collection_accounts", "account_notes")

    def __init__(self, *args, ar_tables: ArTables | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.ar_tables = ar_tables or DEFAULT_AR_TABLES

    def read(self, dataset: str, as_of: date) -> pd.DataFrame:  # type: ignore[override]
        if dataset not in self.datasets:
            raise PermanentSourceError(f"oracle_ar does not deliver {dataset!r}; it delivers "
                                       f"{', '.join(self.datasets)}")
        raw = self._fetch(statements(as_of, self.ar_tables)[dataset], dataset)
        origin = f"oracle_ar:{dataset}"
        return _CONVERT[dataset](raw, origin)


def _open_items(raw: pd.DataFrame, origin: str) -> pd.DataFrame:
    inst = raw["installment"].map(lambda v: 1 if v is None or pd.isna(v) else int(v))
    df = pd.DataFrame({
        "payment_schedule_id": "PS-" + raw["trx_number"].astype(str) + "-" + inst.astype(str),
        "trx_number": raw["trx_number"], "trx_class": raw["item_class"], "customer_id": raw["customer_id"],
        "business_unit": raw["business_unit"], "currency": raw["currency"], "trx_date": _dates(raw["trx_date"]),
        "due_date": _dates(raw["due_date"]), "installment": inst,
        "amount_due_original_cents": exact_units(raw["amount_due_original"], MONEY_SCALE, origin,
                                                 "amount_due_original"),
        "amount_due_remaining_cents": exact_units(raw["amount_due_remaining"], MONEY_SCALE, origin,
                                                  "amount_due_remaining"),
        "amount_in_dispute_cents": exact_units(raw["amount_in_dispute"].map(lambda v: Decimal(0) if v is None else v),
                                               MONEY_SCALE, origin, "amount_in_dispute"),
        "status": raw["status"]})
    return conform(df, OPEN_ITEMS, origin=origin)


def _cash_receipts(raw: pd.DataFrame, origin: str) -> pd.DataFrame:
    df = raw.assign(cash_receipt_id=_ids(raw["cash_receipt_id"]), receipt_date=_dates(raw["receipt_date"]),
                    amount_cents=exact_units(raw["amount"], MONEY_SCALE, origin, "amount"))
    return conform(df, CASH_RECEIPTS, origin=origin)


def _applications(raw: pd.DataFrame, origin: str) -> pd.DataFrame:
    inst = raw["installment"].map(lambda v: 1 if v is None or pd.isna(v) else int(v))
    df = pd.DataFrame({
        "application_id": _ids(raw["receivable_application_id"]), "cash_receipt_id": _ids(raw["cash_receipt_id"]),
        "payment_schedule_id": "PS-" + raw["trx_number"].astype(str) + "-" + inst.astype(str),
        "customer_id": raw["customer_id"], "currency": raw["currency"],
        "amount_applied_cents": exact_units(raw["amount_applied"], MONEY_SCALE, origin, "amount_applied"),
        "apply_date": _dates(raw["apply_date"])})
    return conform(df, RECEIPT_APPLICATIONS, origin=origin)


def _accounts(raw: pd.DataFrame, origin: str) -> pd.DataFrame:
    flag = raw["dunning_letters"].astype("string").str.upper()
    df = raw.assign(
        credit_limit_cents=exact_units(raw["credit_limit"], MONEY_SCALE, origin, "overall_credit_limit"),
        collector=raw["collector"].where(raw["collector"].notna(), "unassigned"),
        do_not_dun=flag.eq("N").fillna(False).astype(bool),
        do_not_dun_reason=raw["no_dunning_reason"])
    return conform(df, COLLECTION_ACCOUNTS, origin=origin)


def _notes(raw: pd.DataFrame, origin: str) -> pd.DataFrame:
    amount = raw["promise_amount"]
    df = pd.DataFrame({
        "note_id": _ids(raw["jtf_note_id"]), "customer_id": raw["customer_id"],
        "note_date": _dates(raw["entered_date"]),
        "author": raw["entered_by_name"], "text": raw["notes"], "promise_date": _dates(raw["promise_date"]),
        "promise_amount_cents": exact_units(amount, MONEY_SCALE, origin, "promise_amount"),
        "currency": raw["currency"]})
    return conform(df, ACCOUNT_NOTES, origin=origin)


_CONVERT = {"open_items": _open_items, "cash_receipts": _cash_receipts, "receipt_applications": _applications,
            "collection_accounts": _accounts, "account_notes": _notes}


# --- local twin: create and fill the AR tables from canonical frames ---------------------------------
def create_schema(engine: Engine, tables: ArTables = DEFAULT_AR_TABLES) -> None:
    """Create the AR tables (tests, demos, benchmarks; never against EBS itself)."""
    tables.metadata.create_all(engine)


def _money(cents) -> Decimal | None:
    return None if cents is None or pd.isna(cents) else Decimal(int(cents)).scaleb(-MONEY_SCALE)


def _day(v) -> date | None:
    return None if v is None or pd.isna(v) else pd.Timestamp(v).date()


def load_ar(engine: Engine, ar: Mapping[str, pd.DataFrame], tables: ArTables = DEFAULT_AR_TABLES) -> dict[str, dict]:
    """Fill the AR tables from canonical frames (e.g. `sample_ar.generate_ar`), the reverse of the reads.

    Returns the numeric id given to each canonical receipt, application and note id, so a test can
    compare what it reads back.
    """
    acc = ar["collection_accounts"].reset_index(drop=True)
    cust_id = {c: i + 1 for i, c in enumerate(acc["customer_id"])}
    collectors = {n: i + 1 for i, n in enumerate(sorted(set(acc["collector"])))}
    items = ar["open_items"].reset_index(drop=True)
    units = {u: 101 + i for i, u in enumerate(sorted(set(items["business_unit"])))}
    trx = items.drop_duplicates("trx_number").reset_index(drop=True)
    trx_id = {t: i + 1 for i, t in enumerate(trx["trx_number"])}
    ps_id = {p: i + 1 for i, p in enumerate(items["payment_schedule_id"])}
    receipts = ar["cash_receipts"].reset_index(drop=True)
    cr_id = {r: i + 1 for i, r in enumerate(receipts["cash_receipt_id"])}
    apps = ar["receipt_applications"].reset_index(drop=True)
    app_id = {a: i + 1 for i, a in enumerate(apps["application_id"])}
    notes = ar["account_notes"].reset_index(drop=True)
    note_id = {n: i + 1 for i, n in enumerate(notes["note_id"])}
    rows: dict[str, list[dict]] = {
        "operating_units": [{"organization_id": o, "short_code": u} for u, o in units.items()],
        "parties": [{"party_id": cust_id[c], "party_name": n} for c, n in zip(acc["customer_id"], acc["customer_name"],
                                                                            strict=True)],
        "accounts": [{"cust_account_id": cust_id[r.customer_id], "account_number": r.customer_id,
                      "party_id": cust_id[r.customer_id], "customer_class": r.customer_class, "currency": r.currency}
                     for r in acc.itertuples(index=False)],
        "contact_points": [{"contact_point_id": cust_id[r.customer_id], "owner_table_id": cust_id[r.customer_id],
                            "contact_point_type": "EMAIL", "email_address": r.billing_email, "primary_flag": "Y"}
                           for r in acc.itertuples(index=False) if not pd.isna(r.billing_email)],
        "collectors": [{"collector_id": i, "name": n} for n, i in collectors.items()],
        "profiles": [{"cust_account_profile_id": cust_id[r.customer_id], "cust_account_id": cust_id[r.customer_id],
                      "collector_id": collectors[r.collector], "dunning_letters": "N" if r.do_not_dun else "Y",
                      "no_dunning_reason": None if pd.isna(r.do_not_dun_reason) else r.do_not_dun_reason}
                     for r in acc.itertuples(index=False)],
        "profile_amounts": [{"cust_acct_profile_amt_id": cust_id[r.customer_id],
                             "cust_account_profile_id": cust_id[r.customer_id], "currency": r.currency,
                             "credit_limit": _money(r.credit_limit_cents)}
                            for r in acc.itertuples(index=False) if not pd.isna(r.credit_limit_cents)],
        "customer_trx": [{"customer_trx_id": trx_id[r.trx_number], "trx_number": r.trx_number,
                          "trx_date": _day(r.trx_date), "bill_to_customer_id": cust_id[r.customer_id],
                          "currency": r.currency, "org_id": units[r.business_unit]}
                         for r in trx.itertuples(index=False)],
        "payment_schedules": [{
            "payment_schedule_id": ps_id[r.payment_schedule_id], "customer_trx_id": trx_id[r.trx_number],
            "customer_id": cust_id[r.customer_id], "trx_number": r.trx_number, "item_class": r.trx_class,
            "currency": r.currency, "installment": int(r.installment), "trx_date": _day(r.trx_date),
            "due_date": _day(r.due_date), "amount_due_original": _money(r.amount_due_original_cents),
            "amount_due_remaining": _money(r.amount_due_remaining_cents),
            "amount_in_dispute": _money(r.amount_in_dispute_cents), "status": r.status,
            "org_id": units[r.business_unit]} for r in items.itertuples(index=False)],
        "cash_receipts": [{"cash_receipt_id": cr_id[r.cash_receipt_id], "receipt_number": r.receipt_number,
                           "receipt_date": _day(r.receipt_date),
                           "pay_from_customer": None if pd.isna(r.customer_id) else cust_id[r.customer_id],
                           "currency": r.currency, "amount": _money(r.amount_cents), "status": r.status}
                          for r in receipts.itertuples(index=False)],
        "applications": [{"receivable_application_id": app_id[r.application_id],
                          "cash_receipt_id": None if pd.isna(r.cash_receipt_id) else cr_id[r.cash_receipt_id],
                          "applied_payment_schedule_id": ps_id[r.payment_schedule_id],
                          "amount_applied": _money(r.amount_applied_cents), "apply_date": _day(r.apply_date),
                          "status": "APP", "application_type": "CM" if pd.isna(r.cash_receipt_id) else "CASH"}
                         for r in apps.itertuples(index=False)],
        "notes": [{"jtf_note_id": note_id[r.note_id], "source_object_code": "PARTY",
                   "source_object_id": cust_id[r.customer_id], "entered_date": _day(r.note_date),
                   "entered_by_name": r.author} for r in notes.itertuples(index=False)],
        "note_texts": [{"jtf_note_id": note_id[r.note_id], "language": "US", "notes": r.text}
                       for r in notes.itertuples(index=False)],
        "promises": [{"promise_detail_id": note_id[r.note_id], "cust_account_id": cust_id[r.customer_id],
                      "promise_date": _day(r.promise_date), "promise_amount": _money(r.promise_amount_cents),
                      "currency": r.currency, "status": "COLLECTABLE", "note_ref": str(note_id[r.note_id])}
                     for r in notes.itertuples(index=False) if not pd.isna(r.promise_date)],
    }
    with engine.begin() as conn:
        for logical, recs in rows.items():
            table: Table = getattr(tables, logical)
            keys = table.c.keys()
            recs = [{k: r.get(k) for k in keys} for r in recs]
            for start in range(0, len(recs), 5000):
                conn.execute(table.insert(), recs[start:start + 5000])
    return {"cash_receipt_id": cr_id, "application_id": app_id, "note_id": note_id}

