"""The billing tracker connector: the shipped template, exact amounts, and bad rows kept, not lost."""

from __future__ import annotations

import importlib.util
import shutil
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook

from billing import columns as col
from billing.periods import Period
from billing.schema import conform
from connectors.base import PermanentSourceError, SourceConnector
from connectors.tracker import REJECTED_COLUMNS, SHEET, TEMPLATE_COLUMNS, TrackerConnector

TEMPLATES = Path(__file__).resolve().parents[2] / "connectors" / "templates"
TEMPLATE = TEMPLATES / "billing_tracker_template.xlsx"
OCT = Period(2026, 10)
HEADER = [c.header for c in TEMPLATE_COLUMNS]


def _fill_template(path: Path, rows: list[list]) -> Path:
    shutil.copy(TEMPLATE, path)
    wb = load_workbook(path)
    ws = wb[SHEET]
    for r, row in enumerate(rows, start=2):
        for c, value in enumerate(row, start=1):
            ws.cell(row=r, column=c, value=value)
    wb.save(path)
    return path


GOOD_ROWS = [
    ["TRK-1", "K000001", "P000001-1", "Change request 14", 1250.1, datetime(2026, 10, 14), "m.ivanova"],
    ["TRK-2", "K000002", None, "Goodwill credit", "-300.00", "2026-10-20", "j.smith"],
    ["TRK-3", "K000003", "P000003-1", "Courier", "1,234.56", datetime(2026, 9, 30), "a.muller"],
    ["TRK-4", "K000004", None, "Workshop room", 99, datetime(2026, 11, 2), "a.muller"],  # next month
]


def test_template_has_the_documented_sheets_and_header():
    wb = load_workbook(TEMPLATE, read_only=True)
    assert wb.sheetnames == [SHEET, "Instructions"]
    assert [c.value for c in next(wb[SHEET].iter_rows(max_row=1))] == HEADER
    described = [r[0] for r in wb["Instructions"].iter_rows(min_row=6, values_only=True)]
    assert described == HEADER
    docs = (TEMPLATES.parents[1] / "docs" / "TRACKER.md").read_text()
    assert all(f"| {h} |" in docs for h in HEADER)


