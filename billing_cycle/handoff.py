"""Record a run's documents and hand them off exactly once (store + idempotent target)."""

from __future__ import annotations

import hashlib

from billing.handoff_plan import HandoffPlan, plan_handoff
from billing.invoices import Batch
from connectors.targets import HandoffTarget
from store import Store


def idempotency_key(target: str, document_key: str, content_hash: str) -> str:
    return hashlib.sha256(f"{target}|{document_key}|{content_hash}".encode()).hexdigest()


def record_documents(store: Store, batch: Batch, period: str, run_id: str) -> HandoffPlan:
    """Compare the batch with the store's documents of the period and record what is new."""
    plan = plan_preview(store, batch, period)
    store.set_status(plan.superseded, "superseded")
    store.insert_documents(plan.new_documents, plan.new_lines, run_id, status="prepared")
    return plan


def hand_off(store: Store, target: HandoffTarget, document_keys: list[str], run_id: str) -> list[str]:
    """Deliver each document once: intent recorded, delivered with its idempotency key, completion recorded.

    A document already delivered under the same key is skipped; one whose delivery started but was
    not recorded (a crash) is delivered again with the same key, which the target ignores.
    """
    docs = store.documents()
    docs = docs[docs["document_key"].isin(document_keys)].set_index("document_key")
    delivered = []
    for key in document_keys:
        doc = docs.loc[key]
        if doc["status"] == "handed_off":
            continue
        ikey = idempotency_key(target.name, key, doc["content_hash"])
        state = store.handoff_state(target.name, ikey)
        if state and state["state"] == "delivered":
            store.set_status([key], "handed_off")
            continue
        store.begin_handoff(key, target.name, ikey, run_id)
        ref = target.deliver({**doc.to_dict(), "document_key": key},
                             store.document_lines(key), ikey)
        store.complete_handoff(key, target.name, ikey, ref)
        delivered.append(key)
    return delivered


def handoff_summary(plan: HandoffPlan, delivered: list[str], dry_run: bool) -> dict:
    new = plan.new_documents
    return {
        "dry_run": dry_run,
        "delivered": len(delivered),
        "unchanged": len(plan.unchanged),
        "revisions": int((new["revision"] > 1).sum()) if len(new) else 0,
        "reversals": int(new["reverses_key"].notna().sum()) if len(new) and "reverses_key" in new else 0,
        "superseded": len(plan.superseded),
    }


def plan_preview(store: Store, batch: Batch, period: str) -> HandoffPlan:
    """What a real run would record and hand off, without writing anything (dry run)."""
    existing = store.documents(period=period)
    existing_lines = {k: store.document_lines(k) for k in existing.loc[
        existing["status"] == "handed_off", "document_key"]} if len(existing) else {}
    return plan_handoff(batch.documents, batch.document_lines, existing, existing_lines)
