"""A local Salesforce API twin that the unmodified simple-salesforce client talks to over real HTTP.

It answers what the connector uses, shaped like Salesforce answers it: the SOAP and OAuth logins, REST
``query``/``queryMore`` (2,000 records a page, ``nextRecordsUrl``), ``sobjects/<Object>/describe``, Bulk
API 2.0 query jobs (create, poll, CSV ``results`` paged by ``maxRecords`` and ``Sforce-Locator``), the
``Sforce-Limit-Info`` header, and Salesforce-shaped errors. SOQL outside `soql`'s subset is answered with
400 MALFORMED_QUERY, never with a guess.

Faults for tests: ``handle.inject("503" | "REQUEST_LIMIT_EXCEEDED" | "INVALID_SESSION_ID", times)``
makes the next `times` authenticated API calls fail that way (INVALID_SESSION_ID also revokes the
session presented, so the client has to log in again). The same is reachable over HTTP:
``POST /_emulator/fault {"fault": "503", "times": 2}``.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import itertools
import json
import re
import secrets
import threading
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pandas as pd
import requests
from simple_salesforce import Salesforce

from billing import columns as col
from connectors.salesforce import (
    ID,
    MAPPING,
    SYSTEM_MODSTAMP,
    SalesforceSettings,
    SObjectMapping,
    _SalesforceAdapter,
)
from connectors.salesforce_emulator import soql

FAULTS = ("503", "REQUEST_LIMIT_EXCEEDED", "INVALID_SESSION_ID", "LOGIN_503")
KEY_PREFIXES = {"Account": "001", "Contract": "800", "SBQQ__QuoteLine__c": "a0u", "Bill_Rate__c": "a1B"}
_CHECKSUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_DTYPE_TO_SF = {"string": "string", "int64": "double", "Int64": "double", "bool": "boolean", "date": "date"}


def salesforce_id(prefix: str, n: int) -> str:
    """An 18-character case-safe Id: 3-char key prefix, 12-digit number, 3-char checksum suffix.

    Zero-padded numbers make Id order the order records were loaded in, as the connector sorts by Id.
    """
    return case_safe_id(f"{prefix}{n:012d}")


def case_safe_id(id15: str) -> str:
    """Salesforce's 15 -> 18 character Id: one suffix letter per 5 characters encodes their capitals."""
    suffix = ""
    for chunk in range(3):
        bits = sum(1 << j for j, ch in enumerate(id15[chunk * 5:chunk * 5 + 5]) if ch.isupper())
        suffix += _CHECKSUM[bits]
    return id15 + suffix


def sf_datetime(value: datetime, bulk: bool = False) -> str:
    """Salesforce's wire format: 2026-10-01T00:00:00.000+0000 in REST JSON, ...000Z in Bulk CSV."""
    text = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}"
    return text + ("Z" if bulk else "+0000")


# --- data ------------------------------------------------------------------------------------------
@dataclass
class SObjectTable:
    name: str
    types: dict[str, str]                       # field API name -> describe type
    picklists: dict[str, tuple[str, ...]]
    records: list[dict[str, Any]] = field(default_factory=list)

    def resolve(self, name: str) -> str:
        for f in self.types:
            if f.lower() == name.lower():
                return f
        raise soql.SoqlError(f"No such column '{name}' on entity '{self.name}'. If you are attempting to "
                             "use a custom field, be sure to append the '__c' after the custom field name.",
                             "INVALID_FIELD")


def _python_values(s: pd.Series, dtype: str) -> list[Any]:
    if dtype in ("int64", "Int64"):
        return [None if pd.isna(v) else float(v) for v in s.astype("Int64").tolist()]
    if dtype == "bool":
        return [bool(v) for v in s.tolist()]
    if dtype == "date":
        return [None if pd.isna(v) else v.date() for v in pd.to_datetime(s).tolist()]
    return [None if v is None or v is pd.NA or (isinstance(v, float) and v != v) else str(v)
            for v in s.astype(object).tolist()]


