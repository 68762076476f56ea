"""The Oracle EBS connector: its SQL as Oracle sees it, and the same statements run on SQLite and PostgreSQL.

The EBS tables are created from the connector's own metadata and filled by `load_sample` from a small
sample company; reading them back must give the sample company's canonical frames to the cent.
"""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import uuid
from datetime import date
from decimal import Decimal
from types import SimpleNamespace

import oracledb
import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import oracle, postgresql

from billing import columns as col
from billing.periods import Period
from billing.schema import SchemaError
from connectors import oracle as ebs
from connectors.base import PermanentSourceError, SourceConnector, TransientSourceError, is_transient
from connectors.sample_company import generate

PERIOD = Period(2026, 10)
PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
DATASETS = ebs.OracleConnector.datasets


@pytest.fixture(scope="module")
def sample() -> dict[str, pd.DataFrame]:
    return generate(PERIOD, n_items=1500, seed=11)


def _sorted(df: pd.DataFrame, dataset: str) -> pd.DataFrame:
    return df.sort_values(list(col.INPUT_DATASETS[dataset].key)).reset_index(drop=True)


def _as_of(sample: dict[str, pd.DataFrame], dataset: str, period: Period) -> pd.DataFrame:
    """What the connector must return for `period`, computed from the canonical frames."""
    df = sample[dataset]
    if dataset == "expenditure_items":
        df = df[df["expenditure_date"] <= period.end_ts]
    if dataset == "prior_invoice_lines":
        df = df[df["period"] < str(period)]
    if dataset == "milestones":
        df = df.assign(completed_date=df["completed_date"].where(df["completed_date"] <= period.end_ts))
    return _sorted(df, dataset)


# --- the SQL as Oracle sees it ---------------------------------------------------------------------
def test_every_statement_compiles_for_oracle_with_bound_parameters_only():
    stmts = ebs.statements(PERIOD)
    assert set(stmts) >= set(DATASETS) | {"open_items", "cash_receipts"}
    binds = {"projects": set(), "expenditure_items": {"before_date"}, "prior_invoice_lines": {"period"},
             "milestones": {"before_date", "milestone_event_type"}, "cash_receipts": {"from_date", "before_date"},
             "open_items": {"open_status", "open_classes", "before_date"}}
    for name, stmt in stmts.items():
        sql = str(stmt.compile(dialect=oracle.dialect()))
        # Nothing from the input is inlined: no period, no date, no quoted literal at all.
        assert "2026" not in sql and "'" not in sql, (name, sql)
        assert set(re.findall(r":(\w+)", sql)) | set(re.findall(r"POSTCOMPILE_(\w+)", sql)) == binds[name], name
        # Oracle spellings: unquoted lower-case names resolve to the EBS upper-case objects.
        assert '"' not in sql, (name, sql)
        assert "LIMIT" not in sql and "::" not in sql, (name, sql)
    sql = {k: str(v.compile(dialect=oracle.dialect())) for k, v in stmts.items()}
    assert "FROM pa_expenditure_items_all JOIN pa_projects_all" in sql["expenditure_items"]
    assert "pa_expenditure_items_all.expenditure_item_date < :before_date" in sql["expenditure_items"]
    assert "pa_draft_invoice_items.invoice_period_name < :period" in sql["prior_invoice_lines"]
    assert "CASE WHEN (pa_events.completion_date < :before_date)" in sql["milestones"]
    assert "ar_payment_schedules_all.class IN (__[POSTCOMPILE_open_classes])" in sql["open_items"]
    assert "hr_operating_units.short_code AS business_unit" in sql["projects"]


def test_bound_values_are_the_period_boundaries():
    stmts = ebs.statements(PERIOD)
    params = stmts["expenditure_items"].compile(dialect=oracle.dialect()).params
    assert params == {"before_date": date(2026, 11, 1)}  # items dated up to 31 Oct inclusive
    assert stmts["prior_invoice_lines"].compile(dialect=oracle.dialect()).params == {"period": "2026-10"}
    receipts = stmts["cash_receipts"].compile(dialect=oracle.dialect()).params
    assert receipts == {"from_date": date(2026, 10, 1), "before_date": date(2026, 11, 1)}
    open_items = stmts["open_items"].compile(dialect=oracle.dialect()).params
    assert open_items["open_status"] == "OP" and tuple(open_items["open_classes"]) == ("INV", "CM", "DM")


