"""The runner's contract with the close: gate, quarantine, report, Data Docs, no writes into the repo."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from expectations.runner import QUARANTINE_COLUMNS, SUITES_DIR, validate_datasets
from tests.expectations.bundle import PERIOD, clean_bundle, with_row

REPO_GX = SUITES_DIR.parent


def _items_with_clean_filler(n: int) -> pd.DataFrame:
    """n clean one-hour Consultant items on P1, one person per item, so no rule fires."""
    items = clean_bundle()["expenditure_items"]
    filler = pd.concat([items.iloc[[0]]] * n, ignore_index=True)
    filler["item_id"] = pd.array([f"EF{i:05d}" for i in range(n)], dtype=items["item_id"].dtype)
    filler["person_id"] = pd.array([f"F{i:05d}" for i in range(n)], dtype=items["person_id"].dtype)
    filler["quantity_milli"] = 1_000
    return pd.concat([items, filler], ignore_index=True)


def test_a_warning_within_its_tolerance_quarantines_and_does_not_block():
    # 1 unknown project in 408 items is 0.25%, under the 0.5% the blocking companion allows.
    bundle = clean_bundle()
    items = _items_with_clean_filler(400)
    bundle["expenditure_items"] = with_row(items, 1, item_id="EI90", project_id="P404")
    report = validate_datasets(bundle, PERIOD, only=["expenditure_items"])
    assert report.passed and report.blocking_failures == []
    rules = {r.rule: r for r in report.results}
    assert not rules["project_exists"].success and rules["project_exists"].unexpected_count == 1
    assert rules["project_exists_rate"].success and rules["project_exists_rate"].unexpected_count == 1
    assert report.quarantined_keys("expenditure_items") == {"EI90"}
    [row] = report.quarantine.to_dict("records")
    assert row == {"dataset": "expenditure_items", "record_key": "EI90", "expectation": "project_exists",
                   "column": "project_id", "value": "P404", "severity": "warning"}


def test_beyond_its_tolerance_the_companion_blocks_and_lists_the_rows_as_critical():
    # 3 unknown projects in 410 items is 0.73% > 0.5%.
    bundle = clean_bundle()
    items = _items_with_clean_filler(400)
    for i in range(3):
        items = with_row(items, 1, item_id=f"EI9{i}", project_id="P404")
    bundle["expenditure_items"] = items
    report = validate_datasets(bundle, PERIOD, only=["expenditure_items"])
    [failure] = report.blocking_failures
    assert (failure.suite, failure.rule, failure.unexpected_count, failure.element_count) == (
        "expenditure_items", "project_exists_rate", 3, 411)
    q = report.quarantine
    assert set(q.loc[q["severity"] == "critical", "record_key"]) == {"EI90", "EI91", "EI92"}
    assert set(q.loc[q["severity"] == "warning", "record_key"]) == {"EI90", "EI91", "EI92"}


def test_quarantine_shows_source_values_and_one_row_per_record_and_rule():
    bundle = clean_bundle()
    items = bundle["expenditure_items"]
    # EI90 breaks two rules: dated after the period, and Analyst has no rate on K1.
    bundle["expenditure_items"] = with_row(items, 0, item_id="EI90", person_id="E9", role="Analyst",
                                           expenditure_date=pd.Timestamp("2026-11-03"))
    report = validate_datasets(bundle, PERIOD, only=["expenditure_items"])
    q = report.quarantine
    assert list(q.columns) == QUARANTINE_COLUMNS
    rows = q[q["expectation"].isin(["dated_on_or_before_period_end", "bill_rate_on_file"])].sort_values(
        "expectation")
    assert rows[["record_key", "expectation", "column", "value"]].values.tolist() == [
        ["EI90", "dated_on_or_before_period_end", "expenditure_date", "2026-11-03"],
    ]
    # The missing rate is reported (severity info) but left to the billing rules (missing_bill_rate).
    [rate_rule] = [r for r in report.results if r.rule == "bill_rate_on_file"]
    assert not rate_rule.success and rate_rule.severity == "info" and not rate_rule.blocking


def test_summary_markdown_gives_pass_fail_per_suite_and_counts_per_expectation():
    bundle = clean_bundle()
    bundle["customers"] = with_row(bundle["customers"], customer_id="C9", po_required=True, po_number=None)
    bundle["contracts"] = with_row(bundle["contracts"], contract_id="K9", currency="XYZ")
    md = validate_datasets(bundle, PERIOD).summary_markdown()
    assert "**Gate blocked**: 1 blocking failure(s)" in md
    assert "| contracts | FAIL (blocking) | 5 | 1 | 0 | 1 |" in md
    assert "| customers | pass with warnings | 5 | 0 | 1 | 0 |" in md  # info: reported, not quarantined
    assert "| projects | pass | 3 | 0 | 0 | 0 |" in md
    assert ("| contracts | currency_iso4217 | expect_column_values_to_be_in_set | currency | critical | FAIL "
            "| 1 | 3 |") in md


def test_data_docs_are_built_in_the_given_folder_and_nothing_is_written_into_the_repo(tmp_path: Path):
    before = sorted(p.relative_to(REPO_GX) for p in REPO_GX.rglob("*"))
    report = validate_datasets(clean_bundle(), PERIOD, data_docs_dir=tmp_path / "docs")
    assert report.data_docs_index == tmp_path / "docs" / "index.html"
    html = report.data_docs_index.read_text(encoding="utf-8")
    assert "expenditure_items" in html
    assert (tmp_path / "docs" / "expectations" / "rate_card.html").exists()
    assert any((tmp_path / "docs" / "validations").rglob("*.html"))
    assert sorted(p.relative_to(REPO_GX) for p in REPO_GX.rglob("*")) == before
    assert report.passed


def test_without_a_data_docs_folder_there_is_no_index(clean_report):
    assert clean_report.data_docs_index is None


def test_every_dataset_of_the_close_is_required():
    bundle = clean_bundle()
    del bundle["rate_card"]
    with pytest.raises(ValueError, match="rate_card"):
        validate_datasets(bundle, PERIOD)


def test_an_unknown_suite_name_is_refused():
    with pytest.raises(ValueError, match="no suite named invoices"):
        validate_datasets(clean_bundle(), PERIOD, only=["invoices"])


def test_the_runner_does_not_import_prefect():
    import subprocess
    import sys

    code = "import sys, expectations.runner; assert 'prefect' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