def records_from_frame(dataset: str, frame: pd.DataFrame, mapping: SObjectMapping, first_number: int,
                       modstamp: datetime) -> SObjectTable:
    """Canonical rows -> Salesforce records through the connector's mapping, reversed."""
    ds = col.INPUT_DATASETS[dataset]
    types: dict[str, str] = {ID: "id", SYSTEM_MODSTAMP: "datetime"}
    picklists: dict[str, tuple[str, ...]] = {}
    columns: dict[str, list[Any]] = {}
    for column, sf_field in mapping.fields.items():
        c = ds.column(column)
        types[sf_field] = "picklist" if c.allowed else _DTYPE_TO_SF[c.dtype]
        if c.allowed:
            picklists[sf_field] = c.allowed
        columns[sf_field] = _python_values(frame[column], c.dtype)
    prefix = KEY_PREFIXES.get(mapping.sobject, "a0Z")
    names = list(columns)
    records = []
    for i, values in enumerate(zip(*columns.values(), strict=True) if names else [()] * len(frame)):
        rec = {ID: salesforce_id(prefix, first_number + i), SYSTEM_MODSTAMP: modstamp}
        rec.update(zip(names, values, strict=True))
        records.append(rec)
    return SObjectTable(mapping.sobject, types, picklists, records)


def _json_value(value: Any, ftype: str) -> Any:
    if value is None:
        return None
    if ftype == "datetime":
        return sf_datetime(value)
    if ftype == "date":
        return value.isoformat()
    return value


def _csv_value(value: Any, ftype: str) -> str:
    if value is None:
        return ""
    if ftype == "datetime":
        return sf_datetime(value, bulk=True)
    if ftype == "date":
        return value.isoformat()
    if ftype == "boolean":
        return "true" if value else "false"
    return str(value)


def _relationship_type(name: str) -> str:
    return name[:-3] + "__c" if name.endswith("__r") else name


def json_record(rec: dict[str, Any], table: SObjectTable, fields: list[str], version: str) -> dict[str, Any]:
    out: dict[str, Any] = {"attributes": {"type": table.name,
                                          "url": f"/services/data/v{version}/sobjects/{table.name}/{rec[ID]}"}}
    for f in fields:
        value = _json_value(rec.get(f), table.types[f])
        if "." in f:
            rel, leaf = f.split(".", 1)
            if value is None and out.get(rel) is None:
                out[rel] = None  # Salesforce sends a null lookup as null, not as an object of nulls
                continue
            node = out.get(rel) or {"attributes": {"type": _relationship_type(rel)}}
            node[leaf] = value
            out[rel] = node
        else:
            out[f] = value
    return out


# --- server state ----------------------------------------------------------------------------------
@dataclass
class _Cursor:
    table: SObjectTable
    fields: list[str]
    records: list[dict[str, Any]]


@dataclass
class _BulkJob:
    id: str
    table: SObjectTable
    fields: list[str]
    records: list[dict[str, Any]]
    query: str
    operation: str
    created: datetime
    polls: int = 0
    state: str = "UploadComplete"


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