def test_statements_compile_for_postgresql_too():
    for name, stmt in ebs.statements(PERIOD).items():
        sql = str(stmt.compile(dialect=postgresql.dialect()))
        assert "2026" not in sql and "'" not in sql, name
        assert name == "projects" or "%(before_date)s" in sql or "%(period)s" in sql, name


def test_a_site_layout_renames_tables_and_columns_in_one_place():
    layout = ebs.DEFAULT_LAYOUT.override(
        schema="apps", tables={"expenditure_items": "xx_billing_items_v"},
        columns={"projects": {"contract_ref": "attribute7"}, "expenditure_items": {"raw_cost": "project_raw_cost"}})
    sql = {k: str(v.compile(dialect=oracle.dialect()))
           for k, v in ebs.statements(PERIOD, ebs.EbsTables(layout)).items()}
    assert "FROM apps.xx_billing_items_v JOIN apps.pa_projects_all" in sql["expenditure_items"]
    assert "xx_billing_items_v.project_raw_cost" in sql["expenditure_items"]
    assert "pa_projects_all.attribute7 AS contract_id" in sql["projects"]
    with pytest.raises(ValueError, match="unknown column 'raw_cst'"):
        ebs.DEFAULT_LAYOUT.override(columns={"expenditure_items": {"raw_cst": "x"}})
    with pytest.raises(ValueError, match="unknown EBS table"):
        ebs.EbsLayout(tables={"pa_nonsense": "x"})


# --- the same statements on SQLite -----------------------------------------------------------------
@pytest.fixture(scope="module")
def sqlite_engine(tmp_path_factory, sample):
    engine = sa.create_engine(f"sqlite:///{tmp_path_factory.mktemp('ebs') / 'ebs.db'}")
    ebs.create_schema(engine)
    ebs.load_sample(engine, sample)
    yield engine
    engine.dispose()


def test_connector_satisfies_the_source_protocol(sqlite_engine):
    assert isinstance(ebs.OracleConnector(engine=sqlite_engine), SourceConnector)


@pytest.mark.parametrize("dataset", DATASETS)
def test_sqlite_reads_back_the_sample_company(sqlite_engine, sample, dataset):
    got = ebs.OracleConnector(engine=sqlite_engine, chunk_size=200).read(dataset, PERIOD)
    pd.testing.assert_frame_equal(_sorted(got, dataset), _sorted(sample[dataset], dataset))


@pytest.mark.parametrize("dataset", DATASETS)
def test_period_filters_run_in_the_database(sqlite_engine, sample, dataset):
    september = PERIOD.previous()
    got = ebs.OracleConnector(engine=sqlite_engine).read(dataset, september)
    expected = _as_of(sample, dataset, september)
    # September sees fewer items and earlier invoices, and October's milestones as not yet complete.
    if dataset == "milestones":
        assert expected["completed_date"].notna().sum() < sample[dataset]["completed_date"].notna().sum()
    elif dataset != "projects":
        assert len(expected) < len(sample[dataset])
    pd.testing.assert_frame_equal(_sorted(got, dataset), expected)


def test_small_chunks_concatenate_to_the_same_frame(sqlite_engine):
    one = ebs.OracleConnector(engine=sqlite_engine, chunk_size=1_000_000).read("expenditure_items", PERIOD)
    many = ebs.OracleConnector(engine=sqlite_engine, chunk_size=7).read("expenditure_items", PERIOD)
    pd.testing.assert_frame_equal(one, many)


def test_amount_with_sub_cent_digits_is_refused_not_rounded():
    assert list(ebs.exact_units([Decimal("12.34"), Decimal("-0.05"), 3], 2, "o", "raw_cost")) == [1234, -5, 300]
    with pytest.raises(SchemaError) as err:
        ebs.exact_units([Decimal("1.00"), Decimal("12.345")], 2, "oracle:expenditure_items", "raw_cost")
    (problem,) = err.value.problems
    assert (problem.origin, problem.row, problem.column) == ("oracle:expenditure_items", 2, "raw_cost")


