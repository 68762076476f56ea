"""Real connectors over local stand-ins of the real systems (`--source emulated`).

For a demo and for the equality test with the embedded run: the sample company is served by the
local Salesforce API emulator (customers, contracts, scope lines, rate card), loaded into an
EBS-shaped SQLite database read by the Oracle connector's statements (projects, expenditure items,
milestones, prior invoice lines), and written as a billing-tracker CSV read by the tracker connector.
Everything goes through the same code paths as production; only the endpoints are local.
"""

from __future__ import annotations

import atexit
import tempfile
import threading
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from billing.money import cents_to_decimal
from billing.periods import Period
from connectors.sample_company import generate


class EmulatedSystems:
    """Starts the stand-ins on the first read of a period; delegates each dataset to its connector."""

    def __init__(self, n_items: int = 10_000, seed: int = 20261, replica=None, full: bool = False):
        self.n_items, self.seed = n_items, seed
        self.replica, self.full = replica, full  # incremental Salesforce pulls into the store
        self.name = f"emulated:items={n_items},seed={seed}"
        self._period: str | None = None
        self._by_dataset: dict = {}
        self._handle = None
        self._dir = None
        # Extract tasks run in threads: the first read of a period starts the stand-ins, once.
        self._lock = threading.Lock()

    def _start(self, period: Period) -> None:
        from connectors.oracle import OracleConnector, create_schema, load_sample
        from connectors.salesforce import SalesforceConnector
        from connectors.salesforce_emulator import start_emulator
        from connectors.tracker import TrackerConnector

        self.stop()
        data = generate(period, self.n_items, self.seed)
        self._dir = tempfile.TemporaryDirectory(prefix="billing-emulated-")
        root = Path(self._dir.name)
        self._handle = start_emulator(data)
        engine = sa.create_engine(f"sqlite:///{root / 'ebs.sqlite'}")
        create_schema(engine)
        load_sample(engine, data)
        tracker = root / "tracker"
        tracker.mkdir()
        write_tracker_csv(data["tracker_additions"], tracker / f"billing-tracker-{period}.csv")
        sf = SalesforceConnector(self._handle.settings(), replica=self.replica, full=self.full)
        ora = OracleConnector(engine=engine)
        trk = TrackerConnector(tracker)
        self._by_dataset = {**dict.fromkeys(sf.datasets, sf), **dict.fromkeys(ora.datasets, ora),
                            **dict.fromkeys(trk.datasets, trk)}
        self._period = str(period)
        atexit.register(self.stop)

    def read(self, dataset: str, period: Period) -> pd.DataFrame:
        with self._lock:
            if self._period != str(period):
                self._start(period)
        return self._by_dataset[dataset].read(dataset, period)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.stop()
            self._handle = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None


def write_tracker_csv(additions: pd.DataFrame, path: Path) -> None:
    """Canonical tracker additions as a tracker CSV in the documented template's columns."""
    pd.DataFrame({
        "Addition ID": additions["addition_id"], "Contract": additions["contract_id"],
        "Project": additions["project_id"], "Description": additions["description"],
        "Amount": [str(cents_to_decimal(int(v))) for v in additions["amount_cents"]],
        "Service date": additions["service_date"].dt.strftime("%Y-%m-%d"), "Entered by": additions["entered_by"],
    }).to_csv(path, index=False)