class EmulatorState:
    """Everything the emulator knows; every method is safe to call from any thread."""

    def __init__(self, datasets: Mapping[str, pd.DataFrame], mapping: Mapping[str, SObjectMapping],
                 username: str, password: str, security_token: str, consumer_key: str, consumer_secret: str,
                 page_size: int, api_limit: int, created_at: datetime):
        self.lock = threading.RLock()
        self.mapping = dict(mapping)
        self.username, self.password, self.security_token = username, password, security_token
        self.consumer_key, self.consumer_secret = consumer_key, consumer_secret
        self.page_size = page_size
        self.api_limit = api_limit
        self.api_used = 0
        self.sessions: set[str] = set()
        self.faults: deque[str] = deque()
        self.login_faults: deque[str] = deque()
        self.cursors: OrderedDict[str, _Cursor] = OrderedDict()
        self.jobs: OrderedDict[str, _BulkJob] = OrderedDict()
        self.counts: dict[str, int] = {}
        self._ids = itertools.count(1)
        self.last_modstamp = created_at
        self.tables: dict[str, SObjectTable] = {}
        number = 1
        for dataset, m in self.mapping.items():
            if dataset not in datasets:
                continue
            table = records_from_frame(dataset, datasets[dataset], m, number, created_at)
            number += len(table.records)
            self.tables[m.sobject.lower()] = table

    def count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def table(self, name: str) -> SObjectTable:
        t = self.tables.get(name.lower())
        if t is None:
            raise soql.SoqlError(f"sObject type '{name}' is not supported. If you are attempting to use a "
                                 "custom object, be sure to append the '__c' after the entity name.",
                                 "INVALID_TYPE")
        return t

    # -- auth --------------------------------------------------------------------------------------
    def new_session(self, flow: str) -> str:
        sid = f"00D000000000001!{secrets.token_urlsafe(24)}"
        with self.lock:
            self.sessions.add(sid)
            self.count("login")
            self.count(f"login:{flow}")
        return sid

    def add_faults(self, fault: str, times: int) -> None:
        if fault not in FAULTS:
            raise ValueError(f"fault must be one of {', '.join(FAULTS)}, not {fault!r}")
        with self.lock:
            (self.login_faults if fault.startswith("LOGIN_") else self.faults).extend([fault] * times)

    def login_fault(self) -> bool:
        """True if this login must fail with 503 (an outage page, not a Salesforce answer)."""
        with self.lock:
            if not self.login_faults:
                return False
            self.count(f"fault:{self.login_faults.popleft()}")
            return True

    def check_password(self, username: str, password_and_token: str) -> bool:
        return username == self.username and password_and_token in (
            self.password + self.security_token, *((self.password,) if not self.security_token else ()))

    def authorize(self, header: str | None) -> str:
        """The session presented, after applying any injected fault; raises ApiError otherwise."""
        sid = (header or "").removeprefix("Bearer ").strip()
        with self.lock:
            fault = self.faults.popleft() if self.faults else None
            if fault == "INVALID_SESSION_ID":
                self.sessions.discard(sid)
            if fault is not None:
                self.count(f"fault:{fault}")
            if fault == "503":
                raise ApiError(503, "SERVER_UNAVAILABLE", "Service temporarily unavailable; try again later.")
            if fault == "REQUEST_LIMIT_EXCEEDED":
                raise ApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            if sid not in self.sessions:
                raise ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid")
            self.api_used += 1
            if self.api_used > self.api_limit:
                raise ApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        return sid

    def limit_info(self) -> str:
        return f"api-usage={self.api_used}/{self.api_limit}"

    # -- queries -----------------------------------------------------------------------------------
    def run(self, text: str) -> tuple[SObjectTable, list[str] | None, list[dict[str, Any]]]:
        q = soql.parse(text)
        table = self.table(q.sobject)
        fields = None if q.fields is None else [table.resolve(f) for f in q.fields]
        conditions = [soql.Condition(table.resolve(c.field), c.op, c.values) for c in q.where]
        predicate = soql.compile_where(conditions, table.types, table.name)
        order = [(table.resolve(f), desc) for f, desc in q.order_by]
        with self.lock:
            rows = [r for r in table.records if predicate(r)]
        if order:
            rows = soql.order_key(order)(rows)
        if q.limit is not None:
            rows = rows[:q.limit]
        return table, fields, rows

    def new_cursor(self, table: SObjectTable, fields: list[str], rows: list[dict[str, Any]]) -> str:
        with self.lock:
            cid = salesforce_id("01g", next(self._ids))
            self.cursors[cid] = _Cursor(table, fields, rows)
            while len(self.cursors) > 200:  # Salesforce keeps a bounded number of open cursors too
                self.cursors.popitem(last=False)
        return cid

    # -- changes -----------------------------------------------------------------------------------
    def touch(self, dataset: str, key: Any, changes: Mapping[str, Any]) -> datetime:
        m = self.mapping[dataset]
        ds = col.INPUT_DATASETS[dataset]
        table = self.table(m.sobject)
        keys = key if isinstance(key, tuple) else (key,)
        if len(keys) != len(ds.key):
            raise KeyError(f"{dataset} is keyed by {', '.join(ds.key)}; got {key!r}")
        wanted = {m.fields[k]: _python_values(pd.Series([v]), ds.column(k).dtype)[0]
                  for k, v in zip(ds.key, keys, strict=True)}
        with self.lock:
            hits = [r for r in table.records if all(r.get(f) == v for f, v in wanted.items())]
            if len(hits) != 1:
                raise KeyError(f"{dataset} {key!r} matches {len(hits)} records, expected 1")
            rec = hits[0]
            for column, value in changes.items():
                rec[m.fields[column]] = _python_values(pd.Series([value]), ds.column(column).dtype)[0]
            now = datetime.now(UTC).replace(microsecond=0)
            # Strictly increasing whole seconds: SOQL datetime literals have no fractions.
            stamp = max(now, self.last_modstamp + timedelta(seconds=1))
            rec[SYSTEM_MODSTAMP] = stamp
            self.last_modstamp = stamp
        return stamp


