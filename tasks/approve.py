"""The approval step: the run pauses in the Prefect UI with a form listing what waits for a person.

The form has the approver's name, a comment, and one choice per document (approve, reject, leave
pending), with the document, customer, amount and why it waits in the field's label. The preparer
cannot approve their own run: a self-approval is recorded as refused and the run pauses again with
the refusal written above the form. An approval not given in time is escalated (recorded, alerted)
and its documents stay pending in the store for the next run; the run itself completes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd
from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.states import Running
from pydantic import Field, create_model

from billing.approvals import SegregationOfDutiesError, check_segregation
from billing.money import format_cents
from store import Store

# Documents shown one by one in the form; the rest follow the "all other documents" choice.
MAX_LISTED = 30
Choice = Literal["leave pending", "approve", "reject"]


@dataclass
class ApprovalOutcome:
    approver: str | None = None
    approved: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    left_pending: list[str] = field(default_factory=list)
    refused_attempts: list[str] = field(default_factory=list)
    escalated: bool = False


def _label(doc) -> str:
    return (f"{doc.document_key} · {doc.customer_id} · {format_cents(int(doc.gross_cents))} {doc.currency} · "
            f"{doc.approval_reasons}")


def approval_form(pending: pd.DataFrame) -> tuple[type[RunInput], dict[str, str]]:
    """A RunInput model with a choice per listed document; returns it and field name -> document key."""
    fields: dict[str, tuple] = {
        "approver": (str, Field(..., min_length=1, title="Approver",
                                description="Your name, as it should appear in the audit trail.")),
        "comment": (str, Field("", title="Comment", description="Why, for the record.")),
    }
    names: dict[str, str] = {}
    for i, doc in enumerate(pending.head(MAX_LISTED).itertuples(index=False), start=1):
        name = f"doc_{i:02d}"
        names[name] = doc.document_key
        fields[name] = (Choice, Field("leave pending", title=_label(doc)))
    if len(pending) > MAX_LISTED:
        fields["all_other_documents"] = (Choice, Field(
            "leave pending", title=f"The other {len(pending) - MAX_LISTED} documents (listed above the form)"))
    return create_model("CloseApproval", __base__=RunInput, **fields), names


def approval_description(pending: pd.DataFrame, preparer: str, refusal: str | None) -> str:
    head = [f"**Refused:** {refusal}", ""] if refusal else []
    total = pending.groupby("currency")["gross_cents"].sum()
    rows = [f"| {d.document_key} | {d.customer_id} | {d.document_type} | {format_cents(int(d.gross_cents))} "
            f"{d.currency} | {d.approval_reasons} |" for d in pending.itertuples(index=False)]
    return "\n".join([
        *head,
        f"### {len(pending)} document(s) wait for approval",
        f"Prepared by **{preparer}**: another person must approve (segregation of duties).",
        "Totals: " + ", ".join(f"{format_cents(int(v))} {c}" for c, v in total.items()),
        "",
        "| Document | Customer | Type | Gross | Why it waits |",
        "|---|---|---|---|---|",
        *rows,
    ])


def request_approvals(store: Store, pending: pd.DataFrame, preparer: str, run_id: str, timeout_seconds: int,
                      poll_seconds: int = 5) -> ApprovalOutcome:
    """Pause for decisions on ``pending`` (store documents with status pending_approval); record them."""
    log = get_run_logger()
    outcome = ApprovalOutcome()
    model, names = approval_form(pending)
    deadline = time.monotonic() + timeout_seconds
    refusal = None
    while True:
        remaining = max(1, int(deadline - time.monotonic()))
        try:
            answer = pause_flow_run(
                wait_for_input=model.with_initial_data(description=approval_description(pending, preparer, refusal)),
                timeout=remaining, poll_interval=poll_seconds)
        except FlowPauseTimeout:
            _resume_after_timeout()
            outcome.escalated = True
            for key in pending["document_key"]:
                store.record_approval(key, "escalated", None, preparer,
                                      f"no decision within {timeout_seconds} s", run_id)
            outcome.left_pending = list(pending["document_key"])
            return outcome
        try:
            approver = check_segregation(preparer, answer.approver)
        except SegregationOfDutiesError as exc:
            refusal = str(exc)
            log.warning("approval refused: %s", refusal)
            outcome.refused_attempts.append(answer.approver)
            for key in pending["document_key"]:
                store.record_approval(key, "refused", answer.approver, preparer, refusal, run_id)
            continue
        outcome.approver = approver
        values = answer.model_dump()
        listed = set(names.values())
        choices = {key: values[name] for name, key in names.items()}
        other = values.get("all_other_documents", "leave pending")
        for key in pending["document_key"]:
            choice = choices.get(key, other if key not in listed else "leave pending")
            if choice == "approve":
                store.record_approval(key, "approved", approver, preparer, answer.comment or None, run_id)
                outcome.approved.append(key)
            elif choice == "reject":
                store.record_approval(key, "rejected", approver, preparer, answer.comment or None, run_id)
                outcome.rejected.append(key)
            else:
                outcome.left_pending.append(key)
        log.info("approvals by %s: %d approved, %d rejected, %d left pending", approver, len(outcome.approved),
                 len(outcome.rejected), len(outcome.left_pending))
        return outcome


def _resume_after_timeout() -> None:
    """A pause that timed out leaves the run Paused, and Prefect would end it Failed ("never resumed").

    The escalation is the expected outcome of a missed approval, not a failure of the close: put the
    run back to Running so it can finish its report and complete.
    """
    ctx = FlowRunContext.get()
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(ctx.flow_run.id, Running(message="approval overdue: escalated"), force=True)
