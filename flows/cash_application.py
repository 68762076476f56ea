"""Cash application and the rest of the receivables month: the flow `cash-application`.

It reads like the receivables specialist's list: read the ledger, the bank statements and the inbox;
note the remittance advices; apply the cash; answer the inquiries (invoice copies, disputes, queue);
age the book and keep the snapshot; reconcile AR to the cent (a break stops here and alerts); compute
the bad-debt provision and have it signed off (with an override if the approver gives one); batch the
write-offs and have them approved; hand the journals to the ERP once; report.

No `from __future__ import annotations` here: Prefect must see the pydantic parameter model as a
real class to build the UI form (deployment runs fail otherwise).
"""

import getpass
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Literal

import pandas as pd
from prefect import flow, get_run_logger, runtime
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from pydantic import BaseModel, Field

from billing.approvals import SegregationOfDutiesError, check_segregation
from billing.money import format_cents
from billing.periods import Period
from billing_cycle.alerts import AlertSettings, send_alert
from receivables import inquiries as inq
from receivables.aging import aging
from receivables.cash_application import MatchSettings, payer_map_from_master
from receivables.provision import (
    ProvisionError,
    ProvisionSettings,
    SegmentOverride,
    small_balance_write_offs,
    write_off_journal,
)
from receivables.reconciliation import (
    CashOwners,
    ReconciliationBreak,
    control_totals_from_postings,
    parse_control_totals,
)
from store import Store
from store.cash import CashStore
from tasks import cash as t


class CashApplicationParameters(BaseModel):
    """What a cash-application run needs to know."""

    period: str = Field(description="Month the statements belong to, YYYY-MM (e.g. 2026-10).",
                        pattern=r"^\d{4}-(0[1-9]|1[0-2])$")
    statements: list[str] = Field(default_factory=list, description="Statement files or folders (camt.052/053/054 "
                                  "XML, MT940). Empty with the sample ledger: the sample company's statements.")
    inbox: str | None = Field(None, description="Folder of .eml inquiries, or 'imap' (BILLING_IMAP_* settings). "
                              "Empty with the sample ledger: the sample company's inbox.")
    archive: str | None = Field(None, description="Folder of invoice copies named by transaction number.")
    ledger: Literal["sample", "store"] = Field("sample", description="sample: the sample company's receivables "
                                               "(loaded into the store on first use); store: the ledger already "
                                               "in the store.")
    control_totals: str | None = Field(None, description="CSV of the AR control account from the GL: "
                                       "[business_unit,] currency, amount. Empty: the ledger's opening figure "
                                       "less this month's postings.")
    output_dir: str = Field("out", description="Folder for report files, ERP files and the default store.")
    store_url: str | None = Field(None, description="SQLAlchemy URL of the store; default: SQLite in the output "
                                  "folder (the close's store).")
    preparer: str | None = Field(None, description="Who prepares the run (default: the operating-system user).")
    auto_threshold: int = Field(70, ge=0, le=100, description="Score from which a match is applied automatically.")
    review_threshold: int = Field(40, ge=0, le=100, description="Score from which a match is suggested for review.")
    fee_tolerance: Decimal = Field(Decimal("35.00"), ge=0, description="A shortfall up to this (major units) is "
                                   "taken for bank charges and proposed for write-off.")
    small_balance: Decimal = Field(Decimal("5.00"), ge=0, description="Open balances up to this are proposed for "
                                   "write-off once past due long enough.")
    small_balance_days: int = Field(90, ge=0, description="Days past due before a small balance is proposed.")
    lookback_months: int = Field(12, ge=1, le=60, description="Months of aging history behind the roll rates.")
    approvals: Literal["ui", "defer"] = Field("ui", description="ui: pause for the provision sign-off and the "
                                              "write-off batch; defer: leave them pending, hand off nothing.")
    approval_timeout_seconds: int = Field(3600, ge=1, description="Escalate if nobody decides within this time.")
    approval_poll_seconds: int = Field(10, ge=1, le=300, description="How often the paused run checks.")
    smtp_block: str | None = Field(None, description="Saved EmailServerCredentials block for replies (the same "
                                   "one letters and alerts use).")
    smtp_server: str = Field("127.0.0.1", description="SMTP server when no block is named.")
    smtp_port: int = Field(25, description="SMTP port when no block is named.")
    reply_from: str = Field("billing@sample-company.example", description="Sender of replies.")
    alerts: AlertSettings | None = Field(None, description="Alert channels; empty: from the environment.")


