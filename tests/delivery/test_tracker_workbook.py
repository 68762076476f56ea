"""The billing tracker: status per customer and contract, totals, and comments that survive the next run."""

from datetime import datetime
from decimal import Decimal

import pandas as pd
from openpyxl import load_workbook

from billing.periods import Period
from delivery.tracker_workbook import contract_status, read_comments, tracker_path, update_tracker_workbook

OCT = Period(2026, 10)


def bl(line_id, customer, contract, billed, unbilled=0, reason=None, service_date="2026-10-15", currency="EUR"):
    return {"line_id": line_id, "customer_id": customer, "contract_id": contract, "currency": currency,
            "billed_cents": billed, "unbilled_cents": unbilled, "amount_cents": billed + unbilled,
            "reason": reason, "service_date": pd.Timestamp(service_date)}


def period_lines():
    return pd.DataFrame([
        bl("l1", "C1", "K1", 75_000),                                    # billed, handed off
        bl("l2", "C1", "K1", 25_000),
        bl("l3", "C1", "K2", 50_000),                                    # billed on a document awaiting approval
        bl("l4", "C2", "K3", 0, 30_000, "credit_hold", "2026-10-11"),     # held 300.00, 20 days old
        bl("l5", "C2", "K3", 0, 10_000, "awaiting_approval", "2026-09-16"),  # held 100.00, 45 days old
        bl("l6", "C2", "K3", 40_000),                                    # and some billed
        bl("l7", "C3", "K4", 0, 20_000, "invoice_frequency", "2026-10-21"),  # deferred (quarterly), 10 days
        bl("l8", "C3", "K5", 0, 0, "non_billable"),                      # nothing to bill: no row
        bl("l9", "C4", "K6", 12_000, currency="GBP"),                    # rejected by the approver
    ])


def status_frame():
    line_documents = pd.Series({"l1": "D1", "l2": "D1", "l3": "D2", "l6": "D3", "l9": "D4"})
    doc_status = {"D1": "handed_off", "D2": "pending_approval", "D3": "prepared", "D4": "rejected"}
    contracts = pd.DataFrame({"contract_id": ["K1", "K2", "K3", "K4", "K6"],
                              "contract_name": ["Advisory", "Rollout", "Support", "Training", "Audit"]})
    customers = pd.DataFrame({"customer_id": ["C1", "C2", "C3", "C4"],
                              "customer_name": ["Acme", "Borealis", "Cobalt", "Danube"]})
    return contract_status(period_lines(), line_documents, doc_status, OCT, customers, contracts)


def test_each_contract_gets_its_amounts_status_reason_and_age():
    s = status_frame().set_index("contract_id")
    assert list(s.index) == ["K1", "K2", "K3", "K4", "K6"]               # K5 has nothing to bill
    assert s.loc["K1", ["status", "billed_cents", "pending_approval_cents", "held_cents"]].tolist() == [
        "billed", 100_000, 0, 0]
    assert s.loc["K2", ["status", "pending_approval_cents", "billed_cents"]].tolist() == [
        "pending_approval", 50_000, 0]
    assert s.loc["K2", "reason"] == "awaiting approval: D2"
    # Held 300.00 + 100.00 = 400.00, reasons by amount; oldest held line: 30 Sep 2026 - 16 Sep = 45 days.
    assert s.loc["K3", ["status", "held_cents", "billed_cents", "oldest_unbilled_days"]].tolist() == [
        "held", 40_000, 40_000, 45]
    assert s.loc["K3", "reason"] == "credit_hold, awaiting_approval"
    assert s.loc["K4", ["status", "unbilled_cents", "reason", "oldest_unbilled_days"]].tolist() == [
        "unbilled", 20_000, "invoice_frequency", 10]
    assert s.loc["K6", ["status", "held_cents", "reason"]].tolist() == ["held", 12_000, "approval_rejected"]
    assert pd.isna(s.loc["K1", "oldest_unbilled_days"])
    assert s.loc["K3", ["customer_name", "contract_name"]].tolist() == ["Borealis", "Support"]


