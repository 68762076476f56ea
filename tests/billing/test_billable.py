"""Each billing rule with amounts computed by hand in the test."""

import pandas as pd
import pytest

from billing.billable import compute_billing_lines
from billing.periods import Period
from tests.billing.builders import (
    D,
    company,
    contract,
    customer,
    expense,
    item,
    prior,
    project,
    rate,
    scope,
)

OCT = Period(2026, 10)


def lines_of(data, period=OCT, **kw):
    return compute_billing_lines(data, period, **kw).set_index("source_id")


def test_labor_bills_hours_times_the_rate_in_force_on_the_item_date():
    data = company(
        rates=[rate(bill_rate_cents=10_000, effective_to=D("2026-10-15")),
               rate(bill_rate_cents=11_000, effective_from=D("2026-10-16"))],
        items=[item("A", quantity_milli=7500, expenditure_date=D("2026-10-15")),   # 7.5 h x 100.00 = 750.00
               item("B", quantity_milli=2250, expenditure_date=D("2026-10-16"))])  # 2.25 h x 110.00 = 247.50
    L = lines_of(data)
    assert L.loc["A", "amount_cents"] == 75_000 and L.loc["A", "unit_price_cents"] == 10_000
    assert L.loc["B", "amount_cents"] == 24_750 and L.loc["B", "unit_price_cents"] == 11_000
    assert L["billed_cents"].sum() == 99_750 and L["reason"].isna().all()


def test_labor_rounds_half_up_per_item():
    # 0.125 h x 123.45 = 15.43125 -> 15.43 ; 0.1 h x 123.45 = 12.345 -> 12.35
    data = company(rates=[rate(bill_rate_cents=12_345)],
                   items=[item("A", quantity_milli=125), item("B", quantity_milli=100)])
    L = lines_of(data)
    assert L.loc["A", "amount_cents"] == 1543
    assert L.loc["B", "amount_cents"] == 1235


def test_labor_without_a_rate_is_a_missing_bill_rate_exception():
    data = company(items=[item("A", role="Partner")])  # the rate card only has Consultant
    L = lines_of(data)
    assert L.loc["A", "reason"] == "missing_bill_rate"
    assert L.loc["A", "billed_cents"] == 0 and L.loc["A", "cost_cents"] == 5000


def test_rate_not_yet_effective_is_missing():
    data = company(rates=[rate(effective_from=D("2026-10-20"))], items=[item("A", expenditure_date=D("2026-10-19"))])
    assert lines_of(data).loc["A", "reason"] == "missing_bill_rate"


def test_role_specific_scope_line_wins_over_the_all_roles_line():
    data = company(scope_lines=[scope(), scope(scope_line_id="K1-L2", role="Consultant")], items=[item("A")])
    assert lines_of(data).loc["A", "scope_line_id"] == "K1-L2"


def test_expenses_bill_at_cost_plus_markup_or_at_cost():
    with_markup = company(scope_lines=[scope(scope_line_id="K1-E", billing_type="expense", markup_bp=1500)],
                          items=[expense("X", 12_345)])           # 123.45 x 1.15 = 141.9675 -> 141.97
    at_cost = company(scope_lines=[scope(scope_line_id="K1-E", billing_type="expense")],
                      items=[expense("X", 12_345)])
    assert lines_of(with_markup).loc["X", "amount_cents"] == 14_197
    assert lines_of(at_cost).loc["X", "amount_cents"] == 12_345


def test_expense_without_an_expense_scope_line_is_out_of_scope():
    L = lines_of(company(items=[expense("X", 1000)]))
    assert L.loc["X", "reason"] == "out_of_scope"


def test_labor_on_a_fixed_fee_contract_is_covered_by_the_fee():
    data = company(scope_lines=[scope(billing_type="fixed_fee", amount_cents=300_000, installments=3,
                                      start_date=D("2026-10-01"))], items=[item("A")])
    L = lines_of(data)
    assert L.loc["A", "reason"] == "covered_by_fixed_fee" and L.loc["A", "amount_cents"] == 0


def test_fixed_fee_installments_split_evenly_remainder_last_and_catch_up():
    # 1,000.01 in 3 installments from August: 333.33, 333.33, 333.35. August was billed; September was
    # missed, so October bills installments 2 and 3.
    data = company(scope_lines=[scope(billing_type="fixed_fee", amount_cents=100_001, installments=3,
                                      start_date=D("2026-08-01"))],
                   prior_lines=[prior("K1-L1:1", 33_333, source_kind="fixed_fee", period="2026-08")])
    L = lines_of(data)
    assert L.loc["K1-L1:2", "amount_cents"] == 33_333
    assert L.loc["K1-L1:3", "amount_cents"] == 33_335
    assert "K1-L1:1" not in L.index
    assert 33_333 * 2 + 33_335 == 100_001


