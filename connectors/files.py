"""A folder of CSV or Parquet files in the canonical schema: close a month from an export.

Layout: one file per dataset, named after it (`customers.csv` or `customers.parquet`, ...). Dates in
CSV are YYYY-MM-DD, money in integer cents, quantities in thousandths (see docs/SCHEMA.md). A missing
file, a missing column, a wrong type or an unparseable date gets an error naming the file, the row
(numbered as a spreadsheet shows it: header = row 1, first record = row 2) and the column.

Example:
    FilesConnector(Path("exports/2026-10")).read("expenditure_items", Period.parse("2026-10"))
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from billing import columns as col
from billing.periods import Period
from billing.schema import SchemaError, SchemaProblem, conform
from connectors.base import PermanentSourceError

# Datasets a folder may leave out (an empty table is used); the others are required.
OPTIONAL = {"milestones", "prior_invoice_lines", "tracker_additions"}


class FilesConnector:
    """Reads every input dataset from `folder`."""

    datasets = tuple(col.INPUT_DATASETS)

    def __init__(self, folder: Path | str):
        self.folder = Path(folder)
        self.name = f"files:{self.folder}"
        if not self.folder.is_dir():
            raise PermanentSourceError(f"source folder {self.folder} does not exist")

    def _file(self, dataset: str) -> Path | None:
        for ext in (".parquet", ".csv"):
            p = self.folder / f"{dataset}{ext}"
            if p.exists():
                return p
        return None

    def read(self, dataset: str, period: Period) -> pd.DataFrame:
        spec = col.INPUT_DATASETS[dataset]
        path = self._file(dataset)
        if path is None:
            if dataset in OPTIONAL:
                return conform(pd.DataFrame({c: [] for c in spec.names}), spec, origin=dataset)
            raise SchemaError([SchemaProblem(str(self.folder / f"{dataset}.csv"), None, None,
                                             "required file is missing (.csv or .parquet)")])
        if path.suffix == ".parquet":
            raw = pd.read_parquet(path)
            return conform(raw, spec, origin=str(path), row_offset=1)
        # Read everything as text so that type errors are ours to report, with the row number.
        raw = pd.read_csv(path, dtype="string", keep_default_na=False, na_values=[""])
        # Row numbers as a spreadsheet shows them: the header is row 1, the first record row 2.
        return conform(raw, spec, origin=str(path), row_offset=2)


def write_folder(data: dict[str, pd.DataFrame], folder: Path, fmt: str = "csv") -> None:
    """Write datasets in the layout FilesConnector reads (used to export the sample company)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, df in data.items():
        if fmt == "parquet":
            df.to_parquet(folder / f"{name}.parquet", index=False)
        else:
            out = df.copy()
            for c in out.columns:
                if pd.api.types.is_datetime64_any_dtype(out[c]):
                    out[c] = out[c].dt.strftime("%Y-%m-%d")
            out.to_csv(folder / f"{name}.csv", index=False)
