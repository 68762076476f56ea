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


CHUNK = 250  # documents per round of store writes; a crash re-sends at most this many (same keys)


def hand_off(store: Store, targets: HandoffTarget | Sequence[HandoffTarget], document_keys: list[str],
             run_id: str, chunk: int = CHUNK) -> HandoffOutcome:
    """Deliver each document once to each target: intent recorded, delivered with its idempotency key,
    completion recorded; the document is handed off when every target has it.

    Only documents that are ``prepared`` (no approval needed) or ``approved`` go; pending and rejected
    ones wait. A delivery already recorded is skipped; one whose delivery started but was not
    recorded (a crash) is delivered again with the same key, which the target ignores. A target
    refusing a document (``DeliveryRejected``: bad data for that target) leaves the document pending
    with the error recorded and goes on with the others; any other error stops the hand-off (the task
    retries it, and the retry skips what is already delivered).

    The store is written a chunk of documents at a time, target by target: the intents of the
    chunk's deliveries to a target in one transaction before the first of them, their completions in
    one transaction after the last (and, on an error, of those that were made before it). Within a
    chunk a target receives only the documents every earlier target accepted.
    """
    targets = [targets] if not isinstance(targets, Sequence) else list(targets)
    docs = store.documents(keys=document_keys)
    docs = docs[docs["status"].isin(DELIVERABLE)].drop_duplicates("document_key")
    by_key = {d["document_key"]: d for d in docs.to_dict("records")}
    todo = [k for k in dict.fromkeys(document_keys) if k in by_key]
    outcome = HandoffOutcome()
    for start in range(0, len(todo), chunk):
        keys = todo[start:start + chunk]
        lines = store.document_line_records(keys)
        alive = keys
        for i, target in enumerate(targets):
            last = i == len(targets) - 1
            ikeys = {k: idempotency_key(target.name, k, by_key[k]["content_hash"]) for k in alive}
            states = store.handoff_states(target.name, ikeys.values())
            send = [k for k in alive if states.get(ikeys[k], {}).get("state") != "delivered"]
            store.begin_handoffs(target.name, [(k, ikeys[k]) for k in send], run_id)
            done: list[tuple[str, str, str]] = []
            try:
                for k in send:
                    try:
                        ref = target.deliver(by_key[k], lines[k], ikeys[k])
                    except DeliveryRejected as exc:
                        outcome.refused[k] = str(exc)
                        continue
                    failpoint("after_deliver")
                    done.append((k, ikeys[k], ref))
            finally:  # what was delivered is recorded, also when a delivery fails and stops the run
                sent = set(send)
                finished = {k for k, _, _ in done} | {k for k in alive if k not in sent}
                store.complete_handoffs(target.name, done,
                                        handed_off=[k for k in alive if k in finished] if last else ())
            alive = [k for k in alive if k not in outcome.refused]
        store.set_handoff_errors({k: outcome.refused[k] for k in keys if k in outcome.refused}
                                 | {k: None for k in alive if by_key[k].get("handoff_error")})
        outcome.delivered.extend(alive)
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
    handed_off = existing.loc[existing["status"] == "handed_off", "document_key"] if len(existing) else []
    existing_lines = store.document_lines(keys=handed_off)
    return plan_handoff(batch.documents, batch.document_lines, existing, existing_lines)
