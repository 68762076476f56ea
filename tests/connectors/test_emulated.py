"""The real connectors over local stand-ins return the sample company exactly, so the close matches."""

import pandas as pd

from billing import columns as col
from billing.close import compute_close
from billing.periods import Period
from connectors.factory import build_sources

OCT = Period(2026, 10)


def test_emulated_sources_return_the_sample_company_and_the_same_close_to_the_cent():
    emulated = build_sources("emulated:items=2500,seed=9")
    sample = build_sources("sample:items=2500,seed=9")
    try:
        de = {n: emulated.read(n, OCT) for n in col.INPUT_DATASETS}
    finally:
        next(iter(emulated.by_dataset.values())).stop()
    ds = {n: sample.read(n, OCT) for n in col.INPUT_DATASETS}
    for name, spec in col.INPUT_DATASETS.items():
        a, b = de[name], ds[name]
        if name == "tracker_additions":  # the source column names the tracker file and row
            assert a["source"].str.startswith("billing-tracker-2026-10.csv:csv:row ").all()
            a, b = a.drop(columns="source"), b.drop(columns="source")
        key = list(spec.key)
        pd.testing.assert_frame_equal(a.sort_values(key).reset_index(drop=True),
                                      b.sort_values(key).reset_index(drop=True), obj=name)
    re, rs = compute_close(de, OCT), compute_close(ds, OCT)
    assert re.totals_by_currency().equals(rs.totals_by_currency())
    assert (re.conservation.billed_cents, re.conservation.unbilled_cents) == (
        rs.conservation.billed_cents, rs.conservation.unbilled_cents)
