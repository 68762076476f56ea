"""The one place that chooses which connector serves each dataset of a run.

A source spec is a short string, so it fits a CLI flag, a flow parameter and prefect.yaml:
- ``sample`` or ``sample:items=10000,seed=20261`` — the seeded sample company (embedded default);
- ``files:PATH`` — a folder of CSV/Parquet files in the canonical schema;
- ``emulated`` or ``emulated:items=N,seed=S`` — the real Salesforce, Oracle and tracker connectors
  over local stand-ins serving the sample company (see connectors/emulated.py);
- ``live`` — Salesforce, Oracle and tracker connectors configured from SALESFORCE_*, ORACLE_* and
  BILLING_TRACKER_PATH (read when the run starts, never at import).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from billing import columns as col
from billing.periods import Period
from connectors.base import PermanentSourceError, SourceConnector
from connectors.files import FilesConnector
from connectors.sample import SampleCompanyConnector

DEMO_ITEMS = 10_000


@dataclass
class Sources:
    """Which connector serves which dataset."""

    by_dataset: dict[str, SourceConnector]

    @property
    def description(self) -> str:
        names = sorted({c.name for c in self.by_dataset.values()})
        return ", ".join(names)

    def read(self, dataset: str, period: Period) -> pd.DataFrame:
        return self.by_dataset[dataset].read(dataset, period)


def _kv(text: str) -> dict[str, str]:
    out = {}
    for part in filter(None, text.split(",")):
        if "=" not in part:
            raise PermanentSourceError(f"source option {part!r} is not key=value")
        k, v = part.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def build_sources(spec: str = "sample") -> Sources:
    """Connectors for a source spec; raises PermanentSourceError for an unknown or bad spec."""
    kind, _, rest = spec.partition(":")
    if kind == "sample":
        opts = _kv(rest)
        try:
            conn = SampleCompanyConnector(n_items=int(opts.get("items", DEMO_ITEMS)),
                                          seed=int(opts.get("seed", 20261)))
        except ValueError as exc:
            raise PermanentSourceError(f"bad sample source option in {spec!r}: {exc}") from exc
        return Sources(dict.fromkeys(col.INPUT_DATASETS, conn))
    if kind == "files":
        if not rest:
            raise PermanentSourceError("files source needs a folder: --source files:PATH")
        conn = FilesConnector(rest)
        return Sources(dict.fromkeys(col.INPUT_DATASETS, conn))
    if kind == "emulated":
        from connectors.emulated import EmulatedSystems

        opts = _kv(rest)
        conn = EmulatedSystems(n_items=int(opts.get("items", DEMO_ITEMS)), seed=int(opts.get("seed", 20261)))
        return Sources(dict.fromkeys(col.INPUT_DATASETS, conn))
    if kind == "live":
        import os

        from connectors.oracle import OracleConnector, OracleSettings
        from connectors.salesforce import SalesforceConnector, SalesforceSettings
        from connectors.tracker import TrackerConnector

        sf = SalesforceConnector(SalesforceSettings.from_env())
        ora = OracleConnector(OracleSettings.from_env())
        tracker_path = os.environ.get("BILLING_TRACKER_PATH")
        if not tracker_path:
            raise PermanentSourceError("live source needs BILLING_TRACKER_PATH (a tracker file or folder)")
        trk = TrackerConnector(tracker_path)
        by = {**dict.fromkeys(sf.datasets, sf), **dict.fromkeys(ora.datasets, ora),
              **dict.fromkeys(trk.datasets, trk)}
        return Sources(by)
    raise PermanentSourceError(f"unknown source {spec!r}: use 'sample', 'sample:items=N,seed=S', 'files:PATH', "
                               "'emulated' or 'live'")
