"""Extract tasks: transient faults are retried, permanent ones are not; Salesforce pulls share a limit."""

from __future__ import annotations

import threading
import time
import uuid

import pandas as pd
import pytest
from prefect import flow
from prefect.client.orchestration import get_client

from billing.periods import Period
from connectors.base import PermanentSourceError, TransientSourceError
from connectors.factory import Sources
from tasks.extract import extract_dataset

OCT = Period(2026, 10)
pytestmark = pytest.mark.usefixtures("prefect_harness")


class Flaky:
    """Fails ``failures`` times with ``error``, then serves a one-row frame."""

    name = "flaky"

    def __init__(self, failures: int, error: type[Exception]):
        self.failures, self.error, self.calls = failures, error, 0

    def read(self, dataset, period):
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error(f"{dataset}: call {self.calls} failed")
        return pd.DataFrame({"x": [1]})


fast_extract = extract_dataset.with_options(retry_delay_seconds=0, retry_jitter_factor=None)


@flow
def pull(sources: Sources, datasets: list[str]):
    futures = [fast_extract.submit(sources, d, OCT) for d in datasets]
    return [f.result() for f in futures]


def test_transient_faults_are_retried_until_the_pull_succeeds():
    src = Flaky(3, TransientSourceError)
    (frame,) = pull(Sources({"customers": src}), ["customers"])
    assert src.calls == 4 and len(frame) == 1


def test_retries_run_out_with_the_last_error():
    src = Flaky(10, TransientSourceError)
    with pytest.raises(TransientSourceError, match="call 5 failed"):
        pull(Sources({"customers": src}), ["customers"])
    assert src.calls == 5   # the first try and 4 retries


def test_a_permanent_error_is_not_retried():
    src = Flaky(1, PermanentSourceError)
    with pytest.raises(PermanentSourceError, match="call 1 failed"):
        pull(Sources({"customers": src}), ["customers"])
    assert src.calls == 1


class CountingSalesforce:
    """Records how many pulls run at once."""

    name = "salesforce"

    def __init__(self, limit_name: str):
        self.api_concurrency_limit = limit_name
        self.active, self.most, self.lock = 0, 0, threading.Lock()

    def read(self, dataset, period):
        with self.lock:
            self.active += 1
            self.most = max(self.most, self.active)
        time.sleep(0.4)
        with self.lock:
            self.active -= 1
        return pd.DataFrame({"x": [1]})


def test_salesforce_pulls_hold_a_global_concurrency_slot():
    name = f"salesforce-api-{uuid.uuid4().hex[:6]}"
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
    sf = CountingSalesforce(name)
    datasets = ["customers", "contracts", "scope_lines", "rate_card"]
    pull(Sources(dict.fromkeys(datasets, sf)), datasets)
    assert sf.most == 1

    unlimited = CountingSalesforce(f"no-such-limit-{uuid.uuid4().hex[:6]}")  # not on the server: no cap
    pull(Sources(dict.fromkeys(datasets, unlimited)), datasets)
    assert unlimited.most > 1
