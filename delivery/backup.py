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

A month-end close writes thousands of these, so a workbook is streamed (openpyxl's write-only mode) and
its cell values are made a column at a time from the run's lines, grouped and sorted once
(``BilledDetail``).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Mapping
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font

from billing.columns import MINOR_UNITS
from billing.schema import encode_text, text_array, text_lookup
from delivery.base import optional_text, quantity_decimal, to_major

REQUIREMENTS = {"timesheet_detail": "labor", "expense_receipts": "expense"}
MONEY_FORMAT = "#,##0.00"
DATE_FORMAT = "yyyy-mm-dd"
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
WIDTHS = (11, 10, 18, 14, 40, 9, 11, 14, 30, 28)
# The billing-line columns a backup reads (its detail sheet, notes and summary), in this order.
DETAIL_COLUMNS = ("line_id", "source_kind", "service_date", "person_id", "role", "expenditure_type", "project_id",
                  "description", "quantity_milli", "unit_price_cents", "cost_cents", "amount_cents", "billed_cents",
                  "reason")
SORT = ["service_date", "person_id", "line_id"]
BOLD = Font(bold=True)


class BackupError(ValueError):
    """The backup of a document cannot be produced (names the document)."""


class BilledDetail:
    """A run's billed billing lines grouped by the document they are printed on, built once for all
    of the run's documents (a backup per document then costs its own lines, not a scan of the run).

    The lines (the columns of ``DETAIL_COLUMNS`` the run has) are sorted once by document, then service
    date, person and line id (missing last), so a document's lines are one contiguous slice.
    """

    def __init__(self, billing_lines: pd.DataFrame, line_documents: pd.Series):
        fields = [c for c in DETAIL_COLUMNS if c in billing_lines.columns]
        billed = billing_lines.loc[billing_lines["billed_cents"].to_numpy() != 0, fields]
        docs = line_documents[~line_documents.index.duplicated(keep="last")]
        codes, keys = encode_text(text_lookup(text_array(billed["line_id"]), docs))
        on_a_document = codes >= 0
        billed = billed[on_a_document].assign(_document=codes[on_a_document])
        # One stable sort of the run; within a document, the order of sorting that document's lines alone.
        billed = billed.sort_values(["_document", *SORT], na_position="last")
        order = billed.pop("_document").to_numpy()
        self._lines = billed.reset_index(drop=True)
        bounds = [*np.flatnonzero(np.diff(order, prepend=-1)).tolist(), len(order)]
        self._slices = {str(keys[order[a]]): (a, b) for a, b in pairwise(bounds)}

    def __call__(self, document_key: str) -> pd.DataFrame:
        """The billed lines of one document (its base key: revisions keep their lines' key), sorted by
        service date, person and line id (missing last)."""
        start, stop = self._slices.get(document_key, (0, 0))
        return self._lines.iloc[start:stop].reset_index(drop=True)

    def arrays(self, document_key: str) -> dict[str, np.ndarray]:
        """The same lines as ``__call__``, as one array per column of ``DETAIL_COLUMNS`` (object arrays
        with None for missing text; a column the run lacks is all None)."""
        start, stop = self._slices.get(document_key, (0, 0))
        rows = self._lines.iloc[start:stop]   # converted per document: Python objects for one document only
        return {c: _array(rows, c) for c in DETAIL_COLUMNS}


def _array(lines: pd.DataFrame, column: str) -> np.ndarray:
    if column not in lines.columns:
        return np.full(len(lines), None, dtype=object)
    s = lines[column]
    if column in ("quantity_milli", "cost_cents", "amount_cents", "billed_cents"):
        return s.to_numpy(dtype=np.int64)
    if column == "service_date" and pd.api.types.is_datetime64_any_dtype(s.dtype):
        return s.to_numpy()
    return s.to_numpy(dtype=object, na_value=None)


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
    lines = (detail or BilledDetail(billing_lines, line_documents)).arrays(base_key)
    if not len(lines["billed_cents"]):
        raise BackupError(f"{key}: no billing lines of this run map to the document (line_documents), so its "
                          f"{requirement} backup cannot be produced")
    billed_total = int(lines["billed_cents"].sum())
    if not pd.isna(document.get("net_cents")) and billed_total != int(document["net_cents"]):
        raise BackupError(f"{key}: the billed detail adds up to {billed_total} cents, the document's net is "
                          f"{int(document['net_cents'])}")
    kind = REQUIREMENTS[requirement]

    wb = Workbook(write_only=True)
    is_kind = lines["source_kind"] == kind
    _detail_sheet(wb.create_sheet(SHEETS[kind]), {c: a[is_kind] for c, a in lines.items()}, kind, currency)
    _summary_sheet(wb.create_sheet("Summary"), document, lines, currency, requirement)

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


def _each_once(values: list, convert: Callable) -> list:
    """``[convert(v) for v in values]``, converting each distinct value once (amounts and hours repeat)."""
    done: dict = {}
    return [done[v] if v in done else done.setdefault(v, convert(v)) for v in values]


def _texts(values: np.ndarray) -> list:
    """``optional_text`` of each value (None for missing or blank, else the stripped text)."""
    return [(v.strip() or None) if type(v) is str else optional_text(v) for v in values]


def _dates(values: np.ndarray) -> list:
    if np.issubdtype(values.dtype, np.datetime64):
        return values.astype("datetime64[D]").tolist()     # datetime.date; NaT -> None
    return [None if v is None else pd.Timestamp(v).date() for v in values]


def _cell_values(rows: Mapping[str, np.ndarray], field: str, currency: str) -> list:
    """One column of the detail sheet, as the cell values (exact Decimals in major units, dates, text)."""
    def major(cents: int):
        return to_major(cents, currency)

    if field == "quantity":
        return _each_once(rows["quantity_milli"].tolist(), quantity_decimal)
    if field == "billed":
        return _each_once(rows["billed_cents"].tolist(), major)
    if field == "cost":
        return _each_once(rows["cost_cents"].tolist(), major)
    if field == "unit_price":
        return _each_once([None if pd.isna(v) else int(v) for v in rows["unit_price_cents"]],
                          lambda v: None if v is None else major(v))
    if field == "service_date":
        return _dates(rows["service_date"])
    if field == "note":
        billed, amount = rows["billed_cents"].tolist(), rows["amount_cents"].tolist()
        return [f"billed in part ({r}); amount before: {major(a)}" if r and b != a else None
                for r, b, a in zip(_texts(rows["reason"]), billed, amount, strict=True)]
    return _texts(rows[field])


def _styled(ws, value, number_format: str | None = None, bold: bool = False) -> WriteOnlyCell:
    cell = WriteOnlyCell(ws, value)
    if bold:
        cell.font = BOLD
    if number_format:
        cell.number_format = number_format
    return cell


def _as_text(ws, values: list) -> list:
    """Text that a spreadsheet would read as a formula (it starts with "=": a description, a name from
    a source system) is written as text, never run when the customer opens the workbook."""
    out = []
    for v in values:
        if isinstance(v, str) and v.startswith("="):
            v = WriteOnlyCell(ws, v)
            v.data_type = "s"
        out.append(v)
    return out


def _dimension(ws, ref: str) -> None:
    # A streamed sheet is written before its size is known; this one's is, and openpyxl writes it from
    # calculate_dimension like for a sheet kept in memory (readers in read-only mode rely on it).
    ws.calculate_dimension = lambda: ref


def _detail_sheet(ws, rows: Mapping[str, np.ndarray], kind: str, currency: str) -> None:
    """Header, one row per line (dates and amounts formatted), or a note that there is none, then the
    total; header frozen. Amount columns are formatted down to the total row, dates on the lines."""
    fields = [f for _, f in COLUMNS[kind]]
    n = len(rows["billed_cents"])
    money = [i for i, f in enumerate(fields) if f in MONEY_FIELDS]
    day = fields.index("service_date")
    billed_col = fields.index("billed")
    ws.freeze_panes = "A2"
    for letter, width in zip("ABCDEFGHIJ", WIDTHS, strict=True):
        ws.column_dimensions[letter].width = width
    _dimension(ws, f"A1:{'ABCDEFGHIJ'[len(fields) - 1]}{max(n, 1) + 2}")

    ws.append([_styled(ws, h, bold=True) for h, _ in COLUMNS[kind]])
    columns = [_as_text(ws, _cell_values(rows, f, currency)) for f in fields]
    columns[day] = [_styled(ws, v, DATE_FORMAT) for v in columns[day]]
    for i in money:
        columns[i] = [_styled(ws, v, MONEY_FORMAT) for v in columns[i]]
    for row in zip(*columns, strict=True):
        ws.append(row)
    if n == 0:
        ws.append([f"No {kind} lines on this document.", *[_styled(ws, None, MONEY_FORMAT) if i in money else None
                                                          for i in range(1, len(fields))]])
    total = [None] * len(fields)
    for i in money:
        total[i] = _styled(ws, None, MONEY_FORMAT)
    total[0] = _styled(ws, "Total", bold=True)
    total[billed_col] = _styled(ws, to_major(int(rows["billed_cents"].sum()) if n else 0, currency), MONEY_FORMAT,
                                bold=True)
    ws.append(total)


def _summary_sheet(ws, document: Mapping, lines: Mapping[str, np.ndarray], currency: str, requirement: str) -> None:
    """Who and what, then amount billed per kind of line (sorted by kind), their total and the net."""
    by_kind: dict[str, list[int]] = {}
    for k, b in zip(lines["source_kind"].tolist(), lines["billed_cents"].tolist(), strict=True):
        if k is not None:
            size_sum = by_kind.setdefault(str(k), [0, 0])
            size_sum[0] += 1
            size_sum[1] += b
    net = document.get("net_cents")
    rows = 9 + len(by_kind) - (1 if pd.isna(net) else 0)
    ws.column_dimensions["A"].width = 22
    ws.column_dimensions["B"].width = 34
    ws.column_dimensions["C"].width = 16
    _dimension(ws, f"A1:C{rows}")

    ws.append(["Document", str(document["document_key"])])
    ws.append(_as_text(ws, ["Customer", str(document.get("customer_name") or document.get("customer_id"))]))
    ws.append(["Period", str(document.get("period") or "")])
    ws.append(["Currency", currency])
    ws.append(["Backup", requirement])
    ws.append([])
    ws.append([_styled(ws, h, bold=True) for h in ("Line kind", "Items", "Amount billed")])
    for kind in sorted(by_kind):
        size, total = by_kind[kind]
        ws.append([kind, size, _styled(ws, to_major(total, currency), MONEY_FORMAT)])
    ws.append(["Total of the detail", sum(s for s, _ in by_kind.values()),
               _styled(ws, to_major(sum(t for _, t in by_kind.values()), currency), MONEY_FORMAT)])
    if not pd.isna(net):
        ws.append(["Document net", None, _styled(ws, to_major(int(net), currency), MONEY_FORMAT)])
