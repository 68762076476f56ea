"""Files a close run leaves under its output folder, for the billing team and downstream tools.

CSV files carry money as exact decimal text in major units (column `net`, not `net_cents`) because
people open them in a spreadsheet; quantities likewise (`quantity`, in hours or units). The Parquet
file of all billing lines keeps integer cents for machines.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from billing.close import CloseResult
from billing.money import cents_to_decimal
from billing.unbilled import BUCKET_NAMES


def for_people(df: pd.DataFrame) -> pd.DataFrame:
    """*_cents -> decimal text without the suffix; quantity_milli -> quantity; dates as YYYY-MM-DD."""
    out = pd.DataFrame(index=df.index)
    for c in df.columns:
        s = df[c]
        if c.endswith("_cents") or c in BUCKET_NAMES:  # aging buckets hold cents too
            out[c.removesuffix("_cents")] = [None if pd.isna(v) else str(cents_to_decimal(int(v))) for v in s]
        elif c.endswith("_milli"):
            out[c.removesuffix("_milli")] = [None if pd.isna(v) else str(cents_to_decimal(int(v), 3)) for v in s]
        elif pd.api.types.is_datetime64_any_dtype(s):
            out[c] = s.dt.strftime("%Y-%m-%d")
        else:
            out[c] = s
    return out


def write_close_outputs(result: CloseResult, folder: Path, quarantine: pd.DataFrame | None = None) -> dict[str, Path]:
    """Write the period's files; returns name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "invoices": (result.batch.documents, "invoices.csv"),
        "invoice_lines": (result.batch.document_lines, "invoice_lines.csv"),
        "unbilled": (result.unbilled, "unbilled.csv"),
        "unbilled_aging": (result.aging, "unbilled_aging.csv"),
        "exceptions": (result.exceptions, "exceptions.csv"),
        "exceptions_by_reason": (result.exceptions_by_reason(), "exceptions_by_reason.csv"),
        "cost_transfers": (result.batch.cost_transfers, "cost_transfers.csv"),
        "totals_by_currency": (result.totals_by_currency(), "totals_by_currency.csv"),
    }
    if quarantine is not None:
        files["quarantine"] = (quarantine, "quarantine.csv")
    written = {}
    for name, (df, fname) in files.items():
        path = folder / fname
        for_people(df).to_csv(path, index=False)
        written[name] = path
    lines = result.lines.assign(document_key=result.lines["line_id"].map(result.batch.line_documents))
    path = folder / "billing_lines.parquet"
    lines.to_parquet(path, index=False)
    written["billing_lines"] = path
    return written
