"""The month-end close: extract, check, compute per business unit, record, approve, hand off, report.

No `from __future__ import annotations` here: Prefect must see the pydantic parameter model as a
real class to build the UI form (deployment runs fail otherwise).
"""

import datetime as dt
import getpass
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import pandas as pd
from prefect import flow, get_run_logger, runtime
from pydantic import BaseModel, Field

from billing import columns as col
from billing.approvals import customers_of_rows
from billing.partition import combine_results, partition_by_business_unit
from billing.periods import Period
from billing.schedule import guard, period_to_close
from billing_cycle.alerts import AlertSettings, send_alert
from billing_cycle.handoff import DELIVERABLE, handoff_summary, plan_preview
from billing_cycle.summary import summary_dict
from connectors.factory import build_sources
from delivery.registry import build_targets
from store import Store
from tasks.approve import ApprovalOutcome, request_approvals
from tasks.compute import compute_unit
from tasks.extract import extract_dataset
from tasks.record import (
    deliver_documents,
    publish_artifacts,
    record_unbilled,
    record_unit,
    write_documents,
    write_outputs,
)
from tasks.validate import blocking_message, validate_data, validation_counts

CLOSE_TZ = ZoneInfo("Europe/Sofia")


class CloseParameters(BaseModel):
    """What a month-end close run needs to know."""

    period: str | None = Field(None, description="Month to close, YYYY-MM (e.g. 2026-10). Empty: the month before "
                               "the run date (scheduled runs).", pattern=r"^\d{4}-(0[1-9]|1[0-2])$")
    business_units: list[str] = Field(default_factory=list, description="Business units to close (e.g. DE01). "
                                      "Empty: all.")
    source: str = Field("sample", description="Where the data comes from: 'sample', 'sample:items=N,seed=S', "
                        "'files:PATH', 'emulated' or 'live'.")
    dry_run: bool = Field(False, description="Compute and report everything, with a preview of each batch; record "
                          "and hand off nothing.")
    approval_threshold: Decimal = Field(Decimal("25000"), ge=0, description="Invoices at or above this gross amount "
                                        "(major units of their own currency) wait for approval. Every credit memo "
                                        "and every document of a customer with a data-quality warning waits too.")
    approvals: Literal["ui", "defer"] = Field("ui", description="ui: the run pauses for approval in the Prefect UI. "
                                              "defer: documents stay pending for `billing-cycle approve`.")
    approval_timeout_minutes: float = Field(240, gt=0, description="Escalate (alert) if nobody decides within this "
                                            "time; the documents stay pending for the next run.")
    approval_poll_seconds: int = Field(10, ge=1, le=300, description="How often the paused run checks for a decision.")
    targets: str = Field("ubl,ar_interface,file_drop,files", description="Where documents go, in order: 'ubl' "
                         "(Peppol e-invoices, for customers on Peppol), 'ar_interface[:URL]' (Oracle AR interface "
                         "rows; default: the store's database), 'file_drop' (a JSON per document), 'files' (batch "
                         "folders with manifests), 'webhook:URL' (signed POST).")
    output_dir: str = Field("out", description="Folder for report files, hand-off files and the default store.")
    store_url: str | None = Field(None, description="SQLAlchemy URL of the project's store; default: SQLite in "
                                  "the output folder.")
    preparer: str | None = Field(None, description="Who prepares the run (default: the operating-system user).")
    working_day: int | None = Field(None, ge=1, le=15, description="Scheduled runs: run only on this working day "
                                    "of the month (weekends and public holidays skipped); other days end at once.")
    calendar_country: str = Field("BG", description="Country whose public holidays the working-day guard skips.")
    alerts: AlertSettings | None = Field(None, title="Alerts", description="Alert channels; empty: from the "
                                         "environment (BILLING_ALERT_*).")
    dask_address: str | None = Field(None, description="Compute the business units on a Dask cluster: its scheduler "
                                     "address (tcp://host:8786), or 'local' for a local cluster. Empty: in this "
                                     "process.")


class BlockingDataQualityError(RuntimeError):
    """A blocking expectation failed: nothing is handed off."""


class CloseIncompleteError(RuntimeError):
    """Some business units failed; the others were recorded and handed off."""


def store_url_for(params: CloseParameters) -> str:
    return params.store_url or f"sqlite:///{Path(params.output_dir).resolve() / 'billing.sqlite'}"


def threshold_by_currency(threshold: Decimal) -> dict[str, int]:
    return {c: int(threshold * 10 ** minor) for c, minor in col.MINOR_UNITS.items()}


def _alert_settings(params: CloseParameters) -> AlertSettings:
    return params.alerts or AlertSettings.from_env()


