"""Cash application, provision and inquiry tables in the project's store, and `CashStore` over them.

The tables are defined on `store.schema.metadata`, so `Store(...)` creates them with the rest. Names
start with ``cash_``, ``provision_`` or ``inquiry_`` so they never clash with the close's or collections'.

- statement files loaded; receipts (AR_CASH_RECEIPTS_ALL-shaped) and their applications
  (AR_RECEIVABLE_APPLICATIONS_ALL-shaped, append-only: a correction or reversal adds rows); suggestions
  waiting for review; the payer map (IBAN or name alias -> customer) and the corrections that taught it;
  remittance hints from inbound advices;
- write-off proposals and their approval batches; exports to the ERP (a provision journal, a write-off
  batch), each handed off once: intent recorded before delivery, completion after, one idempotency key;
- month-end aging snapshots, allowances per customer and segment overrides of the provision;
- the inquiry log and the replies sent (one per inquiry and kind, recorded before sending).

Business rules stay in `receivables/`; the methods here only read and write, each write in one
transaction.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pandas as pd
from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Engine,
    Index,
    Integer,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)

from receivables.cash_application import (
    APPLICATIONS,
    PAYER_MAP,
    RECEIPTS,
    SUGGESTIONS,
    WRITE_OFF_PROPOSALS,
    CashApplicationResult,
    as_dataset,
    open_items_after,
    receipt_statuses,
)
from receivables.provision import AGING_SNAPSHOTS
from store.db import Store, _chunks, _frame, _now, _records
from store.schema import metadata

cash_statement_files = Table(
    "cash_statement_files", metadata,
    Column("file_id", String(64), primary_key=True),          # sha256 of the file's bytes
    Column("filename", Text, nullable=False),
    Column("source_format", String(30), nullable=False),
    Column("entries", Integer, nullable=False),
    Column("new_receipts", Integer, nullable=False),
    Column("run_id", String(64)),
    Column("loaded_at", DateTime(timezone=True), nullable=False),
)

cash_receipts = Table(
    "cash_receipts", metadata,
    Column("cash_receipt_id", String(160), primary_key=True),
    Column("receipt_number", String(120), nullable=False),
    Column("customer_id", String(50)),
    Column("currency", String(3), nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("receipt_date", Date, nullable=False),
    Column("status", String(5), nullable=False),
    Column("statement_id", String(120), nullable=False),
    Column("entry_id", String(120), nullable=False),
    Column("bank_reference", String(120)),
    Column("end_to_end_id", String(120)),
    Column("payer_name", String(200)),
    Column("payer_iban", String(40)),
    Column("remittance_text", Text),
    Column("score", Integer, nullable=False),
    Column("band", String(15), nullable=False),
    Column("reason_codes", Text, nullable=False),
    Column("reverses_receipt_id", String(160)),
    Column("run_id", String(64)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
Index("ix_cash_receipts_customer", cash_receipts.c.customer_id, cash_receipts.c.status)

cash_applications = Table(
    "cash_applications", metadata,
    Column("receivable_application_id", String(180), primary_key=True),
    Column("cash_receipt_id", String(160), nullable=False),
    Column("status", String(5), nullable=False),
    Column("applied_payment_schedule_id", String(120)),
    Column("applied_trx_number", String(200)),
    Column("customer_id", String(50)),
    Column("currency", String(3), nullable=False),
    Column("amount_applied_cents", BigInteger, nullable=False),
    Column("apply_date", Date, nullable=False),
    Column("score", Integer, nullable=False),
    Column("reason_codes", Text, nullable=False),
    Column("reversal_of", String(160)),
    Column("run_id", String(64)),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
Index("ix_cash_applications_receipt", cash_applications.c.cash_receipt_id)
Index("ix_cash_applications_item", cash_applications.c.applied_payment_schedule_id)

cash_suggestions = Table(
    "cash_suggestions", metadata,
    Column("suggestion_id", Integer, primary_key=True, autoincrement=True),
    Column("cash_receipt_id", String(160), nullable=False),
    Column("customer_id", String(50), nullable=False),
    Column("payment_schedule_id", String(120), nullable=False),
    Column("trx_number", String(200), nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("score", Integer, nullable=False),
    Column("reason_codes", Text, nullable=False),
    Column("state", String(12), nullable=False),   # open, accepted, superseded
    Column("run_id", String(64)),
)
Index("ix_cash_suggestions_receipt", cash_suggestions.c.cash_receipt_id, cash_suggestions.c.state)

cash_payer_map = Table(
    "cash_payer_map", metadata,
    Column("kind", String(5), primary_key=True),      # iban, name
    Column("value", String(200), primary_key=True),
    Column("customer_id", String(50), nullable=False),
    Column("source", String(12), nullable=False),     # master, correction
    Column("created_by", String(100)),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

cash_corrections = Table(
    "cash_corrections", metadata,
    Column("correction_id", Integer, primary_key=True, autoincrement=True),
    Column("cash_receipt_id", String(160), nullable=False),
    Column("customer_id", String(50), nullable=False),
    Column("allocations_json", Text, nullable=False),
    Column("corrected_by", String(100), nullable=False),
    Column("comment", Text),
    Column("learned_json", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

cash_remittance_hints = Table(
    "cash_remittance_hints", metadata,
    Column("hint_id", String(200), primary_key=True),   # the inquiry that brought it
    Column("customer_id", String(50), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("trx_numbers", Text, nullable=False),
    Column("state", String(10), nullable=False),        # open, used
    Column("used_by_receipt", String(160)),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

cash_write_offs = Table(
    "cash_write_offs", metadata,
    Column("write_off_id", String(220), primary_key=True),
    Column("payment_schedule_id", String(120), nullable=False),
    Column("trx_number", String(200), nullable=False),
    Column("customer_id", String(50), nullable=False),
    Column("business_unit", String(50), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("reason", String(20), nullable=False),
    Column("cash_receipt_id", String(160)),
    # proposed -> (in a batch) pending_approval -> approved | rejected -> handed_off; cancelled by a reversal
    Column("status", String(20), nullable=False),
    Column("batch_id", String(60)),
    Column("run_id", String(64)),
    Column("proposed_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
Index("ix_cash_write_offs_status", cash_write_offs.c.status)

cash_write_off_batches = Table(
    "cash_write_off_batches", metadata,
    Column("batch_id", String(60), primary_key=True),
    Column("period", String(7), nullable=False),
    Column("status", String(20), nullable=False),   # pending_approval, approved, rejected, handed_off
    Column("count", Integer, nullable=False),
    Column("total_cents", BigInteger, nullable=False),
    Column("preparer", String(100)),
    Column("approver", String(100)),
    Column("comment", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("decided_at", DateTime(timezone=True)),
)

cash_exports = Table(
    "cash_exports", metadata,
    Column("export_key", String(120), primary_key=True),   # e.g. provision-journal-2026-10, write-off-WOB-...
    Column("kind", String(30), nullable=False),
    Column("target", String(50), nullable=False),
    Column("idempotency_key", String(64), nullable=False),
    Column("state", String(20), nullable=False),          # started, delivered
    Column("attempts", Integer, nullable=False),
    Column("external_ref", Text),
    Column("run_id", String(64)),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True)),
)

provision_aging_snapshots = Table(
    "provision_aging_snapshots", metadata,
    Column("period", String(7), primary_key=True),
    Column("customer_id", String(50), primary_key=True),
    Column("currency", String(3), primary_key=True),
    Column("bucket", String(10), primary_key=True),
    Column("business_unit", String(50), nullable=False),
    Column("customer_class", String(20), nullable=False),
    Column("balance_cents", BigInteger, nullable=False),
    Column("run_id", String(64)),
)

provision_allowances = Table(
    "provision_allowances", metadata,
    Column("period", String(7), primary_key=True),
    Column("customer_id", String(50), primary_key=True),
    Column("currency", String(3), primary_key=True),
    Column("business_unit", String(50)),
    Column("customer_class", String(20)),
    Column("balance_cents", BigInteger, nullable=False),
    Column("collective_cents", BigInteger, nullable=False),
    Column("specific_cents", BigInteger, nullable=False),
    Column("allowance_cents", BigInteger, nullable=False),
    Column("movement_cents", BigInteger, nullable=False),
    Column("run_id", String(64)),
)

provision_overrides = Table(
    "provision_overrides", metadata,
    Column("override_id", Integer, primary_key=True, autoincrement=True),
    Column("period", String(7), nullable=False),
    Column("segment_json", Text, nullable=False),
    Column("factor_bp", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("preparer", String(100), nullable=False),
    Column("approver", String(100), nullable=False),
    Column("run_id", String(64)),
    Column("decided_at", DateTime(timezone=True), nullable=False),
)

inquiry_log = Table(
    "inquiry_log", metadata,
    Column("inquiry_key", String(300), primary_key=True),
    Column("message_id", String(300)),
    Column("origin", Text),
    Column("received", DateTime(timezone=True)),
    Column("sender", String(200), nullable=False),
    Column("subject", Text),
    Column("category", String(40), nullable=False),
    Column("why", Text),
    Column("action", String(30), nullable=False),
    Column("owner", String(100), nullable=False),
    Column("customer_id", String(50)),
    Column("trx_numbers", Text),
    Column("currency", String(3)),
    Column("amount_cents", BigInteger),
    Column("status", String(20), nullable=False),   # planned, done, queued, failed
    Column("detail", Text),
    Column("run_id", String(64)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

inquiry_replies = Table(
    "inquiry_replies", metadata,
    Column("reply_key", String(64), primary_key=True),
    Column("inquiry_key", String(300), nullable=False),
    Column("kind", String(30), nullable=False),
    Column("recipient", String(200), nullable=False),
    Column("message_id", String(300), nullable=False),
    Column("state", String(20), nullable=False),     # started, sent
    Column("attempts", Integer, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True)),
)


class CashStore:
    """Cash application's reads and writes on the project's store. `CashStore(Store(url))`."""

    def __init__(self, store: Store | Engine | str):
        self.store = store if isinstance(store, Store) else Store(store)
        self.engine = self.store.engine

    # -- statement files ---------------------------------------------------------------------------------------
    def statement_file(self, file_id: str) -> dict | None:
        with self.engine.connect() as c:
            row = c.execute(select(cash_statement_files).where(cash_statement_files.c.file_id == file_id)
                            ).mappings().first()
        return dict(row) if row else None

    def statement_files(self) -> pd.DataFrame:
        with self.engine.connect() as c:
            return _frame(c, select(cash_statement_files).order_by(cash_statement_files.c.loaded_at),
                          cash_statement_files)

    # -- receipts and applications -----------------------------------------------------------------------------
    def receipts(self) -> pd.DataFrame:
        with self.engine.connect() as c:
            df = _frame(c, select(cash_receipts).order_by(cash_receipts.c.receipt_date,
                                                          cash_receipts.c.cash_receipt_id), cash_receipts)
        return as_dataset(df, RECEIPTS)

    def applications(self) -> pd.DataFrame:
        with self.engine.connect() as c:
            df = _frame(c, select(cash_applications).order_by(cash_applications.c.created_at,
                                                              cash_applications.c.receivable_application_id),
                        cash_applications)
        return as_dataset(df, APPLICATIONS)

    def suggestions(self, state: str | None = "open") -> pd.DataFrame:
        q = select(cash_suggestions).order_by(cash_suggestions.c.suggestion_id)
        if state:
            q = q.where(cash_suggestions.c.state == state)
        with self.engine.connect() as c:
            df = _frame(c, q, cash_suggestions)
        return as_dataset(df, SUGGESTIONS).assign(state=df["state"].astype("string").to_numpy())

    def record_statement_files(self, files: list[dict], run_id: str | None) -> int:
        """Note each file read (by content hash); returns how many had been read before."""
        with self.engine.begin() as c:
            have = {r[0] for r in c.execute(select(cash_statement_files.c.file_id))}
            new = [f for f in files if f["file_id"] not in have]
            now = _now()
            for f in new:
                c.execute(insert(cash_statement_files).values(**f, run_id=run_id, loaded_at=now))
        return len(files) - len(new)

    def record_run(self, result: CashApplicationResult, run_id: str) -> None:
        """Everything one run decided, in one transaction (a failure leaves nothing half-recorded)."""
        now = _now()
        rec = _records(result.receipts, RECEIPTS.names)
        for r in rec:
            r.update(run_id=run_id, created_at=now, updated_at=now)
        apps = _records(result.applications, APPLICATIONS.names)
        for a in apps:
            a.update(run_id=run_id, created_at=now)
        sugg = _records(result.suggestions, SUGGESTIONS.names)
        for s in sugg:
            s.update(state="open", run_id=run_id)
        wo = _records(result.write_off_proposals, WRITE_OFF_PROPOSALS.names)
        for w in wo:
            w.update(status="proposed", run_id=run_id, proposed_at=now, updated_at=now)
        with self.engine.begin() as c:
            for table, rows in ((cash_receipts, rec), (cash_applications, apps), (cash_suggestions, sugg)):
                for chunk in _chunks(rows, 2000):
                    c.execute(insert(table), chunk)
            if wo:
                have = {r[0] for r in c.execute(select(cash_write_offs.c.write_off_id).where(
                    cash_write_offs.c.write_off_id.in_([w["write_off_id"] for w in wo])))}
                new = [w for w in wo if w["write_off_id"] not in have]
                if new:
                    c.execute(insert(cash_write_offs), new)
            reversed_ids = list(result.reversed_receipt_ids)
            for chunk in _chunks(reversed_ids, 500):
                c.execute(update(cash_receipts).where(cash_receipts.c.cash_receipt_id.in_(chunk)).values(
                    status="REV", updated_at=now))
                c.execute(update(cash_suggestions).where(cash_suggestions.c.cash_receipt_id.in_(chunk),
                                                         cash_suggestions.c.state == "open").values(state="superseded"))
                c.execute(update(cash_write_offs).where(cash_write_offs.c.cash_receipt_id.in_(chunk),
                                                        cash_write_offs.c.status == "proposed").values(
                    status="cancelled", updated_at=now))
            used = result.receipts[result.receipts["reason_codes"].str.contains("REF_ADVICE", regex=False)]
            if len(used):
                self._use_hints(c, used)

    def _use_hints(self, c, used: pd.DataFrame) -> None:
        hints = pd.DataFrame(c.execute(select(cash_remittance_hints).where(
            cash_remittance_hints.c.state == "open")).mappings().all(),
            columns=[x.name for x in cash_remittance_hints.columns])
        for r in used.itertuples(index=False):
            match = hints[(hints["customer_id"] == r.customer_id) & (hints["currency"] == r.currency)
                          & (hints["amount_cents"] == r.amount_cents)]
            if len(match):
                hid = match["hint_id"].iloc[0]
                hints = hints[hints["hint_id"] != hid]
                c.execute(update(cash_remittance_hints).where(cash_remittance_hints.c.hint_id == hid).values(
                    state="used", used_by_receipt=r.cash_receipt_id))

    def record_correction(self, cash_receipt_id: str, customer_id: str, allocations: list[tuple[str, int]],
                          rows: pd.DataFrame, learned: pd.DataFrame, corrected_by: str, comment: str | None,
                          run_id: str | None = None) -> None:
        """A person's correction: its application rows, the receipt's new status, the payer map it teaches."""
        now = _now()
        apps = _records(rows, APPLICATIONS.names)
        for a in apps:
            a.update(run_id=run_id, created_at=now)
        with self.engine.begin() as c:
            c.execute(insert(cash_applications), apps)
            mine = as_dataset(_frame(c, select(cash_applications).where(
                cash_applications.c.cash_receipt_id == cash_receipt_id), cash_applications), APPLICATIONS)
            receipt = as_dataset(_frame(c, select(cash_receipts).where(
                cash_receipts.c.cash_receipt_id == cash_receipt_id), cash_receipts), RECEIPTS)
            status = receipt_statuses(receipt, mine).iloc[0]
            c.execute(update(cash_receipts).where(cash_receipts.c.cash_receipt_id == cash_receipt_id).values(
                status=status, customer_id=customer_id, updated_at=now))
            chosen = {p for p, _ in allocations}
            for s in c.execute(select(cash_suggestions).where(cash_suggestions.c.cash_receipt_id == cash_receipt_id,
                                                              cash_suggestions.c.state == "open")).mappings().all():
                c.execute(update(cash_suggestions).where(cash_suggestions.c.suggestion_id == s["suggestion_id"]).values(
                    state="accepted" if s["payment_schedule_id"] in chosen and s["customer_id"] == customer_id
                    else "superseded"))
            c.execute(insert(cash_corrections).values(
                cash_receipt_id=cash_receipt_id, customer_id=customer_id, corrected_by=corrected_by, comment=comment,
                allocations_json=json.dumps([[p, int(a)] for p, a in allocations]),
                learned_json=learned.to_json(orient="records"), created_at=now))
            self._upsert_payers(c, learned, corrected_by)

    def corrections(self) -> pd.DataFrame:
        with self.engine.connect() as c:
            return _frame(c, select(cash_corrections).order_by(cash_corrections.c.correction_id), cash_corrections)

    # -- payer map ---------------------------------------------------------------------------------------------
    def payer_map(self) -> pd.DataFrame:
        with self.engine.connect() as c:
            df = _frame(c, select(cash_payer_map).order_by(cash_payer_map.c.kind, cash_payer_map.c.value),
                        cash_payer_map)
        return df[PAYER_MAP.names].astype("string")

    def seed_payer_map(self, rows: pd.DataFrame) -> int:
        """Add master-data rows whose (kind, value) is new; a person's correction is never overwritten."""
        with self.engine.begin() as c:
            have = {(r[0], r[1]) for r in c.execute(select(cash_payer_map.c.kind, cash_payer_map.c.value))}
            new = [r for r in _records(rows, PAYER_MAP.names) if (r["kind"], r["value"]) not in have]
            now = _now()
            for r in new:
                r.update(created_at=now, created_by="master data")
            for chunk in _chunks(new, 2000):
                c.execute(insert(cash_payer_map), chunk)
        return len(new)

    def _upsert_payers(self, c, learned: pd.DataFrame, by: str) -> None:
        now = _now()
        for r in _records(learned, PAYER_MAP.names):
            n = c.execute(update(cash_payer_map).where(cash_payer_map.c.kind == r["kind"],
                                                       cash_payer_map.c.value == r["value"]).values(
                customer_id=r["customer_id"], source=r["source"], created_by=by, created_at=now)).rowcount
            if not n:
                c.execute(insert(cash_payer_map).values(**r, created_by=by, created_at=now))

    # -- remittance hints --------------------------------------------------------------------------------------
    def add_hints(self, hints: pd.DataFrame) -> int:
        cols = ["hint_id", "customer_id", "currency", "amount_cents", "trx_numbers"]
        with self.engine.begin() as c:
            have = {r[0] for r in c.execute(select(cash_remittance_hints.c.hint_id))}
            new = [r for r in _records(hints, cols) if r["hint_id"] not in have]
            for r in new:
                r.update(state="open", created_at=_now())
            if new:
                c.execute(insert(cash_remittance_hints), new)
        return len(new)

    def hints(self, state: str | None = "open") -> pd.DataFrame:
        q = select(cash_remittance_hints).order_by(cash_remittance_hints.c.created_at, cash_remittance_hints.c.hint_id)
        if state:
            q = q.where(cash_remittance_hints.c.state == state)
        with self.engine.connect() as c:
            return _frame(c, q, cash_remittance_hints)

    # -- open items as cash application leaves them ------------------------------------------------------------
    def effective_open_items(self, open_items: pd.DataFrame) -> pd.DataFrame:
        """The ledger's items less every application recorded here and every approved write-off.

        The collections ladder reads items through this, so a reversal (negative APP rows) re-opens them.
        """
        return open_items_after(open_items, self.applications(), self.write_offs(("approved", "handed_off")))

    # -- write-offs --------------------------------------------------------------------------------------------
    def write_offs(self, statuses: tuple[str, ...] | str | None = None) -> pd.DataFrame:
        q = select(cash_write_offs).order_by(cash_write_offs.c.write_off_id)
        if statuses:
            q = q.where(cash_write_offs.c.status.in_([statuses] if isinstance(statuses, str) else list(statuses)))
        with self.engine.connect() as c:
            return _frame(c, q, cash_write_offs)

    def propose_write_offs(self, proposals: pd.DataFrame, run_id: str | None) -> int:
        """Add proposals not seen before (by write_off_id) and not for an item already proposed or written off."""
        now = _now()
        with self.engine.begin() as c:
            live = pd.DataFrame(c.execute(select(cash_write_offs.c.write_off_id, cash_write_offs.c.payment_schedule_id)
                                          .where(cash_write_offs.c.status != "cancelled")).all(),
                                columns=["write_off_id", "payment_schedule_id"])
            new = proposals[~proposals["write_off_id"].isin(set(live["write_off_id"]))
                            & ~proposals["payment_schedule_id"].isin(set(live["payment_schedule_id"]))]
            rows = _records(new, WRITE_OFF_PROPOSALS.names)
            for r in rows:
                r.update(status="proposed", run_id=run_id, proposed_at=now, updated_at=now)
            if rows:
                c.execute(insert(cash_write_offs), rows)
        return len(rows)

    def open_write_off_batch(self, batch_id: str, period: str, preparer: str | None) -> pd.DataFrame:
        """Put every proposed write-off in a new batch waiting for approval; returns the batch's write-offs."""
        now = _now()
        with self.engine.begin() as c:
            ids = [r[0] for r in c.execute(select(cash_write_offs.c.write_off_id).where(
                cash_write_offs.c.status == "proposed"))]
            if not ids:
                return self.write_offs().iloc[0:0]
            total = sum(r[0] for r in c.execute(select(cash_write_offs.c.amount_cents).where(
                cash_write_offs.c.write_off_id.in_(ids))))
            c.execute(insert(cash_write_off_batches).values(batch_id=batch_id, period=period, status="pending_approval",
                                                            count=len(ids), total_cents=total, preparer=preparer,
                                                            created_at=now))
            for chunk in _chunks(ids, 500):
                c.execute(update(cash_write_offs).where(cash_write_offs.c.write_off_id.in_(chunk)).values(
                    status="pending_approval", batch_id=batch_id, updated_at=now))
        wo = self.write_offs()
        return wo[wo["batch_id"] == batch_id]

    def decide_write_off_batch(self, batch_id: str, decision: str, approver: str, comment: str | None = None) -> None:
        if decision not in ("approved", "rejected"):
            raise ValueError(f"write-off batch {batch_id}: field decision: {decision!r} is not approved or rejected")
        now = _now()
        with self.engine.begin() as c:
            c.execute(update(cash_write_off_batches).where(cash_write_off_batches.c.batch_id == batch_id).values(
                status=decision, approver=approver, comment=comment, decided_at=now))
            # A rejected batch sends its write-offs back to the proposals, for the next batch or a person.
            c.execute(update(cash_write_offs).where(cash_write_offs.c.batch_id == batch_id).values(
                status="approved" if decision == "approved" else "proposed",
                batch_id=batch_id if decision == "approved" else None, updated_at=now))

    def mark_write_off_batch_handed_off(self, batch_id: str) -> None:
        with self.engine.begin() as c:
            c.execute(update(cash_write_off_batches).where(cash_write_off_batches.c.batch_id == batch_id).values(
                status="handed_off"))
            c.execute(update(cash_write_offs).where(cash_write_offs.c.batch_id == batch_id).values(
                status="handed_off", updated_at=_now()))

    def write_off_batches(self) -> pd.DataFrame:
        with self.engine.connect() as c:
            return _frame(c, select(cash_write_off_batches).order_by(cash_write_off_batches.c.created_at),
                          cash_write_off_batches)

    # -- exports to the ERP, each exactly once -----------------------------------------------------------------
    def export_state(self, export_key: str) -> dict | None:
        with self.engine.connect() as c:
            row = c.execute(select(cash_exports).where(cash_exports.c.export_key == export_key)).mappings().first()
        return dict(row) if row else None

    def begin_export(self, export_key: str, kind: str, target: str, idempotency_key: str, run_id: str | None) -> dict:
        existing = self.export_state(export_key)
        with self.engine.begin() as c:
            if existing is None:
                c.execute(insert(cash_exports).values(export_key=export_key, kind=kind, target=target,
                                                      idempotency_key=idempotency_key, state="started", attempts=1,
                                                      run_id=run_id, started_at=_now()))
            elif existing["state"] != "delivered":
                c.execute(update(cash_exports).where(cash_exports.c.export_key == export_key).values(
                    attempts=existing["attempts"] + 1, run_id=run_id))
        return self.export_state(export_key)

    def complete_export(self, export_key: str, external_ref: str) -> None:
        with self.engine.begin() as c:
            c.execute(update(cash_exports).where(cash_exports.c.export_key == export_key).values(
                state="delivered", delivered_at=_now(), external_ref=external_ref))

    def exports(self) -> pd.DataFrame:
        with self.engine.connect() as c:
            return _frame(c, select(cash_exports).order_by(cash_exports.c.started_at), cash_exports)

    # -- provision ---------------------------------------------------------------------------------------------
    def replace_aging_snapshot(self, period: str, snapshot: pd.DataFrame, run_id: str | None,
                               only_if_missing: bool = False) -> int:
        with self.engine.begin() as c:
            if only_if_missing and c.execute(select(provision_aging_snapshots.c.period).where(
                    provision_aging_snapshots.c.period == period).limit(1)).first():
                return 0
            c.execute(delete(provision_aging_snapshots).where(provision_aging_snapshots.c.period == period))
            rows = _records(snapshot, AGING_SNAPSHOTS.names)
            for r in rows:
                r["run_id"] = run_id
            for chunk in _chunks(rows, 2000):
                c.execute(insert(provision_aging_snapshots), chunk)
        return len(rows)

    def aging_snapshots(self, periods: list[str] | None = None) -> pd.DataFrame:
        q = select(provision_aging_snapshots).order_by(provision_aging_snapshots.c.period)
        if periods:
            q = q.where(provision_aging_snapshots.c.period.in_(periods))
        with self.engine.connect() as c:
            df = _frame(c, q, provision_aging_snapshots)
        return as_dataset(df, AGING_SNAPSHOTS)

    def replace_allowances(self, period: str, by_customer: pd.DataFrame, run_id: str | None) -> None:
        cols = ["customer_id", "currency", "business_unit", "customer_class", "balance_cents", "collective_cents",
                "specific_cents", "allowance_cents", "movement_cents"]
        rows = _records(by_customer, cols)
        for r in rows:
            r.update(period=period, run_id=run_id)
        with self.engine.begin() as c:
            c.execute(delete(provision_allowances).where(provision_allowances.c.period == period))
            for chunk in _chunks(rows, 2000):
                c.execute(insert(provision_allowances), chunk)

    def allowances(self, period: str) -> pd.DataFrame:
        with self.engine.connect() as c:
            return _frame(c, select(provision_allowances).where(provision_allowances.c.period == period),
                          provision_allowances)

    def record_override(self, period: str, segment: dict, factor_bp: int, reason: str, preparer: str, approver: str,
                        run_id: str | None) -> None:
        with self.engine.begin() as c:
            c.execute(insert(provision_overrides).values(
                period=period, segment_json=json.dumps(segment, sort_keys=True), factor_bp=factor_bp, reason=reason,
                preparer=preparer, approver=approver, run_id=run_id, decided_at=_now()))

    def overrides(self, period: str | None = None) -> pd.DataFrame:
        q = select(provision_overrides).order_by(provision_overrides.c.override_id)
        if period:
            q = q.where(provision_overrides.c.period == period)
        with self.engine.connect() as c:
            return _frame(c, q, provision_overrides)

    # -- inquiries ---------------------------------------------------------------------------------------------
    def log_inquiry(self, row: dict[str, Any], run_id: str | None) -> bool:
        """Record an inquiry once; False when it was logged before (the same message read again)."""
        with self.engine.begin() as c:
            if c.execute(select(inquiry_log.c.inquiry_key).where(inquiry_log.c.inquiry_key == row["inquiry_key"])
                         ).first():
                return False
            now = _now()
            values = {k: _plain(row.get(k)) for k in (col.name for col in inquiry_log.columns) if k in row}
            c.execute(insert(inquiry_log).values(**values, run_id=run_id, created_at=now, updated_at=now))
        return True

    def set_inquiry(self, inquiry_key: str, **values: Any) -> None:
        with self.engine.begin() as c:
            c.execute(update(inquiry_log).where(inquiry_log.c.inquiry_key == inquiry_key).values(
                **values, updated_at=_now()))

    def inquiries(self) -> pd.DataFrame:
        with self.engine.connect() as c:
            return _frame(c, select(inquiry_log).order_by(inquiry_log.c.created_at, inquiry_log.c.inquiry_key),
                          inquiry_log)

    def begin_reply(self, reply_key: str, inquiry_key: str, kind: str, recipient: str, message_id: str) -> dict:
        """Record the intent to send before sending; returns the reply row (new or existing)."""
        with self.engine.begin() as c:
            row = c.execute(select(inquiry_replies).where(inquiry_replies.c.reply_key == reply_key)).mappings().first()
            if row is None:
                c.execute(insert(inquiry_replies).values(reply_key=reply_key, inquiry_key=inquiry_key, kind=kind,
                                                         recipient=recipient, message_id=message_id, state="started",
                                                         attempts=1, started_at=_now()))
            elif row["state"] != "sent":
                c.execute(update(inquiry_replies).where(inquiry_replies.c.reply_key == reply_key).values(
                    attempts=row["attempts"] + 1))
            return dict(c.execute(select(inquiry_replies).where(inquiry_replies.c.reply_key == reply_key)
                                  ).mappings().first())

    def complete_reply(self, reply_key: str) -> None:
        with self.engine.begin() as c:
            c.execute(update(inquiry_replies).where(inquiry_replies.c.reply_key == reply_key).values(
                state="sent", sent_at=_now()))

    def replies(self) -> pd.DataFrame:
        with self.engine.connect() as c:
            return _frame(c, select(inquiry_replies).order_by(inquiry_replies.c.started_at), inquiry_replies)


def _plain(v):
    if v is None or v is pd.NA or (isinstance(v, float) and v != v):
        return None
    if isinstance(v, pd.Timestamp):
        return v.to_pydatetime()
    if isinstance(v, date):
        return v
    return v.item() if hasattr(v, "item") else v
