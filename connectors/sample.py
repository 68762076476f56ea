"""The sample company as a source connector (the embedded default)."""

from __future__ import annotations

import threading

import pandas as pd

from billing import columns as col
from billing.periods import Period
from connectors.sample_company import FaultRates, generate


class SampleCompanyConnector:
    """Serves the seeded sample company. `SampleCompanyConnector(n_items=10_000, seed=20261)`."""

    datasets = tuple(col.INPUT_DATASETS)

    def __init__(self, n_items: int = 10_000, seed: int = 20261):
        self.n_items = n_items
        self.seed = seed
        self.name = f"sample:items={n_items},seed={seed}"
        self._cache: dict[str, dict[str, pd.DataFrame]] = {}
        # Extract tasks read the datasets concurrently: the first generates the company, the others wait
        # for it (without the lock each of the nine generated its own copy).
        self._lock = threading.Lock()

    def read(self, dataset: str, period: Period) -> pd.DataFrame:
        key = str(period)
        with self._lock:
            if key not in self._cache:
                self._cache = {key: generate(period, self.n_items, self.seed)}
            return self._cache[key][dataset]

    def seeded_faults(self, period: Period) -> dict[str, dict]:
        """The data-quality faults the generator seeded, by the expectation that must catch them.

        Duplicates are the generator's copies of an earlier item under a new id ending in "D"
        (connectors/sample_company.py); `not_a_repeat_entry` must quarantine every one of them.
        """
        items = self.read("expenditure_items", period)
        dup = set(items.loc[items["item_id"].str.endswith("D"), "item_id"])
        return {"not_a_repeat_entry": {"dataset": "expenditure_items", "seeded_rate": FaultRates().duplicate,
                                       "records": len(items), "keys": dup}}
