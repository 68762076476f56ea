"""Salesforce: customers (Account), contracts (Contract), scope lines (CPQ quote lines) and the rate card.

The connector talks to Salesforce through the unmodified ``simple-salesforce`` client: REST ``query`` with
``nextRecordsUrl`` paging for small pulls, Bulk API 2.0 query jobs (CSV) when a ``COUNT()`` says the pull
is larger than ``bulk_threshold``. Every frame it returns went through ``billing.schema.conform``.

Example::

    settings = SalesforceSettings.from_env()          # SALESFORCE_USERNAME, SALESFORCE_PASSWORD, ...
    sf = SalesforceConnector(settings, watermarks=InMemoryWatermarks())
    customers = sf.read("customers", Period.parse("2026-10"))   # full current table, canonical columns
    changed = sf.read_changed("contracts")                      # rows changed since the last call

Which Salesforce field feeds which canonical column is declared once, in `MAPPING` below; the local
emulator (``connectors.salesforce_emulator``) serves its data through the same mapping, reversed.
"""

from __future__ import annotations

import io
import logging
import os
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit, urlunsplit

import pandas as pd
import requests
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceOperationError,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)
from simple_salesforce.format import format_soql

from billing import columns as col
from billing.periods import Period
from billing.schema import conform
from connectors.base import PermanentSourceError, TransientSourceError

log = logging.getLogger(__name__)

T = TypeVar("T")

ID = "Id"
_SOQL_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)*")
SYSTEM_MODSTAMP = "SystemModstamp"


# --- the mapping: one line per canonical column ---------------------------------------------------
@dataclass(frozen=True)
class SObjectMapping:
    """Where one canonical dataset lives in Salesforce.

    `fields` maps canonical column -> Salesforce field API name. A dotted name follows a lookup
    (``Account.AccountNumber`` is the AccountNumber of the Contract's Account). Custom fields end in
    ``__c``; to map a column to a different field, change its one line here.
    """

    sobject: str
    fields: Mapping[str, str]

    def __post_init__(self) -> None:
        # Names go into SOQL as identifiers (format_soql quotes values, not names): allow names only.
        for name in (self.sobject, *self.fields.values()):
            if not _SOQL_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a Salesforce API name (object, field or Lookup.Field)")

    def sf_fields(self) -> list[str]:
        return list(dict.fromkeys([ID, SYSTEM_MODSTAMP, *self.fields.values()]))


MAPPING: dict[str, SObjectMapping] = {
    "customers": SObjectMapping("Account", {
        "customer_id": "AccountNumber",
        "customer_name": "Name",
        "customer_class": "Customer_Class__c",
        "currency": "CurrencyIsoCode",
        "payment_terms_days": "Payment_Terms_Days__c",
        "invoice_grouping": "Invoice_Grouping__c",
        "invoice_frequency": "Invoice_Frequency__c",
        "delivery_channel": "Delivery_Channel__c",
        "billing_email": "Billing_Email__c",
        "peppol_endpoint_id": "Peppol_Endpoint_Id__c",
        "po_required": "PO_Required__c",
        "po_number": "PO_Number__c",
        "backup_required": "Backup_Required__c",
        "credit_hold": "Credit_Hold__c",
        # Kept in cents in a Number(18,0) field: a Currency field is a float in the API (see note).
        "credit_limit_cents": "Credit_Limit_Cents__c",
        "tax_country": "BillingCountryCode",
        "tax_rate_bp": "Tax_Rate_Bp__c",
    }),
    "contracts": SObjectMapping("Contract", {
        "contract_id": "ContractNumber",
        "customer_id": "Account.AccountNumber",
        "contract_name": "Name",
        "business_unit": "Business_Unit__c",
        "currency": "CurrencyIsoCode",
        "start_date": "StartDate",
        "end_date": "EndDate",
        "po_number": "PO_Number__c",
    }),
    "scope_lines": SObjectMapping("SBQQ__QuoteLine__c", {
        "scope_line_id": "Name",
        "contract_id": "Contract__r.ContractNumber",
        # The quote's number through the SBQQ__Quote__c lookup (the lookup itself holds a record Id).
        "quote_id": "SBQQ__Quote__r.Name",
        "service_line": "Service_Line__c",
        "billing_type": "Billing_Type__c",
        "role": "Role__c",
        "amount_cents": "Amount_Cents__c",
        "installments": "Installments__c",
        "not_to_exceed_cents": "Not_To_Exceed_Cents__c",
        "markup_bp": "Markup_Bp__c",
        "start_date": "SBQQ__StartDate__c",
        "end_date": "SBQQ__EndDate__c",
    }),
    "rate_card": SObjectMapping("Bill_Rate__c", {
        "contract_id": "Contract__r.ContractNumber",
        "role": "Role__c",
        "bill_rate_cents": "Bill_Rate_Cents__c",
        "effective_from": "Effective_From__c",
        "effective_to": "Effective_To__c",
    }),
}


