"""Invoice batches: billed lines grouped into documents by each customer's requirements.

Documents:
- invoice: the period's billed lines of one customer, currency and grouping key (per contract, per
  project or consolidated, as the customer requires). If its net is negative it is issued as a
  credit memo instead.
- credit_memo: credits of items billed in an earlier period (reversals, transfers out), one per
  customer, currency and grouping key, never netted into an invoice.
- cost_transfer: each transfer of cost between projects, recorded as its own document for project
  accounting (no receivable).

Keys are deterministic: ``{INV|CM|CT}-{period}-{customer}-{group}-{currency}`` (group: the contract,
the project, or ``ALL-{business unit}`` when consolidated); the same inputs give
the same keys and the same content hash, which is what makes a re-run hand off nothing new.

Tax is computed per document and rate on the document's net total, rounded half away from zero
(EN 16931 computes VAT per category on the sum of line nets, BR-CO-17).
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from billing.money import div_round_half_up
from billing.periods import Period
from billing.schema import TEXT, encode_text, row_hashes, text_array, text_lookup, text_series

DOC_PREFIX = {"invoice": "INV", "credit_memo": "CM", "cost_transfer": "CT"}

DOCUMENT_COLUMNS = [
    "document_key", "document_type", "period", "business_unit", "customer_id", "customer_name", "currency",
    "grouping", "group_key", "contract_id", "project_id", "issue_date", "due_date", "po_number",
    "delivery_channel", "backup_required", "tax_rate_bp", "line_count", "net_cents", "tax_cents",
    "gross_cents", "content_hash",
]
DOCUMENT_LINE_COLUMNS = [
    "document_key", "line_no", "contract_id", "project_id", "scope_line_id", "source_kind", "role",
    "expenditure_type", "description", "quantity_milli", "unit_price_cents", "amount_cents", "item_count",
]


@dataclass(frozen=True)
class Batch:
    documents: pd.DataFrame        # DOCUMENT_COLUMNS
    document_lines: pd.DataFrame   # DOCUMENT_LINE_COLUMNS: summarised lines printed on the document
    line_documents: pd.Series      # billing line_id -> document_key (the backup detail of each document)
    cost_transfers: pd.DataFrame   # one row per transfer pair


def build_batch(lines: pd.DataFrame, customers: pd.DataFrame, contracts: pd.DataFrame,
                period: Period) -> Batch:
    """Group the period's billed lines into invoices and credit memos, and record cost transfers.

    Every billed line gets its document key (text built by Arrow over the whole column); document-level
    figures are then computed on one representative row per document and column (the rows whose
    values `first()` would pick), so the per-document rules below read as they would on every line.
    """
    cust = customers.set_index("customer_id")
    k = contracts.set_index("contract_id")
    keep = lines["billed_cents"].to_numpy() != 0
    pos = np.flatnonzero(keep)
    mask = pa.array(keep)
    text = {c: pc.filter(text_array(lines[c]), mask) for c in ("customer_id", "contract_id", "project_id",
                                                           "business_unit", "currency", "line_id")}
    amounts = lines["billed_cents"].to_numpy(dtype=np.int64)[keep]
    credit = lines["credits_prior_billing"].to_numpy(dtype=bool)[keep]
    grouping = text_lookup(text["customer_id"], cust["invoice_grouping"])
    group_key = _group_keys(grouping, text["contract_id"], text["project_id"], text["business_unit"])
    keys = _document_key_text(credit, text["customer_id"], group_key, text["currency"], period)
    code, names = encode_text(keys)
    # An invoice whose net is negative (e.g. a manual credit larger than the month) is a credit memo.
    net = _sums(code, amounts, len(names))
    flip = np.array([n.startswith(DOC_PREFIX["invoice"] + "-") for n in names], dtype=bool) & (net < 0)
    if flip.any():
        names = [DOC_PREFIX["credit_memo"] + n[len(DOC_PREFIX["invoice"]):] if f else n
                 for n, f in zip(names, flip, strict=True)]
        credit = credit | _with_last(flip, False)[code]
    # Documents in key order; equal keys (a flipped invoice meeting a credit memo) are one document.
    doc_keys = sorted(set(names))
    rank = pd.Index(doc_keys).get_indexer(names) if names else np.empty(0, dtype=np.int64)
    code = _with_last(rank, -1)[code]
    net = _sums(code, amounts, len(doc_keys))
    line_keys = pa.array(doc_keys, type=TEXT).take(pa.array(code, mask=code < 0))

    # One representative row per document and column, with the columns the rules below read.
    first = _first_rows(code, len(doc_keys), [np.zeros(len(code), dtype=bool)] + [
        np.asarray(t.is_null()) for t in (text["customer_id"], text["currency"], text["business_unit"],
                                          text["contract_id"], grouping, group_key)])
    billed = lines.iloc[pos[first]][["customer_id", "currency", "business_unit", "contract_id", "project_id"]]
    billed = billed.assign(billed_cents=amounts[first])
    grouping_rows = billed["customer_id"].map(cust["invoice_grouping"])
    project_or_contract = billed["project_id"].fillna(billed["contract_id"] + "-contract")
    billed["grouping"] = grouping_rows
    # A document never spans business units (each operating unit issues its own receivables, as in
    # Oracle AR): per-contract and per-project keys are already unit-specific; "consolidated" means
    # all of the customer's lines within one unit.
    billed["group_key"] = np.select(
        [grouping_rows == "per_contract", grouping_rows == "per_project"],
        [billed["contract_id"].astype("object"), project_or_contract.astype("object")],
        default=None)
    consolidated = billed["group_key"].isna()
    billed.loc[consolidated, "group_key"] = "ALL-" + billed.loc[consolidated, "business_unit"].astype("object")
    billed["document_type"] = np.where(credit[first], "credit_memo", "invoice")
    keys_cols = ["document_type", "customer_id", "currency", "grouping", "group_key"]
    billed["document_key"] = _document_keys(billed, period)

    doc_lines = _summarise_lines(lines, keep, code, doc_keys, text)
    g = billed.groupby("document_key", sort=True)
    docs = g[keys_cols].first()
    docs["business_unit"] = g["business_unit"].first()
    docs["net_cents"] = pd.Series(net, index=pd.Index(doc_keys)).reindex(docs.index).astype("int64")
    docs["line_count"] = doc_lines.groupby("document_key").size().reindex(docs.index).astype("int64")
    docs["contract_id"] = np.where(docs["grouping"] == "per_contract", docs["group_key"], None)
    docs["project_id"] = np.where(docs["grouping"] == "per_project", docs["group_key"], None)
    docs["customer_name"] = docs["customer_id"].map(cust["customer_name"])
    docs["tax_rate_bp"] = docs["customer_id"].map(cust["tax_rate_bp"]).astype("int64")
    docs["tax_cents"] = div_round_half_up(docs["net_cents"] * docs["tax_rate_bp"], 10_000)
    docs["gross_cents"] = docs["net_cents"] + docs["tax_cents"]
    docs["issue_date"] = period.end_ts
    docs["due_date"] = period.end_ts + pd.to_timedelta(
        docs["customer_id"].map(cust["payment_terms_days"]).astype("int64"), unit="D")
    po_contract = g["contract_id"].first().map(k["po_number"])
    docs["po_number"] = po_contract.fillna(docs["customer_id"].map(cust["po_number"]))
    docs["delivery_channel"] = docs["customer_id"].map(cust["delivery_channel"])
    docs["backup_required"] = docs["customer_id"].map(cust["backup_required"])
    docs["period"] = str(period)
    docs["content_hash"] = _content_hashes(code, doc_keys, text["line_id"], amounts).reindex(docs.index)
    docs = docs.reset_index()[DOCUMENT_COLUMNS]
    line_documents = text_series(line_keys).set_axis(pd.Index(text_series(text["line_id"]), name="line_id"))
    line_documents.name = "document_key"
    return Batch(docs, doc_lines, line_documents, _cost_transfers(lines, period))


# --- per-line helpers (Arrow text, integer codes) ---------------------------------------------------------
def _with_last(a: np.ndarray, value) -> np.ndarray:
    """`a` with one more element, the value a code of -1 picks (numpy's a[-1])."""
    return np.append(a, np.asarray([value], dtype=a.dtype))


def _sums(code: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Exact int64 sums of `values` by code (codes -1 left out)."""
    out = np.zeros(n, dtype=np.int64)
    ok = code >= 0
    np.add.at(out, code[ok], values[ok])
    return out


def _group_keys(grouping: pa.Array, contract: pa.Array, project: pa.Array, unit: pa.Array) -> pa.Array:
    """per_contract: the contract; per_project: the project (or "<contract>-contract"); else ALL-<unit>."""
    per_contract = pc.fill_null(pc.equal(grouping, pa.scalar("per_contract", TEXT)), False)
    per_project = pc.fill_null(pc.equal(grouping, pa.scalar("per_project", TEXT)), False)
    empty = pa.scalar("", TEXT)
    project_or_contract = pc.coalesce(project, pc.binary_join_element_wise(
        contract, pa.scalar("-contract", TEXT), empty))
    key = pc.if_else(per_contract, contract, pc.if_else(per_project, project_or_contract, pa.scalar(None, TEXT)))
    return pc.coalesce(key, pc.binary_join_element_wise(pa.scalar("ALL-", TEXT), unit, empty))


def _document_key_text(credit: np.ndarray, customer: pa.Array, group_key: pa.Array, currency: pa.Array,
                       period: Period) -> pa.Array:
    prefix = pa.array([DOC_PREFIX["invoice"], DOC_PREFIX["credit_memo"]], type=TEXT).take(
        pa.array(credit.astype(np.int8)))
    return pc.binary_join_element_wise(prefix, pa.scalar(str(period), TEXT), customer, group_key, currency,
                                       pa.scalar("-", TEXT))


def _first_rows(code: np.ndarray, n: int, nulls: list[np.ndarray]) -> np.ndarray:
    """Row positions, ascending, holding each document's first non-null value of every column."""
    rows = []
    for null in nulls:
        ok = np.flatnonzero((code >= 0) & ~null)
        first = np.full(n, len(code), dtype=np.int64)
        np.minimum.at(first, code[ok], ok)
        rows.append(first[first < len(code)])
    return np.unique(np.concatenate(rows)) if rows else np.empty(0, dtype=np.int64)


def _document_keys(billed: pd.DataFrame, period: Period) -> pd.Series:
    prefix = billed["document_type"].map(DOC_PREFIX)
    return (prefix + f"-{period}-" + billed["customer_id"] + "-" + billed["group_key"].astype("string")
            + "-" + billed["currency"]).astype("string")


SUMMARY_KEYS = ["document_key", "contract_id", "project_id", "scope_line_id", "source_kind", "role",
                "expenditure_type", "unit_price_cents", "description"]


def _summarise_lines(lines: pd.DataFrame, keep: np.ndarray, doc_code: np.ndarray, doc_keys: list[str],
                     text: dict[str, pa.Array]) -> pd.DataFrame:
    """Printed lines (see _summarise), grouped on integer codes; the grouping is verified exact."""
    mask = pa.array(keep)
    codes = [doc_code]
    for c in SUMMARY_KEYS[1:]:
        if c == "unit_price_cents":
            price = lines[c].to_numpy(dtype="float64", na_value=np.nan)[keep]
            codes.append(np.where(np.isnan(price), -1, price).astype(np.int64))
            continue
        code, values = encode_text(text[c] if c in text else pc.filter(text_array(lines[c]), mask))
        # Null and "" print the same (empty) and group together, as in _summarise.
        codes.append(np.where(_with_last(np.array([v == "" for v in values], dtype=bool), True)[code], -1, code))
    group, first = _groups(codes)
    if group is None:  # a hash collision: group the plain way
        billed = lines[keep].assign(document_key=pd.array(pa.array(doc_keys, type=TEXT).take(
            pa.array(doc_code, mask=doc_code < 0)).to_pylist(), dtype="string"))
        return _summarise(billed)
    n = len(first)
    rep = lines.iloc[np.flatnonzero(keep)[first]][[c for c in SUMMARY_KEYS if c != "document_key"]]
    rep = rep.assign(document_key=pd.array([doc_keys[c] if c >= 0 else None for c in doc_code[first]],
                                           dtype="string"),
                     quantity_milli=_sums(group, lines["quantity_milli"].to_numpy(dtype=np.int64)[keep], n),
                     billed_cents=_sums(group, lines["billed_cents"].to_numpy(dtype=np.int64)[keep], n),
                     line_id=pd.array(np.arange(n).astype(str), dtype="string"))
    counts = np.bincount(group, minlength=n)
    return _summarise(rep, counts)


def _groups(codes: list[np.ndarray]) -> tuple[np.ndarray | None, np.ndarray]:
    """Group id per row (rows equal on every code array) and each group's first row.

    Rows are hashed on their codes and grouped by hash; every row is then compared with its group's
    first row, so a hash collision is detected (None is returned) rather than merging two groups.
    """
    n = len(codes[0])
    group, uniq = pd.factorize(row_hashes(codes))
    first = np.full(len(uniq), n, dtype=np.int64)
    np.minimum.at(first, group, np.arange(n))
    for c in codes:
        if not np.array_equal(c, c[first][group]):
            return None, first
    return group.astype(np.int64), first


def _summarise(billed: pd.DataFrame, counts: np.ndarray | None = None) -> pd.DataFrame:
    """Printed lines: one per project, scope line, kind, role or expense type, unit price and text.

    Each item was rounded on its own; a printed line's amount is the sum of its items' amounts, so
    the document total equals the sum of the backup detail to the cent. `counts`: `billed` already
    holds one row per printed line with summed quantity and amount, and these are the item counts.
    """
    by = SUMMARY_KEYS
    b = billed.copy()
    for c in by:
        if b[c].dtype != "int64":
            b[c] = b[c].astype("object").where(b[c].notna(), "")
    b["unit_price_cents"] = b["unit_price_cents"].astype("object").where(billed["unit_price_cents"].notna(), -1)
    s = b.groupby(by, sort=True, dropna=False).agg(
        quantity_milli=("quantity_milli", "sum"), amount_cents=("billed_cents", "sum"),
        item_count=("line_id", "size"), _row=("line_id", "first")).reset_index()
    if counts is not None:
        rows = s["_row"].astype("int64").to_numpy()
        s["item_count"] = pd.Series(counts[rows], index=s.index).astype(s["item_count"].dtype)
    for c in ["contract_id", "project_id", "scope_line_id", "role", "expenditure_type"]:
        s[c] = s[c].replace("", None)
    s["unit_price_cents"] = pd.array(s["unit_price_cents"].where(s["unit_price_cents"] != -1, None),
                                     dtype="Int64")
    s["line_no"] = s.groupby("document_key").cumcount() + 1
    return s[DOCUMENT_LINE_COLUMNS]


def _content_hashes(doc_code: np.ndarray, doc_keys: list[str], line_ids: pa.Array,
                    amounts: np.ndarray) -> pd.Series:
    """SHA-256 over each document's (line id, billed cents), in line-id order.

    The text of a document is "<line id>=<cents>" per line joined by newlines; all of it is built as
    one Arrow buffer, each document a contiguous slice of it.
    """
    if not len(doc_keys):
        return pd.Series(dtype="string")
    by_id = np.arange(len(line_ids))
    if line_ids.null_count or (len(line_ids) > 1 and not pc.all(pc.less(
            line_ids.slice(0, len(line_ids) - 1), line_ids.slice(1))).as_py()):
        by_id = pc.sort_indices(line_ids).to_numpy()
    by_id = by_id[doc_code[by_id] >= 0]
    order = by_id[np.argsort(doc_code[by_id], kind="stable")]
    empty = pa.scalar("", TEXT)
    text = pc.binary_join_element_wise(
        pc.binary_join_element_wise(line_ids.take(pa.array(order)), pa.array(amounts[order]).cast(TEXT),
                                    pa.scalar("=", TEXT)), empty, pa.scalar("\n", TEXT))
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int64)[text.offset:text.offset + len(text) + 1]
    data = memoryview(text.buffers()[2])
    codes = doc_code[order]
    bounds = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1], True])
    hashes = {}
    for a, b in itertools.pairwise(bounds):
        hashes[doc_keys[codes[a]]] = hashlib.sha256(data[offsets[a]:offsets[b] - 1]).hexdigest()
    return pd.Series(hashes, dtype="string")


