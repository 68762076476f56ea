"""Credit exposure (open AR + unbilled) against the limit; holds set, released, and read by the close."""

import pandas as pd
import pytest

from billing.billable import compute_billing_lines
from billing.periods import Period
from receivables.credit import HOLD_ACTOR, exposure, hold_decisions
from receivables.datasets import ReceivablesInputError, check_inputs
from store import Store
from tests.billing import builders as b
from tests.receivables.builders import accounts, item, items


def _unbilled(*rows):
    return pd.DataFrame(rows, columns=["customer_id", "currency", "unbilled_cents"])


def test_exposure_is_open_ar_plus_unbilled_against_the_limit():
    ar = items(item("A", "2026-10-01", 300_00), item("B", "2026-10-20", 200_00),
               item("CM", "2026-10-05", -50_00, cls="CM"),
               item("X", "2026-10-01", 0, original=999_00),                  # closed: no exposure
               item("U", "2026-10-01", 70_00, currency="USD"),               # other currency: beside it
               item("C", "2026-10-01", 1_000_00, customer="C2"))
    acc = accounts({"customer_id": "C1", "credit_limit_cents": 500_00},
                   {"customer_id": "C2", "credit_limit_cents": 1_000_00},
                   {"customer_id": "C3", "credit_limit_cents": None})
    exp = exposure(ar, _unbilled(("C1", "EUR", 60_00), ("C1", "EUR", 40_00), ("C3", "EUR", 9_999_999_00)),
                   acc).set_index("customer_id")
    # C1: 300.00 + 200.00 - 50.00 = 450.00 open, 100.00 unbilled: 550.00 > 500.00
    assert exp.loc["C1", "open_ar_cents"] == 450_00 and exp.loc["C1", "unbilled_cents"] == 100_00
    assert exp.loc["C1", "exposure_cents"] == 550_00 and exp.loc["C1", "headroom_cents"] == -50_00
    assert bool(exp.loc["C1", "over_limit"]) and exp.loc["C1", "other_currency_open"] == "USD"
    # C2: exactly at the limit is within it; C3: no limit, never over.
    assert exp.loc["C2", "exposure_cents"] == 1_000_00 and not exp.loc["C2", "over_limit"]
    assert not exp.loc["C3", "over_limit"]


def test_holds_are_set_over_the_limit_and_released_only_when_collections_set_them():
    exp = pd.DataFrame({
        "customer_id": ["C1", "C2", "C3", "C4"], "currency": "EUR",
        "credit_limit_cents": pd.array([500_00, 500_00, 500_00, 500_00], dtype="Int64"),
        "open_ar_cents": [550_00, 600_00, 100_00, 100_00], "unbilled_cents": [0, 0, 0, 0],
        "exposure_cents": [550_00, 600_00, 100_00, 100_00], "over_limit": [True, True, False, False]})
    held = pd.DataFrame({"customer_id": ["C2", "C3", "C4"], "set_by": [HOLD_ACTOR, HOLD_ACTOR, "Ann (manual)"]})
    got = hold_decisions(exp, held).set_index("customer_id")
    assert got["action"].to_dict() == {"C1": "set", "C3": "release"}   # C2 already held, C4's is Ann's
    assert got.loc["C1", "reason"] == ("exposure 550.00 EUR (open AR 550.00 + unbilled 0.00) exceeds the credit "
                                       "limit 500.00 EUR")


def test_a_negative_limit_or_an_unknown_currency_is_refused_naming_record_and_field():
    acc = accounts({"customer_id": "C1", "credit_limit_cents": -1})
    with pytest.raises(ReceivablesInputError, match=r"collection_accounts customer_id=C1, column "
                                                    r"'credit_limit_cents': credit limit -1 is negative"):
        check_inputs({"collection_accounts": acc})
    bad = items(item("A", "2026-10-01", 100_00)).assign(currency="XYZ")
    with pytest.raises(ReceivablesInputError, match=r"open_items payment_schedule_id=A, column 'currency': unknown "
                                                    r"currency 'XYZ'"):
        check_inputs({"open_items": bad})


def test_a_hold_set_by_collections_stops_the_close_billing_the_customer(db_engine):
    store = Store(db_engine)
    exp = exposure(items(item("A", "2026-10-01", 900_00)), _unbilled(),
                   accounts({"customer_id": "C1", "credit_limit_cents": 500_00}))
    for r in hold_decisions(exp, pd.DataFrame(columns=["customer_id", "set_by"])).itertuples():
        store.set_hold(r.customer_id, r.reason, set_by=HOLD_ACTOR)
    assert store.active_holds() == {"C1"}
    data = b.company(items=[b.item("I1")])
    lines = compute_billing_lines(data, Period(2026, 10), extra_credit_holds=store.active_holds())
    assert lines["reason"].tolist() == ["credit_hold"] and lines["billed_cents"].tolist() == [0]
    # Paid down: the hold is released, and the next close bills the line (1 h x 100.00).
    exp = exposure(items(item("A", "2026-10-01", 0, original=900_00)), _unbilled(),
                   accounts({"customer_id": "C1", "credit_limit_cents": 500_00}))
    for r in hold_decisions(exp, pd.DataFrame({"customer_id": ["C1"], "set_by": [HOLD_ACTOR]})).itertuples():
        store.release_hold(r.customer_id, released_by=HOLD_ACTOR, reason=r.reason)
    lines = compute_billing_lines(data, Period(2026, 10), extra_credit_holds=store.active_holds())
    assert lines["reason"].isna().all() and lines["billed_cents"].tolist() == [100_00]
