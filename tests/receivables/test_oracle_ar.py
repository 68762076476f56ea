"""Oracle Receivables statements: compiled for Oracle with bound parameters only, run on SQLite and
PostgreSQL over tables filled from the sample AR history, read back to the cent."""

import re
from datetime import date

import pandas as pd
import pytest
from sqlalchemy.dialects import oracle

from connectors import oracle_ar as oa
from connectors.base import PermanentSourceError
from connectors.sample_ar import generate_ar

AS_OF = date(2026, 11, 5)
BINDS = {"open_items": {"classes", "before_date"}, "cash_receipts": {"before_date"},
         "receipt_applications": {"applied_status", "before_date"},
         "collection_accounts": {"email_type", "primary_flag"},
         "account_notes": {"language", "note_object", "before_date"}}


@pytest.fixture(scope="module")
def ar():
    return generate_ar(AS_OF)


def test_statements_compile_for_oracle_with_bound_parameters_only():
    stmts = oa.statements(AS_OF)
    assert set(stmts) == set(BINDS)
    for name, stmt in stmts.items():
        sql = str(stmt.compile(dialect=oracle.dialect()))
        assert "2026" not in sql and "'" not in sql and '"' not in sql, (name, sql)
        assert set(re.findall(r":(\w+)", sql)) | set(re.findall(r"POSTCOMPILE_(\w+)", sql)) == BINDS[name], name
    sql = str(stmts["open_items"].compile(dialect=oracle.dialect()))
    assert "FROM ar_payment_schedules_all JOIN hz_cust_accounts" in sql
    assert "ar_payment_schedules_all.class IN (__[POSTCOMPILE_classes])" in sql
    assert "ar_payment_schedules_all.terms_sequence_number" in sql
    notes = str(stmts["account_notes"].compile(dialect=oracle.dialect()))
    assert "CAST(jtf_notes_b.jtf_note_id AS VARCHAR2(150 CHAR))" in notes
    assert stmts["open_items"].compile(dialect=oracle.dialect()).params["before_date"] == date(2026, 11, 6)


def test_a_site_layout_renames_tables_and_columns():
    layout = oa.ArLayout(schema="APPS", tables={"payment_schedules": "xx_ar_ps_v"},
                         columns={"profiles": {"no_dunning_reason": "attribute9"}})
    stmts = oa.statements(AS_OF, oa.ArTables(layout))
    assert "FROM apps.xx_ar_ps_v JOIN apps.hz_cust_accounts" in str(stmts["open_items"].compile(
        dialect=oracle.dialect()))
    assert "hz_customer_profiles.attribute9" in str(stmts["collection_accounts"].compile(dialect=oracle.dialect()))
    with pytest.raises(ValueError, match="unknown column 'x' of AR table 'profiles'"):
        oa.ArLayout(columns={"profiles": {"x": "y"}})


def test_read_back_on_sqlite_and_postgresql_to_the_cent(db_engine, ar):
    oa.create_schema(db_engine)
    ids = oa.load_ar(db_engine, ar)
    conn = oa.OracleReceivablesConnector(engine=db_engine, chunk_size=250)
    for name in conn.datasets:
        got = conn.read(name, AS_OF)
        expected = ar[name].copy()
        for col, numbering in ids.items():  # receipts, applications and notes keep their numeric EBS ids
            if col in expected:
                expected[col] = expected[col].map(lambda v, m=numbering: None if pd.isna(v) else str(m[v])).astype(
                    "string")
        key = expected.columns[0]
        pd.testing.assert_frame_equal(got.sort_values(key).reset_index(drop=True),
                                      expected.sort_values(key).reset_index(drop=True), obj=name)
    # The as-of filter runs in the database: a month earlier sees fewer items.
    assert len(conn.read("open_items", date(2026, 10, 5))) < len(ar["open_items"])
    with pytest.raises(PermanentSourceError, match="does not deliver 'projects'"):
        conn.read("projects", AS_OF)
