"""Conservation: every cent of candidate amount and of input cost is accounted for, to the cent.

Checked from independent paths, so a lost or double-counted row shows:
- amount, per contract and in total: candidate (all lines) = billed (sum of the documents' printed
  lines, credit memos included) + held (the unbilled report);
- cost and count: every input record that can bill appears in exactly one line, and the input cost
  equals the lines' cost;
- documents: each document's net equals the sum of its printed lines and of its backup detail.

The set comparisons run on sorted Arrow arrays (linear after the sort, no Python objects per row);
only when a check fails are the Python sets built, to name what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from billing.invoices import Batch
from billing.schema import text_array, text_series

NO_CONTRACT = "(none)"


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
    is_item = lines["source_kind"].isin(["labor", "expense"]).to_numpy(dtype=bool, na_value=False)
    item_sources = text_array(lines["source_id"]).filter(pa.array(is_item))
    if int(is_item.sum()) != len(items) or not _same_values(item_sources, text_array(items["item_id"])):
        item_lines = lines[is_item]
        if len(item_lines) != len(items) or set(item_lines["source_id"]) != set(items["item_id"]):
            missing = set(items["item_id"]) - set(item_lines["source_id"])
            problems.append(f"{len(items)} expenditure items but {len(item_lines)} item lines"
                            + (f"; missing e.g. {sorted(missing)[:3]}" if missing else ""))
    input_cost = int(items["raw_cost_cents"].sum())
    line_cost = int(lines["cost_cents"].to_numpy()[is_item].sum())
    if input_cost != line_cost:
        problems.append(f"input cost {input_cost} != cost on lines {line_cost}")
    line_ids = text_array(lines["line_id"])
    unique_ids = _strictly_increasing(line_ids) or not lines["line_id"].duplicated().any()
    if not unique_ids:
        problems.append(f"duplicate line ids: {lines.loc[lines['line_id'].duplicated(), 'line_id'].head(3).tolist()}")

    candidate = _sum_by(lines["contract_id"], lines["amount_cents"])
    dl = batch.document_lines
    billed = _sum_by(dl["contract_id"], dl["amount_cents"]) if len(dl) else pd.Series(dtype="int64")
    held = _sum_by(unbilled["contract_id"], unbilled["unbilled_cents"])
    frame = pd.DataFrame({"candidate": candidate, "billed": billed, "held": held}).fillna(0).astype("int64")
    broken = frame[frame["candidate"] != frame["billed"] + frame["held"]]
    for cid, r in broken.head(20).iterrows():
        problems.append(f"contract {cid}: candidate {r.candidate} != billed {r.billed} + held {r.held}")

    docs = batch.documents.set_index("document_key")
    by_doc = dl.groupby("document_key")["amount_cents"].sum() if len(dl) else pd.Series(dtype="int64")
    detail = _backup_detail(lines, batch.line_documents, line_ids, unique_ids)
    for key, net in docs["net_cents"].items():
        if int(by_doc.get(key, 0)) != int(net) or int(detail.get(key, 0)) != int(net):
            problems.append(f"document {key}: net {net} != printed lines {by_doc.get(key, 0)} "
                            f"or backup detail {detail.get(key, 0)}")
    not_billed = lines["reason"].notna().to_numpy()
    reported_ids = text_array(unbilled["line_id"])
    if not (unique_ids and len(reported_ids) == int(not_billed.sum())
            and _same_values(line_ids.filter(pa.array(not_billed)), reported_ids)):
        expected = set(lines.loc[not_billed, "line_id"])
        reported = set(unbilled["line_id"])
        if expected != reported or len(unbilled) != len(expected):
            lost = sorted(expected - reported)[:3]
            problems.append(f"unbilled report lists {len(unbilled)} lines, {len(expected)} lines are not billed "
                            "in full" + (f"; missing e.g. {lost}" if lost else ""))
    unbilled_in_report = int(unbilled["unbilled_cents"].sum())
    not_billed_lines = int((lines["amount_cents"] - lines["billed_cents"]).sum())
    if unbilled_in_report != not_billed_lines:
        problems.append(f"unbilled report {unbilled_in_report} != unbilled on lines {not_billed_lines}")
    return ConservationReport(int(frame["candidate"].sum()), int(frame["billed"].sum()), int(frame["held"].sum()),
                              input_cost, line_cost, problems)


def _same_values(a: pa.Array, b: pa.Array) -> bool:
    """True if a and b hold the same values the same number of times (so also the same set)."""
    if len(a) != len(b):
        return False
    if not len(a):
        return True
    a, b = a.take(pc.sort_indices(a)), b.take(pc.sort_indices(b))
    if a.null_count != b.null_count:
        return False
    return bool(pc.all(pc.fill_null(pc.equal(a, b), True)).as_py())


def _strictly_increasing(a: pa.Array) -> bool:
    """Sorted without repeats and without nulls (the usual shape of billing lines: no duplicate ids)."""
    if a.null_count:
        return False
    if len(a) < 2:
        return True
    return bool(pc.all(pc.less(a.slice(0, len(a) - 1), a.slice(1))).as_py())


def _sum_by(keys: pd.Series, values: pd.Series) -> pd.Series:
    """values summed by key (null keys as "(none)"), indexed by key in sorted order like groupby."""
    table = pa.table({"k": pc.fill_null(text_array(keys), NO_CONTRACT), "v": pa.array(values.to_numpy(dtype=np.int64))})
    sums = table.group_by("k").aggregate([("v", "sum")])
    out = pd.Series(sums.column("v_sum").to_numpy(), dtype="int64",
                    index=pd.Index(text_series(sums.column("k").combine_chunks()), name=keys.name))
    return out.sort_index()


def _backup_detail(lines: pd.DataFrame, line_documents: pd.Series, line_ids: pa.Array,
                   unique_ids: bool) -> pd.Series:
    """Billed cents of each document's backup detail (its lines, found by line id)."""
    if not len(line_documents):
        return pd.Series(dtype="int64")
    billed = lines["billed_cents"].to_numpy(dtype=np.int64)
    pick = billed != 0
    doc_ids = text_array(line_documents.index.to_series())
    # The batch lists the billed lines in line order: then the look-up by id is positional.
    if unique_ids and len(doc_ids) == int(pick.sum()) and bool(
            pc.all(pc.equal(doc_ids, line_ids.filter(pa.array(pick)))).as_py()):
        return _sum_by(line_documents.reset_index(drop=True), pd.Series(billed[pick]))
    return lines.set_index("line_id").loc[line_documents.index, "billed_cents"].groupby(
        line_documents.to_numpy()).sum()
