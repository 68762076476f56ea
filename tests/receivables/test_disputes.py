"""The dispute register: routing by amount, lifecycle, who resolves, dunning paused, credit-memo requests."""

from datetime import date

import pandas as pd
import pytest

from receivables import disputes as d
from receivables.dunning import evaluate_ladder, load_policy
from store import Store
from store.receivables import CollectionsStore
from tests.receivables.builders import item, items

POLICY = load_policy()  # specialist_limit: EUR 2,500.00, GBP 2,000.00
ON = date(2026, 11, 5)


def test_disputes_up_to_the_limit_stay_with_the_specialist_above_it_escalate():
    assert d.route(2_500_00, "EUR", POLICY.disputes) == d.Routing(1, "specialist")
    assert d.route(2_500_01, "EUR", POLICY.disputes) == d.Routing(2, "manager")
    assert d.route(2_000_01, "GBP", POLICY.disputes).level == 2
    assert d.route(2_500_00, "CHF", POLICY.disputes).level == 1  # "*" default


def test_the_lifecycle_allows_only_its_steps():
    assert d.check_transition("D1", "open", "under_review", level=1, owner="Ann", actor="Ann") == "Ann"
    with pytest.raises(d.DisputeError, match="cannot go from 'open' to 'resolved_credit_memo'; from 'open' it can "
                                             "go to under_review"):
        d.check_transition("D1", "open", "resolved_credit_memo", level=1, owner="Ann", actor="Ann")
    with pytest.raises(d.DisputeError, match="nothing \\(closed\\)"):
        d.check_transition("D1", "closed", "open", level=1, owner="Ann", actor="Ann")
    # Level 2: the owner may not resolve it; another person may.
    with pytest.raises(d.DisputeError, match="escalated \\(level 2\\): self-approval refused"):
        d.check_transition("D1", "under_review", "rejected", level=2, owner="Ann", actor="ann")
    assert d.check_transition("D1", "under_review", "rejected", level=2, owner="Ann", actor="Bob") == "Bob"


@pytest.fixture
def ledger(db_engine):
    cs = CollectionsStore(Store(db_engine))
    cs.load_ledger({"open_items": items(item("A", "2026-09-30", 1_190_00, trx="INV-2026-09-C1-K1-EUR"),
                                        item("B", "2026-09-30", 9_000_00))})
    return cs


def test_a_new_dispute_must_fit_the_undisputed_open_amount(ledger):
    with pytest.raises(d.DisputeError, match="dispute on A: amount_cents 1190001 exceeds the undisputed open "
                                             "amount 119000"):
        ledger.open_dispute("A", 1_190_001, "wrong rate", "Ann", ON, POLICY.disputes)
    ledger.open_dispute("A", 1_000_00, "wrong rate", "Ann", ON, POLICY.disputes)
    with pytest.raises(d.DisputeError, match="exceeds the undisputed open amount 19000"):
        ledger.open_dispute("A", 190_01, "again", "Ann", ON, POLICY.disputes)
    with pytest.raises(d.DisputeError, match="amount_cents 0 must be positive"):
        ledger.open_dispute("A", 0, "x", "Ann", ON, POLICY.disputes)
    with pytest.raises(d.DisputeError, match="not an item of the ledger"):
        ledger.open_dispute("Z", 1, "x", "Ann", ON, POLICY.disputes)


def test_a_credit_memo_resolution_records_a_request_for_the_next_close(ledger):
    did = ledger.open_dispute("A", 119_00, "hours above estimate", "Ann", ON, POLICY.disputes)
    ledger.move_dispute(did, "under_review", "Ann", ON, "asked the project manager")
    ledger.move_dispute(did, "resolved_credit_memo", "Ann", date(2026, 11, 9), "agreed: 1 hour too many")
    ledger.move_dispute(did, "closed", "Ann", date(2026, 11, 10))
    reg = ledger.disputes().set_index("dispute_id").loc[did]
    assert reg["status"] == "closed" and reg["level"] == 1 and reg["resolved_by"] == "Ann"
    assert reg["resolved_on"] == pd.Timestamp("2026-11-09")
    ev = ledger.dispute_events(did)
    assert list(zip(ev["from_status"].fillna("-"), ev["to_status"], strict=True)) == [
        ("-", "open"), ("open", "under_review"), ("under_review", "resolved_credit_memo"),
        ("resolved_credit_memo", "closed")]
    req = ledger.credit_memo_requests()
    assert req[["dispute_id", "trx_number", "amount_cents", "status"]].values.tolist() == [
        [did, "INV-2026-09-C1-K1-EUR", 119_00, "pending"]]
    # The next close bills it as a manual credit on the invoice's contract: 119.00 gross at 19% VAT is
    # a net credit of 100.00 (the close adds the tax back).
    invoices = pd.DataFrame({"document_key": ["INV-2026-09-C1-K1-EUR"], "contract_id": ["K1"], "tax_rate_bp": [1900]})
    add = d.as_tracker_additions(req.assign(requested_on=pd.to_datetime(req["requested_on"])), invoices).iloc[0]
    assert add["contract_id"] == "K1" and add["amount_cents"] == -100_00
    assert add["addition_id"] == f"CMR-{req['request_id'].iloc[0]}"
    ledger.mark_credit_memo_requests_picked_up(req["request_id"].tolist(), "2026-11")
    assert ledger.credit_memo_requests().empty


def test_an_escalated_dispute_is_resolved_by_someone_else(ledger):
    did = ledger.open_dispute("B", 3_000_00, "service not delivered", "Ann", ON, POLICY.disputes)
    assert ledger.disputes().set_index("dispute_id").loc[did, "level"] == 2
    ledger.move_dispute(did, "under_review", "Ann", ON)
    with pytest.raises(d.DisputeError, match="self-approval refused"):
        ledger.move_dispute(did, "rejected", "Ann", ON)
    ledger.move_dispute(did, "rejected", "Credit Manager", ON, "delivered per signed acceptance")
    assert ledger.credit_memo_requests().empty


def test_an_open_dispute_pauses_dunning_on_its_amount_only(ledger):
    ledger.open_dispute("B", 8_960_00, "partly wrong", "Ann", ON, POLICY.disputes)
    reg = d.disputed_by_item(ledger.disputes())
    lad = evaluate_ladder(ledger.read("open_items"), pd.Timestamp(ON), POLICY, disputed=reg).set_index(
        "payment_schedule_id")
    assert lad.loc["B", "disputed_cents"] == 8_960_00 and lad.loc["B", "overdue_cents"] == 40_00
    assert lad.loc["A", "disputed_cents"] == 0
    assert d.customers_in_dispute(ledger.disputes()) == {"C1"}