class WriteOffApproval(RunInput):
    approver: str = Field(description="Your name. The preparer of the run may not approve it.")
    decision: Literal["approve", "reject"] = "approve"
    comment: str = Field("", description="Why (kept with the decision).")


class ProvisionSignOff(RunInput):
    approver: str = Field(description="Your name. The preparer of the run may not sign off.")
    decision: Literal["approve", "reject"] = "approve"
    override_business_unit: str | None = Field(None, description="Override: business unit of the segment.")
    override_customer_class: str | None = Field(None, description="Override: customer class of the segment.")
    override_currency: str | None = Field(None, description="Override: currency of the segment.")
    override_factor_bp: int | None = Field(None, gt=0, description="Override: loss rates x factor/10000 "
                                           "(12000 = +20%).")
    override_reason: str | None = Field(None, description="Override: why (required with an override).")


def store_url_for(params: CashApplicationParameters) -> str:
    return params.store_url or f"sqlite:///{Path(params.output_dir).resolve() / 'billing.sqlite'}"


def _cents(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())


def alert_on_failure(flow, flow_run, state) -> None:
    """State hook: a failed run (a reconciliation break included) alerts the team with the reason."""
    raw = (flow_run.parameters or {}).get("params") or {}
    try:
        params = raw if isinstance(raw, CashApplicationParameters) else CashApplicationParameters.model_validate(raw)
        settings, period = params.alerts or AlertSettings.from_env(), params.period
    except Exception:  # the alert must go out even when the parameters were the problem
        settings, period = AlertSettings.from_env(), "?"
    send_alert(settings, f"Cash application {period} {state.name.lower()}: {flow_run.name}",
               f"The cash application for {period} ended {state.name}.\n\n{state.message or ''}")


# --- approvals ------------------------------------------------------------------------------------------------------
def _ask(model, description: str, preparer: str, params: CashApplicationParameters, what: str, check=None):
    """Pause until another person answers; a self-approval (or an answer `check` refuses) is asked again.

    Returns (answer, approver, checked) — `checked` is what `check(answer, approver)` returned — or
    (None, None, None) when nobody answered in time (escalated by an alert).
    """
    refusal = None
    while True:
        text = (f"**Refused:** {refusal}\n\n" if refusal else "") + description
        try:
            answer = pause_flow_run(wait_for_input=model.with_initial_data(description=text),
                                    timeout=params.approval_timeout_seconds, poll_interval=params.approval_poll_seconds)
        except FlowPauseTimeout:
            send_alert(params.alerts or AlertSettings.from_env(), f"Cash application {params.period}: {what} "
                       "overdue", f"Nobody decided the {what} within {params.approval_timeout_seconds} s.")
            _running_again(f"{what} overdue: escalated")
            return None, None, None
        try:
            approver = check_segregation(preparer, answer.approver)
            return answer, approver, check(answer, approver) if check else None
        except (SegregationOfDutiesError, ProvisionError) as exc:
            refusal = str(exc)
            get_run_logger().warning("%s refused: %s", what, refusal)


