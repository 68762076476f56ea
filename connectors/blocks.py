"""Prefect blocks that hold the connectors' credentials: saved once, chosen per run by name.

An administrator saves them in the UI (Blocks → "Billing Salesforce" / "Billing Oracle EBS") or in
code::

    SalesforceCredentials(username="billing@acme.com", password="...", security_token="...",
                          domain="acme.my").save("salesforce-prod")
    OracleCredentials(user="XXBILL_RO", password="...", dsn="ebsdb:1521/EBSPROD", schema_name="APPS"
                      ).save("ebs-prod")

and a run picks them with its source: ``live:salesforce=salesforce-prod,oracle=ebs-prod,tracker=PATH``.
Secrets are ``SecretStr``: Prefect stores them encrypted, the UI masks them, and neither the blocks'
repr nor the connectors' log lines show them. They are read when the run starts, never at import.
"""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from connectors.oracle import OracleSettings
from connectors.salesforce import SalesforceSettings


class SalesforceCredentials(Block):
    """A Salesforce org the close reads accounts, contracts, quote lines and bill rates from."""

    _block_type_name = "Billing Salesforce"
    _block_type_slug = "billing-salesforce"
    _description = "Salesforce org and credentials for the billing cycle's Salesforce connector."

    username: str
    password: SecretStr
    security_token: SecretStr | None = None
    domain: str = Field("login", description="login, test (sandbox) or a My Domain such as acme.my")
    instance_url: str | None = Field(None, description="Base URL override (a local emulator on loopback).")
    api_version: str = "59.0"
    consumer_key: str | None = None
    consumer_secret: SecretStr | None = None
    bulk_threshold: int = Field(10_000, ge=0, description="Pull with Bulk API 2.0 above this many rows.")

    def settings(self) -> SalesforceSettings:
        values = self.model_dump(include=set(SalesforceSettings.model_fields), exclude_none=True)
        return SalesforceSettings(**values)


class OracleCredentials(Block):
    """The Oracle E-Business Suite database the close reads projects, costs and invoices from."""

    _block_type_name = "Billing Oracle EBS"
    _block_type_slug = "billing-oracle-ebs"
    _description = "Oracle EBS connection for the billing cycle's Oracle connector (python-oracledb, thin mode)."

    user: str
    password: SecretStr
    dsn: str | None = Field(None, description="Easy Connect string or TNS alias, e.g. ebsdb:1521/EBSPROD.")
    host: str | None = None
    port: int = 1521
    service_name: str | None = None
    schema_name: str | None = Field(None, description="Owner of the EBS objects, e.g. APPS.")
    arraysize: int = Field(5000, gt=0)
    prefetchrows: int = Field(5000, ge=0)

    def settings(self) -> OracleSettings:
        values = self.model_dump(exclude={"schema_name"}, exclude_none=True)
        if self.schema_name:
            values["schema"] = self.schema_name
        return OracleSettings.model_validate(values)
