"""Coerce raw tables to the canonical schema, with errors that name the origin, row and column."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from billing.columns import Dataset

_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0", ""}


@dataclass(frozen=True)
class SchemaProblem:
    origin: str
    row: int | None  # 1-based data row (header is row 0 for files); None for whole-table problems
    column: str | None
    message: str

    def __str__(self) -> str:
        where = self.origin
        if self.row is not None:
            where += f", row {self.row}"
        if self.column is not None:
            where += f", column {self.column!r}"
        return f"{where}: {self.message}"


class SchemaError(ValueError):
    """A table does not fit the canonical schema. Lists every problem found, not only the first."""

    def __init__(self, problems: list[SchemaProblem]):
        self.problems = problems
        shown = "; ".join(str(p) for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(shown + more)


def empty_frame(dataset: Dataset) -> pd.DataFrame:
    return conform(pd.DataFrame({c.name: pd.Series([], dtype="object") for c in dataset.columns}),
                   dataset, origin=dataset.name)


def conform(raw: pd.DataFrame, dataset: Dataset, origin: str, row_offset: int = 1) -> pd.DataFrame:
    """Return `raw` with the dataset's columns, in order, in canonical dtypes.

    Raises SchemaError naming the origin (a file, an object), the row (row_offset + position) and the
    column of every value that does not parse, and every missing column. Extra columns are dropped.
    """
    problems: list[SchemaProblem] = []
    missing = [c.name for c in dataset.columns if c.name not in raw.columns]
    for name in missing:
        problems.append(SchemaProblem(origin, None, name, "required column is missing"))
    if problems:
        raise SchemaError(problems)
    out: dict[str, pd.Series] = {}
    for col in dataset.columns:
        s = raw[col.name]
        try:
            conv, bad = _convert(s, col.dtype)
        except Exception as exc:  # pragma: no cover - defensive: a converter bug must still name the column
            raise SchemaError([SchemaProblem(origin, None, col.name, f"cannot convert: {exc}")]) from exc
        nulls = conv.isna().to_numpy() & ~bad
        if not col.nullable:
            bad = bad | nulls
        if col.allowed is not None:
            ok = conv.isna().to_numpy() | conv.isin(col.allowed).to_numpy()
            bad_allowed = ~ok & ~bad
            for pos in np.flatnonzero(bad_allowed)[:20]:
                problems.append(SchemaProblem(origin, row_offset + int(pos), col.name,
                                              f"{s.iloc[pos]!r} is not one of {', '.join(col.allowed)}"))
        for pos in np.flatnonzero(bad)[:20]:
            value = s.iloc[pos]
            if nulls[pos] and not col.nullable:
                msg = "value is required"
            else:
                msg = f"{value!r} is not a valid {_NAMES[col.dtype]}"
            problems.append(SchemaProblem(origin, row_offset + int(pos), col.name, msg))
        out[col.name] = conv
    if problems:
        raise SchemaError(problems)
    return pd.DataFrame(out, index=pd.RangeIndex(len(raw)))


_NAMES = {"string": "text", "int64": "whole number", "Int64": "whole number", "bool": "true/false",
          "date": "date (YYYY-MM-DD)"}


def _is_blank(s: pd.Series) -> np.ndarray:
    if s.dtype == object or pd.api.types.is_string_dtype(s):
        return (s.isna() | (s.astype("string").str.strip() == "")).to_numpy(dtype=bool, na_value=True)
    return s.isna().to_numpy()


def _convert(s: pd.Series, dtype: str) -> tuple[pd.Series, np.ndarray]:
    """Convert one column; return (converted, mask of values that were present but did not parse)."""
    blank = _is_blank(s)
    if dtype == "string":
        conv = s.astype("string").str.strip()
        conv = conv.mask(blank)
        return conv.reset_index(drop=True), np.zeros(len(s), dtype=bool)
    if dtype in ("int64", "Int64"):
        if pd.api.types.is_integer_dtype(s):
            conv = s.astype("Int64")
            bad = np.zeros(len(s), dtype=bool)
        else:
            text = s.astype("string").str.strip()
            num = pd.to_numeric(text.mask(blank), errors="coerce")
            frac = num.notna() & (num != np.floor(num))
            bad = (num.isna().to_numpy() & ~blank) | frac.to_numpy()
            conv = num.mask(frac).round().astype("Int64")
        conv = conv.reset_index(drop=True)
        if dtype == "int64" and not conv.isna().any():
            conv = conv.astype("int64")
        return conv, bad
    if dtype == "bool":
        if pd.api.types.is_bool_dtype(s) and not s.isna().any():
            return s.astype("bool").reset_index(drop=True), np.zeros(len(s), dtype=bool)
        text = s.astype("string").str.strip().str.lower()
        is_t = text.isin(_TRUE).to_numpy(dtype=bool, na_value=False)
        is_f = text.isin(_FALSE).to_numpy(dtype=bool, na_value=False) | blank
        bad = ~(is_t | is_f)
        conv = pd.Series(is_t, dtype="bool")
        return conv, bad
    if dtype == "date":
        if pd.api.types.is_datetime64_any_dtype(s):
            conv = pd.to_datetime(s).dt.tz_localize(None) if getattr(s.dt, "tz", None) else s
            conv = conv.dt.normalize().astype("datetime64[ns]")
            return conv.reset_index(drop=True), np.zeros(len(s), dtype=bool)
        text = s.astype("string").str.strip().mask(blank)
        conv = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce").astype("datetime64[ns]")
        bad = conv.isna().to_numpy() & ~blank
        return conv.reset_index(drop=True), bad
    raise ValueError(f"unknown dtype {dtype}")
