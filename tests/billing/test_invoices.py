"""Invoice batches: grouping per customer requirements, tax, due dates, credit memos, transfers."""

import pandas as pd

from billing.billable import compute_billing_lines
from billing.invoices import build_batch
from billing.periods import Period
from tests.billing.builders import D, company, customer, item, prior, project, rate

OCT = Period(2026, 10)


def batch_of(data):
    lines = compute_billing_lines(data, OCT)
    return build_batch(lines, data["customers"], data["contracts"], OCT), lines


def two_projects(grouping):
    return company(customers=[customer(invoice_grouping=grouping, payment_terms_days=45, po_number="PO-1")],
                   projects=[project(), project(project_id="P2")],
                   items=[item("A", quantity_milli=7500),                          # 750.00
                          item("B", project_id="P2", quantity_milli=3333, person_id="E2")])  # 333.30


def test_per_project_grouping_makes_one_invoice_per_project():
    b, _ = batch_of(two_projects("per_project"))
    assert sorted(b.documents["document_key"]) == ["INV-2026-10-C1-P1-EUR", "INV-2026-10-C1-P2-EUR"]


def test_consolidated_grouping_makes_one_invoice_with_tax_on_the_total():
    b, _ = batch_of(two_projects("consolidated"))
    d = b.documents.iloc[0]
    assert d["document_key"] == "INV-2026-10-C1-ALL-DE01-EUR"
    # net 1,083.30; 19% = 205.827 -> 205.83; gross 1,289.13
    assert (d["net_cents"], d["tax_cents"], d["gross_cents"]) == (108_330, 20_583, 128_913)
    assert d["due_date"] == D("2026-12-15") and d["issue_date"] == D("2026-10-31")  # 31 Oct + 45 days
    assert d["po_number"] == "PO-1"


def test_document_keys_and_hashes_are_deterministic():
    b1, _ = batch_of(two_projects("per_contract"))
    b2, _ = batch_of(two_projects("per_contract"))
    pd.testing.assert_frame_equal(b1.documents, b2.documents)


def test_printed_lines_sum_items_rounded_one_by_one():
    # Three items of 0.1 h at 123.45: 12.345 -> 12.35 each; the printed line is 37.05, not 37.04.
    data = company(rates=[rate(bill_rate_cents=12_345)],
                   items=[item(f"I{i}", quantity_milli=100, person_id=f"E{i}") for i in range(3)])
    b, _ = batch_of(data)
    line = b.document_lines.iloc[0]
    assert (line["quantity_milli"], line["amount_cents"], line["item_count"]) == (300, 3705, 3)


def test_credit_of_prior_billing_goes_on_a_credit_memo_not_the_invoice():
    data = company(prior_lines=[prior("OLD", 20_000, quantity_milli=2000)],
                   items=[item("A"), item("R", quantity_milli=-2000, raw_cost_cents=-10_000, adjusts_item_id="OLD",
                                          adjustment_type="reversal", person_id="E9")])
    b, _ = batch_of(data)
    docs = b.documents.set_index("document_key")
    assert docs.loc["INV-2026-10-C1-K1-EUR", "net_cents"] == 10_000
    assert docs.loc["CM-2026-10-C1-K1-EUR", "net_cents"] == -20_000
    assert docs.loc["CM-2026-10-C1-K1-EUR", "tax_cents"] == -3_800


def test_invoice_with_negative_net_is_issued_as_credit_memo():
    add = {"addition_id": "T1", "contract_id": "K1", "project_id": None, "description": "Goodwill credit",
           "amount_cents": -50_000, "service_date": D("2026-10-03"), "source": "t.xlsx:Additions:row 2",
           "entered_by": "x"}
    b, _ = batch_of(company(items=[item("A")], additions=[add]))
    assert b.documents["document_type"].tolist() == ["credit_memo"]
    assert b.documents["net_cents"].tolist() == [-40_000]


def test_cost_transfer_is_its_own_document_and_moves_the_billing():
    # A: 1 h on P1 billed in September for 100.00, transferred this month to P2 (same contract).
    data = company(projects=[project(), project(project_id="P2")],
                   prior_lines=[prior("A", 10_000)],
                   items=[item("A-out", quantity_milli=-1000, raw_cost_cents=-5000, adjusts_item_id="A",
                               adjustment_type="transfer_out"),
                          item("A-in", project_id="P2", adjusts_item_id="A", adjustment_type="transfer_in")])
    b, _ = batch_of(data)
    t = b.cost_transfers.iloc[0]
    assert (t["document_key"], t["from_project_id"], t["to_project_id"]) == ("CT-2026-10-A", "P1", "P2")
    assert (t["cost_cents"], t["credited_cents"], t["charged_cents"]) == (5000, -10_000, 10_000)
    assert set(b.documents["document_type"]) == {"invoice", "credit_memo"}
