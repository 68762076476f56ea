"""The files source: a folder in the canonical schema, with errors naming file, row and column."""

import pandas as pd
import pytest

from billing.close import compute_close
from billing.periods import Period
from billing.schema import SchemaError
from connectors.factory import build_sources
from connectors.files import FilesConnector, write_folder
from connectors.sample_company import generate

OCT = Period(2026, 10)


@pytest.fixture(scope="module")
def sample():
    return generate(OCT, 400, 3)


def test_csv_and_parquet_folders_give_the_same_close_as_the_sample(sample, tmp_path):
    expected = compute_close(sample, OCT).batch.documents["net_cents"].sum()
    for fmt in ("csv", "parquet"):
        write_folder(sample, tmp_path / fmt, fmt)
        src = build_sources(f"files:{tmp_path / fmt}")
        data = {name: src.read(name, OCT) for name in sample}
        for name in sample:
            pd.testing.assert_frame_equal(data[name], sample[name], check_dtype=True, obj=f"{fmt}:{name}")
        assert compute_close(data, OCT).batch.documents["net_cents"].sum() == expected


def _broken(sample, tmp_path, dataset, edit):
    write_folder(sample, tmp_path)
    path = tmp_path / f"{dataset}.csv"
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    edit(df)
    df.to_csv(path, index=False)
    return FilesConnector(tmp_path), path


def test_unparseable_date_names_file_row_and_column(sample, tmp_path):
    conn, path = _broken(sample, tmp_path, "expenditure_items",
                         lambda df: df.__setitem__("expenditure_date", df["expenditure_date"].where(
                             df.index != 4, "2026-13-45")))
    with pytest.raises(SchemaError) as e:
        conn.read("expenditure_items", OCT)
    # The 5th record is spreadsheet row 6 (the header is row 1).
    assert f"{path}, row 6, column 'expenditure_date': '2026-13-45' is not a valid date" in str(e.value)


def test_wrong_type_and_missing_column_are_reported(sample, tmp_path):
    conn, _ = _broken(sample, tmp_path, "rate_card",
                         lambda df: df.__setitem__("bill_rate_cents", df["bill_rate_cents"].where(df.index != 0,
                                                                                                  "12.5x")))
    with pytest.raises(SchemaError, match=r"row 2, column 'bill_rate_cents': '12.5x' is not a valid whole number"):
        conn.read("rate_card", OCT)
    conn, _ = _broken(sample, tmp_path, "customers", lambda df: df.drop(columns=["currency"], inplace=True))
    with pytest.raises(SchemaError, match=r"customers\.csv, column 'currency': required column is missing"):
        conn.read("customers", OCT)


def test_value_outside_its_set_is_reported(sample, tmp_path):
    conn, _ = _broken(sample, tmp_path, "scope_lines",
                      lambda df: df.__setitem__("billing_type", df["billing_type"].where(df.index != 1, "barter")))
    with pytest.raises(SchemaError, match=r"row 3, column 'billing_type': 'barter' is not one of"):
        conn.read("scope_lines", OCT)


def test_missing_required_file_is_reported_and_optional_ones_are_empty(sample, tmp_path):
    write_folder({k: v for k, v in sample.items() if k not in ("projects", "milestones")}, tmp_path)
    conn = FilesConnector(tmp_path)
    assert conn.read("milestones", OCT).empty
    with pytest.raises(SchemaError, match=r"projects\.csv: required file is missing"):
        conn.read("projects", OCT)
