"""Store access: one object over one database, every write in a transaction."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine, create_engine, delete, event, insert, select, update

from store import schema as t

DEFAULT_URL = "sqlite:///out/billing.sqlite"


def _now() -> datetime:
    return datetime.now(UTC)


def _py(v):
    """pandas/numpy scalars to plain Python for the DB-API."""
    if v is None or v is pd.NA or (isinstance(v, float) and v != v):
        return None
    if isinstance(v, pd.Timestamp):
        return None if pd.isna(v) else v.date()
    if hasattr(v, "item"):
        return v.item()
    return v


def _records(df: pd.DataFrame, columns: Iterable[str]) -> list[dict]:
    cols = list(columns)
    return [{c: _py(v) for c, v in zip(cols, row, strict=True)} for row in df[cols].itertuples(index=False)]


class Store:
    """The project's store. `Store("sqlite:///path.db")` or `Store("postgresql+psycopg2://...")`."""

    def __init__(self, url: str | Engine = DEFAULT_URL):
        if isinstance(url, Engine):
            self.engine = url
        else:
            if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
                Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            self.engine = create_engine(url, future=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        t.metadata.create_all(self.engine)

    # -- runs -------------------------------------------------------------------------------------
    def start_run(self, run_id: str, period: str, source: str, *, preparer: str | None = None,
                  dry_run: bool = False, flow_run_id: str | None = None, process: str = "month_end_close") -> None:
        with self.engine.begin() as c:
            c.execute(insert(t.close_runs).values(
                run_id=run_id, process=process, period=period, source=source, preparer=preparer,
                dry_run=dry_run, flow_run_id=flow_run_id, status="started", started_at=_now()))

    def finish_run(self, run_id: str, status: str, summary: dict | None = None, error: str | None = None) -> None:
        with self.engine.begin() as c:
            c.execute(update(t.close_runs).where(t.close_runs.c.run_id == run_id).values(
                status=status, finished_at=_now(), error=error,
                summary_json=json.dumps(summary, default=str) if summary is not None else None))

    def runs(self, period: str | None = None) -> pd.DataFrame:
        q = select(t.close_runs).order_by(t.close_runs.c.started_at)
        if period:
            q = q.where(t.close_runs.c.period == period)
        with self.engine.connect() as c:
            return pd.DataFrame(c.execute(q).mappings().all(), columns=[x.name for x in t.close_runs.columns])

    # -- documents --------------------------------------------------------------------------------
    def documents(self, period: str | None = None, status: str | None = None,
                  business_units: Iterable[str] | None = None) -> pd.DataFrame:
        q = select(t.documents).order_by(t.documents.c.period, t.documents.c.document_key)
        if period:
            q = q.where(t.documents.c.period == period)
        if status:
            q = q.where(t.documents.c.status == status)
        if business_units is not None:
            q = q.where(t.documents.c.business_unit.in_(list(business_units)))
        with self.engine.connect() as c:
            return pd.DataFrame(c.execute(q).mappings().all(), columns=[x.name for x in t.documents.columns])

    def document_lines(self, document_key: str) -> pd.DataFrame:
        q = select(t.document_lines).where(t.document_lines.c.document_key == document_key).order_by(
            t.document_lines.c.line_no)
        with self.engine.connect() as c:
            return pd.DataFrame(c.execute(q).mappings().all(), columns=[x.name for x in t.document_lines.columns])

    def insert_documents(self, docs: pd.DataFrame, lines: pd.DataFrame, run_id: str, status: str) -> None:
        """Record new documents (and their printed lines) in one transaction."""
        if docs.empty:
            return
        now = _now()
        cols = [c.name for c in t.documents.columns if c.name in docs.columns]
        rows = _records(docs, cols)
        for r in rows:
            r.setdefault("base_key", r["document_key"])
            r.update(run_id=run_id, status=status, created_at=now, updated_at=now)
            r.setdefault("revision", 1)
        lcols = [c.name for c in t.document_lines.columns]
        lrows = _records(lines[lines["document_key"].isin(docs["document_key"])], lcols)
        with self.engine.begin() as c:
            c.execute(insert(t.documents), rows)
            if lrows:
                c.execute(insert(t.document_lines), lrows)

    def set_status(self, keys: Iterable[str], status: str) -> None:
        keys = list(keys)
        if not keys:
            return
        with self.engine.begin() as c:
            for chunk in _chunks(keys, 500):
                c.execute(update(t.documents).where(t.documents.c.document_key.in_(chunk)).values(
                    status=status, updated_at=_now()))

    def mark_pending_approval(self, reasons: dict[str, str]) -> None:
        """Documents that wait for a person, with why; approved or rejected ones are left as decided."""
        with self.engine.begin() as c:
            for key, why in reasons.items():
                c.execute(update(t.documents).where(
                    t.documents.c.document_key == key,
                    t.documents.c.status.in_(["prepared", "pending_approval"])).values(
                    status="pending_approval", approval_reasons=why, updated_at=_now()))

    def set_handoff_error(self, document_key: str, error: str | None) -> None:
        with self.engine.begin() as c:
            c.execute(update(t.documents).where(t.documents.c.document_key == document_key).values(
                handoff_error=error, updated_at=_now()))

    # -- hand-off: exactly once per (target, idempotency key) --------------------------------------
    def handoff_state(self, target: str, idempotency_key: str) -> dict | None:
        q = select(t.handoffs).where(t.handoffs.c.target == target,
                                     t.handoffs.c.idempotency_key == idempotency_key)
        with self.engine.connect() as c:
            row = c.execute(q).mappings().first()
            return dict(row) if row else None

    def begin_handoff(self, document_key: str, target: str, idempotency_key: str, run_id: str) -> dict:
        """Record the intent to deliver before delivering; returns the hand-off row (new or existing)."""
        existing = self.handoff_state(target, idempotency_key)
        with self.engine.begin() as c:
            if existing is None:
                c.execute(insert(t.handoffs).values(
                    document_key=document_key, target=target, idempotency_key=idempotency_key, state="started",
                    attempts=1, started_at=_now(), run_id=run_id))
            else:
                c.execute(update(t.handoffs).where(t.handoffs.c.handoff_id == existing["handoff_id"]).values(
                    attempts=existing["attempts"] + 1, run_id=run_id))
        return self.handoff_state(target, idempotency_key)

    def complete_handoff(self, document_key: str, target: str, idempotency_key: str, external_ref: str,
                         document_status: str | None = "handed_off") -> None:
        """Mark the delivery done and the document handed off, in one transaction."""
        with self.engine.begin() as c:
            c.execute(update(t.handoffs).where(t.handoffs.c.target == target,
                                               t.handoffs.c.idempotency_key == idempotency_key).values(
                state="delivered", delivered_at=_now(), external_ref=external_ref))
            if document_status:
                c.execute(update(t.documents).where(t.documents.c.document_key == document_key).values(
                    status=document_status, updated_at=_now()))

    def handoffs(self, state: str | None = None) -> pd.DataFrame:
        q = select(t.handoffs).order_by(t.handoffs.c.handoff_id)
        if state:
            q = q.where(t.handoffs.c.state == state)
        with self.engine.connect() as c:
            return pd.DataFrame(c.execute(q).mappings().all(), columns=[x.name for x in t.handoffs.columns])

    # -- approvals ------------------------------------------------------------------------------------
    def record_approval(self, document_key: str, decision: str, approver: str | None, preparer: str | None,
                        comment: str | None, run_id: str | None) -> None:
        with self.engine.begin() as c:
            c.execute(insert(t.approvals).values(
                document_key=document_key, decision=decision, approver=approver, preparer=preparer,
                comment=comment, run_id=run_id, decided_at=_now()))
            if decision in ("approved", "rejected"):
                c.execute(update(t.documents).where(t.documents.c.document_key == document_key).values(
                    status=decision, updated_at=_now()))

    def approvals(self) -> pd.DataFrame:
        with self.engine.connect() as c:
            return pd.DataFrame(c.execute(select(t.approvals).order_by(t.approvals.c.approval_id)).mappings().all(),
                                columns=[x.name for x in t.approvals.columns])

    # -- snapshots and quarantine --------------------------------------------------------------------
    def replace_unbilled(self, period: str, run_id: str, unbilled: pd.DataFrame) -> None:
        cols = [c.name for c in t.unbilled_snapshots.columns if c.name not in ("period", "run_id")]
        rows = _records(unbilled, cols)
        for r in rows:
            r.update(period=period, run_id=run_id)
        with self.engine.begin() as c:
            c.execute(delete(t.unbilled_snapshots).where(t.unbilled_snapshots.c.period == period))
            for chunk in _chunks(rows, 5000):
                c.execute(insert(t.unbilled_snapshots), chunk)

    def unbilled(self, period: str) -> pd.DataFrame:
        q = select(t.unbilled_snapshots).where(t.unbilled_snapshots.c.period == period)
        with self.engine.connect() as c:
            return pd.DataFrame(c.execute(q).mappings().all(), columns=[x.name for x in t.unbilled_snapshots.columns])

    def record_quarantine(self, run_id: str, period: str, rows: pd.DataFrame) -> None:
        if rows.empty:
            return
        recs = [dict(run_id=run_id, period=period, dataset=r.dataset, record_key=str(r.record_key),
                     expectation=r.expectation, column_name=None if pd.isna(r.column) else str(r.column),
                     value=None if pd.isna(r.value) else str(r.value), severity=r.severity)
                for r in rows.itertuples(index=False)]
        with self.engine.begin() as c:
            for chunk in _chunks(recs, 5000):
                c.execute(insert(t.quarantine), chunk)

    def quarantine(self, run_id: str) -> pd.DataFrame:
        q = select(t.quarantine).where(t.quarantine.c.run_id == run_id)
        with self.engine.connect() as c:
            return pd.DataFrame(c.execute(q).mappings().all(), columns=[x.name for x in t.quarantine.columns])

    # -- customer holds (collections sets them; the close reads them) -------------------------------
    def set_hold(self, customer_id: str, reason: str, set_by: str, hold_type: str = "credit_hold") -> None:
        with self.engine.begin() as c:
            c.execute(insert(t.customer_holds).values(customer_id=customer_id, hold_type=hold_type, reason=reason,
                                                      set_by=set_by, set_at=_now()))

    def release_hold(self, customer_id: str, released_by: str, reason: str, hold_type: str = "credit_hold") -> int:
        with self.engine.begin() as c:
            res = c.execute(update(t.customer_holds).where(
                t.customer_holds.c.customer_id == customer_id, t.customer_holds.c.hold_type == hold_type,
                t.customer_holds.c.released_at.is_(None)).values(
                released_by=released_by, released_at=_now(), release_reason=reason))
            return res.rowcount

    def active_holds(self, hold_type: str = "credit_hold") -> set[str]:
        q = select(t.customer_holds.c.customer_id).where(t.customer_holds.c.hold_type == hold_type,
                                                         t.customer_holds.c.released_at.is_(None))
        with self.engine.connect() as c:
            return {r[0] for r in c.execute(q)}

    # -- source watermarks (incremental pulls) -------------------------------------------------------
    def get(self, source: str, sobject: str) -> datetime | None:
        q = select(t.watermarks.c.value).where(t.watermarks.c.source == source, t.watermarks.c.object_name == sobject)
        with self.engine.connect() as c:
            v = c.execute(q).scalar()
        if v is not None and v.tzinfo is None:
            v = v.replace(tzinfo=UTC)  # SQLite drops the zone; values are stored in UTC
        return v

    def set(self, source: str, sobject: str, value: datetime) -> None:
        with self.engine.begin() as c:
            self._set_watermark(c, source, sobject, value)

    @staticmethod
    def _set_watermark(c, source: str, sobject: str, value: datetime) -> None:
        n = c.execute(update(t.watermarks).where(t.watermarks.c.source == source,
                                                 t.watermarks.c.object_name == sobject).values(
            value=value, updated_at=_now())).rowcount
        if not n:
            c.execute(insert(t.watermarks).values(source=source, object_name=sobject, value=value,
                                                  updated_at=_now()))

    # -- source replica: incremental pulls kept with their watermark ------------------------------
    def apply_changes(self, source: str, sobject: str, records: list[dict], modstamps: list[datetime],
                      ids: list[str], watermark: datetime | None, replace_all: bool = False) -> None:
        """Upsert changed records and move the watermark, in one transaction.

        ``replace_all``: the records are the whole object (a full pull): drop what is not among them.
        """
        with self.engine.begin() as c:
            if replace_all:
                c.execute(delete(t.source_replica).where(t.source_replica.c.source == source,
                                                         t.source_replica.c.object_name == sobject))
            for chunk in _chunks(list(zip(ids, modstamps, records, strict=True)), 500):
                keys = [r[0] for r in chunk]
                c.execute(delete(t.source_replica).where(
                    t.source_replica.c.source == source, t.source_replica.c.object_name == sobject,
                    t.source_replica.c.record_id.in_(keys)))
                c.execute(insert(t.source_replica), [
                    {"source": source, "object_name": sobject, "record_id": rid, "modstamp": ms,
                     "payload_json": json.dumps(rec, default=str)} for rid, ms, rec in chunk])
            if watermark is not None:
                self._set_watermark(c, source, sobject, watermark)

    def replica(self, source: str, sobject: str) -> list[dict]:
        q = select(t.source_replica.c.payload_json).where(
            t.source_replica.c.source == source, t.source_replica.c.object_name == sobject).order_by(
            t.source_replica.c.record_id)
        with self.engine.connect() as c:
            return [json.loads(r) for r in c.execute(q).scalars()]


def _chunks(seq: list, n: int):
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()
