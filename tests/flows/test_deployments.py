"""prefect.yaml: every entrypoint imports, the schedule lands on the right days, `deploy --all` works."""

from __future__ import annotations

import datetime as dt
import importlib
import inspect
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from prefect.server.schemas.schedules import CronSchedule
from prefect.utilities.asyncutils import run_coro_as_sync

from billing.schedule import close_run_dates, cron_for, guard

ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENTS = yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]


@pytest.mark.parametrize("d", DEPLOYMENTS, ids=[d["name"] for d in DEPLOYMENTS])
def test_every_entrypoint_imports_and_its_parameters_validate(d):
    path, name = d["entrypoint"].split(":")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    flow = getattr(module, name)
    model = flow.parameters.properties  # the UI form's schema
    assert model, f"{d['name']}: the flow has no parameters the UI can show"
    # the deployment's parameters must satisfy the flow's own model (enforce_parameter_schema)
    for pname, value in (d.get("parameters") or {}).items():
        annotation = flow.fn.__annotations__[pname]
        annotation.model_validate(value)


def test_scheduled_close_runs_on_the_second_working_day_of_every_month_of_2027():
    d = next(x for x in DEPLOYMENTS if x["name"] == "month-end-close")
    (sched,) = d["schedules"]
    params = d["parameters"]["params"]
    assert sched["cron"] == cron_for(params["working_day"])
    fires = CronSchedule(cron=sched["cron"], timezone=sched["timezone"]).get_dates(
        n=500, start=dt.datetime(2027, 1, 1, tzinfo=dt.UTC), end=dt.datetime(2027, 12, 31, 23, tzinfo=dt.UTC))
    if inspect.isawaitable(fires):  # sync_compatible: a coroutine when an event loop is running
        fires = run_coro_as_sync(fires)
    runs = [f.date() for f in fires if guard(f.date(), params["working_day"], params["calendar_country"])[0]]
    assert runs == close_run_dates(2027, params["working_day"], params["calendar_country"])
    assert all(f.hour == 7 and str(f.tzinfo) == "Europe/Sofia" for f in fires)


@pytest.mark.e2e
def test_prefect_deploy_all_against_a_local_server(tmp_path):
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    from prefect_local import LocalPrefect

    from tests.support.alert_sinks import free_port

    stack = LocalPrefect(home=tmp_path / "prefect", port=free_port())
    try:
        stack.start_server()
        stack.deploy()
        deployments = {d["name"]: d for d in stack.deployments()}
        assert set(deployments) >= {"month-end-close", "close-on-demand", "backfill", "collections-daily",
                                    "statements-monthly"}
        scheduled = deployments["month-end-close"]
        assert [s["schedule"]["cron"] for s in scheduled["schedules"]] == ["0 7 1-12 * *"]
        assert scheduled["schedules"][0]["schedule"]["timezone"] == "Europe/Sofia"
        assert scheduled["enforce_parameter_schema"]
        form = deployments["close-on-demand"]["parameter_openapi_schema"]
        assert "params" in form["properties"]
        # The server's scheduler creates the coming runs (it fails silently with SQLAlchemy 2.1: pinned).
        deadline, runs = time.monotonic() + 90, []
        while not runs and time.monotonic() < deadline:
            time.sleep(2)
            runs = stack.request("POST", "/flow_runs/filter", {"deployments": {"id": {"any_": [scheduled["id"]]}}})
        assert runs, "no scheduled run was created for month-end-close"
        for run in runs:
            start = dt.datetime.fromisoformat(run["expected_start_time"]).astimezone(ZoneInfo("Europe/Sofia"))
            assert (start.hour, start.minute) == (7, 0) and 1 <= start.day <= 12
        ls = stack.prefect("deployment", "ls")
        assert "month-end-close/close-on-demand" in ls.stdout
    finally:
        stack.stop()
