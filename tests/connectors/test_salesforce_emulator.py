"""The Salesforce emulator: its SOQL subset, its wire format and its control surface."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime

import pytest
import requests
from simple_salesforce.format import format_soql

from billing.periods import Period
from connectors.salesforce_emulator import soql, start_emulator
from connectors.salesforce_emulator.server import case_safe_id, salesforce_id
from connectors.sample_company import generate


@pytest.fixture(scope="module")
def emulator():
    with start_emulator(generate(Period(2026, 10), 3000)) as handle:
        yield handle


def session_id(handle) -> str:
    return handle.client().session_id


# --- SOQL subset ------------------------------------------------------------------------------------
def test_parse_reads_fields_conditions_order_and_limit():
    q = soql.parse("select Id, Account.AccountNumber from Contract where StartDate >= 2026-01-01 and "
                   "Name LIKE 'Adv%' AND CurrencyIsoCode IN ('EUR','GBP') order by Name desc, Id LIMIT 5")
    assert q.sobject == "Contract"
    assert q.fields == ["Id", "Account.AccountNumber"]
    assert [(c.field, c.op) for c in q.where] == [("StartDate", ">="), ("Name", "LIKE"),
                                                   ("CurrencyIsoCode", "IN")]
    assert q.where[0].values[0].value == date(2026, 1, 1)
    assert [v.value for v in q.where[2].values] == ["EUR", "GBP"]
    assert q.order_by == [("Name", True), ("Id", False)]
    assert q.limit == 5


def test_parse_count_has_no_fields():
    q = soql.parse("SELECT COUNT() FROM Account WHERE Credit_Hold__c = true")
    assert q.is_count and q.where[0].values[0].value is True


@pytest.mark.parametrize("text, expected", [
    ("2026-10-01T00:00:00Z", datetime(2026, 10, 1, tzinfo=UTC)),
    ("2026-10-01T02:00:00+02:00", datetime(2026, 10, 1, tzinfo=UTC)),
    ("2026-10-01T00:00:00.000+0000", datetime(2026, 10, 1, tzinfo=UTC)),
])
def test_datetime_literals_are_read_in_every_offset_form(text, expected):
    assert soql.parse(f"SELECT Id FROM Account WHERE SystemModstamp > {text}").where[0].values[0].value == expected


@pytest.mark.parametrize("value", ["O'Brien & Sons", 'say "hi"', "back\\slash", "tab\there", "50%_off"])
def test_format_soql_quoting_round_trips_through_the_parser(value):
    q = soql.parse(format_soql("SELECT Id FROM Account WHERE Name = {}", value))
    assert q.where[0].values[0].value.replace("\\%", "%").replace("\\_", "_") == value


def test_like_escapes_percent_and_underscore():
    rx = soql.like_regex(format_soql("{:like}%", "50%_"))
    assert rx.match("50%_ off") and not rx.match("50xy off")


@pytest.mark.parametrize("text", [
    "SELECT Id FROM Account WHERE A = 1 OR B = 2",
    "SELECT Id FROM Account WHERE CreatedDate = YESTERDAY",
    "SELECT MAX(Amount) FROM Account",
    "SELECT Id FROM Account GROUP BY Id",
    "SELECT Id FROM Account LIMIT -1",
    "SELECT Id FROM Account WHERE Name = 'unterminated",
    "SELECT FROM Account",
    "SELECT Id Account",
])
def test_unsupported_soql_raises_rather_than_guessing(text):
    with pytest.raises(soql.SoqlError) as err:
        soql.parse(text)
    assert err.value.code == "MALFORMED_QUERY"


# --- records and wire format ------------------------------------------------------------------------
def test_ids_are_18_character_case_safe_ids_in_load_order():
    assert case_safe_id("001D000000IqhSL") == "001D000000IqhSLIAZ"  # Salesforce's documented example
    ids = [salesforce_id("001", n) for n in (1, 2, 10, 11)]
    assert all(len(i) == 18 for i in ids) and ids == sorted(ids)


def test_data_calls_without_a_session_get_invalid_session_id(emulator):
    r = requests.get(f"{emulator.url}/services/data/v59.0/query", params={"q": "SELECT Id FROM Account"})
    assert r.status_code == 401
    assert r.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


def test_every_data_answer_carries_sforce_limit_info(emulator):
    headers = {"Authorization": f"Bearer {session_id(emulator)}"}
    r = requests.get(f"{emulator.url}/services/data/v59.0/query", headers=headers,
                     params={"q": "SELECT COUNT() FROM Account"})
    assert r.status_code == 200
    assert r.headers["Sforce-Limit-Info"] == f"api-usage={emulator.state.api_used}/15000"


def test_bulk2_results_page_by_max_records_and_sforce_locator(emulator):
    base = f"{emulator.url}/services/data/v59.0/jobs/query"
    headers = {"Authorization": f"Bearer {session_id(emulator)}", "Content-Type": "application/json"}
    job = requests.post(base, headers=headers, json={"operation": "query",
                                                     "query": "SELECT Id, Name FROM Account"}).json()
    assert job["state"] == "UploadComplete"
    assert requests.get(f"{base}/{job['id']}", headers=headers).json()["state"] == "InProgress"
    assert requests.get(f"{base}/{job['id']}", headers=headers).json()["state"] == "JobComplete"
    rows, locator, pages = 0, "", 0
    while True:
        params = {"maxRecords": 5, **({"locator": locator} if locator else {})}
        r = requests.get(f"{base}/{job['id']}/results", headers=headers, params=params)
        assert r.headers["Content-Type"].startswith("text/csv")
        assert r.text.splitlines()[0] == '"Id","Name"'
        rows += int(r.headers["Sforce-NumberOfRecords"])
        pages += 1
        locator = r.headers["Sforce-Locator"]
        if locator == "null":
            break
    n = len(emulator.state.table("Account").records)
    assert rows == n and pages == -(-n // 5)


def test_bulk2_refuses_aggregate_queries(emulator):
    headers = {"Authorization": f"Bearer {session_id(emulator)}"}
    r = requests.post(f"{emulator.url}/services/data/v59.0/jobs/query", headers=headers,
                      json={"operation": "query", "query": "SELECT COUNT() FROM Account"})
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "INVALIDJOB"


def test_faults_can_be_injected_over_http(emulator):
    sid = session_id(emulator)
    assert requests.post(f"{emulator.url}/_emulator/fault", json={"fault": "503", "times": 1}).status_code == 204
    r = requests.get(f"{emulator.url}/services/data/v59.0/sobjects/Account/describe",
                     headers={"Authorization": f"Bearer {sid}"})
    assert r.status_code == 503 and r.json()[0]["errorCode"] == "SERVER_UNAVAILABLE"
    r = requests.get(f"{emulator.url}/services/data/v59.0/sobjects/Account/describe",
                     headers={"Authorization": f"Bearer {sid}"})
    assert r.status_code == 200


def test_invalid_session_fault_revokes_the_session_presented(emulator):
    sid = session_id(emulator)
    emulator.inject("INVALID_SESSION_ID")
    url = f"{emulator.url}/services/data/v59.0/sobjects"
    assert requests.get(url, headers={"Authorization": f"Bearer {sid}"}).status_code == 401
    assert requests.get(url, headers={"Authorization": f"Bearer {sid}"}).status_code == 401


def test_unknown_fault_is_refused(emulator):
    with pytest.raises(ValueError, match="fault must be one of"):
        emulator.inject("500")


def test_module_serves_the_sample_company_from_the_command_line():
    proc = subprocess.Popen([sys.executable, "-m", "connectors.salesforce_emulator", "--items", "2000"],
                            stdout=subprocess.PIPE, text=True, start_new_session=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    try:
        first = proc.stdout.readline().strip()
        assert first.startswith("Salesforce emulator on http://127.0.0.1:")
        url = first.rsplit(" ", 1)[1]
        stats = requests.get(f"{url}/_emulator/stats", timeout=5).json()
        assert stats["records"]["Account"] > 0
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.time() + 10
        while proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.stdout.close()
    assert proc.returncode == 0