def test_open_items_and_receipts_in_exact_cents(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'ar.db'}")
    ebs.create_schema(engine)
    ebs.load_rows(engine, "operating_units", [{"organization_id": 101, "short_code": "DE01", "name": "DE"}])
    ebs.load_rows(engine, "customer_trx", [
        {"customer_trx_id": 1, "trx_number": "9001", "trx_date": date(2026, 9, 30), "customer_ref": "C00001",
         "currency": "EUR", "org_id": 101, "contract_ref": "K000001", "purchase_order": "PO-1"},
        {"customer_trx_id": 2, "trx_number": "9002", "trx_date": date(2026, 11, 3), "customer_ref": "C00001",
         "currency": "EUR", "org_id": 101},
    ])
    ps = dict(customer_ref="C00001", currency="EUR", org_id=101, due_date=date(2026, 10, 30))
    ebs.load_rows(engine, "payment_schedules", [
        {**ps, "payment_schedule_id": 1, "customer_trx_id": 1, "trx_number": "9001", "item_class": "INV",
         "amount_due_original": Decimal("1190.10"), "amount_due_remaining": Decimal("590.05"),
         "amount_in_dispute": Decimal("100.01"), "status": "OP"},
        {**ps, "payment_schedule_id": 2, "customer_trx_id": 1, "trx_number": "9001-CM", "item_class": "CM",
         "amount_due_original": Decimal("-0.01"), "amount_due_remaining": Decimal("-0.01"), "status": "OP"},
        {**ps, "payment_schedule_id": 3, "customer_trx_id": 1, "trx_number": "8000", "item_class": "INV",
         "amount_due_original": Decimal("10"), "amount_due_remaining": Decimal("0"), "status": "CL"},
        {**ps, "payment_schedule_id": 4, "cash_receipt_id": 1, "trx_number": "R1", "item_class": "PMT",
         "amount_due_original": Decimal("-600"), "amount_due_remaining": Decimal("0"), "status": "OP"},
        {**ps, "payment_schedule_id": 5, "customer_trx_id": 2, "trx_number": "9002", "item_class": "INV",
         "amount_due_original": Decimal("5"), "amount_due_remaining": Decimal("5"), "status": "OP"},
    ])
    ebs.load_rows(engine, "cash_receipts", [
        {"cash_receipt_id": 1, "receipt_number": "R1", "receipt_date": date(2026, 10, 15), "customer_ref": "C00001",
         "currency": "EUR", "amount": Decimal("600.05"), "status": "APP", "org_id": 101},
        {"cash_receipt_id": 2, "receipt_number": "R2", "receipt_date": date(2026, 11, 1), "currency": "EUR",
         "amount": Decimal("1"), "status": "UNID"},
    ])
    source = ebs.OracleConnector(engine=engine)
    items = source.open_items(PERIOD)
    assert list(items.columns) == list(ebs.OPEN_ITEM_COLUMNS)
    # Closed items, receipts (PMT) and invoices dated after the period end are not open items.
    assert list(items["trx_number"]) == ["9001", "9001-CM"]
    assert list(items["amount_due_original_cents"]) == [119010, -1]
    assert list(items["amount_due_remaining_cents"]) == [59005, -1]
    assert list(items["amount_in_dispute_cents"]) == [10001, 0]
    assert list(items["business_unit"]) == ["DE01", "DE01"]
    receipts = source.cash_receipts(PERIOD)
    assert list(receipts["receipt_number"]) == ["R1"] and list(receipts["amount_cents"]) == [60005]


# --- failures: retry what a retry can fix, fail fast on the rest -----------------------------------
def _flaky_sqlite(path, failures: int):
    calls = {"n": 0}

    def creator():
        calls["n"] += 1
        if calls["n"] <= failures:
            raise sqlite3.OperationalError("disk I/O error (simulated dropped connection)")
        return sqlite3.connect(path)

    return sa.create_engine("sqlite://", creator=creator), calls


