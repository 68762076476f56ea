"""Billing tracker connector: manual additions (``tracker_additions``) from the legacy billing tracker.

The tracker is an Excel workbook (sheet "Additions") or a CSV file in the template shipped as
``connectors/templates/billing_tracker_template.xlsx`` and described in ``docs/TRACKER.md``. Point the
connector at one file or at a folder of them::

    tracker = TrackerConnector("/shares/billing/tracker")
    additions = tracker.read("tracker_additions", Period.parse("2026-10"))
    tracker.rejected   # rows that could not be read: file, sheet, row, column, value, message

A bad cell rejects its row only: the other rows load, and every problem of the bad row is listed in
`rejected` (one line per problem) for the billing team to fix; nothing is dropped silently.

Which rows a period takes: as for all activity (see connectors.base), additions dated on or before
the period end. The tracker has no "billed" column; an addition billed in an earlier close is known
by its prior invoice line (source_kind ``manual``, source_id = the addition ID), exactly as a billed
expenditure item is, so the rules, not the spreadsheet, prevent double billing.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pandas as pd

from billing import columns as col
from billing.periods import Period
from billing.schema import conform
from connectors.base import PermanentSourceError

SHEET = "Additions"
CSV_SHEET = "csv"  # the "sheet" named in sources and rejections of a CSV file
REJECTED_COLUMNS = ("file", "sheet", "row", "column", "value", "message")


@dataclass(frozen=True)
class TrackerColumn:
    header: str        # as printed in the template
    field: str         # canonical column of tracker_additions
    required: bool
    format: str        # what the billing team types
    example: str
    meaning: str


# The template's columns, in order. The template script, the docs and the parser all read this list.
TEMPLATE_COLUMNS: tuple[TrackerColumn, ...] = (
    TrackerColumn("Addition ID", "addition_id", True, "Text, unique across all tracker files",
                  "TRK-2026-10-0001", "Your key for the row; quoted on the invoice line's source."),
    TrackerColumn("Contract", "contract_id", True, "Contract number as in the CRM", "K000123",
                  "Contract to bill."),
    TrackerColumn("Project", "project_id", False, "Project number (Oracle segment1), or empty",
                  "P000123-1", "Project the addition belongs to, if any."),
    TrackerColumn("Description", "description", True, "Text", "Change request 14 approved by email",
                  "Invoice line text, as the customer will read it."),
    TrackerColumn("Amount", "amount_cents", True,
                  "Number with at most two decimals, in the contract currency; negative for a credit",
                  "1250.00", "Amount to bill. 1,250.00 and 1250.5 are accepted; 12.345 is refused."),
    TrackerColumn("Service date", "service_date", True, "Date (an Excel date, or text YYYY-MM-DD)",
                  "2026-10-14", "Day the service was delivered; decides the first close that bills it."),
    TrackerColumn("Entered by", "entered_by", True, "User name", "m.ivanova", "Who entered the row."),
)

_BY_KEY = {re.sub(r"[\s_]+", "", c.header.lower()): c for c in TEMPLATE_COLUMNS} | {
    re.sub(r"[\s_]+", "", c.field.lower()): c for c in TEMPLATE_COLUMNS}
_AMOUNT = re.compile(r"^-?\d{1,3}(,\d{3})*(\.\d+)?$|^-?\d+(\.\d+)?$")


class _CellError(ValueError):
    pass


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # an ID typed as a number in Excel
    text = str(value).strip()
    return text or None


def _amount_cents(value: Any) -> int:
    if isinstance(value, bool):
        raise _CellError("is not an amount")
    if isinstance(value, int):
        return value * 100
    if isinstance(value, float):
        # Excel stores typed numbers as binary floats; repr gives the shortest decimal that round-trips,
        # i.e. what was typed (1250.1 -> "1250.1"), so Decimal sees the exact typed value.
        d = Decimal(repr(value))
    else:
        text = str(value).strip()
        if not _AMOUNT.match(text):
            raise _CellError("is not an amount (use digits, an optional minus and at most two decimals)")
        try:
            d = Decimal(text.replace(",", ""))
        except InvalidOperation as exc:  # pragma: no cover - the pattern above already refused it
            raise _CellError("is not an amount") from exc
    if not d.is_finite():
        raise _CellError("is not an amount")
    cents = d.scaleb(2)
    if cents != cents.to_integral_value():
        raise _CellError("has more than two decimals")
    return int(cents)


def _service_date(value: Any) -> date:
    if isinstance(value, datetime):
        if value.time() != datetime.min.time():
            raise _CellError("has a time of day; enter a date only")
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise _CellError("is not a date (use an Excel date or YYYY-MM-DD)") from None


_PARSERS = {"amount_cents": _amount_cents, "service_date": _service_date}


class TrackerConnector:
    """Reads manual additions from a tracker workbook/CSV, or every one of them in a folder.

    `path` is a .xlsx or .csv file or a folder (its *.xlsx and *.csv files, not sub-folders; Excel
    lock files ``~$...`` are skipped). `sheet` is the workbook sheet holding the additions.
    Example: ``TrackerConnector("trackers/billing-tracker-2026-10.xlsx").read("tracker_additions", p)``.
    """

    name = "tracker"
    datasets = ("tracker_additions",)

    def __init__(self, path: str | Path, sheet: str = SHEET):
        self.path = Path(path)
        self.sheet = sheet
        self.rejected = _rejected_frame([])

    def files(self) -> list[Path]:
        if self.path.is_dir():
            return sorted(p for p in self.path.iterdir() if p.is_file() and p.suffix.lower() in (".xlsx", ".csv")
                          and not p.name.startswith(("~$", ".")))
        if self.path.is_file():
            return [self.path]
        raise PermanentSourceError(f"billing tracker {self.path} does not exist")

    def read(self, dataset: str, period: Period) -> pd.DataFrame:
        """The period's additions (service date on or before its end); bad rows go to `self.rejected`."""
        if dataset not in self.datasets:
            raise PermanentSourceError(f"tracker does not deliver {dataset!r}; it delivers tracker_additions")
        good, rejected = self.read_all()
        self.rejected = rejected
        return good[good["service_date"] <= period.end_ts].reset_index(drop=True)

    def read_all(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(every good row of every file, every problem found), in file and row order."""
        rows: list[dict[str, Any]] = []
        problems: list[dict[str, Any]] = []
        seen: dict[str, str] = {}
        for file in self.files():
            for rownum, sheet, cells, row_problems in _rows(file, self.sheet):
                if row_problems:
                    problems += row_problems
                    continue
                src = f"{file.name}:{sheet}:row {rownum}"
                first = seen.setdefault(cells["addition_id"], src)
                if first != src:
                    problems.append(_problem(file, sheet, rownum, "Addition ID", cells["addition_id"],
                                             f"duplicate addition ID, first entered at {first}"))
                    continue
                rows.append({**cells, "source": src})
        frame = pd.DataFrame(rows, columns=col.TRACKER_ADDITIONS.names)
        return conform(frame, col.TRACKER_ADDITIONS, origin=str(self.path)), _rejected_frame(problems)


def _problem(file: Path, sheet: str, row: int | None, column: str | None, value: Any, message: str) -> dict:
    return {"file": file.name, "sheet": sheet, "row": row, "column": column,
            "value": None if value is None else str(value), "message": message}


def _rejected_frame(problems: list[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame(problems, columns=list(REJECTED_COLUMNS))
    return df.astype({"file": "string", "sheet": "string", "row": "Int64", "column": "string", "value": "string",
                      "message": "string"})


def _rows(file: Path, sheet: str):
    """Yield (row number, sheet, parsed cells, problems) for each non-empty data row of one file."""
    try:
        if file.suffix.lower() == ".csv":
            sheet_name, table = CSV_SHEET, _csv_rows(file)
        else:
            sheet_name, table = sheet, _xlsx_rows(file, sheet)
        header = next(table, None)
    except _FileProblem as exc:
        yield None, exc.sheet, None, [_problem(file, exc.sheet, None, None, None, str(exc))]
        return
    if header is None:
        yield None, sheet_name, None, [_problem(file, sheet_name, None, None, None, "the file is empty")]
        return
    mapping: dict[int, TrackerColumn] = {}
    for i, h in enumerate(header):
        c = _BY_KEY.get(re.sub(r"[\s_]+", "", str(h or "").lower()))
        if c is not None:
            mapping[i] = c
    missing = [c.header for c in TEMPLATE_COLUMNS if c not in mapping.values()]
    if missing:
        # Without a column no row can be read: report the header, not every row.
        yield 1, sheet_name, None, [_problem(file, sheet_name, 1, h, None, "required column is missing from the "
                                             "header row (see docs/TRACKER.md)") for h in missing]
        return
    for rownum, values in enumerate(table, start=2):
        if all(_text(v) is None for v in values):
            continue
        cells: dict[str, Any] = {}
        problems = []
        for i, c in mapping.items():
            raw = values[i] if i < len(values) else None
            if _text(raw) is None:
                if c.required:
                    problems.append(_problem(file, sheet_name, rownum, c.header, raw, "value is required"))
                cells[c.field] = None
                continue
            try:
                cells[c.field] = _PARSERS.get(c.field, _text)(raw)
            except _CellError as exc:
                problems.append(_problem(file, sheet_name, rownum, c.header, raw, f"{raw!s} {exc}"))
        yield rownum, sheet_name, cells, problems


class _FileProblem(Exception):
    def __init__(self, sheet: str, message: str):
        super().__init__(message)
        self.sheet = sheet


def _xlsx_rows(file: Path, sheet: str):
    from openpyxl import load_workbook  # imported here: only tracker reads need it

    try:
        wb = load_workbook(file, read_only=True, data_only=True)
    except Exception as exc:
        raise _FileProblem(sheet, f"cannot open the workbook: {exc}") from exc
    if sheet not in wb.sheetnames:
        wb.close()
        raise _FileProblem(sheet, f"the workbook has no sheet {sheet!r} (sheets: {', '.join(wb.sheetnames)})")

    def gen():
        try:
            yield from wb[sheet].iter_rows(values_only=True)
        finally:
            wb.close()

    return gen()


def _csv_rows(file: Path):
    try:
        text = file.read_text(encoding="utf-8-sig")  # Excel writes a BOM when saving "CSV UTF-8"
    except (OSError, UnicodeDecodeError) as exc:
        raise _FileProblem(CSV_SHEET, f"cannot read the file as UTF-8 text: {exc}") from exc
    return iter(list(csv.reader(text.splitlines())))
