"""AR tie-out to the cent through the GE suite: a one-cent break in the control total or the aging is caught.

Open items: DE01/EUR  I1 100000 (due 10-15), credit memo I2 -20000, I3 closed; UK01/GBP I4 30000 (due 08-01).
Open items per unit: DE01/EUR 100000 - 20000 = 80000; UK01/GBP 30000.
"""

import pandas as pd
import pytest

from receivables.aging import aging
from receivables.reconciliation import (
    CashOwners,
    ReconciliationBreak,
    ar_tie_out,
    load_suite,
    reconcile,
    unapplied_cash_aging,
    validate_tie_out,
)

AS_OF = pd.Timestamp("2026-10-31")


def _item(psid, customer, bu, currency, remaining, due, status="OP"):
    return {"payment_schedule_id": psid, "trx_number": f"T-{psid}", "trx_class": "INV", "customer_id": customer,
            "business_unit": bu, "currency": currency, "trx_date": pd.Timestamp("2026-07-01"),
            "due_date": pd.Timestamp(due), "installment": 1, "amount_due_original_cents": remaining,
            "amount_due_remaining_cents": remaining, "amount_in_dispute_cents": 0, "status": status}


ITEMS = pd.DataFrame([
    _item("I1", "C1", "DE01", "EUR", 100000, "2026-10-15"),
    _item("I2", "C1", "DE01", "EUR", -20000, "2026-10-20"),
    _item("I3", "C2", "DE01", "EUR", 0, "2026-09-01", status="CL"),
    _item("I4", "C3", "UK01", "GBP", 30000, "2026-08-01"),
])
CONTROL = pd.DataFrame({"business_unit": ["DE01", "UK01"], "currency": ["EUR", "GBP"], "control_cents": [80000, 30000]})
RECEIPTS = pd.DataFrame({"cash_receipt_id": ["R1", "R2", "R3"], "customer_id": ["C1", None, "C9"],
                         "currency": ["EUR", "EUR", "GBP"], "amount_cents": [5000, 700, 900],
                         "receipt_date": pd.to_datetime(["2026-09-01", "2026-10-30", "2026-10-01"]),
                         "status": ["UNAPP", "UNID", "UNAPP"]})
APPS = pd.DataFrame({"cash_receipt_id": ["R1", "R2", "R3"], "status": ["UNAPP", "UNID", "UNAPP"],
                     "amount_applied_cents": [5000, 700, 900]})
OWNERS = CashOwners(collectors={"C1": "Maria Ivanova", "C9": "Georgi Petrov"})


def test_the_suite_file_is_in_the_ge_format_of_the_project():
    doc = load_suite()
    assert doc["name"] == "ar_reconciliation"
    assert {e["severity"] for e in doc["expectations"]} == {"critical"}
    assert [e["meta"]["rule"] for e in doc["expectations"]] == [
        "control_total_present", "open_items_equal_aging", "aging_buckets_add_up", "open_items_equal_control",
        "unapplied_cash_has_owner"]


def test_tie_out_passes_when_everything_agrees_to_the_cent():
    rep = reconcile(ITEMS, aging(ITEMS, AS_OF), CONTROL, RECEIPTS, APPS, AS_OF, OWNERS)
    t = rep.tie_out.set_index(["business_unit", "currency"])
    assert t.loc[("DE01", "EUR"), "open_items_cents"] == 80000 and t.loc[("UK01", "GBP"), "aging_cents"] == 30000
    assert t.loc[("DE01", "EUR"), "unapplied_cents"] == 5000 and t.loc[("DE01", "EUR"), "unidentified_cents"] == 700
    assert rep.passed, rep.summary_markdown()
    assert len(rep.outcomes) == 5 and all(o.success for o in rep.outcomes)
    rep.raise_for_breaks()


def test_a_one_cent_break_in_the_control_total_blocks_sign_off():
    control = CONTROL.assign(control_cents=[80001, 30000])
    rep = reconcile(ITEMS, aging(ITEMS, AS_OF), control, RECEIPTS, APPS, AS_OF, OWNERS)
    assert [o.rule for o in rep.breaks] == ["open_items_equal_control"]
    assert rep.breaks[0].unexpected_count == 1
    with pytest.raises(ReconciliationBreak) as err:
        rep.raise_for_breaks()
    assert "DE01/EUR: open items 800.00, aging 800.00, control 800.01" in str(err.value)


def test_a_one_cent_break_in_the_aging_is_caught():
    report = aging(ITEMS, AS_OF)
    row = report.index[report["currency"] == "GBP"][0]
    report.loc[row, "total_cents"] += 1
    rep = validate_tie_out(ar_tie_out(ITEMS, report, CONTROL))
    assert sorted(o.rule for o in rep.breaks) == ["aging_buckets_add_up", "open_items_equal_aging"]


def test_missing_control_total_and_unowned_cash_break():
    cash = unapplied_cash_aging(RECEIPTS, APPS, AS_OF, CashOwners(collectors={"C1": "Maria Ivanova"}))
    tie = ar_tie_out(ITEMS, aging(ITEMS, AS_OF), CONTROL.iloc[:1], cash)
    rep = validate_tie_out(tie, cash)
    assert sorted(o.rule for o in rep.breaks) == ["control_total_present", "unapplied_cash_has_owner"]


def test_unapplied_and_unidentified_cash_is_aged_with_an_owner():
    cash = unapplied_cash_aging(RECEIPTS, APPS, AS_OF, OWNERS).set_index("cash_receipt_id")
    # R1 2026-09-01 -> 60 days (31-60), its customer's collector; R2 1 day, unidentified -> the cash team.
    assert cash.loc["R1", ["age_days", "age_bucket", "owner"]].tolist() == [60, "31-60", "Maria Ivanova"]
    assert cash.loc["R2", ["age_days", "age_bucket", "owner"]].tolist() == [1, "0-30", "Cash application team"]
    assert cash.loc["R3", "owner"] == "Georgi Petrov"
    # Once applied (a negative UNAPP row), a receipt leaves the list.
    apps = pd.concat([APPS, pd.DataFrame({"cash_receipt_id": ["R1"], "status": ["UNAPP"],
                                          "amount_applied_cents": [-5000]})])
    assert "R1" not in set(unapplied_cash_aging(RECEIPTS, apps, AS_OF, OWNERS)["cash_receipt_id"])


def test_control_totals_per_currency_only():
    control = pd.DataFrame({"currency": ["EUR", "GBP"], "control_cents": [80000, 30000]})
    tie = ar_tie_out(ITEMS, aging(ITEMS, AS_OF), control)
    assert tie[["currency", "open_items_cents", "control_difference_cents"]].values.tolist() == [
        ["EUR", 80000, 0], ["GBP", 30000, 0]]


def test_a_gl_extract_is_read_to_the_cent_and_bad_rows_are_named():
    from receivables.reconciliation import parse_control_totals

    raw = pd.DataFrame({"business_unit": ["DE01", "UK01"], "currency": ["EUR", "GBP"], "amount": ["800.00", "300"]})
    got = parse_control_totals(raw, "gl.csv")
    assert got[["business_unit", "currency", "control_cents"]].values.tolist() == [["DE01", "EUR", 80000],
                                                                                  ["UK01", "GBP", 30000]]
    with pytest.raises(ValueError, match=r"gl.csv, row 2, column 'amount': '3,00.001' is not an amount"):
        parse_control_totals(raw.assign(amount=["1", "3,00.001"]), "gl.csv")
    with pytest.raises(ValueError, match=r"gl.csv: column\(s\) amount missing"):
        parse_control_totals(raw.drop(columns=["amount"]), "gl.csv")
