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
from dataclasses import dataclass

import numpy as np
import pandas as pd

from billing.money import div_round_half_up
from billing.periods import Period

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
    """Group the period's billed lines into invoices and credit memos, and record cost transfers."""
    billed = lines[lines["billed_cents"] != 0].copy()
    cust = customers.set_index("customer_id")
    k = contracts.set_index("contract_id")
    grouping = billed["customer_id"].map(cust["invoice_grouping"])
    project_or_contract = billed["project_id"].fillna(billed["contract_id"] + "-contract")
    billed["grouping"] = grouping
    # A document never spans business units (each operating unit issues its own receivables, as in
    # Oracle AR): per-contract and per-project keys are already unit-specific; "consolidated" means
    # all of the customer's lines within one unit.
    billed["group_key"] = np.select(
        [grouping == "per_contract", grouping == "per_project"],
        [billed["contract_id"].astype("object"), project_or_contract.astype("object")],
        default=None)
    consolidated = billed["group_key"].isna()
    billed.loc[consolidated, "group_key"] = "ALL-" + billed.loc[consolidated, "business_unit"].astype("object")
    credit = billed["credits_prior_billing"].to_numpy(dtype=bool)
    billed["document_type"] = np.where(credit, "credit_memo", "invoice")
    keys = ["document_type", "customer_id", "currency", "grouping", "group_key"]
    billed["document_key"] = _document_keys(billed, period)
    # An invoice whose net is negative (e.g. a manual credit larger than the month) is a credit memo.
    net = billed.groupby("document_key")["billed_cents"].transform("sum")
    neg = (billed["document_type"] == "invoice") & (net < 0)
    if neg.any():
        billed.loc[neg, "document_type"] = "credit_memo"
        billed["document_key"] = _document_keys(billed, period)

    doc_lines = _summarise(billed)
    g = billed.groupby("document_key", sort=True)
    docs = g[keys].first()
    docs["business_unit"] = g["business_unit"].first()
    docs["net_cents"] = g["billed_cents"].sum().astype("int64")
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
    docs["content_hash"] = _content_hashes(billed)
    docs = docs.reset_index()[DOCUMENT_COLUMNS]
    return Batch(docs, doc_lines, billed.set_index("line_id")["document_key"], _cost_transfers(lines, period))


def _document_keys(billed: pd.DataFrame, period: Period) -> pd.Series:
    prefix = billed["document_type"].map(DOC_PREFIX)
    return (prefix + f"-{period}-" + billed["customer_id"] + "-" + billed["group_key"].astype("string")
            + "-" + billed["currency"]).astype("string")


def _summarise(billed: pd.DataFrame) -> pd.DataFrame:
    """Printed lines: one per project, scope line, kind, role or expense type, unit price and text.

    Each item was rounded on its own; a printed line's amount is the sum of its items' amounts, so
    the document total equals the sum of the backup detail to the cent.
    """
    by = ["document_key", "contract_id", "project_id", "scope_line_id", "source_kind", "role",
          "expenditure_type", "unit_price_cents", "description"]
    b = billed.copy()
    for c in by:
        if b[c].dtype != "int64":
            b[c] = b[c].astype("object").where(b[c].notna(), "")
    b["unit_price_cents"] = b["unit_price_cents"].astype("object").where(billed["unit_price_cents"].notna(), -1)
    s = b.groupby(by, sort=True, dropna=False).agg(
        quantity_milli=("quantity_milli", "sum"), amount_cents=("billed_cents", "sum"),
        item_count=("line_id", "size")).reset_index()
    for c in ["contract_id", "project_id", "scope_line_id", "role", "expenditure_type"]:
        s[c] = s[c].replace("", None)
    s["unit_price_cents"] = pd.array(s["unit_price_cents"].where(s["unit_price_cents"] != -1, None),
                                     dtype="Int64")
    s["line_no"] = s.groupby("document_key").cumcount() + 1
    return s[DOCUMENT_LINE_COLUMNS]


def _content_hashes(billed: pd.DataFrame) -> pd.Series:
    """SHA-256 over each document's (line id, billed cents), in line-id order."""
    b = billed.sort_values(["document_key", "line_id"])
    text = b["line_id"].astype("string") + "=" + b["billed_cents"].astype("string")
    return text.groupby(b["document_key"]).agg(
        lambda s: hashlib.sha256("\n".join(s).encode()).hexdigest())


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