# --- HTTP ------------------------------------------------------------------------------------------
_DATA = re.compile(r"^/services/data/v(?P<ver>\d+\.\d)/(?P<rest>.*)$")
_SOAP = re.compile(r"^/services/Soap/u/(?P<ver>\d+\.\d)/?$")


def _xml_value(body: str, tag: str) -> str | None:
    m = re.search(rf"<(?:\w+:)?{tag}>(.*?)</(?:\w+:)?{tag}>", body, re.DOTALL)
    return html.unescape(m.group(1)) if m else None


_SOAP_OK = """<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com" \
xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><loginResponse><result>\
<metadataServerUrl>{base}/services/Soap/m/{ver}/00D000000000001</metadataServerUrl>\
<passwordExpired>false</passwordExpired><sandbox>false</sandbox>\
<serverUrl>{base}/services/Soap/u/{ver}/00D000000000001</serverUrl><sessionId>{sid}</sessionId>\
<userId>005000000000001AAA</userId><userInfo><organizationId>00D000000000001AAA</organizationId>\
<userName>{user}</userName></userInfo></result></loginResponse></soapenv:Body></soapenv:Envelope>"""

_SOAP_FAULT = """<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" \
xmlns:sf="urn:fault.partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\
<soapenv:Body><soapenv:Fault><faultcode>sf:{code}</faultcode><faultstring>{code}: {msg}</faultstring>\
<detail><sf:LoginFault xsi:type="sf:LoginFault"><sf:exceptionCode>{code}</sf:exceptionCode>\
<sf:exceptionMessage>{msg}</sf:exceptionMessage></sf:LoginFault></detail></soapenv:Fault></soapenv:Body>\
</soapenv:Envelope>"""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes: avoid 40 ms stalls
    server_version = "SalesforceEmulator/1.0"
    state: EmulatorState  # set on the subclass made per server
    base_https: str       # what login answers as the instance (the client always speaks https)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -- plumbing ----------------------------------------------------------------------------------
    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status: int, body: bytes | str, content_type: str,
              headers: Mapping[str, str] | None = None) -> None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _json(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload), "application/json;charset=UTF-8", headers)

    def _error(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        self._json(status, [{"message": message, "errorCode": code}], headers)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        body = self._body()
        try:
            if path.startswith("/_emulator/"):
                return self._control(path, body)
            if m := _SOAP.match(path):
                return self._soap_login(m.group("ver"), body)
            if path == "/services/oauth2/token" and self.command == "POST":
                return self._oauth(body)
            if m := _DATA.match(path):
                return self._data(m.group("ver"), m.group("rest"), query, body)
            self._error(404, "NOT_FOUND", "The requested resource does not exist")
        except ApiError as exc:
            self._error(exc.status, exc.code, exc.message, exc.headers)
        except soql.SoqlError as exc:
            self._error(400, exc.code, str(exc), {"Sforce-Limit-Info": self.state.limit_info()})

    # -- login -------------------------------------------------------------------------------------
    def _outage(self) -> bool:
        if self.state.login_fault():
            self._send(503, "Service Unavailable: the login server is down for maintenance", "text/plain")
            return True
        return False

    def _soap_login(self, ver: str, body: bytes) -> None:
        if self._outage():
            return
        text = body.decode("utf-8", "replace")
        user, password = _xml_value(text, "username"), _xml_value(text, "password")
        if user is None or password is None or not self.state.check_password(user, password):
            msg = "Invalid username, password, security token; or user locked out."
            self._send(500, _SOAP_FAULT.format(code="INVALID_LOGIN", msg=msg), "text/xml;charset=UTF-8")
            return
        sid = self.state.new_session("soap")
        self._send(200, _SOAP_OK.format(base=self.base_https, ver=ver, sid=sid, user=html.escape(user)),
                   "text/xml;charset=UTF-8")

    def _oauth(self, body: bytes) -> None:
        if self._outage():
            return
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}
        st = self.state
        if form.get("grant_type") != "password":
            self._json(400, {"error": "unsupported_grant_type", "error_description": "grant type not supported"})
            return
        if form.get("client_id") != st.consumer_key or form.get("client_secret") != st.consumer_secret:
            self._json(400, {"error": "invalid_client_id", "error_description": "client identifier invalid"})
            return
        if not st.check_password(form.get("username", ""), form.get("password", "")):
            self._json(400, {"error": "invalid_grant", "error_description": "authentication failure"})
            return
        sid = st.new_session("oauth")
        self._json(200, {"access_token": sid, "instance_url": self.base_https,
                         "id": f"{self.base_https}/id/00D000000000001AAA/005000000000001AAA",
                         "token_type": "Bearer", "issued_at": str(int(datetime.now().timestamp() * 1000)),
                         "signature": base64.b64encode(secrets.token_bytes(32)).decode()})

    # -- data API ----------------------------------------------------------------------------------
    def _data(self, ver: str, rest: str, query: dict[str, list[str]], body: bytes) -> None:
        st = self.state
        st.authorize(self.headers.get("Authorization"))
        limit = {"Sforce-Limit-Info": st.limit_info()}
        rest = rest.rstrip("/")
        if rest in ("query", "queryAll") and self.command == "GET":
            if "q" not in query:
                raise ApiError(400, "MALFORMED_QUERY", "A query string has to be specified", limit)
            with st.lock:
                st.count("query")
            table, fields, rows = st.run(query["q"][0])
            if fields is None:
                return self._json(200, {"totalSize": len(rows), "done": True, "records": []}, limit)
            cursor = st.new_cursor(table, fields, rows)
            return self._json(200, self._page(ver, cursor, 0), limit)
        if (m := re.fullmatch(r"(?:query|queryAll)/(?P<cur>[0-9A-Za-z]+)-(?P<off>\d+)", rest)) \
                and self.command == "GET":
            with st.lock:
                st.count("query_more")
            if m.group("cur") not in st.cursors:
                raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator", limit)
            return self._json(200, self._page(ver, m.group("cur"), int(m.group("off"))), limit)
        if m := re.fullmatch(r"sobjects/(?P<obj>\w+)/describe", rest):
            with st.lock:
                st.count("describe")
            return self._json(200, self._describe(st.table(m.group("obj"))), limit)
        if rest == "sobjects":
            return self._json(200, {"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": [
                {"name": t.name, "queryable": True, "custom": t.name.endswith("__c")}
                for t in st.tables.values()]}, limit)
        if rest == "jobs/query" and self.command == "POST":
            return self._bulk_create(ver, body, limit)
        if m := re.fullmatch(r"jobs/query/(?P<job>\w+)(?P<results>/results)?", rest):
            job = st.jobs.get(m.group("job"))
            if job is None:
                raise ApiError(404, "NOT_FOUND", f"Job {m.group('job')} does not exist", limit)
            if m.group("results"):
                return self._bulk_results(job, query, limit)
            if self.command == "DELETE":
                with st.lock:
                    st.jobs.pop(job.id, None)
                return self._send(204, b"", "application/json", limit)
            if self.command == "PATCH":
                job.state = json.loads(body or b"{}").get("state", job.state)
            elif self.command == "GET":
                with st.lock:
                    st.count("bulk_poll")
                    job.polls += 1
                    # The first poll finds the job running, as a real one usually is.
                    job.state = "InProgress" if job.polls == 1 else "JobComplete"
            return self._json(200, self._job_info(ver, job), limit)
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist", limit)

    def _page(self, ver: str, cursor_id: str, offset: int) -> dict[str, Any]:
        cur = self.state.cursors[cursor_id]
        end = offset + self.state.page_size
        chunk = cur.records[offset:end]
        with self.state.lock:
            page = [json_record(r, cur.table, cur.fields, ver) for r in chunk]
        out: dict[str, Any] = {"totalSize": len(cur.records), "done": end >= len(cur.records)}
        if not out["done"]:
            out["nextRecordsUrl"] = f"/services/data/v{ver}/query/{cursor_id}-{end}"
        out["records"] = page
        return out

    def _describe(self, t: SObjectTable) -> dict[str, Any]:
        fields = [{"name": f, "type": ftype, "nillable": f not in (ID, SYSTEM_MODSTAMP),
                   "custom": f.endswith("__c"),
                   "picklistValues": [{"value": v, "label": v, "active": True} for v in t.picklists.get(f, ())]}
                  for f, ftype in t.types.items() if "." not in f]
        return {"name": t.name, "label": t.name, "custom": t.name.endswith("__c"), "queryable": True,
                "fields": fields}

    def _bulk_create(self, ver: str, body: bytes, limit: dict[str, str]) -> None:
        st = self.state
        try:
            spec = json.loads(body or b"{}")
        except json.JSONDecodeError as exc:
            raise ApiError(400, "JSON_PARSER_ERROR", f"cannot parse the request body: {exc}", limit) from None
        if spec.get("operation") not in ("query", "queryAll"):
            raise ApiError(400, "INVALIDJOB", f"operation {spec.get('operation')!r} is not a query", limit)
        if spec.get("columnDelimiter", "COMMA") != "COMMA" or spec.get("lineEnding", "LF") != "LF":
            raise ApiError(400, "INVALIDJOB", "the emulator writes COMMA-delimited, LF-ended CSV only", limit)
        text = spec.get("query") or ""
        if soql.parse(text).is_count:
            raise ApiError(400, "INVALIDJOB", "Aggregate queries are not supported by Bulk API 2.0", limit)
        table, fields, rows = st.run(text)
        with st.lock:
            st.count("bulk_job")
            job = _BulkJob(salesforce_id("750", next(st._ids)), table, fields or [], rows, text,
                           spec["operation"], datetime.now(UTC))
            st.jobs[job.id] = job
            while len(st.jobs) > 100:
                st.jobs.popitem(last=False)
        self._json(200, self._job_info(ver, job), limit)

    def _job_info(self, ver: str, job: _BulkJob) -> dict[str, Any]:
        info = {"id": job.id, "operation": job.operation, "object": job.table.name,
                "createdById": "005000000000001AAA", "createdDate": sf_datetime(job.created),
                "systemModstamp": sf_datetime(job.created), "state": job.state,
                "concurrencyMode": "Parallel", "contentType": "CSV", "apiVersion": float(ver),
                "lineEnding": "LF", "columnDelimiter": "COMMA"}
        if job.state == "JobComplete":
            info.update(numberRecordsProcessed=len(job.records), retries=0, totalProcessingTime=1)
        return info

    def _bulk_results(self, job: _BulkJob, query: dict[str, list[str]], limit: dict[str, str]) -> None:
        if job.state != "JobComplete":
            raise ApiError(400, "INVALIDJOB", f"Job {job.id} is not complete (state {job.state})", limit)
        try:
            max_records = int(query.get("maxRecords", ["50000"])[0])
            locator = query.get("locator", [""])[0]
            offset = int(base64.b64decode(unquote(locator)).decode()) if locator else 0
        except ValueError:
            raise ApiError(400, "INVALIDJOB", "invalid locator or maxRecords", limit) from None
        if max_records <= 0:
            raise ApiError(400, "INVALIDJOB", "maxRecords must be a positive number", limit)
        with self.state.lock:
            self.state.count("bulk_results")
            chunk = job.records[offset:offset + max_records]
            buf = io.StringIO()
            w = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\n")
            w.writerow(job.fields)
            types = [job.table.types[f] for f in job.fields]
            for rec in chunk:
                w.writerow([_csv_value(rec.get(f), t) for f, t in zip(job.fields, types, strict=True)])
        end = offset + len(chunk)
        nxt = base64.b64encode(str(end).encode()).decode() if end < len(job.records) else "null"
        self._send(200, buf.getvalue(), "text/csv", {**limit, "Sforce-Locator": nxt,
                                                     "Sforce-NumberOfRecords": str(len(chunk))})

    # -- control API (for demos run from another process) ------------------------------------------
    def _control(self, path: str, body: bytes) -> None:
        payload = json.loads(body or b"{}") if body else {}
        st = self.state
        if path == "/_emulator/fault" and self.command == "POST":
            fault, times = payload.get("fault"), int(payload.get("times", 1))
            if fault not in FAULTS:
                return self._json(400, {"error": f"fault must be one of {', '.join(FAULTS)}"})
            st.add_faults(fault, times)
            return self._send(204, b"", "application/json")
        if path == "/_emulator/touch" and self.command == "POST":
            key = payload["key"]
            stamp = st.touch(payload["dataset"], tuple(key) if isinstance(key, list) else key,
                             payload.get("changes", {}))
            return self._json(200, {"SystemModstamp": sf_datetime(stamp)})
        if path == "/_emulator/stats":
            return self._json(200, {"counts": st.counts, "api_used": st.api_used,
                                    "records": {t.name: len(t.records) for t in st.tables.values()}})
        self._json(404, {"error": "unknown control endpoint"})


