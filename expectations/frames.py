"""Validation frames: each dataset plus the derived columns its suite expects.

Great Expectations checks one frame at a time, so a rule that needs another dataset (does the item's
project exist? does its contract have a rate for the role?) or a whole-frame computation (is this item a
repeat of an earlier one? how many hours did the person book that day?) is computed here, in pandas, as
one column per rule. The suite JSON then states the expectation, its severity and threshold on that
column. Derived column names are the ones the suites in ``gx/expectations/`` use; each suite
expectation's ``meta.derived`` repeats what the column means.

Pure: pandas, numpy and Arrow compute only; no Great Expectations, no I/O, no clock. Text columns the
rules compare (project, person...) are compared as integer codes (billing.schema.TextCodes): at millions
of items, Python objects per row would cost more than the whole suite. Dates become day numbers because
comparing numbers is several times cheaper for GE than comparing datetimes (REFERENCE.md). Numeric
derived columns that are "not applicable" on some rows are float64 with NaN, not nullable Int64: GE
skips NaN as missing and compares float64 vectorised, but walks an Int64 column value by value in
Python (~3 s per 1M rows). Every value is a whole number well below 2**53, so float64 is exact.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from billing import columns as col
from billing.periods import Period
from billing.schema import TextCodes, repeated_rows, sort_order, text_array

EPOCH = date(1970, 1, 1)
HOURS_24_MILLI = 24_000

# Columns that make two items the same entry keyed in twice. adjustment_type is part of the key so a
# transfer_in that mirrors its source item is not taken for a repeat of it (nulls compare equal).
REPEAT_KEY = ("person_id", "expenditure_date", "project_id", "expenditure_type", "quantity_milli",
              "adjustment_type")
# Adjustments whose negative cost is expected.
NEGATIVE_COST_ADJUSTMENTS = ("reversal", "transfer_out")


def day_number(d: date) -> int:
    """Days since 1970-01-01: the scale of every ``*_day`` column."""
    return (d - EPOCH).days


def expectation_parameters(period: Period) -> dict[str, int]:
    """Values for the ``$PARAMETER`` references in the suites."""
    return {"period_end_day": day_number(period.end)}


def validation_frames(datasets: dict[str, pd.DataFrame], period: Period) -> dict[str, pd.DataFrame]:
    """One frame per dataset: its canonical columns, a RangeIndex and the derived rule columns.

    The RangeIndex matters: GE reports failing rows by index label, and the runner reads them back as
    positions. (GE 1.24 also misaligned string columns on a non-default index when we tried it.)
    """
    del period  # the period enters through expectation_parameters; kept for symmetry with the runner
    d = {name: df.reset_index(drop=True) for name, df in datasets.items()}
    customer_ids = _ids(d["customers"], col.CUSTOMER_ID)
    contract_ids = _ids(d["contracts"], col.CONTRACT_ID)
    scope_ids = _ids(d["scope_lines"], col.SCOPE_LINE_ID)
    project_contract = _lookup(d["projects"], col.PROJECT_ID, col.CONTRACT_ID)

    out: dict[str, pd.DataFrame] = {}
    customers = d["customers"].copy()
    customers["po_on_file"] = (~customers["po_required"].astype(bool)
                               | customers["po_number"].notna()).to_numpy(dtype=bool)
    out["customers"] = customers

    contracts = d["contracts"].copy()
    contracts["customer_exists"] = _exists(contracts[col.CUSTOMER_ID], customer_ids)
    out["contracts"] = contracts

    for name in ("scope_lines", "rate_card", "projects", "prior_invoice_lines"):
        frame = d[name].copy()
        frame["contract_exists"] = _exists(frame[col.CONTRACT_ID], contract_ids)
        out[name] = frame

    milestones = d["milestones"].copy()
    milestones["scope_line_exists"] = _exists(milestones[col.SCOPE_LINE_ID], scope_ids)
    out["milestones"] = milestones

    tracker = d["tracker_additions"].copy()
    tracker["contract_exists"] = _exists(tracker[col.CONTRACT_ID], contract_ids)
    contract_of_project = tracker[col.PROJECT_ID].map(project_contract)
    tracker["project_matches_contract"] = (
        tracker[col.PROJECT_ID].isna()
        | (contract_of_project == tracker[col.CONTRACT_ID]).fillna(False)
    ).to_numpy(dtype=bool)
    tracker["service_day"] = _days(tracker["service_date"])
    out["tracker_additions"] = tracker

    out["expenditure_items"] = _items_frame(d["expenditure_items"], project_contract, d["scope_lines"],
                                            d["rate_card"])
    return out


def _items_frame(items: pd.DataFrame, project_contract: pd.Series, scope_lines: pd.DataFrame,
                 rate_card: pd.DataFrame) -> pd.DataFrame:
    # A shallow copy: the derived columns are added without copying the canonical ones (copy-on-write).
    items = items.copy(deep=False)
    is_labor = (items["expenditure_type"] == "labor").fillna(False).to_numpy(dtype=bool)
    quantity = items["quantity_milli"].to_numpy()
    adjustment = items["adjustment_type"]
    # Text columns the rules compare, as integer codes (equal codes = equal text; -1 = null).
    project = TextCodes.encode(items[col.PROJECT_ID])
    person = TextCodes.encode(items["person_id"])

    items["project_exists"] = project.per_value(_with_null(_exists_values(project, project_contract.index), False))
    items["labor_hours_abs_milli"] = np.where(is_labor, np.abs(quantity), np.nan)
    reverses = adjustment.isin(NEGATIVE_COST_ADJUSTMENTS).fillna(False).to_numpy(dtype=bool)
    items["cost_cents_unless_reversal"] = np.where(reverses, np.nan, items["raw_cost_cents"].to_numpy())
    items["expenditure_day"] = _days(items["expenditure_date"])

    repeat = repeat_entries(items, project=project, person=person)
    items["is_repeat_entry"] = repeat

    dates = items["expenditure_date"].to_numpy(dtype="datetime64[ns]")
    counted = is_labor & adjustment.isna().to_numpy(dtype=bool) & ~repeat & ~person.isna() & ~np.isnat(dates)
    day = dates.view(np.int64)
    person_day = np.full(len(items), np.nan)
    if counted.any():
        _, day_code = np.unique(day[counted], return_inverse=True)
        key = person.codes[counted].astype(np.int64) * (int(day_code.max()) + 1) + day_code
        day_total = pd.Series(quantity[counted]).groupby(key, sort=False).transform("sum")
        person_day[counted] = day_total.to_numpy(dtype=float)
    items["person_day_hours_milli"] = person_day

    # bill_rate_on_file, per distinct project (its contract) and role, then gathered by code.
    contracts = pd.Series(project.value_list(), dtype=object).map(project_contract).to_numpy(dtype=object)
    tm_contracts = scope_lines.loc[scope_lines["billing_type"] == "time_and_materials", col.CONTRACT_ID].unique()
    is_tm = pd.Index(contracts, dtype=object).isin(tm_contracts)
    role = TextCodes.encode(items[col.ROLE])
    roles = role.value_list()
    rated = pd.MultiIndex.from_frame(rate_card[[col.CONTRACT_ID, col.ROLE]].dropna().drop_duplicates())
    if len(contracts) * len(roles) <= 4_000_000:
        grid = pd.MultiIndex.from_product([pd.Index(contracts, dtype=object), pd.Index(roles, dtype=object)])
        has = grid.isin(rated).reshape(len(contracts), len(roles))
        # A last row and column (numpy's index -1) for a null project or role: no rate.
        has_rate = np.pad(has, ((0, 1), (0, 1)), constant_values=False)[project.codes, role.codes]
    else:
        contract = _with_null(contracts, None)[project.codes]
        has_rate = pd.MultiIndex.from_arrays([contract, items[col.ROLE].to_numpy(dtype=object)]).isin(rated)
    applies = ~role.isna() & project.per_value(_with_null(is_tm, False))
    items["bill_rate_on_file"] = ~applies | has_rate
    return items


def repeat_entries(items: pd.DataFrame, project: TextCodes | None = None,
                   person: TextCodes | None = None) -> np.ndarray:
    """True for every item that repeats an earlier one (ordered by item_id) on all of REPEAT_KEY.

    The first occurrence is False: it is the entry to keep, only the repeats are quarantined.
    (`project` and `person`: those columns' codes, when the caller has them already.)
    """
    given = {"project_id": project, "person_id": person}
    keys = []
    for name in REPEAT_KEY:
        s = items[name]
        if pd.api.types.is_datetime64_any_dtype(s):
            keys.append(s.to_numpy(dtype="datetime64[ns]").view(np.int64))
        elif pd.api.types.is_integer_dtype(s) and not s.isna().any():
            keys.append(s.to_numpy(dtype=np.int64))
        elif pd.api.types.is_string_dtype(s):
            keys.append((given.get(name) or TextCodes.encode(s)).codes)
        else:  # anything else: codes of the values, nulls equal
            keys.append(pd.factorize(s, use_na_sentinel=True)[0])
    # Item ids in ascending order, a missing id as "" (stable: equal ids keep their row order).
    order = sort_order(pc.fill_null(text_array(items[col.ITEM_ID]), ""))
    return repeated_rows(keys, order)


def _ids(frame: pd.DataFrame, column: str) -> pd.Index:
    return pd.Index(frame[column].dropna().unique())


def _lookup(frame: pd.DataFrame, key: str, value: str) -> pd.Series:
    """key -> value, first row wins (a duplicate key is reported by its own suite, not here)."""
    first = frame.dropna(subset=[key]).drop_duplicates(key)
    return pd.Series(first[value].to_numpy(), index=pd.Index(first[key].to_numpy()))


def _exists(values: pd.Series, known: pd.Index) -> np.ndarray:
    if not (pd.api.types.is_string_dtype(values) and pd.api.types.is_string_dtype(known)):
        return (values.notna() & values.isin(known)).to_numpy(dtype=bool)
    # Arrow's hash look-up (Series.isin on Arrow text builds one Arrow scalar per known value in Python).
    arr = text_array(values)
    found = pc.is_in(arr, value_set=text_array(pd.Series(known.to_numpy(dtype=object), dtype=object)))
    return found.to_numpy(zero_copy_only=False) & ~np.asarray(arr.is_null())


def _exists_values(codes: TextCodes, known: pd.Index) -> np.ndarray:
    """For each distinct value of a text column: is it in `known`?"""
    return pd.Index(codes.value_list(), dtype=object).isin(known)


def _with_null(a: np.ndarray, null_value) -> np.ndarray:
    """`a` with one more element, the value a null code (-1) picks (numpy's a[-1])."""
    return np.append(a, np.asarray([null_value], dtype=a.dtype))


def _days(dates: pd.Series) -> np.ndarray:
    """datetime64 -> days since 1970-01-01 (null -> NaN, which GE skips as missing)."""
    days = dates.to_numpy(dtype="datetime64[D]").astype("int64").astype(float)
    days[dates.isna().to_numpy()] = np.nan
    return days
