"""Payment plans: split, a manager's approval (not the preparer's), missed installments and re-entry."""

from datetime import date

import pandas as pd
import pytest

from receivables import plans
from receivables.cycle import CollectionsState, compute_collections
from receivables.dunning import load_policy
from receivables.interest import load_reference_rates
from store import Store
from store.receivables import CollectionsStore
from tests.receivables.builders import accounts, applications, history, item, items, notes, receipts

POLICY = load_policy()  # payment_plans.grace_days: 5


def test_installments_are_equal_with_the_remainder_on_the_last():
    od = pd.DataFrame({"payment_schedule_id": ["A", "B"], "overdue_cents": [600_00, 400_01]})
    p = plans.propose("C1", "EUR", od, 3, date(2026, 9, 10), every_days=30)
    assert p.total_cents == 1_000_01
    assert p.installments["amount_cents"].tolist() == [333_33, 333_33, 333_35]
    assert p.installments["due_date"].dt.strftime("%Y-%m-%d").tolist() == ["2026-09-10", "2026-10-10", "2026-11-09"]
    assert p.items == ("A", "B")
    with pytest.raises(plans.PlanError, match="installments 13 must be between 1 and 12"):
        plans.propose("C1", "EUR", od, 13, date(2026, 9, 10))


def test_only_someone_other_than_the_preparer_approves_a_pending_plan():
    with pytest.raises(plans.PlanError, match="PP-1: self-approval refused"):
        plans.approve("PP-1", "pending", "Maria Ivanova", " maria ivanova ")
    assert plans.approve("PP-1", "pending", "Maria Ivanova", "Credit Manager") == "Credit Manager"
    with pytest.raises(plans.PlanError, match="status is 'active'"):
        plans.approve("PP-1", "active", "Maria Ivanova", "Credit Manager")


def _plan(status="active"):
    p = pd.DataFrame([{"plan_id": "PP-1", "customer_id": "C1", "currency": "EUR", "total_cents": 900_00,
                       "status": status, "approved_on": pd.Timestamp("2026-09-01")}])
    inst = pd.DataFrame({"plan_id": "PP-1", "seq": [1, 2, 3], "amount_cents": [300_00, 300_00, 300_00],
                         "due_date": pd.to_datetime(["2026-09-10", "2026-10-10", "2026-11-09"])})
    return p, inst


def test_a_missed_installment_is_detected_after_the_grace_days():
    p, inst = _plan()
    rec = receipts(("C1", "EUR", 300_00, "2026-09-08"),           # installment 1
                   ("C1", "EUR", 500_00, "2026-08-20"),           # before the approval: not the plan's
                   ("C1", "EUR", 300_00, "2026-10-01", "REV"),    # reversed: not a payment
                   ("C1", "USD", 300_00, "2026-10-01"))           # another currency
    on_15th = plans.check_installments(p, inst, rec, "2026-10-15", grace_days=5).iloc[0]
    assert on_15th["paid_cents"] == 300_00 and on_15th["missed_seq"] == 0 and on_15th["new_status"] == "active"
    on_16th = plans.check_installments(p, inst, rec, "2026-10-16", grace_days=5).iloc[0]
    assert on_16th["missed_seq"] == 2 and on_16th["new_status"] == "broken"
    assert on_16th["due_cents"] == 600_00


def test_a_plan_paid_in_full_is_completed():
    p, inst = _plan()
    rec = receipts(("C1", "EUR", 450_00, "2026-09-08"), ("C1", "EUR", 450_00, "2026-10-09"))
    assert plans.check_installments(p, inst, rec, "2026-10-20", 5).iloc[0]["new_status"] == "completed"


def test_a_broken_plan_puts_its_items_back_on_the_ladder_at_the_level_reached():
    # Item A had Reminder 2 on 1 September, then went into the plan. On 15 October the plan holds; on
    # 16 October installment 2 is 6 days late: the plan breaks and A gets the Final notice (level 3).
    p, inst = _plan()
    data = {"open_items": items(item("A", "2026-07-31", 900_00)),
            "cash_receipts": receipts(("C1", "EUR", 300_00, "2026-09-08")), "receipt_applications": applications(),
            "collection_accounts": accounts({"customer_id": "C1"}), "account_notes": notes()}
    state = CollectionsState(history=history(("A", 2, "2026-09-01")), plans=p, plan_installments=inst,
                             plan_items=pd.DataFrame({"plan_id": ["PP-1"], "payment_schedule_id": ["A"]}))
    rates = load_reference_rates()
    holding = compute_collections(data, state, "2026-10-15", POLICY, rates)
    assert holding.ladder.set_index("payment_schedule_id").loc["A", "reason"] == "payment_plan"
    broken = compute_collections(data, state, "2026-10-16", POLICY, rates)
    assert broken.plan_review.iloc[0]["new_status"] == "broken"
    a = broken.ladder.set_index("payment_schedule_id").loc["A"]
    assert a["level_reached"] == 2 and a["proposed_level"] == 3
    assert broken.letters.iloc[0]["level_code"] == "final_notice"


def test_plans_in_the_store_are_pending_until_approved(db_engine):
    cs = CollectionsStore(Store(db_engine))
    od = pd.DataFrame({"payment_schedule_id": ["A"], "overdue_cents": [900_00]})
    plan_id = cs.create_plan(plans.propose("C1", "EUR", od, 3, date(2026, 9, 10)), "Maria Ivanova", date(2026, 9, 1))
    assert cs.plans().set_index("plan_id").loc[plan_id, "status"] == "pending"
    assert plans.items_under_active_plans(cs.plans(), cs.plan_items()) == set()
    with pytest.raises(plans.PlanError, match="self-approval refused"):
        cs.decide_plan(plan_id, "Maria Ivanova", date(2026, 9, 1))
    cs.decide_plan(plan_id, "Credit Manager", date(2026, 9, 2))
    row = cs.plans().set_index("plan_id").loc[plan_id]
    assert row["status"] == "active" and row["approved_by"] == "Credit Manager"
    assert row["approved_on"] == pd.Timestamp("2026-09-02")
    assert plans.items_under_active_plans(cs.plans(), cs.plan_items()) == {"A"}
    assert cs.plan_installments()["amount_cents"].tolist() == [300_00, 300_00, 300_00]