class EmulatorHandle:
    """A running emulator: `.url` to reach it, `.inject()` faults, `.touch()` records, `.stop()` it."""

    def __init__(self, server: ThreadingHTTPServer, state: EmulatorState, thread: threading.Thread):
        self._server, self.state, self._thread = server, state, thread
        host, port = server.server_address[:2]
        self.port = port
        self.url = f"http://{host}:{port}"
        # What logins answer as the instance; it is this same server.
        self.instance_url = self.url

    @property
    def counts(self) -> dict[str, int]:
        with self.state.lock:
            return dict(self.state.counts)

    def inject(self, fault: str, times: int = 1) -> None:
        """Make the next `times` authenticated API calls fail with `fault` (one of FAULTS); LOGIN_503
        makes the next `times` logins answer 503 with an outage page instead."""
        self.state.add_faults(fault, times)

    def clear_faults(self) -> None:
        with self.state.lock:
            self.state.faults.clear()
            self.state.login_faults.clear()

    def touch(self, dataset: str, key: Any, **changes: Any) -> datetime:
        """Change one record (found by its canonical key; a tuple for composite keys) and bump its
        SystemModstamp, as an edit in Salesforce would. Returns the new SystemModstamp."""
        return self.state.touch(dataset, key, changes)

    def settings(self, **overrides: Any) -> SalesforceSettings:
        """Settings that log in to this emulator (SOAP; pass consumer_key/secret for OAuth)."""
        st = self.state
        values: dict[str, Any] = dict(username=st.username, password=st.password,
                                      security_token=st.security_token, instance_url=self.url)
        values.update(overrides)
        return SalesforceSettings(**values)

    def client(self, **overrides: Any) -> Salesforce:
        """The unmodified simple-salesforce client, logged in to this emulator (for tests and demos)."""
        s = self.settings(**overrides)
        session = requests.Session()
        session.mount("https://", _SalesforceAdapter(s.timeout_seconds, self.url))
        return Salesforce(username=s.username, password=s.password.get_secret_value(),
                          security_token=s.security_token.get_secret_value() if s.security_token else "",
                          version=s.api_version, session=session)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> EmulatorHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_emulator(datasets: Mapping[str, pd.DataFrame], *, host: str = "127.0.0.1", port: int = 0,
                   mapping: Mapping[str, SObjectMapping] | None = None,
                   username: str = "billing@example.com", password: str = "emulator-password",
                   security_token: str = "EMULATORTOKEN", consumer_key: str = "emulator-consumer-key",
                   consumer_secret: str = "emulator-consumer-secret", page_size: int = 2000,
                   api_limit: int = 15_000,
                   created_at: datetime = datetime(2026, 1, 1, tzinfo=UTC)) -> EmulatorHandle:
    """Serve canonical `datasets` (customers, contracts, scope_lines, rate_card) as Salesforce records.

    Example: ``handle = start_emulator(generate(Period.parse("2026-10"), 2000))`` then
    ``SalesforceConnector(handle.settings())``. Port 0 picks a free port; stop it with ``handle.stop()``.
    """
    state = EmulatorState(datasets, mapping or MAPPING, username, password, security_token, consumer_key,
                          consumer_secret, page_size, api_limit, created_at)
    handler = type("Handler", (_Handler,), {"state": state})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    handler.base_https = f"https://{host}:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="salesforce-emulator", daemon=True)
    thread.start()
    return EmulatorHandle(server, state, thread)