def test_transient_connect_failure_is_retried(tmp_path, sample):
    path = tmp_path / "ebs.db"
    good = sa.create_engine(f"sqlite:///{path}")
    ebs.create_schema(good)
    ebs.load_sample(good, {k: sample[k] for k in ("projects", "milestones")})
    engine, calls = _flaky_sqlite(path, failures=1)
    sleeps: list[float] = []
    source = ebs.OracleConnector(engine=engine, retries=3, retry_delay_seconds=0.5, sleep=sleeps.append)
    got = source.read("milestones", PERIOD)
    pd.testing.assert_frame_equal(_sorted(got, "milestones"), _sorted(sample["milestones"], "milestones"))
    assert calls["n"] == 2 and sleeps == [0.5]


def test_transient_failures_beyond_the_retries_raise_a_transient_error(tmp_path):
    engine, calls = _flaky_sqlite(tmp_path / "x.db", failures=99)
    sleeps: list[float] = []
    source = ebs.OracleConnector(engine=engine, retries=2, retry_delay_seconds=1, sleep=sleeps.append)
    with pytest.raises(TransientSourceError, match="after 3 attempts") as err:
        source.read("projects", PERIOD)
    assert is_transient(err.value) and calls["n"] == 3 and sleeps == [1, 2]


def _oracle_engine_failing_with(exc: Exception):
    calls = {"n": 0}

    def creator():
        calls["n"] += 1
        raise exc

    return sa.create_engine("oracle+oracledb://", creator=creator), calls


def test_bad_oracle_credentials_fail_fast_without_retry():
    engine, calls = _oracle_engine_failing_with(
        oracledb.DatabaseError("ORA-01017: invalid credential or not authorized; logon denied"))
    source = ebs.OracleConnector(engine=engine, retries=5, sleep=lambda s: pytest.fail("must not retry"))
    with pytest.raises(PermanentSourceError, match="ORA-01017") as err:
        source.read("projects", PERIOD)
    assert not is_transient(err.value) and calls["n"] == 1


@pytest.mark.parametrize("message", [
    "DPY-4011: the database or network closed the connection",
    "ORA-03113: end-of-file on communication channel",
    "ORA-03135: connection lost contact",
])
def test_oracle_disconnects_are_transient(message):
    engine, calls = _oracle_engine_failing_with(oracledb.OperationalError(message))
    source = ebs.OracleConnector(engine=engine, retries=1, sleep=lambda s: None)
    with pytest.raises(TransientSourceError, match=message.split(":")[0]):
        source.read("projects", PERIOD)
    assert calls["n"] == 2


def test_real_oracledb_client_against_a_closed_port_is_transient():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = ebs.OracleSettings(user="billing_ro", password="not-logged", host="127.0.0.1", port=port,
                                  service_name="EBS", retries=1, retry_delay_seconds=0)
    source = ebs.OracleConnector(settings)
    with pytest.raises(TransientSourceError, match="DPY-6005") as err:
        source.read("projects", PERIOD)
    assert "not-logged" not in str(err.value)


def test_programming_errors_are_permanent(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'empty.db'}")  # no tables
    with pytest.raises(PermanentSourceError, match="no such table"):
        ebs.OracleConnector(engine=engine, sleep=lambda s: pytest.fail("must not retry")).read("projects", PERIOD)
    with pytest.raises(PermanentSourceError, match="does not deliver"):
        ebs.OracleConnector(engine=engine).read("customers", PERIOD)


# --- settings --------------------------------------------------------------------------------------
def test_settings_from_env_keep_the_password_secret():
    env = {"EBS_USER": "billing_ro", "EBS_PASSWORD": "s3cr3t!", "EBS_HOST": "ebsdb", "EBS_SERVICE_NAME": "EBSPROD",
           "EBS_ARRAYSIZE": "2000", "EBS_PREFETCHROWS": "2001", "EBS_CHUNK_SIZE": "10000", "EBS_SCHEMA": "APPS"}
    settings = ebs.OracleSettings.from_env("EBS_", environ=env)
    assert (settings.arraysize, settings.prefetchrows, settings.chunk_size, settings.schema_) == (
        2000, 2001, 10000, "APPS")
    assert "s3cr3t" not in repr(settings) and "s3cr3t" not in str(settings.url())
    url = settings.url()
    assert url.drivername == "oracle+oracledb" and url.query == {"service_name": "EBSPROD"}
    engine = ebs.create_engine(settings)
    assert engine.dialect.arraysize == 2000
    args = engine.dialect.create_connect_args(engine.url)[1]
    assert args["user"] == "billing_ro" and "SERVICE_NAME=EBSPROD" in args["dsn"]
    cursor = SimpleNamespace(prefetchrows=2, arraysize=100)
    engine.dispatch.before_cursor_execute(None, cursor, "SELECT 1", {}, None, False)
    assert (cursor.prefetchrows, cursor.arraysize) == (2001, 2000)
    source = ebs.OracleConnector(settings)
    sql = str(ebs.statements(PERIOD, source.tables)["projects"].compile(dialect=oracle.dialect()))
    assert "FROM apps.pa_projects_all JOIN apps.hr_operating_units" in sql


