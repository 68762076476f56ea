"""The benchmark runs at a small size in the suite, so it cannot rot (the large sizes are not tests)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.close_bench import STAGES, main, union_seconds
from bench.duckdb_reference import compare_with_pandas
from billing.periods import Period
from connectors.sample_company import FaultRates, generate
from expectations.runner import record_keys

ROOT = Path(__file__).resolve().parents[2]


def test_small_close_prints_every_stage_and_the_reference_equals_pandas_to_the_cent(capsys):
    assert main(["--items", "3000", "--in-process", "--documents"]) == 0
    out = json.loads(capsys.readouterr().out)
    run = out["runs"][0]
    assert list(run["stages_seconds"]) == list(STAGES)
    assert run["close_seconds"] > 0 and run["items_per_second"] > 0 and run["peak_rss_mb"] > 0
    assert run["totals"]["conservation_ok"]
    assert run["delivered"] == run["documents"] > 0
    assert run["reference"]["equal"], run["reference"]["differences"]
    assert run["reference"]["pandas_over_duckdb"] > 0
    assert set(run["targets"]) == {"close_seconds", "peak_rss_mb", "validate_share", "pandas_over_duckdb"}
    assert run["targets"]["close_seconds"]["met"] == (run["close_seconds"] <= 120)
    written = run["documents_after_close"]["written"]
    assert written["invoices"] > 0 and run["documents_after_close"]["seconds"] > 0


def test_targets_are_checked_only_on_the_figures_a_run_has():
    from bench.close_bench import target_check

    partial = {"stages_seconds": {"extract": 1.0}, "close_seconds": 1.0, "peak_rss_mb": 7000.0}
    assert target_check(partial) == {"peak_rss_mb": {"value": 7000.0, "target": 6144, "met": False}}


def test_the_command_prints_json_only_on_stdout():
    proc = subprocess.run([sys.executable, "bench/close_bench.py", "--items", "1500", "--no-duckdb",
                           "--stages", "extract,validate,compute"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    run = json.loads(proc.stdout)["runs"][0]
    assert list(run["stages_seconds"]) == ["extract", "validate", "compute"]
    assert "[close_bench]" in proc.stderr


@pytest.mark.parametrize("period", ["2026-01", "2026-03", "2025-11"])
def test_duckdb_reference_matches_pandas_with_faults_quarantine_and_holds(period):
    p = Period.parse(period)
    faults = FaultRates(outside_term=0.05, duplicate=0.05, unapproved=0.2, bill_hold=0.2, non_billable=0.2,
                        reversal=0.02, transfer=0.01, credit_hold_customers=0.2, missing_po_customers=0.1,
                        quarterly_customers=0.2)
    data = generate(p, 2500, 11, faults)
    items, scope = data["expenditure_items"], data["scope_lines"]
    quarantine = {"expenditure_items": set(items["item_id"].iloc[::97]),
                  "scope_lines": set(scope["scope_line_id"].iloc[:2]),
                  "contracts": {data["contracts"]["contract_id"].iloc[3]},
                  "rate_card": set(record_keys(data["rate_card"].iloc[:3], "rate_card")),
                  "tracker_additions": {data["tracker_additions"]["addition_id"].iloc[0]}}
    holds = set(data["customers"]["customer_id"].iloc[:2])
    result = compare_with_pandas(data, p, quarantine, holds)
    assert result["equal"], result["differences"]


def test_overlapping_task_runs_count_once_as_work():
    assert union_seconds([(0, 2), (1, 3), (5, 6)]) == 4
    assert union_seconds([]) == 0
