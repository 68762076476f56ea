"""The sample company's AR history: deterministic, consistent, and with a real case for every step."""

from datetime import date

import pandas as pd
import pytest

from connectors.sample_ar import generate_ar, load_history
from receivables.cycle import compute_collections
from receivables.dunning import load_policy
from receivables.interest import load_reference_rates
from store import Store
from store.receivables import CollectionsStore

AS_OF = date(2026, 11, 5)


@pytest.fixture(scope="module")
def ar():
    return generate_ar(AS_OF)


def test_same_arguments_same_history(ar):
    again = generate_ar(AS_OF)
    for name in ("open_items", "cash_receipts", "receipt_applications", "account_notes"):
        pd.testing.assert_frame_equal(ar[name], again[name])


def test_remaining_amounts_are_original_less_applications(ar):
    items, apps = ar["open_items"], ar["receipt_applications"]
    applied = apps.groupby("payment_schedule_id")["amount_applied_cents"].sum()
    inv = items[items["trx_class"] == "INV"].set_index("payment_schedule_id")
    expected = inv["amount_due_original_cents"] - applied.reindex(inv.index).fillna(0).astype("int64")
    assert (inv["amount_due_remaining_cents"] == expected).all()
    assert (inv["status"] == (inv["amount_due_remaining_cents"] != 0).map({True: "OP", False: "CL"})).all()
    months = items["trx_date"].dt.to_period("M").nunique()
    assert months == 24 and items["trx_date"].max() < pd.Timestamp(AS_OF)


def test_every_collections_step_has_real_cases(ar):
    s = CollectionsStore(Store("sqlite:///:memory:"))
    load_history(s, ar)
    from tasks.collections import read_state

    data = {n: s.read(n) for n in ("open_items", "cash_receipts", "receipt_applications", "collection_accounts",
                                   "account_notes")}
    r = compute_collections(data, read_state.fn(s), pd.Timestamp(AS_OF), load_policy(), load_reference_rates())
    assert set(r.letters["level"]) == {1, 2, 3}
    assert (r.service["blocked_reason"] == "").any() and (r.service["blocked_reason"] != "").any()
    assert set(r.ladder["reason"]) >= {"proposed", "not_yet_due", "do_not_dun", "top_of_ladder"}
    assert r.plan_review["new_status"].tolist() == ["broken"]
    assert not r.escalations.empty and not r.holds.empty and not r.interest.empty
    assert (ar["open_items"]["amount_in_dispute_cents"] > 0).any() and len(ar["disputes"]) > 0
    assert (ar["open_items"]["trx_class"] == "CM").any()
    assert (ar["open_items"]["amount_due_remaining_cents"] < ar["open_items"]["amount_due_original_cents"]).any()
    assert load_history(s, ar) == {}  # loaded once
