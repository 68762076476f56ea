"""Backup documentation: the timesheet or expense detail behind one invoice, as an XLSX workbook.

A customer whose ``backup_required`` is ``timesheet_detail`` gets, with each invoice and credit memo,
every labor item billed on it (date, person, role, project, hours, rate, amount billed); one whose
requirement is ``expense_receipts`` gets every expense item (date, person, type, project, quantity,
cost, amount billed). A "Summary" sheet reconciles the detail with the document: amount billed per
kind of line, their total and the document's net, which are equal to the cent because each printed
line is the sum of its items (docs/CONVENTIONS.md, rounding level).

The detail comes from the run's billing lines (``CloseResult.lines``) and ``Batch.line_documents``
(billing line id -> document key). A reversal credit memo (``reverses_key``) has no backup of its own:
its detail is the reversed invoice's. Amounts are written as exact decimals in major units.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Font

from billing.columns import MINOR_UNITS
from delivery.base import optional_text, quantity_decimal, to_major

REQUIREMENTS = {"timesheet_detail": "labor", "expense_receipts": "expense"}
MONEY_FORMAT = "#,##0.00"
SHEETS = {"labor": "Timesheet detail", "expense": "Expense detail"}
COLUMNS = {
    "labor": (("Date", "service_date"), ("Person", "person_id"), ("Role", "role"), ("Project", "project_id"),
              ("Description", "description"), ("Hours", "quantity"), ("Rate", "unit_price"),
              ("Amount billed", "billed"), ("Note", "note"), ("Line id", "line_id")),
    "expense": (("Date", "service_date"), ("Person", "person_id"), ("Type", "expenditure_type"),
                ("Project", "project_id"), ("Description", "description"), ("Quantity", "quantity"),
                ("Cost", "cost"), ("Amount billed", "billed"), ("Note", "note"), ("Line id", "line_id")),
}
MONEY_FIELDS = ("unit_price", "billed", "cost")


class BackupError(ValueError):
    """The backup of a document cannot be produced (names the document)."""


class BilledDetail:
    """A run's billed billing lines grouped by the document they are printed on, built once for all
    of the run's documents (a backup per document then costs its own lines, not a scan of the run)."""

    def __init__(self, billing_lines: pd.DataFrame, line_documents: pd.Series):
        billed = billing_lines[billing_lines["billed_cents"] != 0].reset_index(drop=True)
        docs = line_documents.astype("string")
        docs = docs[~docs.index.duplicated(keep="last")]
        doc_of = docs.reindex(billed["line_id"].astype("string").to_numpy())
        self._lines = billed
        self._positions = pd.Series(doc_of.to_numpy()).groupby(doc_of.to_numpy(), sort=False).indices \
            if len(billed) else {}

    def __call__(self, document_key: str) -> pd.DataFrame:
        """The billed lines of one document (its base key: revisions keep their lines' key)."""
        rows = self._lines.iloc[self._positions.get(document_key, [])]
        return rows.sort_values(["service_date", "person_id", "line_id"], na_position="last").reset_index(drop=True)


def document_detail(document_key: str, billing_lines: pd.DataFrame, line_documents: pd.Series) -> pd.DataFrame:
    """The billing lines billed on one document (its base key: revisions keep their lines' key)."""
    return BilledDetail(billing_lines, line_documents)(document_key)


