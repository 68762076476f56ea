"""Files a close run leaves under its output folder, for the billing team and downstream tools.

CSV files carry money as exact decimal text in major units (column `net`, not `net_cents`) because
people open them in a spreadsheet; quantities likewise (`quantity`, in hours or units). The Parquet
file of all billing lines keeps integer cents for machines. The CSV files are written by Arrow's
writer (RFC 4180: a header row, text in double quotes, an empty field for a missing value).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from billing.close import CloseResult
from billing.money import decimal_texts
from billing.schema import text_array, text_lookup
from billing.unbilled import BUCKET_NAMES


def for_people(df: pd.DataFrame) -> pd.DataFrame:
    """*_cents -> decimal text without the suffix; quantity_milli -> quantity; dates as YYYY-MM-DD."""
    out = pd.DataFrame(index=df.index)
    for c in df.columns:
        s = df[c]
        if c.endswith("_cents") or c in BUCKET_NAMES:  # aging buckets hold cents too
            out[c.removesuffix("_cents")] = decimal_texts(s, 2)
        elif c.endswith("_milli"):
            out[c.removesuffix("_milli")] = decimal_texts(s, 3)
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
        write_csv(for_people(df), path)
        written[name] = path
    path = folder / "billing_lines.parquet"
    pq.write_table(billing_lines_table(result), path)
    written["billing_lines"] = path
    return written


def write_csv(df: pd.DataFrame, path: Path) -> None:
    """One frame to CSV with Arrow's writer (an order of magnitude faster than pandas' on millions of
    rows); text columns as text even when every value is missing."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    for i, field in enumerate(table.schema):
        if pa.types.is_null(field.type):  # an all-missing object column
            table = table.set_column(i, field.name, pa.nulls(len(table), pa.string()))
    pacsv.write_csv(table, path, pacsv.WriteOptions(quoting_style="needed"))


def billing_lines_table(result: CloseResult) -> pa.Table:
    """Every billing line with the document it is printed on (null where not billed), as Arrow."""
    table = pa.Table.from_pandas(result.lines, preserve_index=False)
    return table.append_column("document_key", text_lookup(text_array(result.lines["line_id"]),
                                                           result.batch.line_documents))