def alert_on_failure(flow, flow_run, state) -> None:
    """State hook: a failed or crashed close (a blocking data-quality failure included) alerts the team."""
    raw = (flow_run.parameters or {}).get("params") or {}
    try:
        params = raw if isinstance(raw, CloseParameters) else CloseParameters.model_validate(raw)
        settings = _alert_settings(params)
        period = params.period or "scheduled"
    except Exception:  # the alert must go out even when the parameters were the problem
        settings, period = AlertSettings.from_env(), "?"
    url = getattr(runtime.flow_run, "ui_url", None) or ""
    send_alert(settings, f"Month-end close {period} {state.name.lower()}: {flow_run.name}",
               f"The month-end close for {period} ended {state.name}.\n\n{state.message or ''}\n\n{url}".strip())


def _run_day() -> dt.date:
    start = runtime.flow_run.scheduled_start_time
    when = start if isinstance(start, dt.datetime) else dt.datetime.now(dt.UTC)
    return when.astimezone(CLOSE_TZ).date()


@flow(name="month-end-close", log_prints=False, on_failure=[alert_on_failure], on_crashed=[alert_on_failure])
def month_end_close(params: CloseParameters) -> dict:
    """Close one month: extract, validate, compute per business unit, record, approve, hand off, report."""
    log = get_run_logger()
    if params.working_day:
        go, why = guard(_run_day(), params.working_day, params.calendar_country)
        log.info(why)
        if not go:
            return {"skipped": why}
    period = Period.parse(params.period) if params.period else period_to_close(_run_day())
    out = Path(params.output_dir) / str(period)
    store = Store(store_url_for(params))
    sources = build_sources(params.source, replica=store)
    alerts = _alert_settings(params)
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
        warning_customers = _customers_with_warnings(report, data)
        targets = [] if params.dry_run else build_targets(params.targets, output_dir=out, customers=data["customers"],
                                                          engine_url=store_url_for(params))

        # Compute, then record, per business unit: one unit's failure does not lose the others' work.
        units = partition_by_business_unit(data, params.business_units or None)
        holds = store.active_holds()
        computed = compute_business_units.with_options(task_runner=_task_runner(params.dask_address))(
            units, period, quarantine, holds)
        results, plans, failed = {}, {}, {}
        for unit, outcome in computed.items():
            if isinstance(outcome, str):
                failed[unit] = outcome
                continue
            results[unit] = outcome
            if params.dry_run:
                plans[unit] = plan_preview(store, results[unit].batch, str(period), [unit])
                continue
            state = record_unit(store, unit, results[unit], run_id, threshold_by_currency(params.approval_threshold),
                                warning_customers, return_state=True)
            if not state.is_completed():
                failed[unit] = f"record: {state.message}"
                del results[unit]
                continue
            plans[unit] = state.result()
        if not results:
            raise CloseIncompleteError("no business unit could be closed: " + "; ".join(
                f"{u}: {m}" for u, m in failed.items()))
        items = pd.concat([units[u]["expenditure_items"] for u in results], ignore_index=True)
        result = combine_results(results, items)
        result.conservation.raise_if_broken()
        _alert_old_unbilled(result, alerts, period)

        # Approve, then hand off what needs no approval or was approved (this run's or earlier runs').
        approval = ApprovalOutcome()
        refused: dict[str, str] = {}
        delivered: list[str] = []
        if not params.dry_run:
            scope = list(results)
            pending = store.documents(status="pending_approval", business_units=scope)
            if len(pending) and params.approvals == "ui":
                approval = request_approvals(store, pending, preparer, run_id,
                                             round(params.approval_timeout_minutes * 60), params.approval_poll_seconds)
                if approval.escalated:
                    send_alert(alerts, f"Month-end close {period}: approval overdue",
                               f"{len(pending)} document(s) waited {params.approval_timeout_minutes:g} min for "
                               f"approval and stay pending for the next run:\n"
                               + "\n".join(pending["document_key"].head(50)))
            ready = store.documents(business_units=scope)
            for unit in scope:
                keys = ready.loc[(ready["business_unit"] == unit) & ready["status"].isin(DELIVERABLE),
                                 "document_key"].tolist()
                if not keys:
                    continue
                state = deliver_documents(store, targets, keys, run_id, label=unit, return_state=True)
                if not state.is_completed():
                    failed[unit] = f"hand-off: {state.message}"
                    continue
                outcome = state.result()
                delivered += outcome.delivered
                refused |= outcome.refused
            # The snapshot loads into the store while the files are written (both mostly outside
            # the GIL: the database's and Arrow's own code), and is waited for before the summary.
            snapshot = record_unbilled.submit(store, result, run_id)

        files = write_outputs(result, out, report.quarantine)
        documents = {} if params.dry_run else write_documents(store, result, data, out)
        if not params.dry_run:
            snapshot.result()
        plan = _merge_plans(plans)
        summary = summary_dict(result, handoff_summary(plan, delivered, params.dry_run), validation_counts(report))
        summary["validation"]["seeded_faults"] = _seeded_faults_caught(sources, period, report)
        summary["approvals"] = _approval_summary(store, approval, params, list(results))
        summary["refused_by_targets"] = refused
        summary["documents_written"] = documents
        summary["business_units"] = {u: "closed" for u in results} | {u: f"failed: {m}" for u, m in failed.items()}
        summary["output_dir"] = str(out)
        summary["files"] = {k: str(v) for k, v in files.items()}
        summary["run_id"] = run_id
        publish_artifacts(result, summary)
        if failed:
            raise CloseIncompleteError("business unit(s) not closed: " + "; ".join(
                f"{u}: {m}" for u, m in failed.items()) + f" (the others were recorded: {', '.join(results)})")
        store.finish_run(run_id, "completed", summary)
        return summary
    except BaseException as exc:
        store.finish_run(run_id, "failed", error=f"{type(exc).__name__}: {exc}")
        raise