def write_backup(document: Mapping, billing_lines: pd.DataFrame, line_documents: pd.Series, folder: Path | str,
                 requirement: str | None = None, detail: BilledDetail | None = None) -> Path | None:
    """Write ``<folder>/<document_key>-backup.xlsx`` if the customer requires backup; return its path.

    ``requirement`` defaults to the document's ``backup_required`` (none: nothing is written).
    ``detail``: the run's lines grouped once (``BilledDetail``) when writing many documents' backups.
    """
    key = str(document["document_key"])
    requirement = requirement or optional_text(document.get("backup_required")) or "none"
    if requirement == "none" or document.get("document_type") == "cost_transfer":
        return None
    if requirement not in REQUIREMENTS:
        raise BackupError(f"{key}: backup_required {requirement!r} is not one of none, "
                          f"{', '.join(REQUIREMENTS)}")
    if optional_text(document.get("reverses_key")):
        return None
    currency = str(document["currency"])
    if currency not in MINOR_UNITS:
        raise BackupError(f"{key}: currency {currency!r} is not supported")
    base_key = optional_text(document.get("base_key")) or key
    detail = (detail or BilledDetail(billing_lines, line_documents))(base_key)
    if detail.empty:
        raise BackupError(f"{key}: no billing lines of this run map to the document (line_documents), so its "
                          f"{requirement} backup cannot be produced")
    billed_total = int(detail["billed_cents"].sum())
    if not pd.isna(document.get("net_cents")) and billed_total != int(document["net_cents"]):
        raise BackupError(f"{key}: the billed detail adds up to {billed_total} cents, the document's net is "
                          f"{int(document['net_cents'])}")
    kind = REQUIREMENTS[requirement]

    wb = Workbook()
    ws = wb.active
    ws.title = SHEETS[kind]
    rows = detail[detail["source_kind"] == kind]
    _detail_sheet(ws, rows, kind, currency)
    _summary_sheet(wb.create_sheet("Summary"), document, detail, currency, requirement)

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{re.sub(r'[^A-Za-z0-9._-]', '_', key)}-backup.xlsx"
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        wb.save(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def _value(r: Mapping, field: str, currency: str):
    if field == "quantity":
        return quantity_decimal(int(r["quantity_milli"]))
    if field == "billed":
        return to_major(int(r["billed_cents"]), currency)
    if field == "cost":
        return to_major(int(r["cost_cents"]), currency)
    if field == "unit_price":
        v = r.get("unit_price_cents")
        return None if pd.isna(v) else to_major(int(v), currency)
    if field == "service_date":
        return pd.Timestamp(r["service_date"]).date()
    if field == "note":
        reason = optional_text(r.get("reason"))
        if reason and int(r["billed_cents"]) != int(r["amount_cents"]):
            return f"billed in part ({reason}); amount before: {to_major(int(r['amount_cents']), currency)}"
        return None
    return optional_text(r.get(field))


def _detail_sheet(ws, rows: pd.DataFrame, kind: str, currency: str) -> None:
    cols = COLUMNS[kind]
    ws.append([h for h, _ in cols])
    for c in ws[1]:
        c.font = Font(bold=True)
    for r in rows.to_dict("records"):
        ws.append([_value(r, f, currency) for _, f in cols])
    n = len(rows)
    billed_col = [f for _, f in cols].index("billed") + 1
    if n == 0:
        ws.append([f"No {kind} lines on this document."])
    ws.append([])
    total_row = ws.max_row + 1
    ws.cell(total_row, 1, "Total").font = Font(bold=True)
    ws.cell(total_row, billed_col, to_major(int(rows["billed_cents"].sum()) if n else 0, currency)).font = \
        Font(bold=True)
    for i, (_, f) in enumerate(cols, start=1):
        if f in MONEY_FIELDS:
            for row in ws.iter_rows(min_row=2, min_col=i, max_col=i):
                row[0].number_format = MONEY_FORMAT
        if f == "service_date":
            for row in ws.iter_rows(min_row=2, max_row=n + 1, min_col=i, max_col=i):
                row[0].number_format = "yyyy-mm-dd"
    ws.freeze_panes = "A2"
    for letter, width in zip("ABCDEFGHIJ", (11, 10, 18, 14, 40, 9, 11, 14, 30, 28), strict=True):
        ws.column_dimensions[letter].width = width


def _summary_sheet(ws, document: Mapping, detail: pd.DataFrame, currency: str, requirement: str) -> None:
    ws.append(["Document", str(document["document_key"])])
    ws.append(["Customer", str(document.get("customer_name") or document.get("customer_id"))])
    ws.append(["Period", str(document.get("period") or "")])
    ws.append(["Currency", currency])
    ws.append(["Backup", requirement])
    ws.append([])
    ws.append(["Line kind", "Items", "Amount billed"])
    for c in ws[ws.max_row]:
        c.font = Font(bold=True)
    by_kind = detail.groupby("source_kind")["billed_cents"].agg(["size", "sum"])
    for kind, r in by_kind.iterrows():
        ws.append([str(kind), int(r["size"]), to_major(int(r["sum"]), currency)])
        ws.cell(ws.max_row, 3).number_format = MONEY_FORMAT
    ws.append(["Total of the detail", int(by_kind["size"].sum()), to_major(int(by_kind["sum"].sum()), currency)])
    ws.cell(ws.max_row, 3).number_format = MONEY_FORMAT
    if not pd.isna(document.get("net_cents")):
        ws.append(["Document net", None, to_major(int(document["net_cents"]), currency)])
        ws.cell(ws.max_row, 3).number_format = MONEY_FORMAT
    ws.column_dimensions["A"].width = 22
    ws.column_dimensions["B"].width = 34
    ws.column_dimensions["C"].width = 16