def _running_again(message: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.context import FlowRunContext
    from prefect.states import Running

    ctx = FlowRunContext.get()
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(ctx.flow_run.id, Running(message=message), force=True)


def _provision_description(result, preparer: str) -> str:
    money = ("balance_cents", "collective_cents", "specific_cents", "allowance_cents", "movement_cents")
    rows = [f"| {r['business_unit']} | {r['currency']} | " + " | ".join(format_cents(r[c]) for c in money) + " |"
            for r in result.totals.to_dict("records")]
    return "\n".join([
        f"### Bad-debt provision {result.period} (IFRS 9 simplified approach)",
        f"Prepared by **{preparer}**: another person signs off. An override multiplies one segment's loss rates "
        "(give business unit, customer class, currency, factor and reason).", "",
        "| unit | currency | open | collective | specific | allowance | movement |",
        "|---|---|---:|---:|---:|---:|---:|",
        *rows])


def _write_off_description(batch: pd.DataFrame, preparer: str) -> str:
    rows = [f"| {r.write_off_id} | {r.customer_id} | {r.trx_number} | {format_cents(r.amount_cents)} {r.currency} | "
            f"{r.reason} |" for r in batch.head(50).itertuples(index=False)]
    totals = batch.groupby("currency")["amount_cents"].sum()
    return "\n".join([
        f"### Write-off batch: {len(batch)} item(s), " + ", ".join(f"{format_cents(v)} {c}" for c, v in totals.items()),
        f"Prepared by **{preparer}**: another person approves.", "",
        "| write-off | customer | invoice | amount | reason |", "|---|---|---|---:|---|", *rows])


# --- the flow ---------------------------------------------------------------------------------------------------------
@flow(name="cash-application", log_prints=False, on_failure=[alert_on_failure], on_crashed=[alert_on_failure])
def cash_application(params: CashApplicationParameters) -> dict:
    """Apply a month's cash, answer inquiries, reconcile AR, provide for bad debt, write off, hand off, report."""
    from connectors.sample_ar import load_history
    from connectors.sample_bank import sample_month, write_month
    from receivables.dunning import load_policy
    from receivables.outbound import SmtpMailer
    from store.receivables import CollectionsStore

    log = get_run_logger()
    period = Period.parse(params.period)
    out = Path(params.output_dir) / str(period) / "cash"
    store = Store(store_url_for(params))
    cs, cstore = CashStore(store), CollectionsStore(store)
    run_id = str(runtime.flow_run.id or uuid.uuid4())
    preparer = params.preparer or getpass.getuser()
    match = MatchSettings(auto_threshold=params.auto_threshold, review_threshold=params.review_threshold,
                          fee_tolerance_cents=_cents(params.fee_tolerance))
    store.start_run(run_id, str(period), f"ledger:{params.ledger}", preparer=preparer, process="cash_application",
                    flow_run_id=str(runtime.flow_run.id) if runtime.flow_run.id else None)
    summary: dict = {"period": str(period), "run_id": run_id, "preparer": preparer}
    try:
        # Read: the ledger, the statements, the inbox.
        statements, inbox, archive = list(params.statements), params.inbox, params.archive
        if params.ledger == "sample":
            month = sample_month(period)
            if not cstore.ledger_loaded():
                load_history(cstore, month.ledger)
            cs.seed_payer_map(payer_map_from_master(month.customers, month.accounts))
            if not statements or inbox is None or archive is None:
                written = write_month(month, out.parent / "bank")
                statements = statements or [str(out.parent / "bank" / "statements")]
                inbox = inbox if inbox is not None else str(out.parent / "bank" / "inbox")
                archive = archive or str(out.parent / "bank" / "archive")
                summary["sample_files"] = {k: len(v) for k, v in written.items()}
        elif not cstore.ledger_loaded():
            raise ValueError("ledger 'store': the store holds no receivables ledger (run collections, or use "
                             "ledger 'sample')")
        ledger_items = cstore.read("open_items")
        accounts = cstore.read("collection_accounts")
        cs.seed_payer_map(payer_map_from_master(accounts, None))
        entries, files = t.read_statements(statements)
        messages = t.read_inbox(t.inbox_for(inbox))

        # Inquiries first: a remittance advice is a hint for the cash it announces.
        items_now = cs.effective_open_items(ledger_items)
        rules = inq.load_rules()
        ctx = inq.InquiryContext.build(accounts, items_now)
        plans = t.plan_inquiries(cs, messages, rules, ctx, run_id)
        summary["inquiries_new"] = len(plans)

        # Apply the cash.
        result = t.match_receipts(cs, entries, items_now, match)
        summary["cash"] = t.record_cash(cs, result, run_id, files)

        # Answer the inquiries: copies from the archive, disputes to collections, the rest queued.
        mailer = (SmtpMailer.from_block(params.smtp_block) if params.smtp_block
                  else SmtpMailer.from_settings(params.smtp_server, params.smtp_port))
        policy = load_policy()
        responders = t.Responders(
            mailer=mailer, sender=params.reply_from, archive=Path(archive) if archive else None,
            open_dispute=lambda psid, cents, reason, owner, on: cstore.open_dispute(psid, cents, reason, owner, on,
                                                                                    policy.disputes),
            open_items=cs.effective_open_items(ledger_items), on=period.end)
        acted = t.act_on_inquiries(cs, messages, responders, return_state=True)
        if acted.is_completed():
            summary["inquiries"] = acted.result()
        else:
            # The mail server stayed down through the retries: the replies wait (recorded, never sent twice)
            # for the next run, and the month-end steps below go on.
            summary["inquiries"] = {"error": acted.message}
            send_alert(params.alerts or AlertSettings.from_env(), f"Cash application {period}: replies not sent",
                       f"Inquiry replies could not be sent and wait for the next run: {acted.message}")

        # Month end: the aging snapshot and the reconciliation (a break blocks the sign-offs below).
        items_after = cs.effective_open_items(ledger_items)
        customers = accounts[["customer_id", "customer_name", "customer_class"]]
        history_apps = cstore.read("receipt_applications")
        snapshot = t.snapshot_aging(cs, items_after, customers, period, ledger_items, history_apps,
                                    params.lookback_months, run_id)
        control = (_read_control(params.control_totals) if params.control_totals
                   else control_totals_from_postings(ledger_items, cs.applications(),
                                                     cs.write_offs(("approved", "handed_off"))))
        owners = CashOwners(collectors=dict(zip(accounts["customer_id"], accounts["collector"], strict=True)))
        report = t.reconcile_ar(items_after, aging(items_after, period.end), control, cs, period.end, owners)
        summary["reconciliation"] = {"status": "passed" if report.passed else "break",
                                     "breaks": [b.rule for b in report.breaks]}
        report.raise_for_breaks()

        # Bad-debt provision: computed, signed off by another person (an override on the way), handed off once.
        escalations = _escalations(cstore)
        pst = ProvisionSettings(lookback_months=params.lookback_months)
        provision = t.compute_provision_task(cs, snapshot, period, pst, escalations, [])
        summary["provision"] = provision.summary()
        if params.approvals == "ui":
            answer, approver, override = _ask(ProvisionSignOff, _provision_description(provision, preparer),
                                              preparer, params, "provision sign-off",
                                              check=lambda a, who: _override(a, preparer, who, provision))
            if override is not None:
                provision = t.compute_provision_task(cs, snapshot, period, pst, escalations, [override])
                summary["provision"] = provision.summary()
            if answer is not None and answer.decision == "approve":
                t.record_provision(cs, provision, run_id)
                summary["provision"]["signed_off_by"] = approver
                if len(provision.journal):
                    summary["provision"]["journal"] = t.deliver_export(
                        cs, f"provision-journal-{period}", "provision_journal", provision.journal,
                        Path(params.output_dir) / "erp", run_id)
            else:
                summary["provision"]["signed_off_by"] = None
        # Write-offs: small balances and fee residues in one batch, approved by another person, handed off once.
        proposals = small_balance_write_offs(items_after, period.end, _cents(params.small_balance),
                                             params.small_balance_days)
        cs.propose_write_offs(proposals, run_id)
        summary["write_offs"] = _write_offs(cs, period, preparer, params, run_id)

        # Report.
        receipts = cs.receipts()
        frames = {"receipts": receipts, "applications": cs.applications(), "suggestions": cs.suggestions(),
                  "unapplied_cash": report.unapplied_cash, "tie_out": report.tie_out,
                  "aging": aging(items_after, period.end), "provision_matrix": provision.matrix,
                  "allowance_by_customer": provision.by_customer, "provision_journal": provision.journal,
                  "write_offs": cs.write_offs(), "inquiries": cs.inquiries()}
        summary["files"] = t.write_cash_outputs(out, frames)
        t.publish_cash_artifacts(summary, receipts, provision.matrix)
        store.finish_run(run_id, "completed", summary)
        log.info("cash application %s: %s", period, {k: v for k, v in summary.items() if k != "files"})
        return summary
    except BaseException as exc:
        store.finish_run(run_id, "failed", error=f"{type(exc).__name__}: {exc}")
        raise


def _override(answer, preparer: str, approver: str, provision) -> SegmentOverride | None:
    """The approver's override, checked: a whole segment of this provision, a factor and a reason."""
    if not answer.override_factor_bp:
        return None
    seg = {"business_unit": answer.override_business_unit, "customer_class": answer.override_customer_class,
           "currency": answer.override_currency}
    missing = [f"override_{k}" for k, v in seg.items() if not v]
    if missing:
        raise ProvisionError(f"override: field {', '.join(missing)}: name the whole segment")
    known = provision.matrix[["business_unit", "customer_class", "currency"]].drop_duplicates()
    if not ((known["business_unit"] == seg["business_unit"]) & (known["customer_class"] == seg["customer_class"])
            & (known["currency"] == seg["currency"])).any():
        raise ProvisionError(f"override: segment {seg} is not in this month's provision matrix")
    return SegmentOverride(seg, answer.override_factor_bp, answer.override_reason or "", preparer, approver).checked()


def _escalations(cstore) -> pd.DataFrame:
    esc = cstore.escalations()
    if esc.empty:
        return pd.DataFrame({"customer_id": pd.Series(dtype="object"), "escalation": pd.Series(dtype="object")})
    return pd.DataFrame({"customer_id": esc["customer_id"], "escalation": esc["target"]}).drop_duplicates()


def _read_control(path: str) -> pd.DataFrame:
    """The GL extract file: [business_unit,] currency, amount (decimal text in major units)."""
    return parse_control_totals(pd.read_csv(path, dtype=str), path)


def _write_offs(cs: CashStore, period: Period, preparer: str, params: CashApplicationParameters, run_id: str) -> dict:
    pending = cs.write_off_batches()
    pending = pending[pending["status"] == "pending_approval"]
    if len(pending):
        batch_id = pending["batch_id"].iloc[0]
        wo = cs.write_offs()
        batch = wo[wo["batch_id"] == batch_id]
    else:
        batch_id = f"WOB-{period}-{run_id[:8]}"
        batch = cs.open_write_off_batch(batch_id, str(period), preparer)
    if batch.empty:
        return {"batch": None}
    outcome = {"batch": batch_id, "items": len(batch), "cents": int(batch["amount_cents"].sum()), "status":
               "pending_approval"}
    if params.approvals != "ui":
        return outcome
    answer, approver, _ = _ask(WriteOffApproval, _write_off_description(batch, preparer), preparer, params,
                               "write-off batch")
    if answer is None:
        return outcome
    decision = "approved" if answer.decision == "approve" else "rejected"
    cs.decide_write_off_batch(batch_id, decision, approver, answer.comment or None)
    outcome.update(status=decision, approver=approver)
    if decision == "approved":
        journal = write_off_journal(batch_id, batch, period.end)
        outcome["journal"] = t.deliver_export(cs, f"write-off-{batch_id}", "write_off_batch",
                                              batch.drop(columns=["proposed_at", "updated_at"]),
                                              Path(params.output_dir) / "erp", run_id)
        outcome["journal_lines"] = t.deliver_export(cs, f"write-off-journal-{batch_id}", "write_off_journal", journal,
                                                    Path(params.output_dir) / "erp", run_id)
        cs.mark_write_off_batch_handed_off(batch_id)
        outcome["status"] = "handed_off"
    return outcome


__all__ = ["CashApplicationParameters", "ReconciliationBreak", "cash_application"]
