"""The cash tables on SQLite and PostgreSQL: runs round-trip to the cent, reversals, corrections, write-off
batches, exports and replies exactly once, inquiries logged once, aging snapshots replaced per period."""

import pandas as pd

from receivables.cash_application import apply_cash, correct_receipt
from receivables.provision import AGING_SNAPSHOTS
from store import Store
from store.cash import CashStore
from tests.receivables.test_cash_application import IBAN1, ITEMS, PAYERS, entry, statement


def _store(db_engine) -> CashStore:
    return CashStore(Store(db_engine))


def test_a_run_round_trips_to_the_cent_and_a_later_return_reverses_it(db_engine):
    cs = _store(db_engine)
    assert cs.seed_payer_map(PAYERS) == len(PAYERS) and cs.seed_payer_map(PAYERS) == 0
    first = apply_cash(statement(entry("1", 45000, iban=IBAN1, text="INV-1003", e2e="E1"),
                                 entry("2", 248500, iban=IBAN1, text="INV-1002"),
                                 entry("3", 999, name="Nobody Ltd")), ITEMS, cs.payer_map())
    cs.record_run(first, "run-1")
    f = {"file_id": "f" * 64, "filename": "oct.xml", "source_format": "camt.053.001.08", "entries": 3,
         "new_receipts": 3}
    assert cs.record_statement_files([f], "run-1") == 0 and cs.record_statement_files([f], "run-2") == 1
    receipts, apps = cs.receipts(), cs.applications()
    assert receipts["amount_cents"].sum() == 45000 + 248500 + 999
    assert apps.groupby("cash_receipt_id")["amount_applied_cents"].sum().to_dict() == {
        "BR-1:N-1": 45000, "BR-2:N-2": 248500, "BR-3:N-3": 999}
    assert apps.loc[apps["status"] == "ACC", "amount_applied_cents"].tolist() == [5000]
    assert cs.write_offs("proposed")["amount_cents"].tolist() == [1500]
    assert cs.statement_file("f" * 64)["new_receipts"] == 3
    items = cs.effective_open_items(ITEMS).set_index("payment_schedule_id")
    assert items.loc["PS-1003-1", "status"] == "CL" and items.loc["PS-1002-1", "amount_due_remaining_cents"] == 1500

    back = apply_cash(statement(entry("R", -45000, iban=IBAN1, e2e="E1", is_return=True)),
                      cs.effective_open_items(ITEMS), cs.payer_map(), prior_receipts=cs.receipts(),
                      prior_applications=cs.applications())
    cs.record_run(back, "run-2")
    status = cs.receipts().set_index("cash_receipt_id")["status"]
    assert status["BR-1:N-1"] == "REV" and status["BR-R:N-R"] == "REV"
    items = cs.effective_open_items(ITEMS).set_index("payment_schedule_id")
    assert items.loc["PS-1003-1", "status"] == "OP" and items.loc["PS-1003-1", "amount_due_remaining_cents"] == 40000


def test_a_correction_is_recorded_and_teaches_the_payer_map(db_engine):
    cs = _store(db_engine)
    cs.seed_payer_map(PAYERS)
    res = apply_cash(statement(entry("7", 77700, name="Zeta Holdings Corp", iban="FR7630006000011234567890189")),
                     ITEMS, cs.payer_map())
    cs.record_run(res, "run-1")
    receipt = cs.receipts().iloc[0]
    assert receipt["status"] == "UNID"
    rows, learned = correct_receipt(receipt, cs.applications(), ITEMS, "C1", [("PS-1003-1", 40000)])
    cs.record_correction("BR-7:N-7", "C1", [("PS-1003-1", 40000)], rows, learned, "Elena Dimitrova", "called them")
    r = cs.receipts().iloc[0]
    assert (r["status"], r["customer_id"]) == ("UNAPP", "C1")
    assert cs.applications()["amount_applied_cents"].sum() == 77700
    pm = cs.payer_map().set_index(["kind", "value"])
    assert pm.loc[("iban", "FR7630006000011234567890189"), "customer_id"] == "C1"
    assert pm.loc[("name", "zeta holdings"), "source"] == "correction"
    assert cs.corrections()["corrected_by"].tolist() == ["Elena Dimitrova"]


def test_write_off_batch_approval_and_export_happen_once(db_engine):
    cs = _store(db_engine)
    res = apply_cash(statement(entry("2", 248500, iban=IBAN1, text="INV-1002")), ITEMS, PAYERS)
    cs.record_run(res, "run-1")
    batch = cs.open_write_off_batch("WOB-2026-10-1", "2026-10", "Ivan Petrov")
    assert batch["amount_cents"].tolist() == [1500] and set(batch["status"]) == {"pending_approval"}
    assert cs.open_write_off_batch("WOB-2026-10-2", "2026-10", "Ivan Petrov").empty  # nothing left to batch
    cs.decide_write_off_batch("WOB-2026-10-1", "approved", "Petra Koleva")
    items = cs.effective_open_items(ITEMS).set_index("payment_schedule_id")
    assert items.loc["PS-1002-1", "amount_due_remaining_cents"] == 0 and items.loc["PS-1002-1", "status"] == "CL"
    first = cs.begin_export("write-off-WOB-2026-10-1", "write_off_batch", "file_drop", "k1", "run-1")
    again = cs.begin_export("write-off-WOB-2026-10-1", "write_off_batch", "file_drop", "k1", "run-2")
    assert (first["attempts"], again["attempts"]) == (1, 2)
    cs.complete_export("write-off-WOB-2026-10-1", "/drop/WOB-2026-10-1.csv")
    cs.mark_write_off_batch_handed_off("WOB-2026-10-1")
    assert cs.export_state("write-off-WOB-2026-10-1")["state"] == "delivered"
    assert cs.write_off_batches()["status"].tolist() == ["handed_off"]


def test_inquiries_and_replies_are_recorded_once(db_engine):
    cs = _store(db_engine)
    row = {"inquiry_key": "<m1@acme.example>", "sender": "ap@acme.example", "subject": "copy", "category":
           "invoice_copy_request", "action": "send_invoice_copy", "owner": "Billing team", "status": "planned",
           "received": pd.Timestamp("2026-10-20 09:30", tz="UTC"), "amount_cents": None}
    assert cs.log_inquiry(row, "run-1") and not cs.log_inquiry(row, "run-2")
    cs.set_inquiry("<m1@acme.example>", status="done")
    assert cs.inquiries()["status"].tolist() == ["done"]
    r1 = cs.begin_reply("k" * 40, "<m1@acme.example>", "invoice_copy", "ap@acme.example", "<reply@x>")
    cs.complete_reply("k" * 40)
    r2 = cs.begin_reply("k" * 40, "<m1@acme.example>", "invoice_copy", "ap@acme.example", "<reply@x>")
    assert r1["state"] == "started" and r2["state"] == "sent" and r2["attempts"] == 1


def test_aging_snapshots_are_replaced_per_period(db_engine):
    cs = _store(db_engine)
    snap = pd.DataFrame([{"period": "2026-10", "customer_id": "C1", "business_unit": "DE01", "customer_class": "smb",
                          "currency": "EUR", "bucket": "1-30", "balance_cents": 12345}], columns=AGING_SNAPSHOTS.names)
    assert cs.replace_aging_snapshot("2026-10", snap, "r1") == 1
    assert cs.replace_aging_snapshot("2026-10", snap.assign(balance_cents=500), "r1", only_if_missing=True) == 0
    cs.replace_aging_snapshot("2026-10", snap.assign(balance_cents=500), "r2")
    assert cs.aging_snapshots()["balance_cents"].tolist() == [500]
