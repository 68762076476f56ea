"""Collections: the second business process beside the close, on the same store and conventions.

The daily run reads like the collections specialist's checklist: read the receivables, review payment
plans, age, climb the ladder, send letters, ask for approval of disconnections, hand off what was
approved, reconnect those who paid, set and release credit holds, escalate, report. The monthly run
(mode "statements") sends every customer with open items a statement of account.

No `from __future__ import annotations` here: Prefect must see the pydantic parameter model as a
real class to build the UI form (deployment runs fail otherwise).
"""

import getpass
import uuid
from datetime import datetime
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import pandas as pd
from prefect import flow, get_run_logger, runtime
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from pydantic import BaseModel, Field

from billing.approvals import SegregationOfDutiesError, check_segregation
from receivables.dunning import DEFAULT_POLICY_PATH, load_policy
from receivables.interest import load_reference_rates
from receivables.outbound import FolderQueue, SmtpMailer
from store import Store
from store.receivables import CollectionsStore
from tasks import collections as t

TIMEZONE = "Europe/Sofia"


class CollectionsParameters(BaseModel):
    """What a collections run needs to know."""

    as_of: str | None = Field(None, description="Day to work, YYYY-MM-DD (default: today in Europe/Sofia).",
                              pattern=r"^\d{4}-\d{2}-\d{2}$")
    mode: Literal["daily", "statements"] = Field("daily", description="daily: the dunning ladder and the rest of "
                                                 "the checklist; statements: a statement of account to every "
                                                 "customer with open items.")
    source: Literal["store", "oracle"] = Field("store", description="store: the project's store (the close's "
                                               "handed-off invoices plus history; seeded from the sample company "
                                               "on first use); oracle: Oracle Receivables (ORACLE_* settings).")
    policy_path: str = Field(str(DEFAULT_POLICY_PATH), description="Dunning policy file (YAML).")
    output_dir: str = Field("out", description="Folder for letters, reports, queues and the default store.")
    store_url: str | None = Field(None, description="SQLAlchemy URL of the store; default: SQLite in the output "
                                  "folder (the close's store).")
    dry_run: bool = Field(False, description="Write the letters and reports; record, send and hand off nothing.")
    preparer: str | None = Field(None, description="Who prepares the run (default: the operating-system user).")
    smtp_block: str | None = Field(None, description="Name of a saved EmailServerCredentials block.")
    smtp_server: str = Field("127.0.0.1", description="SMTP server when no block is named.")
    smtp_port: int = Field(25, description="SMTP port when no block is named.")
    approval_timeout_seconds: int | None = Field(None, description="How long to wait for a decision (default: "
                                                 "the policy's).")
    approval_poll_seconds: int = Field(10, ge=1, description="How often the paused run checks for a decision.")
    skip_public_holidays: bool = Field(True, description="A scheduled run (no as_of) on a Bulgarian public holiday "
                                       "does nothing.")


class RequestDecision(BaseModel):
    action_key: str = Field(description="The request (service:<customer>:<day>).")
    customer_id: str
    action: str = Field(description="soft_disconnection or hard_disconnection.")
    decision: Literal["approve", "reject"] = "approve"


class DisconnectionApproval(RunInput):
    approver: str = Field(description="Your name. The preparer of the run may not approve it.")
    comment: str = Field("", description="Why (kept with the decision).")
    decisions: list[RequestDecision] = Field(default_factory=list, description="One decision per request.")


def store_url_for(params: CollectionsParameters) -> str:
    return params.store_url or f"sqlite:///{Path(params.output_dir).resolve() / 'billing.sqlite'}"


def _as_of(params: CollectionsParameters) -> pd.Timestamp:
    if params.as_of:
        return pd.Timestamp(params.as_of).normalize()
    return pd.Timestamp(datetime.now(ZoneInfo(TIMEZONE)).date())


def _public_holiday(day: pd.Timestamp) -> str | None:
    import holidays

    return holidays.country_holidays("BG", years=day.year).get(day.date())


def ask_for_approval(cstore: CollectionsStore, pending: pd.DataFrame, result, preparer: str, run_id: str,
                     timeout: int, poll: int) -> dict:
    """Pause until another person decides each disconnection; self-approval is refused and asked again."""
    refusal = None
    keys = list(pending["action_key"])
    while True:
        initial = [RequestDecision(action_key=a.action_key, customer_id=a.customer_id, action=a.level_code)
                   for a in pending.itertuples(index=False)]
        form = DisconnectionApproval.with_initial_data(
            description=t.approval_markdown(pending, result, preparer, refusal), decisions=initial)
        try:
            answer = pause_flow_run(wait_for_input=form, timeout=timeout, poll_interval=poll)
        except FlowPauseTimeout:
            for a in pending.itertuples(index=False):
                cstore.set_action(a.action_key, state="timed_out")
                cstore.record_decision(a.action_key, a.customer_id, "timed_out", preparer, None,
                                       f"no decision within {timeout} s", run_id)
            return {"timed_out": len(keys)}
        try:
            approver = check_segregation(preparer, answer.approver)
        except SegregationOfDutiesError as exc:
            refusal = str(exc)
            for a in pending.itertuples(index=False):
                cstore.record_decision(a.action_key, a.customer_id, "refused_self_approval", preparer,
                                       answer.approver, refusal, run_id)
            continue
        chosen = {d.action_key: d.decision for d in answer.decisions}
        counts = {"approved": 0, "rejected": 0}
        for a in pending.itertuples(index=False):
            decision = "approved" if chosen.get(a.action_key, "approve") == "approve" else "rejected"
            cstore.set_action(a.action_key, state=decision, approver=approver)
            cstore.record_decision(a.action_key, a.customer_id, decision, preparer, approver, answer.comment, run_id)
            counts[decision] += 1
        return counts


