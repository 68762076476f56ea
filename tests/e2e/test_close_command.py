"""The `billing-cycle close` command end to end on the demo company."""

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.e2e
BIN = str(Path(sys.executable).with_name("billing-cycle"))


def run(*args, cwd, **env):
    return subprocess.run([BIN, *args], cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={"PATH": str(Path(sys.executable).parent), "HOME": str(cwd),
                               "PREFECT_HOME": str(cwd / ".prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                               "USER": "maria"} | env)


@pytest.fixture(scope="module")
def closed(tmp_path_factory):
    """Close, approve what waits (as another person), close again (hands off the approved), and again."""
    cwd = tmp_path_factory.mktemp("close")
    first = run("close", "--period", "2026-10", "--json", cwd=cwd)
    assert first.returncode == 0, first.stderr[-3000:]
    listing = run("approve", cwd=cwd)
    selfie = run("approve", "--approver", "MARIA ", "--approve", "all", cwd=cwd)
    approve = run("approve", "--approver", "Ivan Georgiev", "--approve", "all", "--comment", "month-end review",
                  cwd=cwd)
    assert approve.returncode == 0, approve.stderr[-3000:]
    second = run("close", "--period", "2026-10", "--json", cwd=cwd)
    assert second.returncode == 0, second.stderr[-3000:]
    third = run("close", "--period", "2026-10", cwd=cwd)
    assert third.returncode == 0, third.stderr[-3000:]
    return {"cwd": cwd, "first": json.loads(first.stdout), "listing": listing.stdout, "self": selfie,
            "approve": approve.stdout, "second": json.loads(second.stdout), "third": third.stdout}


def money(s: pd.Series) -> Decimal:
    return sum((Decimal(x) for x in s.astype(str)), Decimal(0))


def test_files_and_totals_agree_with_the_summary(closed):
    cwd, summary = closed["cwd"], closed["first"]
    out = cwd / "out" / "2026-10"
    for f in ("invoices.csv", "invoice_lines.csv", "unbilled.csv", "unbilled_aging.csv", "exceptions.csv",
              "cost_transfers.csv", "billing_lines.parquet", "quarantine.csv"):
        assert (out / f).exists(), f
    inv = pd.read_csv(out / "invoices.csv", dtype=str)
    lines = pd.read_csv(out / "invoice_lines.csv", dtype=str)
    assert money(inv["net"]) == money(lines["amount"])
    for key, v in summary["documents"].items():
        cur, kind = key.split("/")
        sel = inv[(inv["currency"] == cur) & (inv["document_type"] == kind)]
        assert len(sel) == v["count"]
        assert money(sel["gross"]) == Decimal(v["gross_cents"]) / 100
    c = summary["conservation"]
    assert c["balanced"] and c["candidate_cents"] == c["billed_cents"] + c["unbilled_cents"]
    unbilled = pd.read_csv(out / "unbilled.csv", dtype=str)
    assert money(unbilled["unbilled"]) == Decimal(c["unbilled_cents"]) / 100
    assert {"0-30", "31-60", "61-90", "90+"} <= set(unbilled["aging_bucket"])
    aging = pd.read_csv(out / "unbilled_aging.csv", dtype=str)   # buckets in major units, like the total
    assert sum((money(aging[b]) for b in ("0-30", "31-60", "61-90", "90+")), Decimal(0)) == money(aging["total"])
    assert money(aging["total"]) == Decimal(c["unbilled_cents"]) / 100
    pending = summary["approvals"]["pending"]
    assert summary["refused_by_targets"] == {}   # the sample company's invoicing set-up is valid for every target
    assert pending > 0 and summary["handoff"]["delivered"] + pending == len(inv)


def test_approved_documents_go_on_the_next_run_and_nothing_twice(closed):
    cwd, first, second = closed["cwd"], closed["first"], closed["second"]
    pending = first["approvals"]["pending"]
    assert len(closed["listing"].strip().splitlines()) == pending
    assert f"{pending} approved, 0 rejected by Ivan Georgiev" in closed["approve"]
    assert second["handoff"]["delivered"] == pending
    assert second["approvals"]["pending"] == 0
    handed = list((cwd / "out" / "2026-10" / "handoff").glob("*.json"))
    assert len(handed) == first["handoff"]["delivered"] + pending


def test_self_approval_from_the_terminal_is_refused(closed):
    r = closed["self"]
    assert r.returncode == 2
    assert r.stderr.strip() == ("billing-cycle: self-approval refused: 'MARIA' prepared this run; another person "
                                "must approve (segregation of duties)")


def test_every_seeded_fault_shows_up_by_reason(closed):
    summary = closed["first"]
    reasons = set(summary["not_billed_by_reason"])
    assert {"missing_bill_rate", "outside_contract_term", "credit_hold", "missing_po", "bill_hold",
            "awaiting_approval", "over_cap", "invalid_currency", "data_quality"} <= reasons


def test_third_run_hands_off_nothing_new_and_says_so(closed):
    first, second, third = closed["first"], closed["second"], closed["third"]
    assert "Hand-off: nothing new to hand off" in third
    seeded = first["validation"]["seeded_faults"]["not_a_repeat_entry"]
    assert seeded["seeded"] == seeded["caught"] > 0
    assert abs(seeded["seeded"] / seeded["records"] - seeded["seeded_rate"]) < 0.001   # 0.5% duplicates
    assert f"seeded faults (not_a_repeat_entry): {seeded['seeded']} of" in third and "all caught" in third
    total = first["handoff"]["delivered"] + second["handoff"]["delivered"]
    assert f"({total} documents already handed off" in third


def test_bad_period_is_a_one_line_error(tmp_path):
    r = run("close", "--period", "2026-13", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "YYYY-MM" in r.stderr and "Traceback" not in r.stderr


def test_missing_source_folder_is_a_one_line_error(tmp_path):
    r = run("close", "--period", "2026-10", "--source", f"files:{tmp_path / 'nope'}", cwd=tmp_path)
    assert r.returncode == 2 and "does not exist" in r.stderr and "Traceback" not in r.stderr


def test_broken_input_file_is_a_one_line_error_naming_the_record(tmp_path):
    assert run("sample", "--period", "2026-10", "--items", "300", "--out", "exp", cwd=tmp_path).returncode == 0
    p = tmp_path / "exp" / "customers.csv"
    df = pd.read_csv(p, dtype=str, keep_default_na=False)
    df.loc[2, "payment_terms_days"] = "thirty"
    df.to_csv(p, index=False)
    r = run("close", "--period", "2026-10", "--source", "files:exp", cwd=tmp_path)
    assert r.returncode == 2, r.stderr[-2000:]
    assert "customers.csv, row 4, column 'payment_terms_days': 'thirty' is not a valid whole number" in r.stderr
    assert "Traceback" not in r.stderr


def test_emulated_sources_close_equals_the_embedded_close_to_the_cent(closed, tmp_path):
    embedded = closed["first"]
    r = run("close", "--period", "2026-10", "--sources", "emulated", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    emulated = json.loads(r.stdout)
    assert emulated["documents"] == embedded["documents"]
    assert emulated["conservation"] == embedded["conservation"]
    assert emulated["unbilled_aging_cents"] == embedded["unbilled_aging_cents"]
