"""Derived columns of the validation frames, computed by hand (pure pandas, no GE)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from expectations.frames import day_number, expectation_parameters, repeat_entries, validation_frames
from tests.expectations.bundle import PERIOD, clean_bundle, with_row


def test_only_the_repeats_after_the_first_item_id_are_flagged_whatever_the_row_order():
    items = clean_bundle()["expenditure_items"]
    # EI99 and EI00 both repeat EI01; EI00 sorts first, so EI01 and EI99 are the repeats.
    items = with_row(items, 0, item_id="EI99")
    items = with_row(items, 0, item_id="EI00")
    shuffled = items.sample(frac=1.0, random_state=7).reset_index(drop=True)
    flagged = set(shuffled.loc[repeat_entries(shuffled), "item_id"])
    assert flagged == {"EI01", "EI99"}


def test_an_item_differing_in_quantity_or_adjustment_is_not_a_repeat():
    items = clean_bundle()["expenditure_items"]
    items = with_row(items, 0, item_id="EI90", quantity_milli=8_250)
    # A transfer_in mirrors its source item on the same project: not a repeat of it.
    items = with_row(items, 2, item_id="EI91", adjustment_type="transfer_in", adjusts_item_id="EI03")
    assert not repeat_entries(items).any()


def test_person_day_hours_sum_labor_without_adjustments_or_repeats():
    bundle = clean_bundle()
    items = bundle["expenditure_items"]
    items = with_row(items, 0, item_id="EI90", quantity_milli=3_500)    # E1 2026-10-05: 8 + 3.5 h
    items = with_row(items, 0, item_id="EI99")                          # repeat of EI01: not counted
    bundle["expenditure_items"] = items
    frame = validation_frames(bundle, PERIOD)["expenditure_items"].set_index("item_id")
    hours = frame["person_day_hours_milli"]
    assert hours["EI01"] == hours["EI90"] == 11_500
    assert np.isnan(hours["EI02"])       # travel
    assert np.isnan(hours["EI05"])       # reversal
    assert np.isnan(hours["EI99"])       # repeat
    assert hours["EI03"] == 4_000        # E2 2026-10-06; the transfer legs EI06/EI07 are not counted


def test_bill_rate_applies_only_to_roles_on_time_and_materials_contracts():
    bundle = clean_bundle()
    items = with_row(bundle["expenditure_items"], 0, item_id="EI90", role="Analyst")
    bundle["expenditure_items"] = with_row(items, 0, item_id="EI91", role="Analyst", project_id="P404")
    frame = validation_frames(bundle, PERIOD)["expenditure_items"].set_index("item_id")
    assert not frame.loc["EI90", "bill_rate_on_file"]   # K1 is T&M and has no Analyst rate
    assert frame.loc["EI04", "bill_rate_on_file"]       # Analyst on K2, a milestone contract
    assert frame.loc["EI02", "bill_rate_on_file"]       # expense: no role
    assert frame.loc["EI91", "bill_rate_on_file"]       # unknown project: reported by project_exists
    assert not frame.loc["EI91", "project_exists"]


def test_day_numbers_count_from_1970_and_the_period_end_is_a_parameter():
    assert day_number(pd.Timestamp("1970-01-02").date()) == 1
    assert expectation_parameters(PERIOD) == {"period_end_day": day_number(pd.Timestamp("2026-10-31").date())}
    frame = validation_frames(clean_bundle(), PERIOD)["expenditure_items"]
    assert frame["expenditure_day"].max() == expectation_parameters(PERIOD)["period_end_day"]


def test_validation_frames_keep_the_canonical_columns_on_a_range_index():
    bundle = clean_bundle()
    bundle["projects"].index = [10, 11]
    frames = validation_frames(bundle, PERIOD)
    for name, frame in frames.items():
        assert list(frame.columns[: len(bundle[name].columns)]) == list(bundle[name].columns)
        assert frame.index.equals(pd.RangeIndex(len(frame))), name