@flow(name="collections-cycle", log_prints=False)
def collections_cycle(params: CollectionsParameters) -> dict:
    """Work the receivables for one day: ladder, letters, approvals, hand-offs, holds, escalation, report."""
    log = get_run_logger()
    as_of = _as_of(params)
    if params.as_of is None and params.skip_public_holidays and (holiday := _public_holiday(as_of)):
        log.info("%s is a public holiday in Bulgaria (%s): nothing to do", as_of.date(), holiday)
        return {"as_of": str(as_of.date()), "skipped": f"public holiday: {holiday}"}
    policy = load_policy(params.policy_path)  # a bad policy stops the run here: nothing is sent
    rates = load_reference_rates()
    store = Store(store_url_for(params))
    cstore = CollectionsStore(store)
    out = Path(params.output_dir) / "collections" / str(as_of.date())
    preparer = params.preparer or getpass.getuser()
    run_id = str(runtime.flow_run.id or uuid.uuid4())
    sender = t.sender_from_env()
    mailer = (SmtpMailer.from_block(params.smtp_block) if params.smtp_block
              else SmtpMailer.from_settings(params.smtp_server, params.smtp_port))
    queues = Path(params.output_dir) / "queues"
    store.start_run(run_id, as_of.strftime("%Y-%m"), params.source, preparer=preparer, dry_run=params.dry_run,
                    flow_run_id=str(runtime.flow_run.id) if runtime.flow_run.id else None, process="collections_cycle")
    summary: dict = {"as_of": str(as_of.date()), "mode": params.mode, "dry_run": params.dry_run,
                     "policy": policy.version_label, "run_id": run_id, "preparer": preparer}
    try:
        # Read.
        # The embedded source itself (the sample history on first use), not a result: a dry run loads it too.
        summary["ledger"] = t.prepare_ledger(cstore, as_of, params.source)
        data = t.extract_receivables(cstore, params.source, as_of)
        state = t.read_state(cstore)

        # Compute.
        result = t.compute_collections_day(data, state, as_of, policy, rates)
        summary["open_items"] = int((data["open_items"]["status"] == "OP").sum())
        summary["overdue_items"] = len(result.ladder)

        if params.mode == "statements":
            summary["statements"] = t.send_letters(cstore, mailer, result, data, policy, "statement", out, run_id,
                                                   preparer, params.dry_run, sender)
        else:
            # Plans, letters.
            if not params.dry_run:
                summary["plans"] = t.record_plan_review(cstore, result)
            summary["letters"] = t.send_letters(cstore, mailer, result, data, policy, "letter", out, run_id, preparer,
                                                params.dry_run, sender)
            # Disconnections: never automatic.
            blocked = result.service[result.service["blocked_reason"] != ""]
            summary["disconnections_blocked"] = len(blocked)
            if params.dry_run:
                summary["disconnections_proposed"] = len(result.service) - len(blocked)
            else:
                service = t.record_service_actions(cstore, result, policy, run_id, preparer)
                waiting = service[service["state"].isin(["pending_approval", "timed_out"])]
                if len(waiting):
                    timeout = params.approval_timeout_seconds or policy.disconnection.approval_timeout_seconds
                    summary["approvals"] = ask_for_approval(cstore, waiting, result, preparer, run_id, timeout,
                                                            params.approval_poll_seconds)
                summary["service"] = t.hand_off_service(cstore, FolderQueue(queues / "service_requests",
                                                                            "service_requests"),
                                                        mailer, result, data, policy, out, run_id, sender)
                summary["reconnections"] = t.hand_off_reconnections(
                    cstore, FolderQueue(queues / "service_requests", "service_requests"), result, run_id)
                summary["credit_holds"] = t.apply_credit_holds(store, result)
                summary["escalations"] = t.escalate_accounts(
                    cstore, {k: FolderQueue(queues / k, k) for k in ("legal", "agency")}, result, data, out, run_id,
                    sender)

        # Report.
        summary["files"] = t.write_reports(result, out)
        summary["metrics"] = {f"{r['currency']}": f"DSO {r['dso_tenths'] / 10 if r['dso_tenths'] else '-'} d, "
                              f"overdue {r['overdue_bp'] / 100:.2f}%" for r in result.metrics.to_dict("records")}
        t.publish_artifacts(result, summary)
        store.finish_run(run_id, "completed", summary)
        return summary
    except BaseException as exc:
        store.finish_run(run_id, "failed", error=f"{type(exc).__name__}: {exc}")
        raise
