"""Collections tables in the project's store, and `CollectionsStore`, thin methods over them.

The tables are defined on `store.schema.metadata`, so `Store(...)` creates them with the rest. Names
start with ``coll_`` so they never clash with the close's tables or other receivables work.

- the AR ledger the embedded default reads: open items (the close's handed-off invoices plus
  history), receipts and their applications; collection accounts and notes;
- dunning actions (one letter or service action per customer and day) with their items: the item's
  ladder history is read back from these; decisions on actions (approvals and refusals);
- service requests (disconnection, reconnection) and escalations, each handed off exactly once:
  intent recorded before delivery, completion after, one idempotency key per request;
- disputes with their events, credit-memo requests for the next close, payment plans with their
  installments and items.

Business rules stay in `receivables/`; the methods here call them where a write depends on one
(a dispute's transition, a plan's approval), so the store never holds a state the rules refuse.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Engine,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    insert,
    select,
    update,
)

from billing.schema import conform
from receivables import disputes as dispute_rules
from receivables import plans as plan_rules
from receivables.datasets import ACCOUNT_NOTES, COLLECTION_ACCOUNTS, RECEIPT_APPLICATIONS
from receivables.open_items import CASH_RECEIPTS, OPEN_ITEMS
from store.db import Store, _chunks, _frame, _now
from store.db import _records as _db_records
from store.schema import metadata

coll_open_items = Table(
    "coll_open_items", metadata,
    Column("payment_schedule_id", String(80), primary_key=True),
    Column("trx_number", String(200), nullable=False),
    Column("trx_class", String(3), nullable=False),
    Column("customer_id", String(50), nullable=False),
    Column("business_unit", String(50), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("trx_date", Date, nullable=False),
    Column("due_date", Date, nullable=False),
    Column("installment", Integer, nullable=False),
    Column("amount_due_original_cents", BigInteger, nullable=False),
    Column("amount_due_remaining_cents", BigInteger, nullable=False),
    Column("amount_in_dispute_cents", BigInteger, nullable=False),
    Column("status", String(2), nullable=False),
    Column("source", String(20), nullable=False),  # history | close
)
Index("ix_coll_open_items_customer", coll_open_items.c.customer_id, coll_open_items.c.status)

coll_receipts = Table(
    "coll_receipts", metadata,
    Column("cash_receipt_id", String(80), primary_key=True),
    Column("receipt_number", String(80), nullable=False),
    Column("customer_id", String(50)),
    Column("currency", String(3), nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("receipt_date", Date, nullable=False),
    Column("status", String(5), nullable=False),
)

coll_applications = Table(
    "coll_applications", metadata,
    Column("application_id", String(80), primary_key=True),
    Column("cash_receipt_id", String(80)),
    Column("payment_schedule_id", String(80), nullable=False),
    Column("customer_id", String(50), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount_applied_cents", BigInteger, nullable=False),
    Column("apply_date", Date, nullable=False),
)
Index("ix_coll_applications_item", coll_applications.c.payment_schedule_id)

coll_accounts = Table(
    "coll_accounts", metadata,
    Column("customer_id", String(50), primary_key=True),
    Column("customer_name", String(200), nullable=False),
    Column("customer_class", String(20), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("billing_email", String(200)),
    Column("credit_limit_cents", BigInteger),
    Column("collector", String(100), nullable=False),
    Column("do_not_dun", Boolean, nullable=False, default=False),
    Column("do_not_dun_reason", Text),
    Column("updated_by", String(100)),
    Column("updated_at", DateTime(timezone=True)),
)

coll_notes = Table(
    "coll_notes", metadata,
    Column("note_id", String(80), primary_key=True),
    Column("customer_id", String(50), nullable=False),
    Column("note_date", Date, nullable=False),
    Column("author", String(100), nullable=False),
    Column("text", Text, nullable=False),
    Column("promise_date", Date),
    Column("promise_amount_cents", BigInteger),
    Column("currency", String(3)),
)
Index("ix_coll_notes_customer", coll_notes.c.customer_id)

coll_actions = Table(
    "coll_actions", metadata,
    Column("action_key", String(120), primary_key=True),  # <kind>:<customer>:<as_of>
    Column("run_id", String(64)),
    Column("customer_id", String(50), nullable=False),
    Column("as_of", Date, nullable=False),
    Column("kind", String(20), nullable=False),        # letter, service, statement
    Column("level", Integer, nullable=False),          # 0 for a statement
    Column("level_code", String(30), nullable=False),
    Column("channel", String(20), nullable=False),
    # letter: prepared -> sending -> sent | failed; service: pending_approval -> approved | rejected |
    # timed_out; approved -> handed_off -> sent (the notice letter)
    Column("state", String(20), nullable=False),
    Column("recipient", String(200)),
    Column("content_hash", String(64)),
    Column("letter_path", Text),
    Column("message_id", String(200)),
    Column("fees_json", Text),
    Column("policy_version", String(60)),
    Column("preparer", String(100)),
    Column("approver", String(100)),
    Column("blocked_reason", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True)),
    Column("error", Text),
)
Index("ix_coll_actions_customer", coll_actions.c.customer_id, coll_actions.c.as_of)

coll_action_items = Table(
    "coll_action_items", metadata,
    Column("action_key", String(120), primary_key=True),
    Column("payment_schedule_id", String(80), primary_key=True),
    Column("level", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("overdue_cents", BigInteger, nullable=False),
)
Index("ix_coll_action_items_item", coll_action_items.c.payment_schedule_id)

coll_decisions = Table(
    "coll_decisions", metadata,
    Column("decision_id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64)),
    Column("action_key", String(120), nullable=False),
    Column("customer_id", String(50), nullable=False),
    Column("decision", String(30), nullable=False),  # approved, rejected, refused_self_approval, timed_out
    Column("preparer", String(100)),
    Column("approver", String(100)),
    Column("comment", Text),
    Column("decided_at", DateTime(timezone=True), nullable=False),
)

coll_service_requests = Table(
    "coll_service_requests", metadata,
    Column("request_id", Integer, primary_key=True, autoincrement=True),
    Column("request_key", String(64), nullable=False),    # idempotency key sent downstream
    Column("customer_id", String(50), nullable=False),
    Column("action", String(30), nullable=False),         # soft_disconnection, hard_disconnection, reconnection
    Column("source_key", String(120), nullable=False),    # the approved action, or the disconnection reconnected
    Column("requested_on", Date, nullable=False),
    Column("state", String(20), nullable=False),          # started, delivered
    Column("attempts", Integer, nullable=False, default=1),
    Column("external_ref", Text),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True)),
    Column("run_id", String(64)),
    UniqueConstraint("request_key", name="uq_coll_service_request_key"),
)

coll_escalations = Table(
    "coll_escalations", metadata,
    Column("escalation_key", String(64), primary_key=True),
    Column("customer_id", String(50), nullable=False),
    Column("target", String(20), nullable=False),  # legal, agency
    Column("requested_on", Date, nullable=False),
    Column("state", String(20), nullable=False),   # started, delivered
    Column("case_file_path", Text),
    Column("external_ref", Text),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True)),
    Column("run_id", String(64)),
)

coll_disputes = Table(
    "coll_disputes", metadata,
    Column("dispute_id", String(20), primary_key=True),
    Column("payment_schedule_id", String(80), nullable=False),
    Column("trx_number", String(200), nullable=False),
    Column("customer_id", String(50), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("reason", Text, nullable=False),
    Column("owner", String(100), nullable=False),
    Column("level", Integer, nullable=False),
    Column("status", String(30), nullable=False),
    Column("opened_on", Date, nullable=False),
    Column("resolved_on", Date),
    Column("resolved_by", String(100)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
Index("ix_coll_disputes_customer", coll_disputes.c.customer_id, coll_disputes.c.status)

coll_dispute_events = Table(
    "coll_dispute_events", metadata,
    Column("event_id", Integer, primary_key=True, autoincrement=True),
    Column("dispute_id", String(20), nullable=False),
    Column("from_status", String(30)),
    Column("to_status", String(30), nullable=False),
    Column("actor", String(100), nullable=False),
    Column("comment", Text),
    Column("on_date", Date, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)

coll_credit_memo_requests = Table(
    "coll_credit_memo_requests", metadata,
    Column("request_id", Integer, primary_key=True, autoincrement=True),
    Column("dispute_id", String(20), nullable=False, unique=True),
    Column("trx_number", String(200), nullable=False),
    Column("customer_id", String(50), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount_cents", BigInteger, nullable=False),  # gross amount to credit, positive
    Column("reason", Text, nullable=False),
    Column("requested_by", String(100), nullable=False),
    Column("requested_on", Date, nullable=False),
    Column("status", String(20), nullable=False),        # pending, picked_up
    Column("picked_up_period", String(7)),
    Column("picked_up_at", DateTime(timezone=True)),
)

coll_plans = Table(
    "coll_plans", metadata,
    Column("plan_id", String(40), primary_key=True),
    Column("customer_id", String(50), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("total_cents", BigInteger, nullable=False),
    Column("status", String(20), nullable=False),
    Column("prepared_by", String(100), nullable=False),
    Column("approved_by", String(100)),
    Column("created_on", Date, nullable=False),
    Column("approved_on", Date),
    Column("closed_on", Date),
    Column("comment", Text),
)

coll_plan_installments = Table(
    "coll_plan_installments", metadata,
    Column("plan_id", String(40), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("due_date", Date, nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
)

coll_plan_items = Table(
    "coll_plan_items", metadata,
    Column("plan_id", String(40), primary_key=True),
    Column("payment_schedule_id", String(80), primary_key=True),
)

# Action states that mean "the level was reached" for the ladder history.
REACHED_STATES = ("sending", "sent", "approved", "handed_off")


def _records(df: pd.DataFrame, columns: list[str]) -> list[dict]:
    """Rows for the DB-API (store.db's conversion, plus NaT -> None, which it leaves alone)."""
    return [{k: (None if v is pd.NaT else v) for k, v in r.items()} for r in _db_records(df, columns)]


def _dates(df: pd.DataFrame, *cols: str) -> pd.DataFrame:
    for c in cols:
        df[c] = pd.to_datetime(df[c]).astype("datetime64[ns]")
    return df


class CollectionsStore:
    """Collections' reads and writes on the project's store. `CollectionsStore(Store(url))`."""

    def __init__(self, store: Store | Engine):
        self.store = store if isinstance(store, Store) else Store(store)
        self.engine = self.store.engine

    # -- AR ledger (the embedded default source) ------------------------------------------------------
    def ledger_loaded(self) -> bool:
        with self.engine.connect() as c:
            return bool(c.execute(select(func.count()).select_from(coll_open_items)).scalar())

    def load_ledger(self, data: dict[str, pd.DataFrame], source: str = "history") -> dict[str, int]:
        """Insert ledger rows whose keys are new (idempotent); returns rows inserted per table."""
        spec = [("open_items", coll_open_items, "payment_schedule_id"), ("cash_receipts", coll_receipts,
                                                                           "cash_receipt_id"),
                ("receipt_applications", coll_applications, "application_id"),
                ("collection_accounts", coll_accounts, "customer_id"), ("account_notes", coll_notes, "note_id")]
        counts = {}
        with self.engine.begin() as c:
            for name, table, key in spec:
                df = data.get(name)
                if df is None or df.empty:
                    counts[name] = 0
                    continue
                have = {r[0] for r in c.execute(select(table.c[key]))}
                new = df[~df[key].isin(have)]
                cols = [col.name for col in table.columns if col.name in new.columns]
                rows = _records(new, cols)
                if table is coll_open_items:
                    for r in rows:
                        r["source"] = source
                for chunk in _chunks(rows, 2000):
                    c.execute(insert(table), chunk)
                counts[name] = len(rows)
        return counts

    def read(self, name: str) -> pd.DataFrame:
        """A ledger dataset in its canonical shape (open_items, cash_receipts, receipt_applications...)."""
        table, dataset = {"open_items": (coll_open_items, OPEN_ITEMS), "cash_receipts": (coll_receipts, CASH_RECEIPTS),
                          "receipt_applications": (coll_applications, RECEIPT_APPLICATIONS),
                          "collection_accounts": (coll_accounts, COLLECTION_ACCOUNTS),
                          "account_notes": (coll_notes, ACCOUNT_NOTES)}[name]
        with self.engine.connect() as c:
            df = _frame(c, select(table).order_by(*table.primary_key.columns), table)
        return conform(df, dataset, origin=f"store:{table.name}")

    def update_item_dispute(self, payment_schedule_id: str, amount_in_dispute_cents: int) -> None:
        with self.engine.begin() as c:
            c.execute(update(coll_open_items).where(coll_open_items.c.payment_schedule_id == payment_schedule_id)
                      .values(amount_in_dispute_cents=amount_in_dispute_cents))

    def set_do_not_dun(self, customer_id: str, flag: bool, reason: str | None, by: str) -> None:
        if flag and not (reason or "").strip():
            raise ValueError(f"do-not-dun for {customer_id}: a reason is required")
        with self.engine.begin() as c:
            n = c.execute(update(coll_accounts).where(coll_accounts.c.customer_id == customer_id).values(
                do_not_dun=flag, do_not_dun_reason=reason if flag else None, updated_by=by,
                updated_at=_now())).rowcount
        if not n:
            raise KeyError(f"collection account {customer_id} not found")

    def add_note(self, note_id: str, customer_id: str, note_date: date, author: str, text: str,
                 promise_date: date | None = None, promise_amount_cents: int | None = None,
                 currency: str | None = None) -> None:
        with self.engine.begin() as c:
            c.execute(insert(coll_notes).values(
                note_id=note_id, customer_id=customer_id, note_date=note_date, author=author, text=text,
                promise_date=promise_date, promise_amount_cents=promise_amount_cents, currency=currency))

    # -- dunning actions ------------------------------------------------------------------------------
    def actions(self, as_of: date | None = None) -> pd.DataFrame:
        q = select(coll_actions).order_by(coll_actions.c.as_of, coll_actions.c.action_key)
        if as_of is not None:
            q = q.where(coll_actions.c.as_of == as_of)
        with self.engine.connect() as c:
            return _dates(_frame(c, q, coll_actions), "as_of")

    def action_items(self) -> pd.DataFrame:
        with self.engine.connect() as c:
            return _frame(c, select(coll_action_items), coll_action_items)

    def ladder_history(self) -> pd.DataFrame:
        """payment_schedule_id, level, action_date of every level reached (letters sent, actions approved)."""
        a, i = coll_actions, coll_action_items
        q = (select(i.c.payment_schedule_id, i.c.level, a.c.as_of.label("action_date"))
             .select_from(i.join(a, i.c.action_key == a.c.action_key))
             .where(a.c.state.in_(REACHED_STATES), a.c.kind.in_(["letter", "service"])))
        with self.engine.connect() as c:
            df = pd.DataFrame(c.execute(q).mappings().all(), columns=["payment_schedule_id", "level", "action_date"])
        return _dates(df, "action_date")

    def insert_action(self, row: dict[str, Any], items: pd.DataFrame | None = None) -> bool:
        """Record a new action with its items; False (and nothing written) if the key exists."""
        with self.engine.begin() as c:
            exists = c.execute(select(coll_actions.c.action_key).where(
                coll_actions.c.action_key == row["action_key"])).first()
            if exists:
                return False
            now = _now()
            c.execute(insert(coll_actions).values(**row, created_at=now, updated_at=now))
            if items is not None and len(items):
                recs = _records(items.assign(action_key=row["action_key"]),
                                ["action_key", "payment_schedule_id", "level", "currency", "overdue_cents"])
                c.execute(insert(coll_action_items), recs)
        return True

    def set_action(self, action_key: str, **values: Any) -> None:
        with self.engine.begin() as c:
            c.execute(update(coll_actions).where(coll_actions.c.action_key == action_key).values(
                **values, updated_at=_now()))

    def record_decision(self, action_key: str, customer_id: str, decision: str, preparer: str | None,
                        approver: str | None, comment: str | None, run_id: str | None) -> None:
        with self.engine.begin() as c:
            c.execute(insert(coll_decisions).values(
                action_key=action_key, customer_id=customer_id, decision=decision, preparer=preparer,
                approver=approver, comment=comment, run_id=run_id, decided_at=_now()))

    def decisions(self) -> pd.DataFrame:
        with self.engine.connect() as c:
            return _frame(c, select(coll_decisions).order_by(coll_decisions.c.decision_id), coll_decisions)

    # -- service requests and escalations: intent before, completion after ---------------------------
    def service_requests(self) -> pd.DataFrame:
        with self.engine.connect() as c:
            df = _frame(c, select(coll_service_requests).order_by(coll_service_requests.c.request_id),
                        coll_service_requests)
        return _dates(df, "requested_on")

    def begin_service_request(self, request_key: str, customer_id: str, action: str, source_key: str,
                              requested_on: date, run_id: str | None) -> dict:
        with self.engine.begin() as c:
            row = c.execute(select(coll_service_requests).where(
                coll_service_requests.c.request_key == request_key)).mappings().first()
            if row is None:
                c.execute(insert(coll_service_requests).values(
                    request_key=request_key, customer_id=customer_id, action=action, source_key=source_key,
                    requested_on=requested_on, state="started", attempts=1, started_at=_now(), run_id=run_id))
            elif row["state"] != "delivered":
                c.execute(update(coll_service_requests).where(
                    coll_service_requests.c.request_key == request_key).values(
                    attempts=row["attempts"] + 1, run_id=run_id))
            return dict(c.execute(select(coll_service_requests).where(
                coll_service_requests.c.request_key == request_key)).mappings().first())

    def complete_service_request(self, request_key: str, external_ref: str) -> None:
        with self.engine.begin() as c:
            c.execute(update(coll_service_requests).where(coll_service_requests.c.request_key == request_key)
                      .values(state="delivered", delivered_at=_now(), external_ref=external_ref))

    def escalations(self) -> pd.DataFrame:
        with self.engine.connect() as c:
            return _frame(c, select(coll_escalations), coll_escalations)

    def begin_escalation(self, key: str, customer_id: str, target: str, requested_on: date, case_file_path: str,
                         run_id: str | None) -> dict:
        with self.engine.begin() as c:
            row = c.execute(select(coll_escalations).where(coll_escalations.c.escalation_key == key)).mappings().first()
            if row is None:
                c.execute(insert(coll_escalations).values(
                    escalation_key=key, customer_id=customer_id, target=target, requested_on=requested_on,
                    state="started", case_file_path=case_file_path, started_at=_now(), run_id=run_id))
            return dict(c.execute(select(coll_escalations).where(
                coll_escalations.c.escalation_key == key)).mappings().first())

    def complete_escalation(self, key: str, external_ref: str) -> None:
        with self.engine.begin() as c:
            c.execute(update(coll_escalations).where(coll_escalations.c.escalation_key == key).values(
                state="delivered", delivered_at=_now(), external_ref=external_ref))

    # -- disputes -------------------------------------------------------------------------------------
    def disputes(self) -> pd.DataFrame:
        with self.engine.connect() as c:
            df = _frame(c, select(coll_disputes).order_by(coll_disputes.c.dispute_id), coll_disputes)
        return _dates(df, "opened_on", "resolved_on")

    def dispute_events(self, dispute_id: str | None = None) -> pd.DataFrame:
        q = select(coll_dispute_events).order_by(coll_dispute_events.c.event_id)
        if dispute_id:
            q = q.where(coll_dispute_events.c.dispute_id == dispute_id)
        with self.engine.connect() as c:
            return _frame(c, q, coll_dispute_events)

    def open_dispute(self, payment_schedule_id: str, amount_cents: int, reason: str, owner: str, on: date,
                     disputes_policy) -> str:
        """Register a dispute on an open item (routed to level 1 or 2); returns its id."""
        items = self.read("open_items").set_index("payment_schedule_id")
        if payment_schedule_id not in items.index:
            raise dispute_rules.DisputeError(f"dispute on {payment_schedule_id}: payment_schedule_id is not an "
                                             "item of the ledger")
        item = items.loc[payment_schedule_id]
        reg = self.disputes()
        already = int(reg.loc[(reg["payment_schedule_id"] == payment_schedule_id)
                              & reg["status"].isin(dispute_rules.ACTIVE), "amount_cents"].sum())
        dispute_rules.check_new(payment_schedule_id, amount_cents, int(item["amount_due_remaining_cents"]), already,
                                reason)
        routing = dispute_rules.route(amount_cents, item["currency"], disputes_policy)
        with self.engine.begin() as c:
            n = c.execute(select(func.count()).select_from(coll_disputes)).scalar() or 0
            dispute_id = f"D-{n + 1:06d}"
            c.execute(insert(coll_disputes).values(
                dispute_id=dispute_id, payment_schedule_id=payment_schedule_id, trx_number=item["trx_number"],
                customer_id=item["customer_id"], currency=item["currency"], amount_cents=amount_cents,
                reason=reason, owner=owner, level=routing.level, status="open", opened_on=on, updated_at=_now()))
            c.execute(insert(coll_dispute_events).values(
                dispute_id=dispute_id, from_status=None, to_status="open", actor=owner,
                comment=f"{reason} (level {routing.level}, {routing.resolver})", on_date=on, at=_now()))
        return dispute_id

    def move_dispute(self, dispute_id: str, new_status: str, actor: str, on: date, comment: str | None = None) -> None:
        """Apply one lifecycle step; a credit-memo resolution records a credit-memo request."""
        reg = self.disputes().set_index("dispute_id")
        if dispute_id not in reg.index:
            raise dispute_rules.DisputeError(f"dispute {dispute_id} not found")
        d = reg.loc[dispute_id]
        who = dispute_rules.check_transition(dispute_id, d["status"], new_status, level=int(d["level"]),
                                             owner=d["owner"], actor=actor)
        with self.engine.begin() as c:
            values: dict[str, Any] = {"status": new_status, "updated_at": _now()}
            if new_status in ("resolved_credit_memo", "rejected"):
                values.update(resolved_on=on, resolved_by=who)
            c.execute(update(coll_disputes).where(coll_disputes.c.dispute_id == dispute_id).values(**values))
            c.execute(insert(coll_dispute_events).values(dispute_id=dispute_id, from_status=d["status"],
                                                         to_status=new_status, actor=who, comment=comment,
                                                         on_date=on, at=_now()))
            if new_status == "resolved_credit_memo":
                c.execute(insert(coll_credit_memo_requests).values(
                    dispute_id=dispute_id, trx_number=d["trx_number"], customer_id=d["customer_id"],
                    currency=d["currency"], amount_cents=int(d["amount_cents"]), reason=d["reason"],
                    requested_by=who, requested_on=on, status="pending"))

    def credit_memo_requests(self, status: str | None = "pending") -> pd.DataFrame:
        q = select(coll_credit_memo_requests).order_by(coll_credit_memo_requests.c.request_id)
        if status:
            q = q.where(coll_credit_memo_requests.c.status == status)
        with self.engine.connect() as c:
            return _frame(c, q, coll_credit_memo_requests)

    def mark_credit_memo_requests_picked_up(self, request_ids: list[int], period: str) -> None:
        """The close calls this once it has recorded the credits (see docs/COLLECTIONS.md)."""
        with self.engine.begin() as c:
            c.execute(update(coll_credit_memo_requests).where(
                coll_credit_memo_requests.c.request_id.in_(request_ids)).values(
                status="picked_up", picked_up_period=period, picked_up_at=_now()))

    # -- payment plans --------------------------------------------------------------------------------
    def create_plan(self, proposal: plan_rules.PlanProposal, prepared_by: str, on: date,
                    comment: str | None = None) -> str:
        with self.engine.begin() as c:
            n = c.execute(select(func.count()).select_from(coll_plans)).scalar() or 0
            plan_id = f"PP-{n + 1:06d}"
            c.execute(insert(coll_plans).values(
                plan_id=plan_id, customer_id=proposal.customer_id, currency=proposal.currency,
                total_cents=proposal.total_cents, status="pending", prepared_by=prepared_by, created_on=on,
                comment=comment))
            c.execute(insert(coll_plan_installments), _records(
                proposal.installments.assign(plan_id=plan_id), ["plan_id", "seq", "due_date", "amount_cents"]))
            c.execute(insert(coll_plan_items), [{"plan_id": plan_id, "payment_schedule_id": p}
                                                for p in proposal.items])
        return plan_id

    def decide_plan(self, plan_id: str, approver: str, on: date, approve: bool = True) -> None:
        """Approve (pending -> active) or reject a plan; the approver must not be its preparer."""
        plans = self.plans().set_index("plan_id")
        if plan_id not in plans.index:
            raise plan_rules.PlanError(f"payment plan {plan_id} not found")
        p = plans.loc[plan_id]
        who = plan_rules.approve(plan_id, p["status"], p["prepared_by"], approver)
        with self.engine.begin() as c:
            c.execute(update(coll_plans).where(coll_plans.c.plan_id == plan_id).values(
                status="active" if approve else "rejected", approved_by=who, approved_on=on if approve else None,
                closed_on=None if approve else on))

    def set_plan_status(self, plan_id: str, status: str, on: date) -> None:
        with self.engine.begin() as c:
            c.execute(update(coll_plans).where(coll_plans.c.plan_id == plan_id).values(status=status, closed_on=on))

    def plans(self) -> pd.DataFrame:
        with self.engine.connect() as c:
            df = _frame(c, select(coll_plans).order_by(coll_plans.c.plan_id), coll_plans)
        return _dates(df, "created_on", "approved_on", "closed_on")

    def plan_installments(self) -> pd.DataFrame:
        with self.engine.connect() as c:
            df = _frame(c, select(coll_plan_installments), coll_plan_installments)
        return _dates(df, "due_date")

    def plan_items(self) -> pd.DataFrame:
        with self.engine.connect() as c:
            return _frame(c, select(coll_plan_items), coll_plan_items)

    # -- holds: who set the active ones (the close reads them through Store.active_holds) -------------
    def active_hold_setters(self, hold_type: str = "credit_hold") -> pd.DataFrame:
        from store.schema import customer_holds as h

        q = select(h.c.customer_id, h.c.set_by).where(h.c.hold_type == hold_type, h.c.released_at.is_(None))
        with self.engine.connect() as c:
            return pd.DataFrame(c.execute(q).mappings().all(), columns=["customer_id", "set_by"])
