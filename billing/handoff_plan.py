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

from collections.abc import Mapping
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
                 existing_lines: pd.DataFrame | Mapping[str, pd.DataFrame]) -> HandoffPlan:
    """docs/lines: this run's batch; existing: the store's documents of the period (all revisions);
    existing_lines: the printed lines of the existing documents that were handed off (one frame with
    ``document_key``, or a frame per document key), which a reversal copies.

    One pass over the documents decides what each needs; the lines are then selected once for all of
    them (no filter of every line per document).
    """
    docs = docs.assign(base_key=docs["document_key"], revision=1, supersedes_key=None, reverses_key=None)
    latest: dict[str, dict] = {}
    if len(existing):
        last = (existing[existing["status"] != "superseded"].sort_values("revision", kind="stable")
                .drop_duplicates("base_key", keep="last"))
        latest = {r["base_key"]: r for r in last.to_dict("records")}
    prev_lines = _lines_by_document(existing_lines)
    add_docs, superseded, deliver, unchanged = [], [], [], []
    keep: list[str] = []               # this run's documents recorded under their own key
    renamed: dict[str, str] = {}       # this run's document key -> its revision's key
    reversal_lines: list[pd.DataFrame] = []
    for d in docs.to_dict("records"):
        prev = latest.get(d["base_key"])
        if prev is None:
            add_docs.append(d)
            keep.append(d["document_key"])
            deliver.append(d["document_key"])
            continue
        if prev["content_hash"] == d["content_hash"]:
            if prev["status"] == "handed_off":
                unchanged.append(prev["document_key"])
            elif prev["status"] != "rejected":
                deliver.append(prev["document_key"])
            continue
        rev = int(prev["revision"]) + 1
        new_key = f"{d['base_key']}{REVISION_SEP}{rev}"
        add_docs.append(d | {"document_key": new_key, "revision": rev, "supersedes_key": prev["document_key"]})
        renamed[d["document_key"]] = new_key
        deliver.append(new_key)
        if prev["status"] == "handed_off":
            cm, cm_lines = _reversal(prev, prev_lines(prev["document_key"]))
            add_docs.append(cm)
            reversal_lines.append(cm_lines)
            deliver.append(cm["document_key"])
        superseded.append(prev["document_key"])
    this_run = set(docs["base_key"])
    for base, prev in latest.items():
        if base in this_run or not _missing(prev.get("reverses_key")):
            continue
        if prev["status"] == "handed_off":
            cm, cm_lines = _reversal(prev | {"base_key": base}, prev_lines(prev["document_key"]))
            add_docs.append(cm)
            reversal_lines.append(cm_lines)
            deliver.append(cm["document_key"])
        superseded.append(prev["document_key"])
    new_docs = pd.DataFrame(add_docs)
    picked = lines[lines["document_key"].isin(keep + list(renamed))]
    if renamed:
        keys = picked["document_key"]
        picked = picked.assign(document_key=keys.map(renamed).fillna(keys).astype(keys.dtype))
    new_lines = pd.concat([picked, *reversal_lines], ignore_index=True) if reversal_lines else \
        picked.reset_index(drop=True)
    return HandoffPlan(new_docs, new_lines, superseded, deliver, unchanged)


def _missing(v) -> bool:
    return v is None or (not isinstance(v, str) and bool(pd.isna(v)))


def _lines_by_document(existing_lines: pd.DataFrame | Mapping[str, pd.DataFrame]):
    """key -> that document's lines, from one frame or a mapping of frames."""
    if isinstance(existing_lines, Mapping):
        return lambda key: existing_lines[key]
    positions = existing_lines.groupby("document_key", sort=False).indices if len(existing_lines) else {}

    def lines_of(key: str) -> pd.DataFrame:
        if key not in positions:
            raise KeyError(f"the lines of handed-off document {key} are not in the store")
        return existing_lines.iloc[positions[key]]
    return lines_of


def _reversal(prev: Mapping, prev_lines: pd.DataFrame) -> tuple[dict, pd.DataFrame]:
    """A credit memo that reverses a handed-off document in full, line by line."""
    key = f"CM-REV-{prev['document_key']}"
    doc = {c: v for c, v in prev.items() if c not in ("status", "run_id", "created_at", "updated_at")}
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
