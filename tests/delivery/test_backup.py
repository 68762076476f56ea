"""Backup documentation: timesheet and expense detail per invoice, adding up to the invoice."""

from decimal import Decimal

import pandas as pd
import pytest
from openpyxl import load_workbook

from billing.billable import compute_billing_lines
from billing.invoices import build_batch
from billing.periods import Period
from delivery.backup import BackupError, write_backup
from tests.billing.builders import company, customer, expense, item, scope

OCT = Period(2026, 10)


def close(requirement):
    # Rate 100.00/h: 7.5 h -> 750.00 and 3.333 h -> 333.30; an expense of 120.00 with a 10% markup -> 132.00.
    data = company(customers=[customer(backup_required=requirement)],
                   scope_lines=[scope(), scope(scope_line_id="K1-L2", billing_type="expense", markup_bp=1000)],
                   items=[item("A", quantity_milli=7500),
                          item("B", quantity_milli=3333, person_id="E2", expenditure_date=pd.Timestamp("2026-10-20")),
                          expense("X", 12_000)])
    lines = compute_billing_lines(data, OCT)
    batch = build_batch(lines, data["customers"], data["contracts"], OCT)
    (doc,) = batch.documents.to_dict("records")
    return doc, lines, batch.line_documents


def rows_of(ws):
    return [list(r) for r in ws.iter_rows(values_only=True)]


def test_timesheet_detail_lists_every_labor_item_and_adds_up_to_the_invoice(tmp_path):
    doc, lines, line_documents = close("timesheet_detail")
    assert doc["net_cents"] == 75_000 + 33_330 + 13_200                  # 1,215.30
    path = write_backup(doc, lines, line_documents, tmp_path)
    assert path == tmp_path / f"{doc['document_key']}-backup.xlsx"
    wb = load_workbook(path)
    assert wb.sheetnames == ["Timesheet detail", "Summary"]
    rows = rows_of(wb["Timesheet detail"])
    assert rows[0][:8] == ["Date", "Person", "Role", "Project", "Description", "Hours", "Rate", "Amount billed"]
    detail = [r for r in rows[1:] if r[1] in ("E1", "E2")]
    assert [(r[1], Decimal(str(r[5])), Decimal(str(r[6])), Decimal(str(r[7]))) for r in detail] == [
        ("E1", Decimal("7.5"), Decimal("100"), Decimal("750")), ("E2", Decimal("3.333"), Decimal("100"),
                                                                 Decimal("333.3"))]
    total = next(r for r in rows if r[0] == "Total")
    assert Decimal(str(total[7])) == Decimal("1083.30")                   # 750.00 + 333.30
    summary = {r[0]: r for r in rows_of(wb["Summary"]) if r and r[0]}
    assert Decimal(str(summary["labor"][2])) == Decimal("1083.30")
    assert Decimal(str(summary["expense"][2])) == Decimal("132.00")
    assert Decimal(str(summary["Total of the detail"][2])) == Decimal(str(summary["Document net"][2])) == \
        Decimal("1215.30")


def test_expense_detail_shows_cost_and_amount_billed(tmp_path):
    doc, lines, line_documents = close("expense_receipts")
    wb = load_workbook(write_backup(doc, lines, line_documents, tmp_path))
    rows = rows_of(wb["Expense detail"])
    assert rows[0][5:8] == ["Quantity", "Cost", "Amount billed"]
    (x,) = [r for r in rows[1:] if r[2] == "travel"]
    assert (Decimal(str(x[6])), Decimal(str(x[7]))) == (Decimal("120"), Decimal("132"))   # cost, +10%


def test_no_backup_when_the_customer_requires_none_and_an_error_when_detail_is_missing(tmp_path):
    doc, lines, line_documents = close("none")
    assert write_backup(doc, lines, line_documents, tmp_path) is None
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(BackupError, match=doc["document_key"]):
        write_backup(doc | {"backup_required": "timesheet_detail"}, lines, line_documents.iloc[0:0], tmp_path)
