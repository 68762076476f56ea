"""Coerce raw tables to the canonical schema, with errors that name the origin, row and column."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

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
    return pd.DataFrame(out, index=pd.RangeIndex(len(raw)), copy=False)


_NAMES = {"string": "text", "int64": "whole number", "Int64": "whole number", "bool": "true/false",
          "date": "date (YYYY-MM-DD)"}


def _is_blank(s: pd.Series) -> np.ndarray:
    if s.dtype == object or pd.api.types.is_string_dtype(s):
        return (s.isna() | (s.astype("string").str.strip() == "")).to_numpy(dtype=bool, na_value=True)
    return s.isna().to_numpy()


def _convert(s: pd.Series, dtype: str) -> tuple[pd.Series, np.ndarray]:
    """Convert one column; return (converted, mask of values that were present but did not parse)."""
    if dtype == "string":
        # Stripped once: a value that is blank after stripping becomes null (what _is_blank tests).
        conv = s.astype("string").str.strip()
        empty = (conv == "").to_numpy(dtype=bool, na_value=False)
        if empty.any():
            conv = conv.mask(empty)
        return conv.reset_index(drop=True), np.zeros(len(s), dtype=bool)
    if dtype in ("int64", "Int64"):
        if pd.api.types.is_integer_dtype(s):
            conv = s.astype("Int64")
            bad = np.zeros(len(s), dtype=bool)
        else:
            blank = _is_blank(s)
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
        is_f = text.isin(_FALSE).to_numpy(dtype=bool, na_value=False) | _is_blank(s)
        bad = ~(is_t | is_f)
        conv = pd.Series(is_t, dtype="bool")
        return conv, bad
    if dtype == "date":
        if pd.api.types.is_datetime64_any_dtype(s):
            conv = pd.to_datetime(s).dt.tz_localize(None) if getattr(s.dt, "tz", None) else s
            conv = conv.dt.normalize().astype("datetime64[ns]")
            return conv.reset_index(drop=True), np.zeros(len(s), dtype=bool)
        blank = _is_blank(s)
        text = s.astype("string").str.strip().mask(blank)
        conv = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce").astype("datetime64[ns]")
        bad = conv.isna().to_numpy() & ~blank
        return conv.reset_index(drop=True), bad
    raise ValueError(f"unknown dtype {dtype}")


# --- text columns as Arrow arrays and codes ----------------------------------------------------------
# The canonical "string" dtype is Arrow-backed (pandas 3). At millions of rows, the close works on the
# Arrow arrays and on integer codes rather than on Python objects: see docs/BENCHMARKS.md.
TEXT = pa.large_string()


def text_array(s: pd.Series | Sequence) -> pa.Array:
    """A text column as one Arrow large_string array (zero-copy for the canonical "string" dtype)."""
    if isinstance(s, pd.Series) and isinstance(s.dtype, pd.StringDtype) and s.dtype.storage == "pyarrow":
        arr = pa.array(s.array)
    else:
        arr = pa.array(pd.Series(s, dtype="object").astype("string").array)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr if arr.type == TEXT else arr.cast(TEXT)


def encode_text(values: pa.Array) -> tuple[np.ndarray, list]:
    """Codes (-1 for null) and the distinct values, in order of first appearance."""
    enc = pc.dictionary_encode(values)
    return (pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64),
            enc.dictionary.to_pylist())


def text_lookup(keys: pa.Array, mapping: pd.Series) -> pa.Array:
    """mapping[key] per row as text (null when the key is unknown), like Series.map."""
    if not mapping.index.is_unique:  # Series.map's own error for an ambiguous look-up
        return text_array(text_series(keys).map(mapping))
    where = pc.index_in(keys, value_set=text_array(mapping.index.to_series()))
    return text_array(mapping).take(where)


class TextCodes:
    """A text column as codes into a dictionary of values; code -1 is null.

    Filtering, reordering and concatenating move integer codes; the text is materialised once, when
    the result frame is built. Per-value look-ups (a project's contract, a role's description) run on
    the dictionary and are gathered by code.
    """

    __slots__ = ("codes", "values")

    def __init__(self, codes: np.ndarray, values: pa.Array):
        self.codes = codes
        self.values = values

    @classmethod
    def encode(cls, s: pd.Series) -> TextCodes:
        """Dictionary-encode a low-cardinality column (values unique, so equal codes = equal text)."""
        enc = pc.dictionary_encode(text_array(s))
        codes = pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
        return cls(codes, enc.dictionary.cast(TEXT))

    @classmethod
    def positional(cls, s: pd.Series | Sequence) -> TextCodes:
        """Keep a (near-)unique column as its own dictionary: row i has code i, or -1 when null."""
        arr = text_array(s)
        codes = np.arange(len(arr), dtype=np.int32)
        if arr.null_count:
            codes[np.asarray(arr.is_null())] = -1
        return cls(codes, arr)

    @classmethod
    def of(cls, codes: np.ndarray, values: Sequence[str | None] | pa.Array) -> TextCodes:
        vals = values if isinstance(values, pa.Array) else pa.array(list(values), type=TEXT)
        return cls(np.asarray(codes, dtype=np.int32), vals.cast(TEXT))

    @property
    def n(self) -> int:
        return len(self.codes)

    def isna(self) -> np.ndarray:
        if not self.values.null_count:
            return self.codes < 0
        null_value = np.append(np.asarray(self.values.is_null()), True)  # code -1 picks the last
        return null_value[self.codes]

    def value_list(self) -> list:
        return self.values.to_pylist()

    def per_value(self, lookup: np.ndarray) -> np.ndarray:
        """Gather a per-value array by code; `lookup` has one extra last element, used for nulls."""
        return lookup[self.codes]

    def take(self, idx: np.ndarray) -> TextCodes:
        return TextCodes(self.codes[idx], self.values)

    def to_arrow(self, idx: np.ndarray | None = None) -> pa.Array:
        """The text (of rows `idx`, in that order) as one Arrow array, built by one take."""
        codes = self.codes if idx is None else self.codes[idx]
        null = codes < 0
        if not null.any():
            return self.values.take(pa.array(codes))
        # A null appended to the dictionary: cheaper to take than null positions in the indices.
        values = pa.concat_arrays([self.values, pa.nulls(1, type=self.values.type)])
        return values.take(pa.array(np.where(null, len(self.values), codes).astype(np.int32, copy=False)))

    @staticmethod
    def concat(parts: Sequence[TextCodes]) -> TextCodes:
        if len(parts) == 1:
            return parts[0]
        offset, codes = 0, []
        for p in parts:
            codes.append(np.where(p.codes < 0, -1, p.codes + offset).astype(np.int32))
            offset += len(p.values)
        return TextCodes(np.concatenate(codes), pa.concat_arrays([p.values for p in parts]))


def text_series(arr: pa.Array) -> pd.Series:
    """An Arrow text array as a Series of the canonical "string" dtype (no copy)."""
    return pd.Series(pd.arrays.ArrowStringArray(arr), copy=False)


def repeated_rows(keys: Sequence[np.ndarray], order: np.ndarray) -> np.ndarray:
    """True for every row whose key (the same value in every array of `keys`) occurs at an earlier
    position of `order` (a permutation of the rows); the first occurrence is False.

    Exact and linear: rows are hashed on their key; only rows whose hash repeats (true repeats and
    rare collisions) are compared column by column. Arrays hold integers (codes for text, int64
    views for dates); equal values must mean equal keys, so nulls need one agreed value (e.g. -1).
    """
    n = len(order)
    out = np.zeros(n, dtype=bool)
    if n < 2:
        return out
    h = row_hashes(keys)
    cand = np.flatnonzero(pd.Series(h, copy=False).duplicated(keep=False).to_numpy())
    if not len(cand):
        return out
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    cand = cand[np.argsort(rank[cand], kind="stable")]
    sub = pd.DataFrame({i: np.asarray(k)[cand] for i, k in enumerate(keys)})
    out[cand] = sub.duplicated(keep="first").to_numpy()
    return out


def row_hashes(keys: Sequence[np.ndarray]) -> np.ndarray:
    """A 64-bit hash of each row's values in `keys` (integer arrays), for grouping candidates."""
    n = len(keys[0])
    h = np.zeros(n, dtype=np.uint64)
    t = np.empty(n, dtype=np.uint64)
    for k in keys:
        # h ^= x + golden + (h << 6) + (h >> 2), in place (boost's hash_combine)
        np.left_shift(h, np.uint64(6), out=t)
        t += np.asarray(k).astype(np.int64, copy=False).view(np.uint64)
        t += np.uint64(0x9E3779B97F4A7C15)
        t += h >> np.uint64(2)
        h ^= t
    return h


def sort_order(s: pd.Series | pa.Array) -> np.ndarray:
    """Stable ascending order of a text column (Arrow sort; nulls last, like pandas)."""
    arr = s if isinstance(s, pa.Array) else text_array(s)
    return pc.sort_indices(arr).to_numpy()
