"""Shared fixtures: databases (SQLite and PostgreSQL), one Prefect test harness per session."""

import os
import uuid

import pytest
import sqlalchemy as sa

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Prefect gives its local API 20-30 s to start; a loaded 2-core CI machine can need more.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

PG_URL = os.environ.get("BILLING_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_engine(request, tmp_path):
    """A fresh, empty database: a SQLite file, or a private schema on the local PostgreSQL."""
    if request.param == "sqlite":
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'store.sqlite'}")
        yield engine
        engine.dispose()
        return
    schema = f"bc_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL)
    try:
        with admin.begin() as c:
            c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:  # fail, never skip: CI must run these on PostgreSQL
        pytest.fail(f"PostgreSQL at {PG_URL} is unreachable: {exc}")
    engine = sa.create_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
    yield engine
    engine.dispose()
    with admin.begin() as c:
        c.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(scope="session")
def prefect_harness():
    """One Prefect test API for the whole session (it takes ~15 s to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield
