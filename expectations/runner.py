"""Run the data-quality suites of the close and turn GE's results into a gate and a quarantine.

The suites are the JSON files in ``expectations/gx/expectations/`` (one per dataset, GE 1.x format); a
data engineer edits and reviews those files, this module only loads them. Each expectation carries:

- ``severity``: ``critical`` blocks the close (see ``BlockingValidationError``), ``warning`` quarantines
  the failing records and lets the close continue, ``info`` is reported only;
- ``meta.rule``: the rule's name in reports and in the quarantine;
- ``meta.reports_column`` (optional): the column whose value the quarantine shows (by default the
  expectation's own column), so a rule checked on a derived column still shows the source value.

Runs in an ephemeral GE context: nothing is written into the repository. Data Docs are built only
when a folder is given. This module imports Great Expectations but never Prefect.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from billing import columns as col
from billing.periods import Period
from billing.schema import text_array
from expectations.frames import expectation_parameters, validation_frames

SUITES_DIR = Path(__file__).resolve().parent / "gx" / "expectations"
QUARANTINE_COLUMNS = ["dataset", "record_key", "expectation", "column", "value", "severity"]
DATA_DOCS_SITE = "close_data_docs"
# COMPLETE gives every failing row's index. The failing values and the index query string would repeat
# them (and cost seconds to serialise at 1M rows): the quarantine reads values from the frame instead.
RESULT_FORMAT = {"result_format": "COMPLETE", "return_unexpected_index_query": False,
                 "exclude_unexpected_values": True}


@dataclass(frozen=True)
class ExpectationOutcome:
    """One expectation's result on one dataset."""

    suite: str
    rule: str
    expectation_type: str
    columns: tuple[str, ...]
    severity: str
    success: bool
    unexpected_count: int
    element_count: int
    mostly: float | None = None
    error: str | None = None

    @property
    def blocking(self) -> bool:
        return self.severity == "critical" and not self.success

    def describe(self) -> str:
        share = f" (tolerance {1 - self.mostly:.1%})" if self.mostly is not None else ""
        what = self.error or f"{self.unexpected_count} of {self.element_count} rows failed{share}"
        return f"{self.suite}.{self.rule} [{self.expectation_type} on {', '.join(self.columns)}]: {what}"


class BlockingValidationError(Exception):
    """A critical expectation failed: the close must stop until the data is fixed."""

    def __init__(self, failures: Sequence[ExpectationOutcome]):
        self.failures = list(failures)
        lines = "; ".join(f.describe() for f in self.failures)
        super().__init__(f"{len(self.failures)} blocking data-quality failure(s): {lines}")


@dataclass
class ValidationReport:
    """What the gate found: every expectation's outcome and the quarantined records."""

    period: Period
    results: list[ExpectationOutcome]
    quarantine: pd.DataFrame
    data_docs_index: Path | None = None
    seconds: float = 0.0
    _keys_by_dataset: dict[str, set[str]] = field(default_factory=dict, init=False, repr=False)

    @property
    def blocking_failures(self) -> list[ExpectationOutcome]:
        return [r for r in self.results if r.blocking]

    @property
    def passed(self) -> bool:
        """True when nothing blocks (warnings may still have quarantined records)."""
        return not self.blocking_failures

    def raise_for_blocking(self) -> None:
        if self.blocking_failures:
            raise BlockingValidationError(self.blocking_failures)

    def quarantined_keys(self, dataset: str) -> set[str]:
        if dataset not in self._keys_by_dataset:
            q = self.quarantine
            self._keys_by_dataset[dataset] = set(q.loc[q["dataset"] == dataset, "record_key"])
        return self._keys_by_dataset[dataset]

    def suites(self) -> list[str]:
        return list(dict.fromkeys(r.suite for r in self.results))

    def summary_markdown(self) -> str:
        """Pass/fail per suite, then every expectation with its counts."""
        out = [f"# Data quality, period {self.period}", ""]
        verdict = "blocked" if self.blocking_failures else "passed"
        out += [f"**Gate {verdict}**: {len(self.blocking_failures)} blocking failure(s), "
                f"{len(self.quarantine)} quarantine row(s) for "
                f"{self.quarantine[['dataset', 'record_key']].drop_duplicates().shape[0]} record(s).", ""]
        out += ["| suite | status | expectations | failed (critical) | failed (warning) | quarantined records |",
                "|---|---|---:|---:|---:|---:|"]
        for suite in self.suites():
            rs = [r for r in self.results if r.suite == suite]
            crit = sum(r.blocking for r in rs)
            warn = sum(not r.success and r.severity != "critical" for r in rs)
            status = "FAIL (blocking)" if crit else ("pass with warnings" if warn else "pass")
            out.append(f"| {suite} | {status} | {len(rs)} | {crit} | {warn} | "
                       f"{len(self.quarantined_keys(suite))} |")
        out += ["", "| suite | rule | expectation | column(s) | severity | result | unexpected | rows |",
                "|---|---|---|---|---|---|---:|---:|"]
        for r in self.results:
            result = "pass" if r.success else ("ERROR" if r.error else "FAIL")
            out.append(f"| {r.suite} | {r.rule} | {r.expectation_type} | {', '.join(r.columns)} | {r.severity} "
                       f"| {result} | {r.unexpected_count} | {r.element_count} |")
        return "\n".join(out) + "\n"


def load_suite_documents(suites_dir: Path = SUITES_DIR) -> dict[str, dict[str, Any]]:
    """The suite JSON files as dicts, by suite name (= dataset name)."""
    docs = {}
    for path in sorted(suites_dir.glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        docs[doc["name"]] = doc
    return docs


def validate_datasets(datasets: dict[str, pd.DataFrame], period: Period,
                      data_docs_dir: Path | None = None, suites_dir: Path = SUITES_DIR,
                      only: Collection[str] | None = None) -> ValidationReport:
    """Validate every dataset that has a suite; return outcomes and quarantine (never raises on bad data).

    `datasets` are canonical frames (billing.columns) keyed by dataset name; all datasets with a suite
    must be present, because referential rules read their parents. When `data_docs_dir` is given, Data
    Docs HTML is built there and `data_docs_index` points at its index.html. `only` limits the run to
    some suites (e.g. reference data before the items arrive); by default every suite runs.
    """
    started = time.perf_counter()
    documents = load_suite_documents(suites_dir)
    missing = sorted(set(documents) - set(datasets))
    if missing:
        raise ValueError(f"no data for suite(s) {', '.join(missing)}: pass every dataset of the close")
    if only is not None:
        unknown = sorted(set(only) - set(documents))
        if unknown:
            raise ValueError(f"no suite named {', '.join(unknown)}; suites: {', '.join(documents)}")
        documents = {name: doc for name, doc in documents.items() if name in only}
    frames = validation_frames(datasets, period)
    context = _context(data_docs_dir)
    source = context.data_sources.add_pandas("close")
    params = expectation_parameters(period)

    results: list[ExpectationOutcome] = []
    quarantine_parts: list[pd.DataFrame] = []
    for name, doc in documents.items():
        frame = frames[name]
        # GE fingerprints and filters the whole batch frame for every expectation: it gets only the
        # columns its suite reads; the quarantine reads values from the full frame (same positions).
        suite_result = _run_suite(context, source, doc, ge_frame(doc, frame), params,
                                  keep_results=data_docs_dir is not None)
        for res in suite_result.results:
            outcome, positions = _outcome(name, res)
            results.append(outcome)
            if positions is not None and _quarantines(outcome):
                quarantine_parts.append(_quarantine_rows(name, frame, res, outcome, positions))

    docs_index = None
    if data_docs_dir is not None:
        context.build_data_docs(site_names=[DATA_DOCS_SITE])
        docs_index = Path(data_docs_dir) / "index.html"
    quarantine = (pd.concat(quarantine_parts, ignore_index=True) if quarantine_parts
                  else pd.DataFrame({c: pd.Series(dtype="object") for c in QUARANTINE_COLUMNS}))
    return ValidationReport(period=period, results=results, quarantine=quarantine,
                            data_docs_index=docs_index, seconds=time.perf_counter() - started)


# --- GE plumbing ------------------------------------------------------------------------------------
def _context(data_docs_dir: Path | None):
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    if data_docs_dir is not None:
        Path(data_docs_dir).mkdir(parents=True, exist_ok=True)
        context.add_data_docs_site(DATA_DOCS_SITE, {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                              "base_directory": str(Path(data_docs_dir).resolve())},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        })
    return context