@flow(name="compute-business-units")
def compute_business_units(units: dict, period: Period, quarantine: dict, holds: set[str]) -> dict:
    """Each unit's close computed as its own task (on the flow's task runner: threads, or a Dask cluster);
    returns unit -> CloseResult, or the failure message of a unit that failed."""
    futures = {u: compute_unit.submit(u, part, period, quarantine, holds) for u, part in units.items()}
    out: dict = {}
    for unit, future in futures.items():
        future.wait()
        out[unit] = future.result() if future.state.is_completed() else f"compute: {future.state.message}"
    return out


def _task_runner(dask_address: str | None):
    if not dask_address:
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner()
    from prefect_dask import DaskTaskRunner

    if dask_address == "local":
        return DaskTaskRunner(cluster_kwargs={"processes": True, "dashboard_address": None})
    return DaskTaskRunner(address=dask_address)


def _customers_with_warnings(report, data: dict) -> set[str]:
    """Customers with a row quarantined (or flagged) by a warning-level expectation in this run."""
    from expectations.runner import record_keys

    flagged = {}
    for name in col.INPUT_DATASETS:
        keys = report.quarantined_keys(name)
        if keys and name in data:
            frame = data[name]
            flagged[name] = frame[record_keys(frame, name).isin(keys).to_numpy()]
    return customers_of_rows(flagged, data)


def _seeded_faults_caught(sources, period: Period, report) -> dict:
    """For the sample company: each seeded data-quality fault, how many were seeded and caught."""
    out = {}
    for conn in {id(c): c for c in sources.by_dataset.values()}.values():
        seeded = getattr(conn, "seeded_faults", None)
        if seeded is None:
            continue
        for rule, f in seeded(period).items():
            q = report.quarantine
            caught = set(q.loc[(q["dataset"] == f["dataset"]) & (q["expectation"] == rule), "record_key"])
            out[rule] = {"dataset": f["dataset"], "seeded": len(f["keys"]), "caught": len(f["keys"] & caught),
                         "seeded_rate": f["seeded_rate"], "records": f["records"]}
    return out


def _alert_old_unbilled(result, alerts: AlertSettings, period: Period) -> None:
    """Alert when unbilled cost over 90 days, in any currency, passes the configured threshold."""
    if alerts.unbilled_over_90_threshold is None or result.unbilled.empty:
        return
    u = result.unbilled
    old = u[u["aging_bucket"] == "90+"].groupby("currency")["cost_cents"].sum()
    limit = int(alerts.unbilled_over_90_threshold * 100)
    over = old[old > limit]
    if len(over):
        send_alert(alerts, f"Month-end close {period}: unbilled cost over 90 days above threshold",
                   "Unbilled cost older than 90 days: " + ", ".join(
                       f"{cur} {v / 100:,.2f}" for cur, v in over.items())
                   + f" (threshold {alerts.unbilled_over_90_threshold:,.2f}).")


def _merge_plans(plans: dict):
    from billing.handoff_plan import HandoffPlan

    parts = list(plans.values())
    docs = [p.new_documents for p in parts if len(p.new_documents)]
    lines = [p.new_lines for p in parts if len(p.new_lines)]
    return HandoffPlan(pd.concat(docs, ignore_index=True) if docs else pd.DataFrame(),
                       pd.concat(lines, ignore_index=True) if lines else pd.DataFrame(),
                       [k for p in parts for k in p.superseded], [k for p in parts for k in p.to_deliver],
                       [k for p in parts for k in p.unchanged])


def _approval_summary(store: Store, approval: ApprovalOutcome, params: CloseParameters, units: list[str]) -> dict:
    if params.dry_run:
        return {}
    pending = store.documents(status="pending_approval", business_units=units)
    return {"approver": approval.approver, "approved": len(approval.approved), "rejected": len(approval.rejected),
            "refused_attempts": len(approval.refused_attempts), "escalated": approval.escalated,
            "pending": len(pending), "pending_keys": pending["document_key"].tolist()[:50]}
