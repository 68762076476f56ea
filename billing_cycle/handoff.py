"""Record a run's documents and hand them off exactly once (store + idempotent target)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from billing.handoff_plan import HandoffPlan, plan_handoff
from billing.invoices import Batch
from billing_cycle.failpoints import failpoint
from connectors.targets import DeliveryRejected, HandoffTarget
from store import Store


def idempotency_key(target: str, document_key: str, content_hash: str) -> str:
    return hashlib.sha256(f"{target}|{document_key}|{content_hash}".encode()).hexdigest()


def record_documents(store: Store, batch: Batch, period: str, run_id: str,
                     business_units: list[str] | None = None) -> HandoffPlan:
    """Compare the batch with the store's documents of the period and record what is new.

    ``business_units``: the units this batch covers (a partition of the close). Documents of other
    units are out of its scope, never "gone" from it; None means the batch covers every unit.
    """
    plan = plan_preview(store, batch, period, business_units)
    store.set_status(plan.superseded, "superseded")
    store.insert_documents(plan.new_documents, plan.new_lines, run_id, status="prepared")
    return plan


DELIVERABLE = ("prepared", "approved")


@dataclass
class HandoffOutcome:
    delivered: list[str] = field(default_factory=list)   # delivered to every target in this call
    refused: dict[str, str] = field(default_factory=dict)  # document key -> the target's refusal


def hand_off(store: Store, targets: HandoffTarget | Sequence[HandoffTarget], document_keys: list[str],
             run_id: str) -> HandoffOutcome:
    """Deliver each document once to each target: intent recorded, delivered with its idempotency key,
    completion recorded; the document is handed off when every target has it.

    Only documents that are ``prepared`` (no approval needed) or ``approved`` go; pending and rejected
    ones wait. A delivery already recorded is skipped; one whose delivery started but was not
    recorded (a crash) is delivered again with the same key, which the target ignores. A target
    refusing a document (``DeliveryRejected``: bad data for that target) leaves the document pending
    with the error recorded and goes on with the others; any other error stops the hand-off (the task
    retries it, and the retry skips what is already delivered).
    """
    targets = [targets] if not isinstance(targets, Sequence) else list(targets)
    docs = store.documents()
    docs = docs[docs["document_key"].isin(document_keys)].set_index("document_key")
    outcome = HandoffOutcome()
    for key in document_keys:
        if key not in docs.index or docs.loc[key, "status"] not in DELIVERABLE:
            continue
        doc = docs.loc[key]
        lines = store.document_lines(key)
        try:
            for i, target in enumerate(targets):
                last = i == len(targets) - 1
                ikey = idempotency_key(target.name, key, doc["content_hash"])
                state = store.handoff_state(target.name, ikey)
                if state and state["state"] == "delivered":
                    if last:
                        store.set_status([key], "handed_off")
                    continue
                store.begin_handoff(key, target.name, ikey, run_id)
                ref = target.deliver({**doc.to_dict(), "document_key": key}, lines, ikey)
                failpoint("after_deliver")
                store.complete_handoff(key, target.name, ikey, ref, document_status="handed_off" if last else None)
        except DeliveryRejected as exc:
            store.set_handoff_error(key, str(exc))
            outcome.refused[key] = str(exc)
            continue
        if doc.get("handoff_error"):
            store.set_handoff_error(key, None)
        outcome.delivered.append(key)
    return outcome


def handoff_summary(plan: HandoffPlan, delivered: list[str], dry_run: bool) -> dict:
    """Counts of one run's plan and deliveries, for the summary."""
    new = plan.new_documents
    return {
        "dry_run": dry_run,
        "delivered": len(delivered),
        "unchanged": len(plan.unchanged),
        "revisions": int((new["revision"] > 1).sum()) if len(new) else 0,
        "reversals": int(new["reverses_key"].notna().sum()) if len(new) and "reverses_key" in new else 0,
        "superseded": len(plan.superseded),
    }


def plan_preview(store: Store, batch: Batch, period: str, business_units: list[str] | None = None) -> HandoffPlan:
    """What a real run would record and hand off, without writing anything (dry run)."""
    existing = store.documents(period=period, business_units=business_units)
    existing_lines = {k: store.document_lines(k) for k in existing.loc[
        existing["status"] == "handed_off", "document_key"]} if len(existing) else {}
    return plan_handoff(batch.documents, batch.document_lines, existing, existing_lines)
