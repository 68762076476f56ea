"""What a close run must record and hand off, given what earlier runs of the period already did.

A document that was handed off is never edited. Comparing this run's documents with the store's
latest revision of each base key:
- same content, already handed off        -> nothing to do (a re-run hands off nothing new);
- same content, not yet handed off        -> keep the recorded document and deliver it;
- new base key                            -> record it (revision 1) and deliver it;
- changed, earlier revision not handed off -> supersede the earlier one, record revision n+1;
- changed, earlier revision handed off     -> a credit memo reversing it in full, and revision n+1;
- gone from this run, earlier handed off   -> a credit memo reversing it; not handed off -> superseded.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

REVISION_SEP = "-R"


@dataclass
class HandoffPlan:
    new_documents: pd.DataFrame       # to record (revisions and reversals included)
    new_lines: pd.DataFrame           # their printed lines
    superseded: list[str]             # earlier revisions to mark superseded
    to_deliver: list[str]             # document keys to hand off this run (new and pending)
    unchanged: list[str]              # already handed off with the same content

    @property
    def nothing_new(self) -> bool:
        return not self.to_deliver and self.new_documents.empty


def plan_handoff(docs: pd.DataFrame, lines: pd.DataFrame, existing: pd.DataFrame,
                 existing_lines: dict[str, pd.DataFrame]) -> HandoffPlan:
    """docs/lines: this run's batch; existing: the store's documents of the period (all revisions)."""
    docs = docs.assign(base_key=docs["document_key"], revision=1, supersedes_key=None, reverses_key=None)
    latest = (existing[existing["status"] != "superseded"].sort_values("revision")
              .drop_duplicates("base_key", keep="last").set_index("base_key")) if len(existing) else None
    add_docs, add_lines, superseded, deliver, unchanged = [], [], [], [], []
    for d in docs.itertuples(index=False):
        prev = latest.loc[d.base_key] if latest is not None and d.base_key in latest.index else None
        my_lines = lines[lines["document_key"] == d.document_key]
        if prev is None:
            add_docs.append(d._asdict())
            add_lines.append(my_lines)
            deliver.append(d.document_key)
            continue
        if prev["content_hash"] == d.content_hash:
            if prev["status"] == "handed_off":
                unchanged.append(prev["document_key"])
            elif prev["status"] != "rejected":
                deliver.append(prev["document_key"])
            continue
        rev = int(prev["revision"]) + 1
        new_key = f"{d.base_key}{REVISION_SEP}{rev}"
        row = d._asdict() | {"document_key": new_key, "revision": rev, "supersedes_key": prev["document_key"]}
        add_docs.append(row)
        add_lines.append(my_lines.assign(document_key=new_key))
        deliver.append(new_key)
        if prev["status"] == "handed_off":
            cm, cm_lines = _reversal(prev, existing_lines[prev["document_key"]])
            add_docs.append(cm)
            add_lines.append(cm_lines)
            deliver.append(cm["document_key"])
        superseded.append(prev["document_key"])
    if latest is not None:
        gone = latest[~latest.index.isin(docs["base_key"]) & latest["reverses_key"].isna()]
        for base, prev in gone.iterrows():
            if prev["status"] == "handed_off":
                cm, cm_lines = _reversal(prev.rename({}) | pd.Series({"base_key": base}),
                                         existing_lines[prev["document_key"]])
                add_docs.append(cm)
                add_lines.append(cm_lines)
                deliver.append(cm["document_key"])
            superseded.append(prev["document_key"])
    new_docs = pd.DataFrame(add_docs)
    new_lines = pd.concat(add_lines, ignore_index=True) if add_lines else lines.iloc[0:0]
    return HandoffPlan(new_docs, new_lines, superseded, deliver, unchanged)


def _reversal(prev: pd.Series, prev_lines: pd.DataFrame) -> tuple[dict, pd.DataFrame]:
    """A credit memo that reverses a handed-off document in full, line by line."""
    key = f"CM-REV-{prev['document_key']}"
    doc = {c: prev[c] for c in prev.index if c not in ("status", "run_id", "created_at", "updated_at")}
    doc |= {"document_key": key, "base_key": key, "revision": 1, "document_type": "credit_memo",
            "net_cents": -int(prev["net_cents"]), "tax_cents": -int(prev["tax_cents"]),
            "gross_cents": -int(prev["gross_cents"]), "reverses_key": prev["document_key"],
            "supersedes_key": None, "content_hash": f"reversal-of-{prev['content_hash']}"[:64]}
    cl = prev_lines.copy()
    cl["document_key"] = key
    cl["quantity_milli"] = -cl["quantity_milli"]
    cl["amount_cents"] = -cl["amount_cents"]
    cl["description"] = "Reversal: " + cl["description"].astype("object")
    return doc, cl
