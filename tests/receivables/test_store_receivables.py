"""Collections tables on SQLite and PostgreSQL: ledger, actions (once per key), service requests."""

from datetime import date

import pandas as pd

from store import Store
from store.receivables import CollectionsStore
from tests.receivables.builders import item, items


def test_the_ledger_loads_once_per_key_and_reads_back_in_the_canonical_shape(db_engine):
    cs = CollectionsStore(Store(db_engine))
    assert not cs.ledger_loaded()
    df = items(item("A", "2026-10-01", 123_45), item("CM", "2026-10-01", -10_00, cls="CM"))
    assert cs.load_ledger({"open_items": df}) == {"open_items": 2, "cash_receipts": 0, "receipt_applications": 0,
                                                  "collection_accounts": 0, "account_notes": 0}
    assert cs.load_ledger({"open_items": df})["open_items"] == 0
    pd.testing.assert_frame_equal(cs.read("open_items"), df.sort_values("payment_schedule_id").reset_index(drop=True))


def test_an_action_is_recorded_once_per_key_and_feeds_the_ladder_history(db_engine):
    cs = CollectionsStore(Store(db_engine))
    row = {"action_key": "letter:C1:2026-11-05", "customer_id": "C1", "as_of": date(2026, 11, 5), "kind": "letter",
           "level": 2, "level_code": "reminder_2", "channel": "email", "state": "prepared"}
    its = pd.DataFrame({"payment_schedule_id": ["A", "B"], "level": [2, 1], "currency": "EUR",
                        "overdue_cents": [100_00, 50_00]})
    assert cs.insert_action(row, its) is True
    assert cs.insert_action(row, its) is False
    assert cs.ladder_history().empty            # prepared is not reached: only what went out counts
    cs.set_action(row["action_key"], state="sent")
    h = cs.ladder_history().sort_values("payment_schedule_id")
    assert h["level"].tolist() == [2, 1] and (h["action_date"] == pd.Timestamp("2026-11-05")).all()


def test_a_service_request_records_intent_then_delivery_and_counts_attempts(db_engine):
    cs = CollectionsStore(Store(db_engine))
    first = cs.begin_service_request("K1", "C1", "soft_disconnection", "service:C1:2026-11-05", date(2026, 11, 5),
                                     "run-1")
    assert first["state"] == "started" and first["attempts"] == 1
    again = cs.begin_service_request("K1", "C1", "soft_disconnection", "service:C1:2026-11-05", date(2026, 11, 5),
                                     "run-2")
    assert again["attempts"] == 2 and again["run_id"] == "run-2"
    cs.complete_service_request("K1", "queue/K1.json")
    done = cs.begin_service_request("K1", "C1", "soft_disconnection", "service:C1:2026-11-05", date(2026, 11, 5),
                                    "run-3")
    assert done["state"] == "delivered" and done["attempts"] == 2
    assert len(cs.service_requests()) == 1
