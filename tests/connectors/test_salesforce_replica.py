"""Incremental Salesforce pulls kept in the project's store: replica and watermark move together."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from billing.periods import Period
from connectors.base import TransientSourceError
from connectors.salesforce import SalesforceConnector
from connectors.salesforce_emulator import start_emulator
from connectors.sample_company import generate
from store import Store

FAST = dict(retry_base_delay_seconds=0.0, retry_max_delay_seconds=0.0, bulk_poll_seconds=0.01)


@pytest.fixture
def small():
    data = generate(Period(2026, 10), 2000, 3)
    with start_emulator(data) as handle:
        yield handle, data


@pytest.mark.parametrize("threshold", [10_000, 0], ids=["rest", "bulk2"])
def test_second_close_pulls_only_changes_and_still_sees_every_record(small, db_engine, threshold):
    handle, data = small
    store = Store(db_engine)
    c = SalesforceConnector(handle.settings(**FAST, bulk_threshold=threshold), replica=store)
    first = c.read("customers")
    pd.testing.assert_frame_equal(first, data["customers"])
    assert store.get("salesforce", "Account") == datetime(2026, 1, 1, tzinfo=UTC)

    key = data["customers"]["customer_id"].iloc[4]
    stamp = handle.touch("customers", key, customer_name="Renamed Ltd", po_required=True)
    second = SalesforceConnector(handle.settings(**FAST, bulk_threshold=threshold), replica=store).read("customers")
    assert len(second) == len(first)                          # the whole object, from the replica
    changed = second.set_index("customer_id").loc[key]
    assert changed["customer_name"] == "Renamed Ltd" and bool(changed["po_required"])
    expected = data["customers"].set_index("customer_id").drop(index=key)
    pd.testing.assert_frame_equal(second.set_index("customer_id").drop(index=key), expected)
    assert store.get("salesforce", "Account") == stamp


def test_a_failed_pull_moves_neither_replica_nor_watermark(small, db_engine):
    handle, data = small
    store = Store(db_engine)
    SalesforceConnector(handle.settings(**FAST), replica=store).read("contracts")
    mark = store.get("salesforce", "Contract")
    key = data["contracts"]["contract_id"].iloc[0]
    handle.touch("contracts", key, po_number="PO-CHANGED")
    handle.inject("503", times=50)
    with pytest.raises(TransientSourceError):
        SalesforceConnector(handle.settings(**FAST, retry_attempts=2), replica=store).read("contracts")
    handle.clear_faults()
    assert store.get("salesforce", "Contract") == mark
    replica = pd.DataFrame(store.replica("salesforce", "Contract"))
    assert "PO-CHANGED" not in set(replica.astype(str).stack())
    again = SalesforceConnector(handle.settings(**FAST), replica=store).read("contracts")
    assert again.set_index("contract_id").loc[key, "po_number"] == "PO-CHANGED"
    assert store.get("salesforce", "Contract") > mark


def test_full_pull_replaces_the_replica(small, db_engine):
    handle, data = small
    store = Store(db_engine)
    store.apply_changes("salesforce", "Account", [{"Id": "001STALE", "Name": "Deleted in Salesforce"}],
                        [datetime(2025, 1, 1, tzinfo=UTC)], ["001STALE"], datetime(2030, 1, 1, tzinfo=UTC))
    full = SalesforceConnector(handle.settings(**FAST), replica=store, full=True).read("customers")
    pd.testing.assert_frame_equal(full, data["customers"])
    assert "001STALE" not in {r["Id"] for r in store.replica("salesforce", "Account")}
