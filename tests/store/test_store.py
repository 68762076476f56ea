"""The store on SQLite and PostgreSQL: documents, exactly-once hand-off, holds, watermarks."""

from datetime import UTC, date, datetime

import pandas as pd
import pytest

from billing.close import compute_close
from billing.periods import Period
from billing_cycle.handoff import hand_off, idempotency_key, plan_preview, record_documents
from connectors.sample_company import generate
from connectors.targets import FileDropTarget
from store import Store

OCT = Period(2026, 10)


@pytest.fixture(scope="module")
def close_result():
    return compute_close(generate(OCT, 1500, 11), OCT)


def _run(store, run_id="r1"):
    store.start_run(run_id, str(OCT), "sample")


def test_documents_round_trip_to_the_cent(db_engine, close_result):
    store = Store(db_engine)
    _run(store)
    plan = record_documents(store, close_result.batch, str(OCT), "r1")
    docs = store.documents(period=str(OCT))
    assert len(docs) == len(close_result.batch.documents) == len(plan.to_deliver)
    assert docs["net_cents"].sum() == close_result.batch.documents["net_cents"].sum()
    key = docs["document_key"].iloc[0]
    lines = store.document_lines(key)
    assert lines["amount_cents"].sum() == docs.set_index("document_key").loc[key, "net_cents"]


def test_rerun_with_same_content_hands_off_nothing_new(db_engine, close_result, tmp_path):
    store = Store(db_engine)
    target = FileDropTarget(tmp_path / "drop")
    _run(store)
    plan = record_documents(store, close_result.batch, str(OCT), "r1")
    first = hand_off(store, target, plan.to_deliver, "r1").delivered
    assert len(first) == len(close_result.batch.documents)
    _run(store, "r2")
    plan2 = record_documents(store, close_result.batch, str(OCT), "r2")
    assert plan2.nothing_new and len(plan2.unchanged) == len(first)
    assert hand_off(store, target, plan2.to_deliver, "r2").delivered == []
    assert len(list((tmp_path / "drop").glob("*.json"))) == len(first)


def test_crash_between_delivery_and_record_does_not_deliver_twice(db_engine, close_result, tmp_path):
    store = Store(db_engine)
    target = FileDropTarget(tmp_path / "drop")
    _run(store)
    plan = record_documents(store, close_result.batch, str(OCT), "r1")
    key = plan.to_deliver[0]
    doc = store.documents().set_index("document_key").loc[key]
    ikey = idempotency_key(target.name, key, doc["content_hash"])
    # Simulate the crash: intent recorded and file delivered, completion never recorded.
    store.begin_handoff(key, target.name, ikey, "r1")
    target.deliver({**doc.to_dict(), "document_key": key}, store.document_lines(key), ikey)
    delivered = hand_off(store, target, [key], "r2").delivered
    assert delivered == [key]
    h = store.handoffs()
    assert len(h) == 1 and h.iloc[0]["attempts"] == 2 and h.iloc[0]["state"] == "delivered"
    assert len(list((tmp_path / "drop").glob("*.json"))) == 1


def test_changed_source_after_handoff_issues_reversal_and_revision(db_engine, tmp_path):
    store = Store(db_engine)
    target = FileDropTarget(tmp_path / "drop")
    data = generate(OCT, 600, 5)
    r1 = compute_close(data, OCT)
    _run(store)
    hand_off(store, target, record_documents(store, r1.batch, str(OCT), "r1").to_deliver, "r1")
    # A timecard is corrected in the source: one item's hours change.
    items = data["expenditure_items"].copy()
    billed = r1.lines[(r1.lines["billed_cents"] > 0) & (r1.lines["source_kind"] == "labor")]
    item_id = billed["source_id"].iloc[0]
    items.loc[items["item_id"] == item_id, "quantity_milli"] += 1000
    r2 = compute_close({**data, "expenditure_items": items}, OCT)
    _run(store, "r2")
    plan = record_documents(store, r2.batch, str(OCT), "r2")
    new = plan.new_documents.set_index("document_key")
    old_key = r1.batch.line_documents[f"labor:{item_id}"]
    assert f"CM-REV-{old_key}" in new.index and f"{old_key}-R2" in new.index
    rev = new.loc[f"CM-REV-{old_key}"]
    assert rev["net_cents"] == -r1.batch.documents.set_index("document_key").loc[old_key, "net_cents"]
    hand_off(store, target, plan.to_deliver, "r2")
    docs = store.documents().set_index("document_key")
    assert docs.loc[old_key, "status"] == "superseded"
    # The original file downstream was never edited; a reversal and a revision were added.
    assert (tmp_path / "drop" / f"{old_key}.json").exists()
    assert len(list((tmp_path / "drop").glob("*.json"))) == len(r1.batch.documents) + 2


def test_dry_run_preview_writes_nothing(db_engine, close_result):
    store = Store(db_engine)
    plan = plan_preview(store, close_result.batch, str(OCT))
    assert len(plan.to_deliver) == len(close_result.batch.documents)
    assert store.documents().empty


def test_holds_set_and_released_are_read_by_the_close(db_engine):
    store = Store(db_engine)
    store.set_hold("C00001", "over credit limit", "collections")
    assert store.active_holds() == {"C00001"}
    assert store.release_hold("C00001", "collections", "paid") == 1
    assert store.active_holds() == set()


def test_watermarks_keep_the_latest_value_in_utc(db_engine):
    store = Store(db_engine)
    assert store.get("salesforce", "Account") is None
    t1 = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)
    store.set("salesforce", "Account", t1)
    store.set("salesforce", "Account", t1.replace(hour=13))
    assert store.get("salesforce", "Account") == t1.replace(hour=13)


