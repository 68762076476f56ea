"""Store access: one object over one database, every write in a transaction."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    Table,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)

from store import schema as t

DEFAULT_URL = "sqlite:///out/billing.sqlite"


def _now() -> datetime:
    return datetime.now(UTC)


def _py(v):
    """pandas/numpy scalars to plain Python for the DB-API."""
    if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v):
        return None
    if isinstance(v, pd.Timestamp):
        return v.date()
    if hasattr(v, "item"):
        return v.item()
    return v


def _column(s: pd.Series, iso_dates: bool = False) -> list:
    """One column as plain Python values for the DB-API, converted as a whole column.

    Missing values become None; datetimes become dates (``datetime.date``, or ``'YYYY-MM-DD'`` text
    with ``iso_dates`` for statements sent to the driver directly); numbers become Python numbers.
    Object columns (mixed content) go value by value through ``_py``.
    """
    if s.dtype == object:
        return [_py(v) for v in s.tolist()]
    missing = s.isna().to_numpy()
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        vals = (s.dt.strftime("%Y-%m-%d") if iso_dates else s.dt.date).to_numpy(dtype=object)
    else:
        vals = s.to_numpy(dtype=object)
    if missing.any():
        if not vals.flags.writeable:
            vals = vals.copy()
        vals[missing] = None
    return vals.tolist()


def _frame(conn: Connection, q, table: Table) -> pd.DataFrame:
    """A query's rows as a frame with the table's columns (also when there are no rows)."""
    return pd.DataFrame(conn.execute(q).mappings().all(), columns=[c.name for c in table.columns])


def _records(df: pd.DataFrame, columns: Iterable[str]) -> list[dict]:
    cols = list(columns)
    values = [_column(df[c]) for c in cols]
    return [dict(zip(cols, row, strict=True)) for row in zip(*values, strict=True)]


def _bulk_insert(conn: Connection, table: Table, df: pd.DataFrame, constants: dict | None = None,
                 chunk_rows: int = 50_000) -> int:
    """Insert a frame's rows into ``table`` inside the caller's transaction, fast; returns the row count.

    The statement goes to the driver as it is (sqlite3 ``executemany``, psycopg2 ``execute_values``)
    with values converted a whole column at a time, a chunk of rows at a time (memory stays flat).
    SQLAlchemy's per-row type processing is what this skips, so the table may hold only columns whose
    Python values the driver takes as they are: text, integers, booleans, and dates as ISO text
    (DateTime columns go through ``conn.execute(insert(table), ...)`` instead). Columns of the table
    missing from ``df`` and ``constants`` are left to their defaults.
    """
    constants = constants or {}
    cols = [c.name for c in table.columns if c.name in df.columns or c.name in constants]
    if any(isinstance(table.c[c].type, DateTime) for c in cols):
        raise TypeError(f"{table.name}: DateTime columns need SQLAlchemy's type processing; use insert()")
    n = len(df)
    if n == 0:
        return 0
    dialect = conn.dialect
    names = ", ".join(dialect.identifier_preparer.quote(c) for c in cols)
    quoted = dialect.identifier_preparer.format_table(table)
    direct = dialect.driver == "psycopg2" or dialect.paramstyle == "qmark"
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        for start in range(0, n, chunk_rows):
            part = df.iloc[start:start + chunk_rows]
            values = [[constants[c]] * len(part) if c in constants else _column(part[c], iso_dates=direct)
                      for c in cols]
            rows = list(zip(*values, strict=True))
            if dialect.driver == "psycopg2":
                from psycopg2.extras import execute_values
                execute_values(cursor, f"INSERT INTO {quoted} ({names}) VALUES %s", rows, page_size=5000)
            elif dialect.paramstyle == "qmark":
                cursor.executemany(f"INSERT INTO {quoted} ({names}) VALUES ({', '.join('?' * len(cols))})", rows)
            else:  # any other driver: SQLAlchemy's own executemany
                conn.execute(insert(table), [dict(zip(cols, r, strict=True)) for r in rows])
    finally:
        cursor.close()
    return n


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
            return _frame(c, q, t.close_runs)

    # -- documents --------------------------------------------------------------------------------
    def documents(self, period: str | None = None, status: str | None = None,
                  business_units: Iterable[str] | None = None, keys: Iterable[str] | None = None) -> pd.DataFrame:
        """Documents, by period, status, business units and/or document keys."""
        q = select(t.documents)
        if period:
            q = q.where(t.documents.c.period == period)
        if status:
            q = q.where(t.documents.c.status == status)
        if business_units is not None:
            q = q.where(t.documents.c.business_unit.in_(list(business_units)))
        return self._select_by_keys(q, t.documents, t.documents.c.document_key, keys,
                                    order_by=[t.documents.c.period, t.documents.c.document_key])

    def document_lines(self, document_key: str | None = None, *, keys: Iterable[str] | None = None,
                       period: str | None = None, status: str | None = None) -> pd.DataFrame:
        """Printed lines of one document, of several (``keys``), or of a period's documents (with
        ``status``), in document and line order."""
        q = select(t.document_lines)
        if document_key is not None:
            keys = [document_key]
        if period is not None or status is not None:
            docs = select(t.documents.c.document_key)
            if period is not None:
                docs = docs.where(t.documents.c.period == period)
            if status is not None:
                docs = docs.where(t.documents.c.status == status)
            q = q.where(t.document_lines.c.document_key.in_(docs))
        return self._select_by_keys(q, t.document_lines, t.document_lines.c.document_key, keys,
                                    order_by=[t.document_lines.c.document_key, t.document_lines.c.line_no])

    def document_line_records(self, keys: Iterable[str]) -> dict[str, list[dict]]:
        """Printed lines of these documents as plain rows, document key -> rows in line order (what
        the hand-off gives its targets: one query per chunk of documents, no frame per document)."""
        keys = list(dict.fromkeys(keys))
        out: dict[str, list[dict]] = {k: [] for k in keys}
        with self.engine.connect() as c:
            for part in _chunks(keys, 900):
                q = select(t.document_lines).where(t.document_lines.c.document_key.in_(part)).order_by(
                    t.document_lines.c.document_key, t.document_lines.c.line_no)
                for r in c.execute(q).mappings():
                    out[r["document_key"]].append(dict(r))
        return out

    def _select_by_keys(self, q, table: Table, key_col, keys: Iterable[str] | None, order_by: list,
                        chunk: int = 900) -> pd.DataFrame:
        """Run ``q`` (optionally restricted to ``keys``, in chunks under the drivers' parameter
        limits) into a frame with the table's columns."""
        columns = [x.name for x in table.columns]
        with self.engine.connect() as c:
            if keys is None:
                rows = c.execute(q.order_by(*order_by)).all()
            else:
                keys = list(dict.fromkeys(keys))
                rows = [r for part in _chunks(keys, chunk)
                        for r in c.execute(q.where(key_col.in_(part)).order_by(*order_by)).all()]
        df = pd.DataFrame.from_records(rows, columns=columns)
        if keys is not None and len(keys) > chunk:  # chunks come back in chunk order; restore the order
            df = df.sort_values([col.name for col in order_by], kind="stable", ignore_index=True)
        return df

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
        lines = lines[lines["document_key"].isin(docs["document_key"])]
        with self.engine.begin() as c:
            c.execute(insert(t.documents), rows)
            _bulk_insert(c, t.document_lines, lines)

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

    def set_handoff_errors(self, errors: dict[str, str | None]) -> None:
        """Record (or clear, with None) the last refusal by a target, per document, in one transaction."""
        if not errors:
            return
        with self.engine.begin() as c:
            for key, error in errors.items():
                c.execute(update(t.documents).where(t.documents.c.document_key == key).values(
                    handoff_error=error, updated_at=_now()))

    # -- hand-off: exactly once per (target, idempotency key) --------------------------------------
    def handoff_state(self, target: str, idempotency_key: str) -> dict | None:
        return self.handoff_states(target, [idempotency_key]).get(idempotency_key)

    def handoff_states(self, target: str, idempotency_keys: Iterable[str]) -> dict[str, dict]:
        """The hand-off rows of ``target`` for these keys: idempotency key -> row (absent: never started)."""
        keys = list(dict.fromkeys(idempotency_keys))
        out: dict[str, dict] = {}
        with self.engine.connect() as c:
            for part in _chunks(keys, 900):
                q = select(t.handoffs).where(t.handoffs.c.target == target, t.handoffs.c.idempotency_key.in_(part))
                out.update({r["idempotency_key"]: dict(r) for r in c.execute(q).mappings()})
        return out

    def begin_handoff(self, document_key: str, target: str, idempotency_key: str, run_id: str) -> dict:
        """Record the intent to deliver before delivering; returns the hand-off row (new or existing)."""
        self.begin_handoffs(target, [(document_key, idempotency_key)], run_id)
        return self.handoff_state(target, idempotency_key)

    def begin_handoffs(self, target: str, intents: list[tuple[str, str]], run_id: str) -> None:
        """Record, in one transaction, the intent to deliver each (document key, idempotency key) to
        ``target``: a new row in state ``started``, or one more attempt on an existing row."""
        if not intents:
            return
        existing = self.handoff_states(target, [ikey for _, ikey in intents])
        now = _now()
        new = [dict(document_key=key, target=target, idempotency_key=ikey, state="started", attempts=1,
                    started_at=now, run_id=run_id) for key, ikey in intents if ikey not in existing]
        again = [existing[ikey]["handoff_id"] for _, ikey in intents if ikey in existing]
        with self.engine.begin() as c:
            if new:
                c.execute(insert(t.handoffs), new)
            for part in _chunks(again, 900):
                c.execute(update(t.handoffs).where(t.handoffs.c.handoff_id.in_(part)).values(
                    attempts=t.handoffs.c.attempts + 1, run_id=run_id))

    def complete_handoffs(self, target: str, deliveries: list[tuple[str, str, str]],
                          handed_off: Iterable[str] = ()) -> None:
        """Mark deliveries (document key, idempotency key, external reference) to ``target`` done and
        the documents ``handed_off`` (delivered to every target) handed off, in one transaction."""
        handed_off = list(handed_off)
        if not deliveries and not handed_off:
            return
        now = _now()
        with self.engine.begin() as c:
            if deliveries:  # one executemany
                c.execute(update(t.handoffs).where(t.handoffs.c.target == target,
                                                   t.handoffs.c.idempotency_key == bindparam("ikey")).values(
                    state="delivered", delivered_at=now, external_ref=bindparam("ref")),
                    [{"ikey": ikey, "ref": ref} for _key, ikey, ref in deliveries])
            for part in _chunks(handed_off, 900):
                c.execute(update(t.documents).where(t.documents.c.document_key.in_(part)).values(
                    status="handed_off", updated_at=now))

    def handoffs(self, state: str | None = None) -> pd.DataFrame:
        q = select(t.handoffs).order_by(t.handoffs.c.handoff_id)
        if state:
            q = q.where(t.handoffs.c.state == state)
        with self.engine.connect() as c:
            return _frame(c, q, t.handoffs)

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
            return _frame(c, select(t.approvals).order_by(t.approvals.c.approval_id), t.approvals)

    # -- snapshots and quarantine --------------------------------------------------------------------
    def replace_unbilled(self, period: str, run_id: str, unbilled: pd.DataFrame) -> None:
        """The period's unbilled snapshot (one row per unbilled line), replaced in one transaction."""
        cols = [c.name for c in t.unbilled_snapshots.columns if c.name not in ("period", "run_id")]
        with self.engine.begin() as c:
            c.execute(delete(t.unbilled_snapshots).where(t.unbilled_snapshots.c.period == period))
            _bulk_insert(c, t.unbilled_snapshots, unbilled[cols], {"period": period, "run_id": run_id})

    def unbilled(self, period: str) -> pd.DataFrame:
        q = select(t.unbilled_snapshots).where(t.unbilled_snapshots.c.period == period)
        with self.engine.connect() as c:
            return _frame(c, q, t.unbilled_snapshots)

    def unbilled_by_customer(self, period: str) -> pd.DataFrame:
        """The period's unbilled snapshot summed per customer and currency (what credit exposure needs),
        added up by the database instead of reading every line."""
        u = t.unbilled_snapshots.c
        q = (select(u.customer_id, u.currency, func.sum(u.unbilled_cents).label("unbilled_cents"))
             .where(u.period == period).group_by(u.customer_id, u.currency).order_by(u.customer_id, u.currency))
        with self.engine.connect() as c:
            df = pd.DataFrame(c.execute(q).all(), columns=["customer_id", "currency", "unbilled_cents"])
        return df.astype({"unbilled_cents": "int64"})

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
            return _frame(c, q, t.quarantine)

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
    # In WAL mode NORMAL syncs at checkpoints, not at every commit: a commit survives the process
    # crashing, and after a power loss the last commits may be lost, which the hand-off tolerates by
    # design (a delivery whose record was lost is delivered again under the same idempotency key).
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()
