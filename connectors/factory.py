"""The one place that chooses which connector serves each dataset of a run.

A source spec is a short string, so it fits a CLI flag, a flow parameter and prefect.yaml:
- ``sample`` or ``sample:items=10000,seed=20261`` — the seeded sample company (embedded default);
- ``files:PATH`` — a folder of CSV/Parquet files in the canonical schema;
- ``emulated`` or ``emulated:items=N,seed=S`` — the real Salesforce, Oracle and tracker connectors
  over local stand-ins serving the sample company (see connectors/emulated.py);
- ``live`` — Salesforce, Oracle and tracker connectors configured from SALESFORCE_*, ORACLE_* and
  BILLING_TRACKER_PATH (read when the run starts, never at import);
- ``live:salesforce=BLOCK,oracle=BLOCK,tracker=PATH`` — the same, with credentials from saved Prefect
  blocks (connectors/blocks.py) chosen by name for this run.

Options for ``emulated`` and ``live``: ``incremental=1`` pulls Salesforce by SystemModstamp into the
store's replica (the store is the watermark keeper); ``full=1`` with it re-pulls everything (a
backfill that also drops records deleted in Salesforce).
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


def _replica(opts: dict[str, str], replica):
    if opts.get("incremental") != "1":
        return None
    if replica is None:
        raise PermanentSourceError("incremental=1 needs the project's store (the flow passes it)")
    return replica


def _load_block(cls, name: str | None, what: str):
    if not name:
        raise PermanentSourceError(f"live source with blocks needs {what}=<block name>")
    try:
        return cls.load(name)
    except ValueError as exc:
        raise PermanentSourceError(f"no {cls.get_block_type_name()} block named {name!r}: {exc}") from None


def build_sources(spec: str = "sample", replica=None) -> Sources:
    """Connectors for a source spec; raises PermanentSourceError for an unknown or bad spec.

    ``replica``: the project's store, for incremental Salesforce pulls (``incremental=1``).
    """
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
        conn = EmulatedSystems(n_items=int(opts.get("items", DEMO_ITEMS)), seed=int(opts.get("seed", 20261)),
                               replica=_replica(opts, replica), full=opts.get("full") == "1")
        return Sources(dict.fromkeys(col.INPUT_DATASETS, conn))
    if kind == "live":
        import os

        from connectors.oracle import OracleConnector, OracleSettings
        from connectors.salesforce import SalesforceConnector, SalesforceSettings
        from connectors.tracker import TrackerConnector

        opts = _kv(rest)
        if "salesforce" in opts or "oracle" in opts:
            from connectors.blocks import OracleCredentials, SalesforceCredentials

            sf_settings = _load_block(SalesforceCredentials, opts.get("salesforce"), "salesforce").settings()
            ora_settings = _load_block(OracleCredentials, opts.get("oracle"), "oracle").settings()
        else:
            sf_settings, ora_settings = SalesforceSettings.from_env(), OracleSettings.from_env()
        sf = SalesforceConnector(sf_settings, replica=_replica(opts, replica), full=opts.get("full") == "1")
        ora = OracleConnector(ora_settings)
        tracker_path = opts.get("tracker") or os.environ.get("BILLING_TRACKER_PATH")
        if not tracker_path:
            raise PermanentSourceError("live source needs a tracker: tracker=PATH or BILLING_TRACKER_PATH")
        trk = TrackerConnector(tracker_path)
        by = {**dict.fromkeys(sf.datasets, sf), **dict.fromkeys(ora.datasets, ora),
              **dict.fromkeys(trk.datasets, trk)}
        return Sources(by)
    raise PermanentSourceError(f"unknown source {spec!r}: use 'sample', 'sample:items=N,seed=S', 'files:PATH', "
                               "'emulated' or 'live'")