def _run_suite(context, source, doc: dict[str, Any], frame: pd.DataFrame, params: dict[str, int],
               keep_results: bool):
    import great_expectations as gx

    name = doc["name"]
    suite = context.suites.add(gx.ExpectationSuite(**doc))
    batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe(name)
    if keep_results:
        # The public path: stores the result in the context, which Data Docs render from.
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=batch, suite=suite))
        return definition.run(batch_parameters={"dataframe": frame}, expectation_parameters=params,
                              result_format=RESULT_FORMAT)
    # ValidationDefinition.run = this Validator + serialising the result into the results store. With
    # every failing row's index in the result, serialising took half of a 1M-item run, so without Data
    # Docs we call the same Validator ourselves (GE is pinned to 1.24.x; tests cover both paths).
    from great_expectations.validator.v1_validator import Validator

    validator = Validator(batch_definition=batch, batch_parameters={"dataframe": frame},
                          result_format=RESULT_FORMAT)
    return validator.validate_expectation_suite(suite, params)


def _outcome(suite: str, res) -> tuple[ExpectationOutcome, np.ndarray | None]:
    config = res.expectation_config
    kwargs = config.kwargs
    result = res.result or {}
    error = None
    if res.exception_info and res.exception_info.get("raised_exception"):
        error = str(res.exception_info.get("exception_message") or "expectation raised an exception")
    positions = None
    if "unexpected_index_list" in result:
        positions = np.asarray(result["unexpected_index_list"] or [], dtype=np.int64)
    outcome = ExpectationOutcome(
        suite=suite,
        rule=str(config.meta.get("rule") or config.type),
        expectation_type=config.type,
        columns=_columns(kwargs),
        severity=getattr(config.severity, "value", str(config.severity)),
        success=bool(res.success) and error is None,
        unexpected_count=int(result.get("unexpected_count") or 0),
        element_count=int(result.get("element_count") or 0),
        mostly=kwargs.get("mostly"),
        error=error,
    )
    return outcome, positions


# Expectations whose outcome depends only on which values are equal or missing, not on the text: GE
# can run them on integer codes, which it fingerprints, deduplicates and filters many times faster than
# Arrow text (at 5M items: ~8 s less on item_id). Set membership runs on a categorical of the text.
EQUALITY_ONLY = frozenset({"expect_column_values_to_not_be_null", "expect_column_values_to_be_unique"})
SET_MEMBERSHIP = frozenset({"expect_column_values_to_be_in_set"})


def suite_columns(doc: dict[str, Any], frame: pd.DataFrame) -> list[str]:
    """The frame's columns a suite's expectations read, in frame order (every column if none named)."""
    named = {c for e in doc.get("expectations", []) for c in _columns(e.get("kwargs", {}))}
    cols = [c for c in frame.columns if c in named]
    return cols or list(frame.columns)


def ge_frame(doc: dict[str, Any], frame: pd.DataFrame) -> pd.DataFrame:
    """The frame GE validates: only the columns the suite reads, text in the cheapest equivalent form.

    Same rows and index as `frame` (the quarantine reads values from `frame` by position), and for every
    expectation of the suite the same outcome: a text column checked only for nulls and repeats becomes
    codes (equal text, equal code; null stays null), one checked only against a set becomes a
    categorical of the same text. A column any other expectation reads is passed as it is.
    """
    uses: dict[str, set[str]] = {}
    for e in doc.get("expectations", []):
        cols = _columns(e.get("kwargs", {}))
        for c in cols:
            uses.setdefault(c, set()).add(e["type"] if len(cols) == 1 else "several columns")
    out = {}
    for c in suite_columns(doc, frame):
        s = frame[c]
        text = pd.api.types.is_string_dtype(s) and not isinstance(s.dtype, pd.CategoricalDtype)
        if text and uses.get(c) and uses[c] <= EQUALITY_ONLY:
            out[c] = pd.Series(equality_codes(s), index=frame.index)
        elif text and uses.get(c) and uses[c] <= SET_MEMBERSHIP:
            out[c] = s.astype("category")
        else:
            out[c] = s
    return pd.DataFrame(out, index=frame.index, copy=False)


