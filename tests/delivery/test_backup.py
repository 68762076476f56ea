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


def test_a_revised_invoice_gets_its_backup_from_the_lines_of_its_base_key(tmp_path):
    """The run's documents are written from the store: a revision (key X-R2, base key X) after the
    hours changed gets the new detail, which adds up to the revision's net."""
    from billing.close import compute_close
    from billing_cycle.handoff import hand_off, record_documents
    from connectors.targets import FileDropTarget
    from store import Store
    from tasks.record import write_documents

    first = company(customers=[customer(backup_required="timesheet_detail")], items=[item("A", quantity_milli=7500)])
    store = Store(f"sqlite:///{tmp_path / 'store.sqlite'}")
    store.start_run("r1", str(OCT), "test")
    r1 = compute_close(first, OCT)
    hand_off(store, FileDropTarget(tmp_path / "drop"), record_documents(store, r1.batch, str(OCT), "r1").to_deliver,
             "r1")
    second = {**first, "expenditure_items": first["expenditure_items"].assign(quantity_milli=8000)}
    r2 = compute_close(second, OCT)
    store.start_run("r2", str(OCT), "test")
    plan = record_documents(store, r2.batch, str(OCT), "r2")
    (key,) = r1.batch.documents["document_key"]
    assert f"{key}-R2" in plan.to_deliver

    written = write_documents.fn(store, r2, second, tmp_path / "out")
    assert written == {"invoices": 2, "backups": 1}   # the revision and its reversal; a reversal has no backup
    wb = load_workbook(tmp_path / "out" / "backup" / f"{key}-R2-backup.xlsx")
    hours = [r[5] for r in rows_of(wb["Timesheet detail"])[1:] if r[5] is not None]
    assert hours == [Decimal("8")] or hours == [8]


def test_text_that_looks_like_a_formula_is_written_as_text_never_run(tmp_path):
    """A name typed into a source system as "=HYPERLINK(...)" must not become a live link or formula in
    the workbook the customer opens."""
    evil = '=HYPERLINK("http://attacker.example","Open")'
    data = company(customers=[customer(backup_required="timesheet_detail", customer_name=evil)],
                   items=[item("A", quantity_milli=7500, person_id="=1+1")])
    lines = compute_billing_lines(data, OCT)
    batch = build_batch(lines, data["customers"], data["contracts"], OCT)
    (doc,) = batch.documents.to_dict("records")
    wb = load_workbook(write_backup(doc, lines, batch.line_documents, tmp_path))
    cells = [c for row in wb["Timesheet detail"].iter_rows() for c in row if c.value == "=1+1"]
    assert len(cells) == 1 and cells[0].data_type == "s"
    name = [c for row in wb["Summary"].iter_rows() for c in row if c.value == evil]
    assert len(name) == 1 and name[0].data_type == "s"
    assert not [c for ws in wb for row in ws.iter_rows() for c in row if c.data_type == "f"]
