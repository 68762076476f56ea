"""The month-end close: extract, check, compute, record, hand off, report.

No `from __future__ import annotations` here: Prefect must see the pydantic parameter model as a
real class to build the UI form (deployment runs fail otherwise).
"""

import getpass
import uuid
from pathlib import Path

from prefect import flow, get_run_logger, runtime
from pydantic import BaseModel, Field

from billing import columns as col
from billing.periods import Period
from billing_cycle.handoff import handoff_summary, plan_preview
from billing_cycle.summary import summary_dict
from connectors.factory import build_sources
from connectors.targets import FileDropTarget
from store import Store
from tasks.compute import compute_billing
from tasks.extract import extract_dataset
from tasks.record import (
    deliver_documents,
    publish_artifacts,
    record_documents,
    record_unbilled,
    write_outputs,
)
from tasks.validate import blocking_message, validate_data, validation_counts


class CloseParameters(BaseModel):
    """What a month-end close run needs to know."""

    period: str = Field(description="Month to close, YYYY-MM (e.g. 2026-10).", pattern=r"^\d{4}-(0[1-9]|1[0-2])$")
    source: str = Field("sample", description="Where the data comes from: 'sample', 'sample:items=N,seed=S' or "
                        "'files:PATH'.")
    output_dir: str = Field("out", description="Folder for report files, hand-off files and the default store.")
    store_url: str | None = Field(None, description="SQLAlchemy URL of the project's store; default: SQLite in "
                                  "the output folder.")
    dry_run: bool = Field(False, description="Compute and report everything, record and hand off nothing.")
    preparer: str | None = Field(None, description="Who prepares the run (default: the operating-system user).")


class BlockingDataQualityError(RuntimeError):
    """A blocking expectation failed: nothing is handed off."""


def store_url_for(params: CloseParameters) -> str:
    return params.store_url or f"sqlite:///{Path(params.output_dir).resolve() / 'billing.sqlite'}"


@flow(name="month-end-close", log_prints=False)
def month_end_close(params: CloseParameters) -> dict:
    """Close one month: extract, validate, compute, record, hand off, report."""
    log = get_run_logger()
    period = Period.parse(params.period)
    out = Path(params.output_dir) / str(period)
    store = Store(store_url_for(params))
    sources = build_sources(params.source)
    run_id = str(runtime.flow_run.id or uuid.uuid4())
    preparer = params.preparer or getpass.getuser()
    store.start_run(run_id, str(period), sources.description, preparer=preparer, dry_run=params.dry_run,
                    flow_run_id=str(runtime.flow_run.id) if runtime.flow_run.id else None)
    try:
        # Extract: one task per dataset, run concurrently.
        futures = {name: extract_dataset.submit(sources, name, period) for name in col.INPUT_DATASETS}
        data = {name: f.result() for name, f in futures.items()}
        log.info("extracted %s", ", ".join(f"{k}={len(v)}" for k, v in data.items()))

        # Check: blocking failures stop the close before anything is recorded or handed off.
        report = validate_data(data, period, out / "data_docs")
        quarantine = {name: report.quarantined_keys(name) for name in col.INPUT_DATASETS}
        if not params.dry_run:
            store.record_quarantine(run_id, str(period), report.quarantine)
        if report.blocking_failures:
            raise BlockingDataQualityError(blocking_message(report))

        # Compute.
        result = compute_billing(data, period, quarantine, store.active_holds())

        # Record and hand off.
        if params.dry_run:
            plan = plan_preview(store, result.batch, str(period))
            delivered = []
        else:
            plan = record_documents(store, result, run_id)
            delivered = deliver_documents(store, FileDropTarget(out / "handoff"), plan.to_deliver, run_id)
            record_unbilled(store, result, run_id)
        files = write_outputs(result, out, report.quarantine)
        summary = summary_dict(result, handoff_summary(plan, delivered, params.dry_run), validation_counts(report))
        summary["output_dir"] = str(out)
        summary["files"] = {k: str(v) for k, v in files.items()}
        summary["run_id"] = run_id
        publish_artifacts(result, summary)
        store.finish_run(run_id, "completed", summary)
        return summary
    except BaseException as exc:
        store.finish_run(run_id, "failed", error=f"{type(exc).__name__}: {exc}")
        raise