def test_milestone_bills_once_when_completed_on_or_before_period_end():
    from tests.billing.builders import company as mk
    ms = [
        {"milestone_id": "M1", "scope_line_id": "K1-L1", "description": "Design", "amount_cents": 500_000,
         "completed_date": D("2026-10-31")},
        {"milestone_id": "M2", "scope_line_id": "K1-L1", "description": "Build", "amount_cents": 700_000,
         "completed_date": D("2026-09-10")},   # billed in September
        {"milestone_id": "M3", "scope_line_id": "K1-L1", "description": "Test", "amount_cents": 900_000,
         "completed_date": D("2026-11-01")},   # after the period
        {"milestone_id": "M4", "scope_line_id": "K1-L1", "description": "Go-live", "amount_cents": 100_000,
         "completed_date": None},
    ]
    data = mk(scope_lines=[scope(billing_type="milestone")], milestones=ms,
              prior_lines=[prior("M2", 700_000, source_kind="milestone")])
    L = lines_of(data)
    assert list(L.index) == ["M1"] and L.loc["M1", "billed_cents"] == 500_000


def test_recurring_fee_is_prorated_by_calendar_days():
    # Starts 11 October: 21 of 31 days. 3,100.00 x 21/31 = 2,100.00; 1,000.00 x 21/31 = 677.419... -> 677.42
    data = company(scope_lines=[
        scope(scope_line_id="K1-R1", billing_type="recurring", amount_cents=310_000, start_date=D("2026-10-11")),
        scope(scope_line_id="K1-R2", billing_type="recurring", amount_cents=100_000, start_date=D("2026-10-11")),
        scope(scope_line_id="K1-R3", billing_type="recurring", amount_cents=100_000, start_date=D("2026-01-01"))])
    L = lines_of(data)
    assert L.loc["K1-R1:2026-10", "amount_cents"] == 210_000
    assert L.loc["K1-R2:2026-10", "amount_cents"] == 67_742
    assert L.loc["K1-R3:2026-10", "amount_cents"] == 100_000


def test_recurring_fee_ending_mid_month_and_february_leap_year():
    data = company(contracts=[contract(start_date=D("2024-01-01"))], scope_lines=[
        scope(billing_type="recurring", amount_cents=290_000, start_date=D("2024-01-01"), end_date=D("2024-02-10"))])
    L = lines_of(data, Period(2024, 2))
    assert L.loc["K1-L1:2024-02", "amount_cents"] == 100_000   # 2,900.00 x 10/29


def test_cap_bills_headroom_and_holds_excess():
    # NTE 1,000.00; 700.00 billed before -> 300.00 headroom. Items 200, 200, 100 in date order:
    # 200 billed, 100 of the next billed and 100 over cap, the last 100 over cap.
    data = company(scope_lines=[scope(not_to_exceed_cents=100_000)],
                   prior_lines=[prior("old", 70_000)],
                   items=[item("A", quantity_milli=2000, expenditure_date=D("2026-10-05")),
                          item("B", quantity_milli=2000, expenditure_date=D("2026-10-10")),
                          item("C", quantity_milli=1000, expenditure_date=D("2026-10-20"))])
    L = lines_of(data)
    assert (L.loc["A", "billed_cents"], L.loc["A", "unbilled_cents"]) == (20_000, 0)
    assert (L.loc["B", "billed_cents"], L.loc["B", "unbilled_cents"], L.loc["B", "reason"]) == (10_000, 10_000,
                                                                                                "over_cap")
    assert (L.loc["C", "billed_cents"], L.loc["C", "reason"]) == (0, "over_cap")
    assert L["billed_cents"].sum() == 30_000 and L["unbilled_cents"].sum() == 20_000


def test_held_lines_do_not_consume_cap_headroom():
    data = company(scope_lines=[scope(not_to_exceed_cents=10_000)],
                   items=[item("A", expenditure_date=D("2026-10-01"), bill_hold=True),
                          item("B", expenditure_date=D("2026-10-02"))])
    L = lines_of(data)
    assert L.loc["A", "reason"] == "bill_hold"
    assert L.loc["B", "billed_cents"] == 10_000 and pd.isna(L.loc["B", "reason"])


@pytest.mark.parametrize("overrides, reason", [
    (dict(customers=[customer(credit_hold=True)]), "credit_hold"),
    (dict(customers=[customer(po_required=True, po_number=None)]), "missing_po"),
    (dict(customers=[customer(invoice_frequency="quarterly")]), "invoice_frequency"),
    (dict(contracts=[contract(end_date=D("2026-10-10"))]), "outside_contract_term"),
    (dict(contracts=[contract(currency="BGN")]), "invalid_currency"),
])
def test_customer_and_contract_level_holds(overrides, reason):
    L = lines_of(company(items=[item("A")], **overrides))
    assert L.loc["A", "reason"] == reason and L.loc["A", "billed_cents"] == 0 and L.loc["A", "unbilled_cents"] == 10_000