def test_the_workbook_shows_amounts_and_totals_per_currency(tmp_path):
    path = update_tracker_workbook(tracker_path(tmp_path, OCT), status_frame(), OCT, datetime(2026, 11, 2, 9, 30))
    assert path.name == "billing_tracker_2026-10.xlsx"
    wb = load_workbook(path)
    ws = wb["Status"]
    header = [c.value for c in ws[1]]
    assert header[0] == "Customer ID" and header[-1] == "Comments"
    row = {r[2]: r for r in ws.iter_rows(min_row=2, values_only=True)}
    assert row["K3"][5] == "held" and Decimal(str(row["K3"][10])) == Decimal("400")
    totals = {r[0]: r for r in wb["Totals"].iter_rows(values_only=True) if r and r[0] in ("EUR", "GBP")}
    # EUR: billed 1,000.00 + 400.00 = 1,400.00; pending 500.00; held 400.00; unbilled 200.00.
    assert totals["EUR"][1:6] == (4, 1, 1, 1, 1)      # contracts; held, pending_approval, unbilled, billed
    assert [Decimal(str(x)) for x in totals["EUR"][6:10]] == [Decimal("1400"), Decimal("500"), Decimal("400"),
                                                              Decimal("200")]
    assert Decimal(str(totals["GBP"][8])) == Decimal("120")


def test_a_comment_typed_between_two_runs_survives_the_next_update(tmp_path):
    path = tracker_path(tmp_path, OCT)
    update_tracker_workbook(path, status_frame(), OCT)

    # The billing team types two comments and adds a sheet of its own.
    wb = load_workbook(path)
    ws = wb["Status"]
    comments_col = [c.value for c in ws[1]].index("Comments") + 1
    for r in range(2, ws.max_row + 1):
        if ws.cell(r, 3).value == "K3":
            ws.cell(r, comments_col, "Called AP on 3 Nov: release expected next week - MI")
        if ws.cell(r, 3).value == "K4":
            ws.cell(r, comments_col, "Quarterly: bill in December")
    wb.create_sheet("Team notes")["A1"] = "keep me"
    wb.save(path)

    # Next run: K3 is now billed, K4 is gone, and a new contract sorts first (every row moves).
    nxt = status_frame()
    nxt = nxt[nxt["contract_id"] != "K4"].copy()
    nxt.loc[nxt["contract_id"] == "K3", ["status", "reason", "held_cents", "billed_cents"]] = [
        "billed", None, 0, 80_000]
    new = nxt.iloc[[0]].assign(customer_id="C0", contract_id="K0", customer_name="Aardvark")
    update_tracker_workbook(path, pd.concat([new, nxt], ignore_index=True), OCT)

    wb = load_workbook(path)
    rows = {r[2]: r for r in wb["Status"].iter_rows(min_row=2, values_only=True)}
    assert rows["K3"][5] == "billed"
    assert rows["K3"][-1] == "Called AP on 3 Nov: release expected next week - MI"
    assert rows["K4"][5] == "not_in_this_run" and rows["K4"][-1] == "Quarterly: bill in December"
    assert rows["K0"][-1] is None and rows["K1"][-1] is None
    assert wb["Team notes"]["A1"].value == "keep me"
    assert read_comments(path) == {("C2", "K3"): "Called AP on 3 Nov: release expected next week - MI",
                                   ("C3", "K4"): "Quarterly: bill in December"}
    assert [p.name for p in tmp_path.iterdir()] == [path.name]          # no temporary file left


def test_names_from_the_sources_that_look_like_formulas_stay_text(tmp_path):
    status = status_frame()
    status.loc[status["contract_id"] == "K1", "customer_name"] = "=cmd|'/c calc'!A1"
    wb = load_workbook(update_tracker_workbook(tracker_path(tmp_path, OCT), status, OCT))
    cells = [c for row in wb["Status"].iter_rows() for c in row if c.value == "=cmd|'/c calc'!A1"]
    assert cells and all(c.data_type == "s" for c in cells)
