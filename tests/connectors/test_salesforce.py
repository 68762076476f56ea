"""SalesforceConnector against the local emulator, through the real simple-salesforce client over HTTP."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pandas as pd
import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from billing.periods import Period
from connectors.base import PermanentSourceError, SourceConnector, TransientSourceError
from connectors.salesforce import (
    MAPPING,
    InMemoryWatermarks,
    SalesforceConnector,
    SalesforceSettings,
    SObjectMapping,
)
from connectors.salesforce_emulator import start_emulator
from connectors.sample_company import generate

PERIOD = Period(2026, 10)
# 100,000 items give 3,551 rate-card rows: enough for two REST pages of 2,000 (generated in ~0.4 s).
ITEMS = 100_000
FAST = dict(retry_base_delay_seconds=0.0, retry_max_delay_seconds=0.0, bulk_poll_seconds=0.01)


@pytest.fixture(scope="module")
def sample() -> dict[str, pd.DataFrame]:
    return generate(PERIOD, ITEMS)


@pytest.fixture(scope="module")
def emulator(sample):
    handle = start_emulator(sample)
    yield handle
    handle.stop()


@pytest.fixture(autouse=True)
def _no_leftover_faults(request):
    yield
    if "emulator" in request.fixturenames:
        request.getfixturevalue("emulator").clear_faults()


def connector(handle, **overrides) -> SalesforceConnector:
    return SalesforceConnector(handle.settings(**{**FAST, **overrides}))


def delta(handle, before: dict[str, int], key: str) -> int:
    return handle.counts.get(key, 0) - before.get(key, 0)


# --- the data ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dataset", ["customers", "contracts", "scope_lines", "rate_card"])
def test_frames_round_trip_through_salesforce_records_to_the_cent(emulator, sample, dataset):
    frame = connector(emulator).read(dataset, PERIOD)
    pd.testing.assert_frame_equal(frame, sample[dataset])
    assert frame.dtypes.equals(sample[dataset].dtypes)


def test_connector_is_a_source_connector_for_its_four_datasets(emulator):
    c = connector(emulator)
    assert isinstance(c, SourceConnector)
    assert c.datasets == ("customers", "contracts", "scope_lines", "rate_card")


def test_unknown_dataset_is_a_permanent_error_naming_what_is_delivered(emulator):
    with pytest.raises(PermanentSourceError, match="delivers customers, contracts"):
        connector(emulator).read("expenditure_items", PERIOD)


def test_mapping_accepts_only_api_names_because_names_are_not_quoted_in_soql():
    with pytest.raises(ValueError, match="not a Salesforce API name"):
        SObjectMapping("Account", {"customer_id": "Id FROM User WHERE Name != null --"})


def test_connect_fails_fast_on_bad_credentials(emulator):
    with pytest.raises(PermanentSourceError, match=r"refused for user 'billing@example\.com'"):
        connector(emulator, security_token="WRONG").connect()


def test_custom_field_is_mapped_in_one_line(sample):
    # A data engineer renames the Account field for the PO number: one entry in the mapping changes,
    # and both the emulator (reverse) and the connector (forward) follow it.
    fields = dict(MAPPING["customers"].fields, po_number="Purchase_Order__c")
    mapping = {**MAPPING, "customers": SObjectMapping("Account", fields)}
    with start_emulator({"customers": sample["customers"]}, mapping=mapping) as handle:
        c = SalesforceConnector(handle.settings(**FAST), mapping=mapping)
        pd.testing.assert_frame_equal(c.read("customers", PERIOD), sample["customers"])
        assert handle.client().query("SELECT COUNT() FROM Account WHERE Purchase_Order__c != null")[
            "totalSize"] == sample["customers"]["po_number"].notna().sum()


# --- login ------------------------------------------------------------------------------------------
def test_soap_login_with_security_token_reads_data(emulator, sample):
    before = emulator.counts
    c = connector(emulator)
    assert len(c.read("customers", PERIOD)) == len(sample["customers"])
    assert delta(emulator, before, "login:soap") == 1


def test_oauth_username_password_flow_reads_the_same_data(emulator, sample):
    before = emulator.counts
    st = emulator.state
    c = connector(emulator, consumer_key=st.consumer_key, consumer_secret=st.consumer_secret)
    pd.testing.assert_frame_equal(c.read("contracts", PERIOD), sample["contracts"])
    assert delta(emulator, before, "login:oauth") == 1
    assert delta(emulator, before, "login:soap") == 0


def test_wrong_password_is_a_permanent_error_that_does_not_leak_secrets(emulator):
    c = connector(emulator, password="not-the-password")
    with pytest.raises(PermanentSourceError, match=r"login \(SOAP\) refused .*INVALID_LOGIN") as err:
        c.read("customers", PERIOD)
    assert "not-the-password" not in str(err.value)
    assert emulator.state.security_token not in str(err.value)


def test_wrong_consumer_secret_is_a_permanent_error(emulator):
    c = connector(emulator, consumer_key=emulator.state.consumer_key, consumer_secret="wrong")
    with pytest.raises(PermanentSourceError, match=r"login \(OAuth\) refused .*invalid_client_id"):
        c.read("customers", PERIOD)


# --- REST and Bulk API 2.0 --------------------------------------------------------------------------
def test_rest_pages_beyond_2000_records_with_query_more(emulator, sample):
    assert len(sample["rate_card"]) > 2000
    before = emulator.counts
    c = connector(emulator)
    frame = c.read("rate_card", PERIOD)
    assert c.last_method == "rest"
    # 3,551 rows: the first page of 2,000 comes with the query, the rest with one queryMore.
    assert delta(emulator, before, "query_more") == (len(sample["rate_card"]) - 1) // 2000
    pd.testing.assert_frame_equal(frame, sample["rate_card"])


def test_bulk2_is_used_above_the_threshold_and_returns_the_rest_rows(emulator, sample):
    rest = connector(emulator).read("rate_card", PERIOD)
    before = emulator.counts
    c = connector(emulator, bulk_threshold=1000, bulk_page_size=1000)
    bulk = c.read("rate_card", PERIOD)
    assert c.last_method == "bulk2"
    assert delta(emulator, before, "bulk_job") == 1
    # 3,551 rows in pages of maxRecords=1,000 follow the Sforce-Locator four times.
    assert delta(emulator, before, "bulk_results") == 4
    pd.testing.assert_frame_equal(bulk, rest)
    assert bulk["bill_rate_cents"].sum() == rest["bill_rate_cents"].sum() == sample["rate_card"][
        "bill_rate_cents"].sum()


@pytest.mark.parametrize("dataset", ["customers", "contracts", "scope_lines"])
def test_bulk2_round_trips_every_dtype_like_rest(emulator, sample, dataset):
    c = connector(emulator, bulk_threshold=0)
    frame = c.read(dataset, PERIOD)
    assert c.last_method == "bulk2"
    pd.testing.assert_frame_equal(frame, sample[dataset])


@pytest.mark.parametrize("threshold", [10_000, 0], ids=["rest", "bulk2"])
def test_empty_lookup_and_empty_fields_come_back_as_nulls(sample, threshold):
    lines = sample["scope_lines"].head(50).copy()
    lines.loc[[0, 3], "quote_id"] = pd.NA           # no quote: the SBQQ__Quote__r lookup is null
    lines.loc[[1], "role"] = pd.NA
    lines.loc[[2], "not_to_exceed_cents"] = pd.NA
    with start_emulator({"scope_lines": lines}) as handle:
        c = SalesforceConnector(handle.settings(**FAST, bulk_threshold=threshold))
        pd.testing.assert_frame_equal(c.read("scope_lines", PERIOD), lines)
        rec = handle.client().query("SELECT SBQQ__Quote__r.Name FROM SBQQ__QuoteLine__c ORDER BY Id LIMIT 1")
        assert rec["records"][0]["SBQQ__Quote__r"] is None


def test_api_usage_is_read_from_the_sforce_limit_info_header(emulator, caplog):
    c = connector(emulator)
    with caplog.at_level(logging.INFO, logger="connectors.salesforce"):
        c.read("customers", PERIOD)
    assert c.api_usage is not None and c.api_usage.limit == 15_000
    assert c.api_usage.used == emulator.state.api_used
    assert f"{c.api_usage.used}/15000 API requests" in caplog.text


# --- incremental pulls ------------------------------------------------------------------------------
@pytest.fixture
def small(sample):
    small = generate(PERIOD, 3000)
    with start_emulator(small) as handle:
        yield handle, small


@pytest.mark.parametrize("threshold", [10_000, 0], ids=["rest", "bulk2"])
def test_incremental_pull_returns_only_records_touched_since_the_watermark(small, threshold):
    handle, data = small
    marks = InMemoryWatermarks()
    c = SalesforceConnector(handle.settings(**FAST, bulk_threshold=threshold), watermarks=marks)
    first = c.read_changed("customers")
    pd.testing.assert_frame_equal(first, data["customers"])
    assert marks.get("salesforce", "Account") == datetime(2026, 1, 1, tzinfo=UTC)
    stamp = handle.touch("customers", "C00003", customer_name="Cobalt Systems Renamed Ltd",
                         credit_hold=True)
    second = c.read_changed("customers")
    assert second["customer_id"].tolist() == ["C00003"]
    assert second.loc[0, "customer_name"] == "Cobalt Systems Renamed Ltd"
    assert bool(second.loc[0, "credit_hold"]) is True
    assert marks.get("salesforce", "Account") == stamp
    assert len(c.read_changed("customers")) == 0
    assert marks.get("salesforce", "Account") == stamp


def test_full_pull_reads_every_row_whatever_the_watermark(small):
    handle, data = small
    marks = InMemoryWatermarks()
    marks.set("salesforce", "Contract", datetime(2030, 1, 1, tzinfo=UTC))
    assert len(SalesforceConnector(handle.settings(**FAST), watermarks=marks).read_changed("contracts")) == 0
    full = SalesforceConnector(handle.settings(**FAST), watermarks=marks, full=True).read_changed("contracts")
    pd.testing.assert_frame_equal(full, data["contracts"])


def test_overlap_reads_recent_changes_again_but_not_older_rows(small):
    handle, _ = small
    marks = InMemoryWatermarks()
    marks.set("salesforce", "Account", datetime(2026, 1, 1, 2, 0, tzinfo=UTC))  # rows are stamped 00:00
    c = SalesforceConnector(handle.settings(**FAST, incremental_overlap_seconds=3600), watermarks=marks)
    assert len(c.read_changed("customers")) == 0  # 01:00 is still after every row's 00:00
    handle.touch("customers", "C00002", po_number="PO-NEW")
    assert c.read_changed("customers")["customer_id"].tolist() == ["C00002"]
    # Within the hour of overlap the same edit comes back again.
    assert c.read_changed("customers")["customer_id"].tolist() == ["C00002"]


def test_read_ignores_the_watermark_and_returns_the_current_table(small):
    handle, data = small
    c = SalesforceConnector(handle.settings(**FAST))
    c.read_changed("rate_card")
    first = data["rate_card"].iloc[0]
    handle.touch("rate_card", (first["contract_id"], first["role"], first["effective_from"]),
                 bill_rate_cents=99_900)
    current = c.read("rate_card", PERIOD)
    assert len(current) == len(data["rate_card"])
    assert current.loc[0, "bill_rate_cents"] == 99_900


# --- faults -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("fault", ["503", "REQUEST_LIMIT_EXCEEDED"])
@pytest.mark.parametrize("threshold", [10_000, 0], ids=["rest", "bulk2"])
def test_transient_fault_is_retried_and_the_pull_completes(emulator, sample, fault, threshold):
    slept: list[float] = []
    c = SalesforceConnector(emulator.settings(bulk_threshold=threshold, bulk_poll_seconds=0.01,
                                              retry_base_delay_seconds=0.5, retry_jitter=0.5),
                            sleep=slept.append)
    c.connect()  # log in first so the faults hit data calls
    before = emulator.counts
    emulator.inject(fault, times=2)
    pd.testing.assert_frame_equal(c.read("customers", PERIOD), sample["customers"])
    assert delta(emulator, before, f"fault:{fault}") == 2
    # Exponential backoff with jitter: 0.5 s then 1 s, each stretched by up to 50 %.
    assert len(slept) == 2
    assert 0.5 <= slept[0] <= 0.75 and 1.0 <= slept[1] <= 1.5


@pytest.mark.parametrize("threshold", [10_000, 0], ids=["rest", "bulk2"])
def test_invalid_session_id_logs_in_again_and_the_pull_completes(emulator, sample, threshold):
    c = connector(emulator, bulk_threshold=threshold)
    c.connect()
    before = emulator.counts
    emulator.inject("INVALID_SESSION_ID", times=1)
    pd.testing.assert_frame_equal(c.read("contracts", PERIOD), sample["contracts"])
    assert delta(emulator, before, "fault:INVALID_SESSION_ID") == 1
    assert delta(emulator, before, "login") == 1


@pytest.mark.parametrize("oauth", [False, True], ids=["soap", "oauth"])
def test_login_outage_is_retried_and_then_the_login_succeeds(emulator, sample, oauth):
    st = emulator.state
    extra = dict(consumer_key=st.consumer_key, consumer_secret=st.consumer_secret) if oauth else {}
    c = connector(emulator, **extra)
    before = emulator.counts
    emulator.inject("LOGIN_503", times=2)
    pd.testing.assert_frame_equal(c.read("customers", PERIOD), sample["customers"])
    assert delta(emulator, before, "fault:LOGIN_503") == 2
    assert delta(emulator, before, "login") == 1


def test_login_outage_that_outlasts_the_retries_is_transient(emulator):
    emulator.inject("LOGIN_503", times=5)
    with pytest.raises(TransientSourceError, match=r"failed after 2 attempts; last error: Salesforce login "
                                                   r"\(SOAP\) .* unavailable: 503"):
        connector(emulator, retry_attempts=2).read("customers", PERIOD)


def test_exhausted_retries_raise_a_transient_error_saying_what_failed(emulator):
    c = connector(emulator, retry_attempts=3)
    c.connect()
    emulator.inject("503", times=10)
    with pytest.raises(TransientSourceError,
                       match=r"COUNT\(\) of Account failed after 3 attempts; last error: HTTP 503 "
                             r"SERVER_UNAVAILABLE") as err:
        c.read("customers", PERIOD)
    assert err.value.transient


def test_exhausted_request_limit_raises_a_transient_error(emulator):
    c = connector(emulator, retry_attempts=2)
    c.connect()
    emulator.inject("REQUEST_LIMIT_EXCEEDED", times=5)
    with pytest.raises(TransientSourceError, match=r"failed after 2 attempts.*REQUEST_LIMIT_EXCEEDED"):
        c.read("customers", PERIOD)


def test_session_rejected_again_after_relogin_is_a_permanent_error(emulator):
    c = connector(emulator)
    c.connect()
    # Every call answers 401: the client's own re-logins (three per call) and then the connector's one
    # fresh login all fail, and a permanent error says so.
    emulator.inject("INVALID_SESSION_ID", times=50)
    with pytest.raises(PermanentSourceError, match="session rejected again right after a fresh login"):
        c.read("customers", PERIOD)


# --- SOQL -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("soql", [
    "SELECT Id FROM Account WHERE Name = 'a' OR Name = 'b'",
    "SELECT Id FROM Account WHERE (Name = 'a')",
    "SELECT Id FROM Account WHERE CreatedDate = TODAY",
    "SELECT Id FROM Account WHERE LastModifiedDate > LAST_N_DAYS:5",
    "SELECT Currency, COUNT(Id) FROM Account GROUP BY Currency",
    "SELECT Id FROM Account LIMIT 10 OFFSET 5",
    "SELECT Id FROM Contract WHERE AccountId IN (SELECT Id FROM Account)",
    "SELECT Id, (SELECT Id FROM Contracts) FROM Account",
    "SELECT Id FROM Account WHERE NOT Name = 'a'",
    "SELECT Id FROM Account ORDER BY Name NULLS LAST",
    "SELECT Id FROM Account WHERE Payment_Terms_Days__c = '30'",
    "SELECT Id FROM Account WHERE",
    "DELETE FROM Account",
])
def test_unsupported_or_invalid_soql_is_refused_with_malformed_query(emulator, soql):
    with pytest.raises(SalesforceMalformedRequest) as err:
        emulator.client().query(soql)
    assert err.value.status == 400
    assert err.value.content[0]["errorCode"] in ("MALFORMED_QUERY", "INVALID_QUERY_FILTER_OPERATOR")
    assert err.value.content[0]["message"]


def test_unknown_field_and_object_are_refused_by_name(emulator):
    sf = emulator.client()
    with pytest.raises(SalesforceMalformedRequest, match="INVALID_FIELD"):
        sf.query("SELECT Id, Colour__c FROM Account")
    with pytest.raises(SalesforceMalformedRequest, match="INVALID_TYPE"):
        sf.query("SELECT Id FROM Opportunity")


def test_soql_filters_agree_with_the_same_filters_in_pandas(emulator, sample):
    sf = emulator.client()
    cust = sample["customers"]

    def count(where: str) -> int:
        return sf.query("SELECT COUNT() FROM Account WHERE " + where)["totalSize"]

    assert count("CurrencyIsoCode = 'EUR' AND Payment_Terms_Days__c >= 30") == (
        (cust["currency"] == "EUR") & (cust["payment_terms_days"] >= 30)).sum()
    assert count("Delivery_Channel__c IN ('peppol', 'edi')") == cust["delivery_channel"].isin(
        ["peppol", "edi"]).sum()
    assert count("Delivery_Channel__c NOT IN ('peppol', 'edi')") == (~cust["delivery_channel"].isin(
        ["peppol", "edi"])).sum()
    assert count("Credit_Hold__c = true") == cust["credit_hold"].sum()
    assert count("PO_Number__c = null") == cust["po_number"].isna().sum()
    assert count("Name LIKE 'acme%'") == cust["customer_name"].str.lower().str.startswith("acme").sum()
    assert count("SystemModstamp > 2025-12-31T23:59:59Z") == len(cust)
    assert count("SystemModstamp > 2026-01-01T00:00:00+00:00") == 0
    contracts = sample["contracts"]
    n = sf.query("SELECT COUNT() FROM Contract WHERE EndDate < 2026-11-01")["totalSize"]
    assert n == (contracts["end_date"] < pd.Timestamp("2026-11-01")).sum()
    top = sf.query("SELECT Name, Payment_Terms_Days__c FROM Account ORDER BY Payment_Terms_Days__c DESC, "
                   "Name LIMIT 3")["records"]
    expected = cust.assign(k=cust["customer_name"].str.casefold()).sort_values(
        ["payment_terms_days", "k"], ascending=[False, True]).head(3)
    assert [r["Name"] for r in top] == expected["customer_name"].tolist()


def test_rest_records_look_like_salesforce_records(emulator):
    rec = emulator.client().query("SELECT Id, SystemModstamp, Account.AccountNumber, StartDate FROM "
                                  "Contract ORDER BY Id LIMIT 1")["records"][0]
    assert rec["attributes"]["type"] == "Contract"
    assert len(rec["Id"]) == 18 and rec["Id"].startswith("800")
    assert rec["SystemModstamp"] == "2026-01-01T00:00:00.000+0000"
    assert rec["Account"]["AccountNumber"] == "C00001"
    assert len(rec["StartDate"]) == 10


def test_describe_lists_the_mapped_fields_and_check_mapping_finds_none_missing(emulator):
    desc = emulator.client().Account.describe()
    names = {f["name"] for f in desc["fields"]}
    assert {"Invoice_Grouping__c", "Delivery_Channel__c", "PO_Required__c", "Credit_Hold__c",
            "Tax_Rate_Bp__c"} <= names
    grouping = next(f for f in desc["fields"] if f["name"] == "Invoice_Grouping__c")
    assert grouping["type"] == "picklist"
    assert connector(emulator).check_mapping() == {m.sobject: [] for m in MAPPING.values()}


# --- settings ---------------------------------------------------------------------------------------
def test_settings_keep_secrets_out_of_repr_and_logs():
    s = SalesforceSettings(username="u@example.com", password="pw-secret", security_token="tok-secret",
                           consumer_key="ck", consumer_secret="cs-secret")
    text = repr(s) + str(s) + repr(SalesforceConnector(s))
    for secret in ("pw-secret", "tok-secret", "cs-secret"):
        assert secret not in text


def test_settings_from_env_read_the_prefixed_variables():
    env = {"SF_USERNAME": "u@example.com", "SF_PASSWORD": "pw", "SF_SECURITY_TOKEN": "tok",
           "SF_DOMAIN": "test", "SF_BULK_THRESHOLD": "500", "SF_API_VERSION": "60.0"}
    s = SalesforceSettings.from_env(prefix="SF_", environ=env)
    assert (s.username, s.domain, s.bulk_threshold, s.api_version) == ("u@example.com", "test", 500, "60.0")
    assert s.password.get_secret_value() == "pw"
    assert s.security_token.get_secret_value() == "tok"


def test_settings_from_env_name_the_missing_variables():
    with pytest.raises(PermanentSourceError, match="SALESFORCE_USERNAME, SALESFORCE_PASSWORD"):
        SalesforceSettings.from_env(environ={})


def test_settings_refuse_plain_http_off_loopback():
    with pytest.raises(ValueError, match="loopback"):
        SalesforceSettings(username="u", password="p", security_token="t", instance_url="http://example.com")


def test_settings_need_a_token_or_oauth_client():
    with pytest.raises(ValueError, match="security_token"):
        SalesforceSettings(username="u", password="p")