def test_unbilled_snapshot_is_replaced_per_period(db_engine, close_result):
    store = Store(db_engine)
    _run(store)
    store.replace_unbilled(str(OCT), "r1", close_result.unbilled)
    store.replace_unbilled(str(OCT), "r1", close_result.unbilled)
    snap = store.unbilled(str(OCT))
    assert len(snap) == len(close_result.unbilled)
    assert snap["unbilled_cents"].sum() == close_result.unbilled["unbilled_cents"].sum()
    assert isinstance(snap, pd.DataFrame)


def test_unbilled_snapshot_keeps_missing_values_dates_and_text_exactly(db_engine, close_result):
    """The snapshot goes to the driver in bulk (no per-row type processing): what comes back is what went in."""
    store = Store(db_engine)
    _run(store)
    cols = [c for c in close_result.unbilled.columns]
    rows = close_result.unbilled.head(3).copy()
    rows["line_id"] = ["L-1", "L-2 «Ünïcode» 'quoted'", "L-3"]
    rows["service_date"] = pd.to_datetime(["2026-10-31", None, "2025-02-28"])
    rows["customer_id"] = pd.array(["C00001", None, "C00003"], dtype=rows["customer_id"].dtype)
    rows["unbilled_cents"] = [9_007_199_254_740_993, -1, 0]  # beyond a float's exact range
    store.replace_unbilled(str(OCT), "r1", rows[cols])
    back = store.unbilled(str(OCT)).set_index("line_id").loc[list(rows["line_id"])]
    assert list(back["unbilled_cents"]) == [9_007_199_254_740_993, -1, 0]
    assert list(back["service_date"]) == [date(2026, 10, 31), None, date(2025, 2, 28)]
    assert back["customer_id"].isna().tolist() == [False, True, False]
    assert back["customer_id"].iloc[[0, 2]].tolist() == ["C00001", "C00003"]
    assert set(back["run_id"]) == {"r1"} and set(back["period"]) == {str(OCT)}


class FlakyDrop(FileDropTarget):
    """A file drop whose storage fails once, on its n-th delivery (a full disk, a lost mount)."""

    def __init__(self, folder, fail_at: int):
        super().__init__(folder)
        self.calls, self.fail_at = 0, fail_at

    def deliver(self, document, lines, idempotency_key):
        self.calls += 1
        if self.calls == self.fail_at:
            raise OSError(28, "No space left on device")
        return super().deliver(document, lines, idempotency_key)


def test_a_failure_mid_chunk_records_what_was_delivered_and_the_retry_sends_only_the_rest(
        db_engine, close_result, tmp_path):
    store = Store(db_engine)
    _run(store)
    keys = record_documents(store, close_result.batch, str(OCT), "r1").to_deliver
    assert len(keys) == 5
    flaky = FlakyDrop(tmp_path / "drop", fail_at=4)  # chunks of 2: fails on the 2nd of the 2nd chunk
    with pytest.raises(OSError, match="No space left"):
        hand_off(store, flaky, keys, "r1", chunk=2)
    docs = store.documents(keys=keys).set_index("document_key")
    assert list(docs.loc[keys[:3], "status"]) == ["handed_off"] * 3   # delivered before the failure
    assert set(docs.loc[keys[3:], "status"]) == {"prepared"}
    h = store.handoffs().set_index("document_key")
    assert list(h.loc[keys[:3], "state"]) == ["delivered"] * 3
    assert h.loc[keys[3], "state"] == "started" and keys[4] not in h.index  # its chunk never started

    retry = FlakyDrop(tmp_path / "drop", fail_at=0)
    assert hand_off(store, retry, keys, "r1", chunk=2).delivered == keys[3:]
    assert retry.calls == 2                                           # nothing delivered twice
    assert set(store.documents(keys=keys)["status"]) == {"handed_off"}
    h = store.handoffs().set_index("document_key")
    assert list(h.loc[keys, "attempts"]) == [1, 1, 1, 2, 1] and set(h["state"]) == {"delivered"}
    assert sorted(p.stem for p in (tmp_path / "drop").glob("*.json")) == sorted(keys)


def test_document_lines_by_keys_and_by_period_match_one_document_at_a_time(db_engine, close_result):
    store = Store(db_engine)
    _run(store)
    record_documents(store, close_result.batch, str(OCT), "r1")
    keys = list(store.documents()["document_key"])
    every = store.document_lines(period=str(OCT))
    assert len(every) == len(close_result.batch.document_lines)
    some = list(reversed(keys[:4]))
    by_keys = store.document_lines(keys=some)
    assert list(dict.fromkeys(by_keys["document_key"])) == sorted(some)
    one_by_one = pd.concat([store.document_lines(k) for k in sorted(some)], ignore_index=True)
    def plain(df):  # an all-empty column comes back as object, others as text: compare the values
        return df.astype(object).where(df.notna(), None)
    pd.testing.assert_frame_equal(plain(by_keys), plain(one_by_one))
    records = store.document_line_records(some)
    assert [len(records[k]) for k in some] == [len(store.document_lines(k)) for k in some]
    assert all(r["document_key"] == k for k in some for r in records[k])


def test_unbilled_by_customer_adds_up_the_snapshot_in_the_database(db_engine, close_result):
    store = Store(db_engine)
    _run(store)
    store.replace_unbilled(str(OCT), "r1", close_result.unbilled)
    by_customer = store.unbilled_by_customer(str(OCT))
    expected = (close_result.unbilled.groupby(["customer_id", "currency"])["unbilled_cents"].sum()
                .astype("int64").reset_index())
    assert by_customer["unbilled_cents"].dtype == "int64"
    assert (by_customer.astype({"customer_id": object, "currency": object}).values.tolist()
            == expected.astype({"customer_id": object, "currency": object}).values.tolist())
    assert store.unbilled_by_customer("2026-09").empty