def equality_codes(s: pd.Series) -> np.ndarray:
    """The rank of each value among the column's distinct values (float; NaN for null)."""
    arr = text_array(s)
    n = len(arr)
    codes = np.full(n, np.nan)
    valid = n - arr.null_count
    if not valid:
        return codes
    order = pc.sort_indices(arr).to_numpy()[:valid]  # nulls sort last
    ordered = arr.take(pa.array(order))
    new_value = np.ones(valid, dtype=bool)
    if valid > 1:
        same = pc.equal(ordered.slice(0, valid - 1), ordered.slice(1, valid - 1))
        new_value[1:] = ~same.to_numpy(zero_copy_only=False)
    codes[order] = np.cumsum(new_value) - 1
    return codes


def _columns(kwargs: dict[str, Any]) -> tuple[str, ...]:
    if "column" in kwargs:
        return (kwargs["column"],)
    if "column_A" in kwargs:
        return (kwargs["column_A"], kwargs["column_B"])
    return tuple(kwargs.get("column_list") or ())


def _quarantines(outcome: ExpectationOutcome) -> bool:
    """Warnings quarantine every failing row; a critical rule lists its rows only when it fails.

    A critical rate companion (``mostly``) that passes stays silent: its warning twin already put the
    same rows in quarantine.
    """
    if outcome.severity == "warning":
        return outcome.unexpected_count > 0
    return outcome.severity == "critical" and not outcome.success


def _quarantine_rows(dataset: str, frame: pd.DataFrame, res, outcome: ExpectationOutcome,
                     positions: np.ndarray) -> pd.DataFrame:
    meta = res.expectation_config.meta
    shown = meta.get("reports_column") or "|".join(outcome.columns)
    rows = frame.iloc[positions]
    values = _as_text(rows[shown]) if shown in frame.columns else _join(rows, outcome.columns)
    return pd.DataFrame({
        "dataset": dataset,
        "record_key": _join(rows, col.INPUT_DATASETS[dataset].key),
        "expectation": outcome.rule,
        "column": shown,
        "value": values,
        "severity": outcome.severity,
    }, columns=QUARANTINE_COLUMNS)


def record_keys(frame: pd.DataFrame, dataset: str) -> pd.Series:
    """The record key of every row: the dataset's key columns as text joined by '|'."""
    return pd.Series(_join(frame, col.INPUT_DATASETS[dataset].key), index=frame.index)


def _join(rows: pd.DataFrame, columns: Iterable[str]) -> np.ndarray:
    parts = [_as_text(rows[c]) for c in columns]
    if len(parts) == 1:
        return np.where(pd.isna(parts[0]), "", parts[0]).astype(object)
    out = parts[0]
    for p in parts[1:]:
        out = np.char.add(np.char.add(np.where(pd.isna(out), "", out).astype(str), "|"),
                          np.where(pd.isna(p), "", p).astype(str))
    return out.astype(object)


def _as_text(values: pd.Series) -> np.ndarray:
    """Values as text for the quarantine (dates as YYYY-MM-DD, nulls as None)."""
    if pd.api.types.is_datetime64_any_dtype(values):
        text = values.dt.strftime("%Y-%m-%d")
    elif pd.api.types.is_float_dtype(values):  # whole numbers held as float (see frames.py)
        text = values.round().astype("Int64").astype("string")
    else:
        text = values.astype("string")
    return text.astype(object).where(text.notna(), None).to_numpy()
