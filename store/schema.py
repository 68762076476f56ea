"""Tables of the project's store (SQLAlchemy Core; SQLite by default, PostgreSQL in production).

Money is BIGINT cents. Every table a later process needs is here from the start: the close writes
runs, documents, document lines, hand-offs, unbilled snapshots and quarantine; approvals, customer
holds and source watermarks are read and written by the approval step, collections and connectors.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

close_runs = Table(
    "close_runs", metadata,
    Column("run_id", String(64), primary_key=True),
    Column("process", String(32), nullable=False, default="month_end_close"),
    Column("period", String(7), nullable=False),
    Column("source", String(200), nullable=False),
    Column("flow_run_id", String(64)),
    Column("preparer", String(100)),
    Column("dry_run", Boolean, nullable=False, default=False),
    Column("status", String(20), nullable=False),  # started, completed, failed
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("summary_json", Text),
    Column("error", Text),
)
Index("ix_close_runs_period", close_runs.c.period)

documents = Table(
    "documents", metadata,
    Column("document_key", String(200), primary_key=True),
    Column("base_key", String(200), nullable=False),   # key without revision suffix
    Column("revision", Integer, nullable=False, default=1),
    Column("document_type", String(20), nullable=False),  # invoice, credit_memo, cost_transfer
    Column("period", String(7), nullable=False),
    Column("business_unit", String(50)),
    Column("customer_id", String(50)),
    Column("currency", String(3)),
    Column("grouping", String(20)),
    Column("group_key", String(100)),
    Column("issue_date", Date),
    Column("due_date", Date),
    Column("po_number", String(100)),
    Column("delivery_channel", String(20)),
    Column("backup_required", String(30)),
    Column("tax_rate_bp", Integer),
    Column("line_count", Integer),
    Column("net_cents", BigInteger, nullable=False),
    Column("tax_cents", BigInteger, nullable=False),
    Column("gross_cents", BigInteger, nullable=False),
    Column("content_hash", String(64), nullable=False),
    # prepared -> (pending_approval -> approved | rejected) -> handed_off; superseded when replaced
    Column("status", String(20), nullable=False),
    Column("supersedes_key", String(200)),
    Column("reverses_key", String(200)),  # a credit memo that reverses a handed-off document
    Column("approval_reasons", Text),  # why it waits for a person (billing.approvals), '' or null if not
    Column("handoff_error", Text),  # the last refusal by a target (the document stays pending)
    Column("run_id", String(64), ForeignKey("close_runs.run_id"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
Index("ix_documents_base", documents.c.base_key)
Index("ix_documents_period", documents.c.period, documents.c.status)

document_lines = Table(
    "document_lines", metadata,
    Column("document_key", String(200), ForeignKey("documents.document_key"), primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("contract_id", String(50)),
    Column("project_id", String(50)),
    Column("scope_line_id", String(60)),
    Column("source_kind", String(20)),
    Column("role", String(60)),
    Column("expenditure_type", String(30)),
    Column("description", Text),
    Column("quantity_milli", BigInteger, nullable=False),
    Column("unit_price_cents", BigInteger),
    Column("amount_cents", BigInteger, nullable=False),
    Column("item_count", Integer, nullable=False),
)

handoffs = Table(
    "handoffs", metadata,
    Column("handoff_id", Integer, primary_key=True, autoincrement=True),
    Column("document_key", String(200), ForeignKey("documents.document_key"), nullable=False),
    Column("target", String(50), nullable=False),
    Column("idempotency_key", String(64), nullable=False),
    Column("state", String(20), nullable=False),  # started, delivered
    Column("attempts", Integer, nullable=False, default=0),
    Column("external_ref", Text),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True)),
    Column("run_id", String(64)),
    UniqueConstraint("target", "idempotency_key", name="uq_handoff_target_key"),
)

approvals = Table(
    "approvals", metadata,
    Column("approval_id", Integer, primary_key=True, autoincrement=True),
    Column("document_key", String(200), ForeignKey("documents.document_key"), nullable=False),
    Column("run_id", String(64)),
    # approved, rejected, escalated (overdue), refused (a self-approval or unnamed approver, not applied)
    Column("decision", String(20), nullable=False),
    Column("preparer", String(100)),
    Column("approver", String(100)),
    Column("comment", Text),
    Column("decided_at", DateTime(timezone=True), nullable=False),
)

unbilled_snapshots = Table(
    "unbilled_snapshots", metadata,
    Column("period", String(7), primary_key=True),
    Column("line_id", String(120), primary_key=True),
    Column("run_id", String(64), nullable=False),
    Column("business_unit", String(50)),
    Column("customer_id", String(50)),
    Column("contract_id", String(50)),
    Column("project_id", String(50)),
    Column("source_kind", String(20)),
    Column("service_date", Date),
    Column("age_days", Integer),
    Column("aging_bucket", String(10)),
    Column("reason", String(40)),
    Column("currency", String(3)),
    Column("cost_cents", BigInteger, nullable=False),
    Column("unbilled_cents", BigInteger, nullable=False),
)
# No index beyond the key: every read is by period (the key's first column), and a close loads millions
# of rows here (5M items: 2.5M lines), where each further index costs about a third more.

quarantine = Table(
    "quarantine", metadata,
    Column("quarantine_id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False),
    Column("period", String(7), nullable=False),
    Column("dataset", String(40), nullable=False),
    Column("record_key", String(200), nullable=False),
    Column("expectation", String(120), nullable=False),
    Column("column_name", String(120)),
    Column("value", Text),
    Column("severity", String(20), nullable=False),
)
Index("ix_quarantine_run", quarantine.c.run_id)

customer_holds = Table(
    "customer_holds", metadata,
    Column("hold_id", Integer, primary_key=True, autoincrement=True),
    Column("customer_id", String(50), nullable=False),
    Column("hold_type", String(30), nullable=False),  # credit_hold, ...
    Column("reason", Text, nullable=False),
    Column("set_by", String(100), nullable=False),
    Column("set_at", DateTime(timezone=True), nullable=False),
    Column("released_by", String(100)),
    Column("released_at", DateTime(timezone=True)),
    Column("release_reason", Text),
)
Index("ix_holds_customer", customer_holds.c.customer_id)

watermarks = Table(
    "watermarks", metadata,
    Column("source", String(100), primary_key=True),
    Column("object_name", String(100), primary_key=True),
    Column("value", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# The latest copy of each record pulled incrementally from a source (Salesforce by SystemModstamp):
# a pull upserts the changed records and moves the watermark in one transaction, so the two never
# disagree, and the close reads the whole object from here.
source_replica = Table(
    "source_replica", metadata,
    Column("source", String(100), primary_key=True),
    Column("object_name", String(100), primary_key=True),
    Column("record_id", String(64), primary_key=True),
    Column("modstamp", DateTime(timezone=True), nullable=False),
    Column("payload_json", Text, nullable=False),
)