# --- settings --------------------------------------------------------------------------------------
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class SalesforceSettings(BaseModel):
    """Credentials and tuning for one Salesforce org. Secrets are `SecretStr`: never in logs or repr.

    Example: ``SalesforceSettings(username="billing@acme.com", password="...", security_token="...",
    domain="acme.my")``. With `consumer_key`/`consumer_secret` the OAuth 2.0 username-password flow is
    used instead of the SOAP login (the security token, if any, is appended to the password).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    username: str
    password: SecretStr
    security_token: SecretStr | None = None
    domain: str = Field("login", description="login, test (sandbox) or a My Domain such as acme.my")
    instance_url: str | None = Field(
        None, description="Send every call to this base URL instead of https://<domain>.salesforce.com. "
        "https://<name>.salesforce.com sets the My Domain; plain http is allowed only on loopback "
        "(the local emulator, e.g. http://127.0.0.1:8765).")
    api_version: str = "59.0"
    consumer_key: str | None = None
    consumer_secret: SecretStr | None = None
    bulk_threshold: int = Field(10_000, ge=0, description="Pull with Bulk API 2.0 above this many rows.")
    bulk_page_size: int = Field(50_000, gt=0, description="Bulk 2.0 maxRecords per results page.")
    bulk_poll_seconds: float = Field(1.0, ge=0, description="Wait before polling a Bulk 2.0 job.")
    incremental_overlap_seconds: float = Field(
        0.0, ge=0, description="read_changed re-reads this much before the watermark, for edits whose "
        "SystemModstamp predates their commit; the re-read rows come back again (upsert them by key).")
    retry_attempts: int = Field(5, ge=1, description="Tries per call on 5xx / REQUEST_LIMIT_EXCEEDED.")
    retry_base_delay_seconds: float = Field(1.0, ge=0)
    retry_max_delay_seconds: float = Field(30.0, ge=0)
    retry_jitter: float = Field(0.5, ge=0, description="Each delay is stretched by up to this share.")
    timeout_seconds: float = Field(120.0, gt=0, description="Per HTTP request.")

    @model_validator(mode="after")
    def _check(self) -> SalesforceSettings:
        if self.security_token is None and not (self.consumer_key and self.consumer_secret):
            raise ValueError("Salesforce needs a security_token (SOAP login) or consumer_key and "
                             "consumer_secret (OAuth); neither is set")
        if self.api_version.startswith("v"):
            raise ValueError(f"api_version {self.api_version!r} must not start with 'v' (e.g. 59.0)")
        if self.instance_url:
            parts = urlsplit(self.instance_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"instance_url {self.instance_url!r} is not an http(s) URL")
            if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
                raise ValueError("instance_url may use plain http only on loopback (a local emulator); "
                                 "credentials must not cross a network unencrypted")
        return self

    @classmethod
    def from_env(cls, prefix: str = "SALESFORCE_", environ: Mapping[str, str] | None = None
                 ) -> SalesforceSettings:
        """Read settings from `<prefix><FIELD>` variables (SALESFORCE_USERNAME, SALESFORCE_PASSWORD...).

        Call it when the run starts, never at import.
        """
        env = os.environ if environ is None else environ
        values = {name: env[prefix + name.upper()] for name in cls.model_fields
                  if env.get(prefix + name.upper()) not in (None, "")}
        missing = [prefix + n.upper() for n in ("username", "password") if n not in values]
        if missing:
            raise PermanentSourceError(f"Salesforce settings incomplete: set {', '.join(missing)}")
        return cls(**values)


# --- watermarks ------------------------------------------------------------------------------------
class WatermarkStore(Protocol):
    """Remembers, per source and object, the newest SystemModstamp already pulled."""

    def get(self, source: str, sobject: str) -> datetime | None: ...

    def set(self, source: str, sobject: str, value: datetime) -> None: ...


class ReplicaStore(WatermarkStore, Protocol):
    """Watermarks plus the latest copy of each record (`store.Store` implements it)."""

    def apply_changes(self, source: str, sobject: str, records: list[dict], modstamps: list[datetime],
                      ids: list[str], watermark: datetime | None, replace_all: bool = False) -> None: ...

    def replica(self, source: str, sobject: str) -> list[dict]: ...


class InMemoryWatermarks:
    """A WatermarkStore for tests and single runs; the close backs the protocol with its SQL store."""

    def __init__(self) -> None:
        self._marks: dict[tuple[str, str], datetime] = {}

    def get(self, source: str, sobject: str) -> datetime | None:
        return self._marks.get((source, sobject))

    def set(self, source: str, sobject: str, value: datetime) -> None:
        self._marks[(source, sobject)] = value


# --- transport -------------------------------------------------------------------------------------
class _SalesforceAdapter(HTTPAdapter):
    """Applies a default timeout and, when `route_to` is set, sends every https call to that base URL.

    simple-salesforce builds every URL as https://<domain>.salesforce.com or https://<instance>; routing
    at the transport is how the unmodified client reaches a My Domain override or the local emulator.
    """

    def __init__(self, timeout: float, route_to: str | None):
        super().__init__()
        self.timeout = timeout
        self.route_to = urlsplit(route_to) if route_to else None

    def send(self, request, **kwargs):  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        if self.route_to is not None:
            parts = urlsplit(request.url)
            request.url = urlunsplit((self.route_to.scheme, self.route_to.netloc, parts.path, parts.query,
                                      parts.fragment))
        return super().send(request, **kwargs)


_LIMIT_INFO = re.compile(r"api-usage=(\d+)/(\d+)")


@dataclass
class ApiUsage:
    used: int
    limit: int

    def __str__(self) -> str:
        return f"{self.used}/{self.limit} API requests used in the last 24 h"


# --- the connector ---------------------------------------------------------------------------------
class SalesforceConnector:
    """Reads customers, contracts, scope_lines and rate_card from Salesforce in the canonical schema.

    Arguments:
        settings: the org and credentials (`SalesforceSettings`).
        watermarks: where `read_changed` keeps each object's newest SystemModstamp (default: in memory).
        full: if True, `read_changed` ignores stored watermarks and pulls everything (a backfill), then
            stores the new watermark; with a replica, the object's replica is replaced.
        replica: a store that keeps the latest copy of every record (`store.Store`). Given, `read`
            pulls only what changed since the object's watermark, upserts it into the replica and
            moves the watermark in one transaction, then returns the whole object from the replica.
            Deletions in Salesforce are not seen by SystemModstamp: a periodic full pull
            (``full=True``) removes them.
        mapping: canonical dataset -> `SObjectMapping`; defaults to `MAPPING`.
        sleep: how to wait between retries (tests pass a no-op).
    """

    name = "salesforce"
    datasets: tuple[str, ...] = ("customers", "contracts", "scope_lines", "rate_card")
    # The Prefect global concurrency limit extract tasks hold while pulling (tasks/extract.py):
    # `prefect gcl create salesforce-api --limit 5`.
    api_concurrency_limit = "salesforce-api"

    def __init__(self, settings: SalesforceSettings, watermarks: WatermarkStore | None = None,
                 full: bool = False, mapping: Mapping[str, SObjectMapping] | None = None,
                 sleep: Callable[[float], None] = time.sleep, replica: ReplicaStore | None = None):
        self.settings = settings
        self.replica = replica
        if watermarks is None:
            watermarks = replica if replica is not None else InMemoryWatermarks()
        self.watermarks: WatermarkStore = watermarks
        self.full = full
        self.mapping = dict(mapping or MAPPING)
        self.datasets = tuple(self.mapping)
        self._sleep = sleep
        self._sf: Salesforce | None = None
        self.api_usage: ApiUsage | None = None
        self.logins = 0
        self.last_method: str | None = None  # "rest" or "bulk2": how the last pull ran

    def __repr__(self) -> str:
        return f"SalesforceConnector(user={self.settings.username!r}, domain={self.settings.domain!r})"

    # -- public ------------------------------------------------------------------------------------
    def read(self, dataset: str, period: Period | None = None) -> pd.DataFrame:
        """The dataset's current rows. Reference data, so `period` does not filter.

        Without a replica, a full pull; with one, an incremental pull into the replica (see `sync`).
        """
        m = self._mapping(dataset)
        if self.replica is not None:
            return self.sync(dataset)
        raw = self._pull(dataset, m, since=None)
        return self._canonical(dataset, m, raw)

    def sync(self, dataset: str) -> pd.DataFrame:
        """Pull what changed since the watermark into the replica, then return the whole object.

        The changed records and the new watermark are written in one transaction: a crash before it
        leaves both as they were (the next pull asks again), after it both have moved.
        """
        if self.replica is None:
            raise ValueError("sync needs a replica store")
        m = self._mapping(dataset)
        since = None if self.full else self.replica.get(self.name, m.sobject)
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        overlap = timedelta(seconds=self.settings.incremental_overlap_seconds)
        raw = self._pull(dataset, m, since=None if since is None else since - overlap)
        self._canonical(dataset, m, raw)  # refuse a bad change before it reaches the replica
        stamps = pd.to_datetime(raw[SYSTEM_MODSTAMP], utc=True, format="ISO8601")
        newest = stamps.max().to_pydatetime() if len(raw) else None
        records = raw.astype(object).where(raw.notna(), None).to_dict("records")
        self.replica.apply_changes(self.name, m.sobject, records, [t.to_pydatetime() for t in stamps],
                                   raw[ID].astype(str).tolist(),
                                   newest if newest is not None and (since is None or newest > since) else None,
                                   replace_all=since is None)
        log.info("Salesforce %s: %d changed rows since %s into the replica", m.sobject, len(raw),
                 since.isoformat() if since else "the beginning (full pull)")
        whole = self.replica.replica(self.name, m.sobject)
        frame = pd.DataFrame.from_records(whole, columns=m.sf_fields()) if whole else raw.iloc[0:0]
        return self._canonical(dataset, m, frame)

    def read_changed(self, dataset: str) -> pd.DataFrame:
        """Rows changed since the stored watermark (all rows the first time), then advance the watermark.

        The watermark moves to the newest SystemModstamp returned, only after the rows were pulled and
        conformed; a failed pull leaves it where it was, so the next call asks again.
        """
        m = self._mapping(dataset)
        since = None if self.full else self.watermarks.get(self.name, m.sobject)
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)  # a store that drops the zone gave back UTC
        overlap = timedelta(seconds=self.settings.incremental_overlap_seconds)
        raw = self._pull(dataset, m, since=None if since is None else since - overlap)
        frame = self._canonical(dataset, m, raw)
        if len(raw):
            newest = pd.to_datetime(raw[SYSTEM_MODSTAMP], utc=True, format="ISO8601").max().to_pydatetime()
            if since is None or newest > since:
                self.watermarks.set(self.name, m.sobject, newest)
        log.info("Salesforce %s: %d changed rows since %s", m.sobject, len(frame),
                 since.isoformat() if since else "the beginning")
        return frame

    def connect(self) -> None:
        """Log in now (a bad password fails here with PermanentSourceError, before any pull)."""
        self._call("login", lambda sf: None)

    def check_mapping(self) -> dict[str, list[str]]:
        """Fields of the mapping the org's describe does not list, per object (empty lists = all good)."""
        missing: dict[str, list[str]] = {}
        for m in self.mapping.values():
            desc = self._call(f"describe {m.sobject}", lambda sf, m=m: getattr(sf, m.sobject).describe())
            names = {f["name"] for f in desc["fields"]}
            missing[m.sobject] = [f for f in m.fields.values() if "." not in f and f not in names]
        return missing

    # -- pulling -----------------------------------------------------------------------------------
    def _mapping(self, dataset: str) -> SObjectMapping:
        if dataset not in self.mapping:
            raise PermanentSourceError(f"Salesforce does not deliver {dataset!r}; it delivers "
                                       f"{', '.join(self.mapping)}")
        return self.mapping[dataset]

    def _where(self, since: datetime | None) -> str:
        if since is None:
            return ""
        # format_soql quotes the literal (UTC, whole seconds); SystemModstamp is the indexed audit field.
        return format_soql(" WHERE SystemModstamp > {}", since.astimezone(UTC))

    def _pull(self, dataset: str, m: SObjectMapping, since: datetime | None) -> pd.DataFrame:
        where = self._where(since)
        count_soql = format_soql("SELECT COUNT() FROM {:literal}", m.sobject) + where
        total = self._call(f"COUNT() of {m.sobject}", lambda sf: sf.query(count_soql))["totalSize"]
        select = format_soql("SELECT {:literal} FROM {:literal}", ", ".join(m.sf_fields()), m.sobject) + where
        started = time.perf_counter()
        if total > self.settings.bulk_threshold:
            self.last_method = "bulk2"
            raw = self._pull_bulk2(m, select)
        else:
            self.last_method = "rest"
            raw = self._pull_rest(m, select + " ORDER BY Id")
        raw = raw.sort_values(ID, kind="stable", ignore_index=True)
        log.info("Salesforce %s (%s): %d rows by %s in %.2f s; %s", m.sobject, dataset, len(raw),
                 self.last_method, time.perf_counter() - started, self.api_usage or "API usage unknown")
        return raw

    def _pull_rest(self, m: SObjectMapping, soql: str) -> pd.DataFrame:
        what = f"REST query of {m.sobject}"
        page = self._call(what, lambda sf: sf.query(soql))
        records = list(page["records"])
        while not page.get("done", True):
            url = page["nextRecordsUrl"]
            page = self._call(f"{what} (queryMore)",
                              lambda sf, url=url: sf.query_more(url, identifier_is_url=True))
            records.extend(page["records"])
        rows = [_flatten(r) for r in records]
        return pd.DataFrame.from_records(rows, columns=m.sf_fields()) if rows else \
            pd.DataFrame({f: pd.Series([], dtype="object") for f in m.sf_fields()})

    def _pull_bulk2(self, m: SObjectMapping, soql: str) -> pd.DataFrame:
        s = self.settings

        def run(sf: Salesforce) -> list[str]:
            # Chunks are collected whole: a fault mid-download restarts the job instead of mixing two.
            return list(getattr(sf.bulk2, m.sobject).query(soql, max_records=s.bulk_page_size,
                                                           wait=s.bulk_poll_seconds))

        chunks = self._call(f"Bulk API 2.0 query of {m.sobject}", run)
        frames = [pd.read_csv(io.StringIO(c), dtype=str, keep_default_na=False) for c in chunks if c.strip()]
        if not frames:
            return pd.DataFrame({f: pd.Series([], dtype="object") for f in m.sf_fields()})
        raw = pd.concat(frames, ignore_index=True)
        # A retried or re-downloaded page can repeat rows: Id is the record's identity.
        return raw.drop_duplicates(ID, ignore_index=True)

    def _canonical(self, dataset: str, m: SObjectMapping, raw: pd.DataFrame) -> pd.DataFrame:
        absent = [f for f in m.fields.values() if f not in raw.columns]
        if absent:
            raise PermanentSourceError(f"Salesforce {m.sobject} answered without field(s) "
                                       f"{', '.join(absent)}: check MAPPING[{dataset!r}] against the org")
        renamed = pd.DataFrame({column: raw[field] for column, field in m.fields.items()})
        return conform(renamed, col.INPUT_DATASETS[dataset], origin=f"salesforce:{m.sobject}")

    # -- session, retries, errors ------------------------------------------------------------------
    def _session(self) -> requests.Session:
        s = self.settings
        route = None
        if s.instance_url:
            parts = urlsplit(s.instance_url)
            if not (parts.scheme == "https" and (parts.hostname or "").endswith(".salesforce.com")):
                route = s.instance_url
        session = requests.Session()
        adapter = _SalesforceAdapter(s.timeout_seconds, route)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.hooks["response"].append(self._record_usage)
        return session

    def _record_usage(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        m = _LIMIT_INFO.search(response.headers.get("Sforce-Limit-Info", ""))
        if m:
            self.api_usage = ApiUsage(int(m.group(1)), int(m.group(2)))
            if self.api_usage.used >= 0.8 * self.api_usage.limit:
                log.warning("Salesforce API usage high: %s", self.api_usage)

    def _login(self) -> Salesforce:
        s = self.settings
        domain = s.domain
        if s.instance_url:
            host = urlsplit(s.instance_url).hostname or ""
            if host.endswith(".salesforce.com"):
                domain = host.removesuffix(".salesforce.com")
        kwargs: dict[str, Any] = dict(username=s.username, domain=domain, version=s.api_version,
                                      session=self._session(), client_id="billing-cycle")
        token = s.security_token.get_secret_value() if s.security_token else ""
        if s.consumer_key and s.consumer_secret:
            kwargs.update(password=s.password.get_secret_value() + token, consumer_key=s.consumer_key,
                          consumer_secret=s.consumer_secret.get_secret_value())
            flow = "OAuth"
        else:
            kwargs.update(password=s.password.get_secret_value(), security_token=token)
            flow = "SOAP"
        try:
            sf = Salesforce(**kwargs)
        except SalesforceAuthenticationFailed as exc:
            if _login_fault_is_transient(exc.code):
                raise TransientSourceError(f"Salesforce login ({flow}) at {s.instance_url or domain} "
                                           f"unavailable: {exc.code}: {exc.auth_message[:200]}") from None
            raise PermanentSourceError(
                f"Salesforce login ({flow}) refused for user {s.username!r} at {s.instance_url or domain}: "
                f"{exc.code}: {exc.auth_message}. Check the username, password and security token "
                f"(or consumer key/secret).") from None
        except requests.RequestException as exc:
            raise TransientSourceError(f"Salesforce login ({flow}) could not reach "
                                       f"{s.instance_url or domain}: {exc}") from exc
        self.logins += 1
        log.info("Salesforce: logged in as %s (%s)", s.username, flow)
        return sf

    def _client(self, relogin: bool = False) -> Salesforce:
        if self._sf is None or relogin:
            self._sf = self._login()
        return self._sf

    def _call(self, what: str, op: Callable[[Salesforce], T]) -> T:
        """Run `op` with retries on transient faults and one re-login on an expired session."""
        s = self.settings
        relogged = False
        last = ""
        attempt = 0
        while True:
            try:
                return op(self._client())
            except TransientSourceError as exc:  # the login itself met a transient fault
                last = str(exc)
            except SalesforceExpiredSession as exc:
                if relogged:
                    raise PermanentSourceError(
                        f"Salesforce {what}: session rejected again right after a fresh login "
                        f"({_describe(exc)})") from None
                log.warning("Salesforce %s: session expired, logging in again", what)
                relogged = True
                self._client(relogin=True)
                continue
            except (SalesforceGeneralError, SalesforceRefusedRequest, SalesforceOperationError,
                    requests.ConnectionError, requests.Timeout) as exc:
                if not _is_transient(exc):
                    raise PermanentSourceError(f"Salesforce {what} failed: {_describe(exc)}") from None
                last = _describe(exc)
            except (SalesforceMalformedRequest, SalesforceResourceNotFound) as exc:
                raise PermanentSourceError(f"Salesforce {what} refused: {_describe(exc)}") from None
            except SalesforceError as exc:
                raise PermanentSourceError(f"Salesforce {what} failed: {_describe(exc)}") from None
            attempt += 1
            if attempt >= s.retry_attempts:
                raise TransientSourceError(
                    f"Salesforce {what} failed after {attempt} attempts; last error: {last}")
            delay = min(s.retry_max_delay_seconds, s.retry_base_delay_seconds * 2 ** (attempt - 1))
            delay *= 1 + s.retry_jitter * random.random()
            log.warning("Salesforce %s: %s; retry %d of %d in %.2f s", what, last, attempt,
                        s.retry_attempts - 1, delay)
            self._sleep(delay)


def _login_fault_is_transient(code: object) -> bool:
    # A non-XML/non-JSON answer gives the HTTP status as the code (an outage page); Salesforce names
    # its own temporary refusals.
    if isinstance(code, int):
        return code >= 500 or code == 429
    return str(code) in ("SERVER_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED", "UNKNOWN_EXCEPTION")


def _error_codes(exc: BaseException) -> list[str]:
    content = getattr(exc, "content", None)
    if isinstance(content, list):
        return [str(e.get("errorCode", "")) for e in content if isinstance(e, dict)]
    if isinstance(content, dict):
        return [str(content.get("errorCode", ""))]
    return []


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        return True
    if isinstance(exc, SalesforceRefusedRequest):
        return "REQUEST_LIMIT_EXCEEDED" in _error_codes(exc)
    if isinstance(exc, SalesforceGeneralError):
        return getattr(exc, "status", 0) >= 500
    # A Bulk 2.0 job that Salesforce marked Failed/Aborted or that timed out: a new job may succeed.
    return isinstance(exc, SalesforceOperationError)


def _describe(exc: BaseException) -> str:
    content = getattr(exc, "content", None)
    status = getattr(exc, "status", None)
    if isinstance(content, list) and content and isinstance(content[0], dict):
        detail = "; ".join(f"{e.get('errorCode')}: {e.get('message')}" for e in content)
        return f"HTTP {status} {detail}"
    if status is not None:
        return f"HTTP {status} {str(content)[:300]}"
    return f"{type(exc).__name__}: {str(exc)[:300]}"


def _flatten(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A REST record as flat field -> value, lookups as dotted names (Account.AccountNumber)."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key == "attributes":
            continue
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
