"""Record and deliver tasks: the store, the hand-off target, the files and the UI artifacts."""

from pathlib import Path

import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from billing.approvals import approval_reasons
from billing.close import CloseResult
from billing.handoff_plan import HandoffPlan
from billing_cycle import handoff as ho
from billing_cycle.outputs import for_people, write_close_outputs
from billing_cycle.summary import summary_markdown
from connectors.targets import HandoffTarget
from store import Store


@task(cache_policy=NO_CACHE, task_run_name="record-{unit}")
def record_unit(store: Store, unit: str, result: CloseResult, run_id: str,
                threshold_cents: dict[str, int] | None, warning_customers: set[str]) -> HandoffPlan:
    """Record a unit's new documents and revisions; mark those that wait for a person."""
    plan = ho.record_documents(store, result.batch, str(result.period), run_id, business_units=[unit])
    docs = store.documents(period=str(result.period), business_units=[unit])
    undecided = docs[docs["document_key"].isin(plan.to_deliver) & docs["status"].isin(["prepared", "pending_approval"])]
    reasons = approval_reasons(undecided, threshold_cents, warning_customers)
    store.mark_pending_approval({k: r for k, r in reasons.items() if r})
    return plan


@task(retries=3, retry_delay_seconds=exponential_backoff(backoff_factor=5), retry_jitter_factor=0.5,
      timeout_seconds=1800, cache_policy=NO_CACHE, task_run_name="hand-off-{label}")
def deliver_documents(store: Store, targets: list[HandoffTarget], keys: list[str], run_id: str,
                      label: str = "all") -> ho.HandoffOutcome:
    """Hand each approved or approval-free document off exactly once to every target.

    A retry (or a re-run) skips what is already recorded as delivered and re-sends what was started
    but not recorded under the same idempotency key, which the targets ignore.
    """
    return ho.hand_off(store, targets, keys, run_id)


@task(cache_policy=NO_CACHE)
def record_unbilled(store: Store, result: CloseResult, run_id: str) -> None:
    """Keep the period's unbilled snapshot (collections reads it for exposure)."""
    store.replace_unbilled(str(result.period), run_id, result.unbilled)


@task(cache_policy=NO_CACHE)
def write_outputs(result: CloseResult, folder: Path, quarantine: pd.DataFrame | None) -> dict[str, Path]:
    """Write the period's report files."""
    return write_close_outputs(result, folder, quarantine)


@task(cache_policy=NO_CACHE)
def publish_artifacts(result: CloseResult, summary: dict) -> None:
    """Summary, batch table, aging and exceptions for finance users in the Prefect UI."""
    create_markdown_artifact(summary_markdown(summary), key="close-summary", description="Month-end close summary")
    docs = for_people(result.batch.documents[["document_key", "document_type", "customer_name", "currency",
                                              "net_cents", "tax_cents", "gross_cents", "due_date",
                                              "delivery_channel"]])
    create_table_artifact(docs.head(500).to_dict("records"), key="invoice-batch", description="Invoice batch")
    create_table_artifact(for_people(result.aging).to_dict("records"), key="unbilled-aging",
                          description="Unbilled by customer and age")
    create_table_artifact(for_people(result.exceptions_by_reason()).to_dict("records"), key="exceptions-by-reason",
                          description="Not billed, by reason")


@task(cache_policy=NO_CACHE)
def write_documents(store: Store, result: CloseResult, data: dict, folder: Path) -> dict[str, int]:
    """Readable invoices (HTML, PDF where a renderer is installed), backup workbooks where the customer
    requires them, and the period's billing tracker (its comments column kept across runs)."""
    from delivery.backup import BilledDetail, write_backup
    from delivery.invoice_render import pdf_renderer_available, write_invoice
    from delivery.tracker_workbook import contract_status, tracker_path, update_tracker_workbook
    from delivery.ubl import SAMPLE_SELLERS

    docs = store.documents(period=str(result.period))
    docs = docs[docs["status"] != "superseded"]
    customers = data["customers"].drop_duplicates("customer_id").set_index("customer_id")
    receivables = docs[docs["document_type"] != "cost_transfer"]
    lines = store.document_line_records(receivables["document_key"])
    detail = BilledDetail(result.lines, result.batch.line_documents)
    customer_rows = customers.to_dict("index")
    pdf = pdf_renderer_available()      # once for the run, not an import attempt per document
    written = {"invoices": 0, "backups": 0}
    for doc in receivables.to_dict("records"):
        customer = customer_rows[doc["customer_id"]] | {"customer_id": doc["customer_id"]} \
            if doc["customer_id"] in customer_rows else None
        write_invoice(doc, lines[doc["document_key"]], folder / "invoices", customer=customer,
                      seller=SAMPLE_SELLERS.get(doc.get("business_unit")), pdf=pdf)
        written["invoices"] += 1
        # A revision's billing lines keep its base key (write_backup reads the detail by base key).
        if write_backup(doc, result.lines, result.batch.line_documents, folder / "backup", detail=detail) is not None:
            written["backups"] += 1
    status = contract_status(result.lines, result.batch.line_documents,
                             docs.set_index("base_key")["status"].groupby(level=0).last(), result.period,
                             customers=data["customers"], contracts=data["contracts"])
    update_tracker_workbook(tracker_path(folder, result.period), status, result.period)
    return written
