"""Browser tests of the Prefect UI: a local Prefect stack and Debian's chromium driven by Playwright.

The stack (server, `prefect deploy --all` from prefect.yaml, a process worker running flows from this
checkout) is started once per module under the test's tmp folder on a free port, and always torn
down. The browser reaches 127.0.0.1 only. Screenshots go to the test's output folder, or to
``BILLING_UI_SCREENSHOTS`` when set (``BILLING_UI_SCREENSHOTS=docs/img make ui-test`` refreshes the
pictures of docs/UI.md).
"""

import os
import sys
import uuid
from pathlib import Path

import pytest

from tests.support.alert_sinks import free_port
from tests.ui.browser import CHROMIUM, CHROMIUM_ARGS, VIEWPORT, Screenshots

ROOT = Path(__file__).resolve().parents[2]


def _local_prefect():
    if str(ROOT / "scripts") not in sys.path:
        sys.path.insert(0, str(ROOT / "scripts"))
    from prefect_local import LocalPrefect

    return LocalPrefect


@pytest.fixture(scope="module")
def prefect_stack(tmp_path_factory):
    """A Prefect server with the project's deployments and a process worker; stopped even on failure.

    The server keeps its tables in a throw-away PostgreSQL database (dropped afterwards). On SQLite,
    while runs and the worker were writing, the server answered 3 of 11 "create flow run" calls
    from the UI with 503 (``database is locked``, see server.log) on this 2-core machine, and the page
    said "Unknown error while creating flow run". ``BILLING_UI_DATABASE=sqlite`` runs it on SQLite.
    """
    LocalPrefect = _local_prefect()
    database = os.environ.get("BILLING_UI_DATABASE", "postgresql")
    stack = LocalPrefect(home=tmp_path_factory.mktemp("prefect"), port=free_port(), database=database,
                         pg_database=f"prefect_ui_{uuid.uuid4().hex[:12]}")
    try:
        # up: server, work pool, `prefect deploy --all`, worker; on leaving: worker (and its flow runs),
        # then the server, SIGKILL after a grace period; also when the test failed or a step of up did.
        with stack:
            yield stack
    finally:
        if database == "postgresql":
            stack.drop_pg_database()


@pytest.fixture
def shots(tmp_path):
    wanted = os.environ.get("BILLING_UI_SCREENSHOTS")
    if not wanted:
        return Screenshots(tmp_path / "screenshots")
    folder = ROOT / wanted  # relative to the checkout; an absolute path stays as it is
    for old in folder.glob("[0-9][0-9]-*.png"):
        old.unlink()
    return Screenshots(folder)


@pytest.fixture
def page(request, tmp_path):
    """A chromium page that can reach 127.0.0.1 only (the UI keeps calling an outside analytics host)."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)  # a loaded 2-core machine renders slowly
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=VIEWPORT)
            context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(
                ("http://127.0.0.1:", "http://127.0.0.1/")) else route.abort())
            page = context.new_page()
            page.set_default_timeout(30_000)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            yield page
            report = getattr(request.node, "rep_call", None)
            if report is not None and report.failed:  # what the page showed when the test failed
                page.screenshot(path=tmp_path / "failed.png", full_page=True)
                (tmp_path / "page-errors.txt").write_text("\n".join(errors))
        finally:
            browser.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
