"""Connector credentials as Prefect blocks: saved once, chosen per run by name, secrets never shown."""

from __future__ import annotations

import logging
import uuid

import pandas as pd
import pytest

from billing.periods import Period
from connectors.base import PermanentSourceError
from connectors.blocks import OracleCredentials, SalesforceCredentials
from connectors.factory import build_sources
from connectors.salesforce_emulator import start_emulator
from connectors.sample_company import generate

pytestmark = pytest.mark.usefixtures("prefect_harness")
OCT = Period(2026, 10)


def test_live_source_reads_salesforce_through_a_saved_block(tmp_path, caplog):
    data = generate(OCT, 1000, 4)
    name = uuid.uuid4().hex[:8]
    with start_emulator(data) as handle:
        s = handle.settings()
        SalesforceCredentials(username=s.username, password=s.password.get_secret_value(),
                              security_token=s.security_token.get_secret_value(), instance_url=s.instance_url
                              ).save(f"sf-{name}")
        OracleCredentials(user="XXBILL_RO", password="ora-s3cret", dsn="ebsdb:1521/EBSPROD",
                          schema_name="APPS").save(f"ebs-{name}")
        (tmp_path / "tracker").mkdir()
        caplog.set_level(logging.DEBUG)
        sources = build_sources(f"live:salesforce=sf-{name},oracle=ebs-{name},tracker={tmp_path / 'tracker'}")
        customers = sources.read("customers", OCT)
    pd.testing.assert_frame_equal(customers, data["customers"])
    ora = sources.by_dataset["expenditure_items"]
    assert ora._settings.schema_ == "APPS" and ora._settings.dsn == "ebsdb:1521/EBSPROD"
    assert ora.tables.expenditure_items.schema.upper() == "APPS"
    shown = caplog.text + repr(sources.by_dataset["customers"]) + repr(ora._settings)
    assert s.password.get_secret_value() not in shown and "ora-s3cret" not in shown
    assert s.security_token.get_secret_value() not in shown


def test_unknown_block_name_is_a_clear_error():
    with pytest.raises(PermanentSourceError, match="no Billing Salesforce block named 'nope'"):
        build_sources("live:salesforce=nope,oracle=nope,tracker=/tmp")


def test_block_settings_keep_secrets_secret():
    b = SalesforceCredentials(username="u@example.com", password="pw-123", security_token="tok-456")
    settings = b.settings()
    assert settings.password.get_secret_value() == "pw-123"
    assert "pw-123" not in repr(b) and "tok-456" not in repr(settings)
