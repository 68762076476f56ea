"""Conservation: every cent of candidate amount and of input cost is accounted for, to the cent.

Checked from independent paths, so a lost or double-counted row shows:
- amount, per contract and in total: candidate (all lines) = billed (sum of the documents' printed
  lines, credit memos included) + held (the unbilled report);
- cost and count: every input record that can bill appears in exactly one line, and the input cost
  equals the lines' cost;
- documents: each document's net equals the sum of its printed lines and of its backup detail.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from billing.invoices import Batch


class ConservationError(AssertionError):
    """The close does not balance; the message names where."""


@dataclass
class ConservationReport:
    candidate_cents: int
    billed_cents: int
    unbilled_cents: int
    input_cost_cents: int
    line_cost_cents: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def raise_if_broken(self) -> None:
        if self.problems:
            shown = "; ".join(self.problems[:10])
            more = f" (and {len(self.problems) - 10} more)" if len(self.problems) > 10 else ""
            raise ConservationError(f"the close does not balance: {shown}{more}")


def check_conservation(items: pd.DataFrame, lines: pd.DataFrame, batch: Batch,
                       unbilled: pd.DataFrame) -> ConservationReport:
    problems: list[str] = []
    item_lines = lines[lines["source_kind"].isin(["labor", "expense"])]
    if len(item_lines) != len(items) or set(item_lines["source_id"]) != set(items["item_id"]):
        missing = set(items["item_id"]) - set(item_lines["source_id"])
        problems.append(f"{len(items)} expenditure items but {len(item_lines)} item lines"
                        + (f"; missing e.g. {sorted(missing)[:3]}" if missing else ""))
    input_cost = int(items["raw_cost_cents"].sum())
    line_cost = int(item_lines["cost_cents"].sum())
    if input_cost != line_cost:
        problems.append(f"input cost {input_cost} != cost on lines {line_cost}")
    if lines["line_id"].duplicated().any():
        problems.append(f"duplicate line ids: {lines.loc[lines['line_id'].duplicated(), 'line_id'].head(3).tolist()}")

    contract = lines["contract_id"].fillna("(none)")
    candidate = lines.groupby(contract)["amount_cents"].sum()
    dl = batch.document_lines
    billed = (dl.groupby(dl["contract_id"].fillna("(none)"))["amount_cents"].sum() if len(dl)
              else pd.Series(dtype="int64"))
    held = unbilled.groupby(unbilled["contract_id"].fillna("(none)"))["unbilled_cents"].sum()
    frame = pd.DataFrame({"candidate": candidate, "billed": billed, "held": held}).fillna(0).astype("int64")
    broken = frame[frame["candidate"] != frame["billed"] + frame["held"]]
    for cid, r in broken.head(20).iterrows():
        problems.append(f"contract {cid}: candidate {r.candidate} != billed {r.billed} + held {r.held}")

    docs = batch.documents.set_index("document_key")
    by_doc = dl.groupby("document_key")["amount_cents"].sum() if len(dl) else pd.Series(dtype="int64")
    detail = lines.set_index("line_id").loc[batch.line_documents.index, "billed_cents"].groupby(
        batch.line_documents.to_numpy()).sum() if len(batch.line_documents) else pd.Series(dtype="int64")
    for key, net in docs["net_cents"].items():
        if int(by_doc.get(key, 0)) != int(net) or int(detail.get(key, 0)) != int(net):
            problems.append(f"document {key}: net {net} != printed lines {by_doc.get(key, 0)} "
                            f"or backup detail {detail.get(key, 0)}")
    expected = set(lines.loc[lines["reason"].notna(), "line_id"])
    reported = set(unbilled["line_id"])
    if expected != reported or len(unbilled) != len(expected):
        lost = sorted(expected - reported)[:3]
        problems.append(f"unbilled report lists {len(unbilled)} lines, {len(expected)} lines are not billed in full"
                        + (f"; missing e.g. {lost}" if lost else ""))
    unbilled_in_report = int(unbilled["unbilled_cents"].sum())
    not_billed_lines = int((lines["amount_cents"] - lines["billed_cents"]).sum())
    if unbilled_in_report != not_billed_lines:
        problems.append(f"unbilled report {unbilled_in_report} != unbilled on lines {not_billed_lines}")
    return ConservationReport(int(frame["candidate"].sum()), int(frame["billed"].sum()), int(frame["held"].sum()),
                              input_cost, line_cost, problems)
