"""Write connectors/templates/billing_tracker_template.xlsx from connectors.tracker.TEMPLATE_COLUMNS.

Run from the project root after changing the columns: ``python connectors/templates/make_tracker_template.py``.
The output is deterministic (fixed document dates), so an unchanged template gives an unchanged file.
"""

from __future__ import annotations

import re
import sys
import zipfile
from datetime import datetime
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter

from connectors.tracker import SHEET, TEMPLATE_COLUMNS

OUT = Path(__file__).with_name("billing_tracker_template.xlsx")
_FIXED = datetime(2026, 1, 1)


def build(path: Path = OUT) -> Path:
    wb = Workbook()
    ws = wb.active
    ws.title = SHEET
    ws.append([c.header for c in TEMPLATE_COLUMNS])
    for i, c in enumerate(TEMPLATE_COLUMNS, start=1):
        cell = ws.cell(row=1, column=i)
        cell.font = Font(bold=True, color="FFFFFF")
        cell.fill = PatternFill("solid", fgColor="1F4E78")
        letter = get_column_letter(i)
        ws.column_dimensions[letter].width = max(14, len(c.example) + 4)
        # Formats for the rows the team will type: two decimals for money, ISO dates.
        if c.field == "amount_cents":
            for r in range(2, 502):
                ws.cell(row=r, column=i).number_format = "#,##0.00"
        if c.field == "service_date":
            for r in range(2, 502):
                ws.cell(row=r, column=i).number_format = "yyyy-mm-dd"
    ws.freeze_panes = "A2"

    info = wb.create_sheet("Instructions")
    info.append(["Billing tracker: manual additions"])
    info["A1"].font = Font(bold=True, size=14)
    info.append(["One row per addition on the 'Additions' sheet, below the header. Keep the header row as it "
                 "is. A bad cell rejects only its row; the close reports it with file, sheet, row and column."])
    info.append(["An addition is billed by the first close whose period end is on or after its service date; "
                 "rows already billed are recognised by their Addition ID. See docs/TRACKER.md."])
    info.append([])
    info.append(["Column", "Required", "Format", "Example", "Meaning"])
    for cell in info[5]:
        cell.font = Font(bold=True)
    for c in TEMPLATE_COLUMNS:
        info.append([c.header, "yes" if c.required else "no", c.format, c.example, c.meaning])
    for letter, width in zip("ABCDE", (16, 10, 48, 36, 64), strict=True):
        info.column_dimensions[letter].width = width

    wb.properties.creator = "billing-cycle"
    wb.properties.created = _FIXED
    wb.properties.modified = _FIXED
    wb.save(path)
    _pin_zip_dates(path)
    return path


def _pin_zip_dates(path: Path) -> None:
    # openpyxl stamps zip entries (and docProps' modified date) with the current time: pin both.
    with zipfile.ZipFile(path) as z:
        entries = [(info.filename, z.read(info.filename)) for info in z.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            if name == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>2026-01-01T00:00:00Z", data)
            z.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), data,
                       compress_type=zipfile.ZIP_DEFLATED)


if __name__ == "__main__":
    print(build(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT))