def test_template_script_reproduces_the_shipped_template(tmp_path):
    spec = importlib.util.spec_from_file_location("make_tracker_template", TEMPLATES / "make_tracker_template.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = module.build(tmp_path / "t.xlsx")
    assert out.read_bytes() == TEMPLATE.read_bytes()


def test_empty_template_reads_as_no_additions(tmp_path):
    path = shutil.copy(TEMPLATE, tmp_path / "empty.xlsx")
    tracker = TrackerConnector(path)
    got = tracker.read("tracker_additions", OCT)
    assert got.empty and list(got.columns) == col.TRACKER_ADDITIONS.names
    assert tracker.rejected.empty


def test_template_round_trip_gives_exact_cents_and_takes_rows_up_to_period_end(tmp_path):
    path = _fill_template(tmp_path / "billing-tracker-2026-10.xlsx", GOOD_ROWS)
    tracker = TrackerConnector(path)
    assert isinstance(tracker, SourceConnector)
    got = tracker.read("tracker_additions", OCT)
    assert tracker.rejected.empty
    # 1250.1 typed as a number -> 125010 cents exactly; "1,234.56" -> 123456; TRK-4 is dated in November.
    expected = pd.DataFrame({
        "addition_id": ["TRK-1", "TRK-2", "TRK-3"], "contract_id": ["K000001", "K000002", "K000003"],
        "project_id": ["P000001-1", None, "P000003-1"],
        "description": ["Change request 14", "Goodwill credit", "Courier"],
        "amount_cents": [125010, -30000, 123456],
        "service_date": pd.to_datetime(["2026-10-14", "2026-10-20", "2026-09-30"]),
        "source": [f"billing-tracker-2026-10.xlsx:Additions:row {n}" for n in (2, 3, 4)],
        "entered_by": ["m.ivanova", "j.smith", "a.muller"],
    })
    pd.testing.assert_frame_equal(got, conform(expected, col.TRACKER_ADDITIONS, origin="expected"))
    november = tracker.read("tracker_additions", OCT.next())
    assert list(november["addition_id"]) == ["TRK-1", "TRK-2", "TRK-3", "TRK-4"]
    assert november["amount_cents"].iloc[3] == 9900


def test_bad_row_is_rejected_with_file_sheet_row_and_column_and_the_others_load(tmp_path):
    rows = [
        GOOD_ROWS[0],
        ["TRK-BAD", None, None, "Broken", "12.345", "31/10/2026", "j.smith"],  # row 3: three problems
        GOOD_ROWS[1],
    ]
    path = _fill_template(tmp_path / "tracker.xlsx", rows)
    tracker = TrackerConnector(path)
    got = tracker.read("tracker_additions", OCT)
    assert list(got["addition_id"]) == ["TRK-1", "TRK-2"]
    assert list(got["source"]) == ["tracker.xlsx:Additions:row 2", "tracker.xlsx:Additions:row 4"]
    rej = tracker.rejected
    assert list(rej.columns) == list(REJECTED_COLUMNS)
    assert set(rej["file"]) == {"tracker.xlsx"} and set(rej["sheet"]) == {"Additions"}
    assert list(rej["row"]) == [3, 3, 3]
    by_col = dict(zip(rej["column"], zip(rej["value"], rej["message"], strict=True), strict=True))
    assert pd.isna(by_col["Contract"][0]) and by_col["Contract"][1] == "value is required"
    assert by_col["Amount"][0] == "12.345" and "more than two decimals" in by_col["Amount"][1]
    assert by_col["Service date"][0] == "31/10/2026" and "not a date" in by_col["Service date"][1]


def test_csv_tracker_same_rules(tmp_path):
    path = tmp_path / "additions.csv"
    path.write_text(
        "\ufeffAddition ID,Contract,Project,Description,Amount,Service date,Entered by,Notes\n"
        'T-1,K1,,Courier,"1,000.05",2026-10-01,m.ivanova,ignored\n'
        "\n"
        "T-2,K2,P2-1,Room,abc,2026-10-02,j.smith,\n"
        "T-3,K3,,Credit,-0.5,2026-10-03,j.smith,\n"
        "T-1,K9,,Duplicate key,1,2026-10-04,j.smith,\n",
        encoding="utf-8")
    tracker = TrackerConnector(path)
    got = tracker.read("tracker_additions", OCT)
    assert list(got["addition_id"]) == ["T-1", "T-3"]
    assert list(got["amount_cents"]) == [100005, -50]
    assert list(got["source"]) == ["additions.csv:csv:row 2", "additions.csv:csv:row 5"]
    rej = tracker.rejected
    assert list(zip(rej["row"], rej["column"], strict=True)) == [(4, "Amount"), (6, "Addition ID")]
    assert "first entered at additions.csv:csv:row 2" in rej["message"].iloc[1]


def test_folder_reads_every_tracker_and_reports_a_file_missing_a_column(tmp_path):
    _fill_template(tmp_path / "a.xlsx", GOOD_ROWS[:1])
    (tmp_path / "b.csv").write_text("Addition ID,Contract,Description,Amount,Service date,Entered by\n"
                                    "T-9,K9,Header lacks Project,1,2026-10-01,x\n")
    (tmp_path / "~$a.xlsx").write_bytes(b"lock file")
    tracker = TrackerConnector(tmp_path)
    got = tracker.read("tracker_additions", OCT)
    assert list(got["addition_id"]) == ["TRK-1"]
    assert list(zip(tracker.rejected["file"], tracker.rejected["row"], tracker.rejected["column"],
                    strict=True)) == [("b.csv", 1, "Project")]


def test_missing_sheet_is_reported_not_raised(tmp_path):
    path = _fill_template(tmp_path / "t.xlsx", GOOD_ROWS[:1])
    wb = load_workbook(path)
    wb[SHEET].title = "Sheet1"
    wb.save(path)
    tracker = TrackerConnector(path)
    assert tracker.read("tracker_additions", OCT).empty
    assert "no sheet 'Additions'" in tracker.rejected["message"].iloc[0]


def test_missing_path_and_unknown_dataset_are_permanent(tmp_path):
    with pytest.raises(PermanentSourceError, match="does not exist"):
        TrackerConnector(tmp_path / "nope.xlsx").read("tracker_additions", OCT)
    with pytest.raises(PermanentSourceError):
        TrackerConnector(tmp_path).read("expenditure_items", OCT)


def test_date_with_time_of_day_is_refused(tmp_path):
    row = [*GOOD_ROWS[0][:5], datetime(2026, 10, 14, 9, 30), "m.ivanova"]
    tracker = TrackerConnector(_fill_template(tmp_path / "t.xlsx", [row]))
    assert tracker.read("tracker_additions", OCT).empty
    assert "time of day" in tracker.rejected["message"].iloc[0]
