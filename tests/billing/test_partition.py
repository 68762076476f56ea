"""A close partitioned by business unit bills exactly what a single close bills."""

import pandas as pd
import pytest

from billing.close import compute_close
from billing.partition import UNASSIGNED, PartitionError, combine_results, partition_by_business_unit
from billing.periods import Period
from connectors.sample_company import generate

OCT = Period(2026, 10)


@pytest.fixture(scope="module")
def sample():
    return generate(OCT, 6_000, 7)


def test_partitioned_close_equals_single_close_to_the_cent(sample):
    whole = compute_close(sample, OCT)
    parts = partition_by_business_unit(sample)
    assert len(parts) >= 2
    results = {bu: compute_close(p, OCT) for bu, p in parts.items()}
    for r in results.values():
        r.conservation.raise_if_broken()
    combined = combine_results(results, sample["expenditure_items"])
    combined.conservation.raise_if_broken()
    pd.testing.assert_frame_equal(combined.totals_by_currency().sort_values(["currency", "document_type"])
                                  .reset_index(drop=True),
                                  whole.totals_by_currency().sort_values(["currency", "document_type"])
                                  .reset_index(drop=True))
    assert sorted(combined.batch.documents["document_key"]) == sorted(whole.batch.documents["document_key"])
    assert combined.unbilled["unbilled_cents"].sum() == whole.unbilled["unbilled_cents"].sum()
    assert combined.unbilled["cost_cents"].sum() == whole.unbilled["cost_cents"].sum()
    # every item lands in exactly one partition
    n = sum(len(p["expenditure_items"]) for p in parts.values())
    assert n == len(sample["expenditure_items"])


def test_item_on_unknown_project_is_kept_in_the_unassigned_partition(sample):
    data = dict(sample)
    orphan = data["expenditure_items"].iloc[[0]].assign(item_id="ORPHAN-1", project_id="NO-SUCH-PROJECT")
    data["expenditure_items"] = pd.concat([data["expenditure_items"], orphan], ignore_index=True)
    parts = partition_by_business_unit(data)
    assert parts[UNASSIGNED]["expenditure_items"]["item_id"].tolist() == ["ORPHAN-1"]
    result = compute_close(parts[UNASSIGNED], OCT)
    result.conservation.raise_if_broken()
    assert result.unbilled["line_id"].str.contains("ORPHAN-1").any()


def test_selected_units_only_and_unknown_unit_named(sample):
    units = sorted(sample["contracts"]["business_unit"].unique())
    parts = partition_by_business_unit(sample, [units[0]])
    assert list(parts) == [units[0]]
    assert set(parts[units[0]]["contracts"]["business_unit"]) == {units[0]}
    with pytest.raises(PartitionError, match="XX99"):
        partition_by_business_unit(sample, ["XX99"])