def _cost_transfers(lines: pd.DataFrame, period: Period) -> pd.DataFrame:
    """Pair each transfer_out with its transfer_in: what moved, from where to where, and its billing."""
    cols = ["document_key", "period", "item_id", "from_project_id", "to_project_id", "from_contract_id",
            "to_contract_id", "quantity_milli", "cost_cents", "credited_cents", "charged_cents"]
    t = lines[lines["adjustment_type"].isin(["transfer_out", "transfer_in"])]
    if t.empty:
        return pd.DataFrame(columns=cols)
    out_ = t[t["adjustment_type"] == "transfer_out"].set_index("adjusts_item_id")
    in_ = t[t["adjustment_type"] == "transfer_in"].set_index("adjusts_item_id")
    pairs = out_.join(in_, lsuffix="_from", rsuffix="_to", how="outer")
    res = pd.DataFrame({
        "item_id": pairs.index.astype("string"),
        "from_project_id": pairs["project_id_from"].to_numpy(), "to_project_id": pairs["project_id_to"].to_numpy(),
        "from_contract_id": pairs["contract_id_from"].to_numpy(), "to_contract_id": pairs["contract_id_to"].to_numpy(),
        "quantity_milli": pairs["quantity_milli_to"].fillna(-pairs["quantity_milli_from"]).astype("int64").to_numpy(),
        "cost_cents": pairs["cost_cents_to"].fillna(-pairs["cost_cents_from"]).astype("int64").to_numpy(),
        "credited_cents": pairs["billed_cents_from"].fillna(0).astype("int64").to_numpy(),
        "charged_cents": pairs["billed_cents_to"].fillna(0).astype("int64").to_numpy(),
    })
    res["period"] = str(period)
    res["document_key"] = f"CT-{period}-" + res["item_id"]
    return res[cols].reset_index(drop=True)