def test_settings_with_a_dsn_pass_it_to_oracledb(monkeypatch):
    seen = {}

    def connect(*args, **kwargs):
        seen.update(kwargs)
        raise oracledb.OperationalError("DPY-6005: cannot connect to database (test)")

    monkeypatch.setattr(oracledb, "connect", connect)
    settings = ebs.OracleSettings(user="u", password="p", dsn="ebsdb:1521/EBSPROD?expire_time=2", retries=0)
    with pytest.raises(TransientSourceError, match="DPY-6005"):
        ebs.OracleConnector(settings).read("projects", PERIOD)
    assert seen == {"user": "u", "password": "p", "dsn": "ebsdb:1521/EBSPROD?expire_time=2"}


def test_incomplete_settings_name_the_variables_but_not_the_secret():
    with pytest.raises(PermanentSourceError, match="ORACLE_USER") as err:
        ebs.OracleSettings.from_env(environ={"ORACLE_PASSWORD": "s3cr3t!", "ORACLE_DSN": "db/x"})
    assert "s3cr3t" not in str(err.value)
    with pytest.raises(PermanentSourceError, match="dsn, or host and service_name"):
        ebs.OracleSettings.from_env(environ={"ORACLE_USER": "u", "ORACLE_PASSWORD": "p"})


# --- the same statements on PostgreSQL -------------------------------------------------------------
@pytest.fixture(scope="module")
def pg_engine(sample):
    """A fresh schema per test session, so parallel runs do not collide; dropped afterwards."""
    base = sa.create_engine(PG_URL, pool_pre_ping=True)
    problem = None
    try:
        with base.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        problem = str(exc.orig).strip()
    if problem:  # fail, never skip: a silently skipped backend is an untested backend
        base.dispose()
        pytest.fail(f"PostgreSQL is unreachable at {PG_URL}: {problem}. Start it, or deselect these tests "
                    f"with -m 'not postgres'.", pytrace=False)
    schema = f"test_oracle_{uuid.uuid4().hex[:12]}"
    with base.begin() as conn:
        conn.execute(sa.schema.CreateSchema(schema))
    engine = base.execution_options(schema_translate_map={None: schema})
    try:
        ebs.create_schema(engine)
        ebs.load_sample(engine, sample)
        yield engine
    finally:
        with base.begin() as conn:
            conn.execute(sa.schema.DropSchema(schema, cascade=True))
        base.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("dataset", DATASETS)
def test_postgresql_reads_back_the_sample_company(pg_engine, sample, dataset):
    got = ebs.OracleConnector(engine=pg_engine, chunk_size=200).read(dataset, PERIOD)
    pd.testing.assert_frame_equal(_sorted(got, dataset), _sorted(sample[dataset], dataset))


@pytest.mark.postgres
@pytest.mark.parametrize("dataset", DATASETS)
def test_postgresql_period_filters(pg_engine, sample, dataset):
    september = PERIOD.previous()
    got = ebs.OracleConnector(engine=pg_engine).read(dataset, september)
    pd.testing.assert_frame_equal(_sorted(got, dataset), _as_of(sample, dataset, september))


@pytest.mark.postgres
def test_postgresql_unknown_role_fails_fast_as_permanent(pg_engine):
    engine = sa.create_engine(sa.engine.make_url(PG_URL).set(username="no_such_billing_role", password=None))
    source = ebs.OracleConnector(engine=engine, retries=3, sleep=lambda s: pytest.fail("must not retry"))
    with pytest.raises(PermanentSourceError, match="no_such_billing_role"):
        source.read("projects", PERIOD)
    engine.dispose()