def test_contract_po_satisfies_a_po_requirement():
    data = company(customers=[customer(po_required=True)], contracts=[contract(po_number="PO-7")], items=[item("A")])
    assert pd.isna(lines_of(data).loc["A", "reason"])


def test_quarterly_customer_is_billed_at_quarter_end():
    data = company(customers=[customer(invoice_frequency="quarterly")],
                   items=[item("A", expenditure_date=D("2026-09-15"))])
    assert lines_of(data, Period(2026, 9)).loc["A", "billed_cents"] == 10_000


@pytest.mark.parametrize("flags, reason", [
    (dict(approved=False), "awaiting_approval"),
    (dict(bill_hold=True), "bill_hold"),
    (dict(billable=False), "non_billable"),
    (dict(billed_period="2026-09"), "previously_billed"),
    (dict(project_id="P-UNKNOWN"), "out_of_scope"),
])
def test_item_level_reasons(flags, reason):
    assert lines_of(company(items=[item("A", **flags)])).loc["A", "reason"] == reason


def test_precedence_item_reason_before_customer_hold():
    # Unapproved time of a customer on credit hold: the approval is the first thing to fix.
    data = company(customers=[customer(credit_hold=True)], items=[item("A", approved=False)])
    assert lines_of(data).loc["A", "reason"] == "awaiting_approval"


def test_store_credit_hold_applies_like_the_source_flag():
    L = lines_of(company(items=[item("A")]), extra_credit_holds={"C1"})
    assert L.loc["A", "reason"] == "credit_hold"


def test_duplicate_keeps_the_first_and_flags_the_repeat():
    L = lines_of(company(items=[item("A"), item("B")]))
    assert pd.isna(L.loc["A", "reason"]) and L.loc["B", "reason"] == "duplicate"


def test_quarantined_item_is_not_billed_and_keeps_its_cost():
    L = lines_of(company(items=[item("A"), item("B", person_id="E2")]), quarantine={"expenditure_items": {"B"}})
    assert L.loc["B", "reason"] == "data_quality" and L.loc["B", "cost_cents"] == 5000


def test_reversal_of_an_item_billed_earlier_credits_what_was_billed():
    # Billed in September: 4 h for 412.50 (an old rate). Full reversal credits 412.50 exactly; a
    # partial reversal of 1 h credits 412.50 x 1/4 = 103.125 -> 103.13.
    data = company(prior_lines=[prior("OLD1", 41_250, quantity_milli=4000), prior("OLD2", 41_250,
                                                                                   quantity_milli=4000, line_no=2)],
                   items=[item("R1", quantity_milli=-4000, raw_cost_cents=-20_000, adjusts_item_id="OLD1",
                               adjustment_type="reversal", person_id="E7"),
                          item("R2", quantity_milli=-1000, raw_cost_cents=-5000, adjusts_item_id="OLD2",
                               adjustment_type="reversal", person_id="E8")])
    L = lines_of(data)
    assert L.loc["R1", "billed_cents"] == -41_250 and L.loc["R1", "credits_prior_billing"]
    assert L.loc["R2", "billed_cents"] == -10_313


def test_credit_of_billed_item_is_issued_even_after_the_contract_ended():
    data = company(contracts=[contract(end_date=D("2026-09-30"))], prior_lines=[prior("OLD1", 10_000)],
                   items=[item("R1", quantity_milli=-1000, adjusts_item_id="OLD1", adjustment_type="reversal",
                               raw_cost_cents=-5000)])
    assert lines_of(data).loc["R1", "billed_cents"] == -10_000


def test_tracker_addition_is_billed_and_keeps_its_source():
    add = {"addition_id": "T1", "contract_id": "K1", "project_id": None, "description": "Workshop room",
           "amount_cents": 25_000, "service_date": D("2026-10-03"), "source": "tracker.xlsx:Additions:row 2",
           "entered_by": "m.ivanova"}
    L = lines_of(company(additions=[add]))
    assert L.loc["T1", "billed_cents"] == 25_000
    assert "tracker.xlsx:Additions:row 2" in L.loc["T1", "description"]


def test_every_item_becomes_exactly_one_line():
    data = company(items=[item(f"I{i}", person_id=f"E{i}") for i in range(20)])
    L = compute_billing_lines(data, OCT)
    assert len(L) == 20 and L["line_id"].is_unique
    assert (L["amount_cents"] == L["billed_cents"] + L["unbilled_cents"]).all()


def test_project_fixture_is_used():
    assert project()["contract_id"] == "K1"
