"""The month-end close flow on a Prefect API: approvals, escalation, alerts, units, quality gates.

A flow run here costs a few seconds (the sample company at 2,000 items); the approver is another
thread that waits for the run to pause and answers the form through the API, as the UI does.
"""

from __future__ import annotations

import json
import threading
import time
import uuid

import pandas as pd
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
from prefect.client.schemas.objects import StateType
from prefect.flow_runs import resume_flow_run

from billing.close import compute_close
from billing.periods import Period
from billing_cycle.alerts import AlertSettings
from connectors.files import write_folder
from connectors.sample_company import generate
from flows.month_end_close import BlockingDataQualityError, CloseIncompleteError, CloseParameters, month_end_close
from store import Store
from tests.support.alert_sinks import SmtpSink, WebhookSink

OCT = Period(2026, 10)
pytestmark = pytest.mark.usefixtures("prefect_harness")


def params(tmp_path, **kw) -> CloseParameters:
    base = dict(period="2026-10", source="sample:items=2000,seed=11", output_dir=str(tmp_path / "out"),
                preparer="Maria Petrova", approvals="defer", approval_poll_seconds=1)
    return CloseParameters(**(base | kw))


@pytest.fixture
def sinks(prefect_harness):
    """An SMTP server and a webhook receiver, saved as the Prefect blocks alerts go through."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect_email import EmailServerCredentials

    name = uuid.uuid4().hex[:8]
    with SmtpSink() as smtp, WebhookSink() as hook:
        EmailServerCredentials(smtp_server="127.0.0.1", smtp_port=smtp.port, smtp_type="INSECURE").save(
            f"smtp-{name}", overwrite=True)
        CustomWebhookNotificationBlock(name="billing-alerts", url=hook.url,
                                       json_data={"text": "{{subject}}\n{{body}}"}).save(f"hook-{name}", overwrite=True)
        settings = AlertSettings(email_block=f"smtp-{name}", email_to=["billing-team@example.test"],
                                 webhook_block=f"custom-webhook/hook-{name}")
        yield settings, smtp, hook


def wait_paused(n: int, after: float, timeout: float = 120):
    """The close run that paused for the nth time, created after ``after`` (epoch seconds)."""
    flt = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])))
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            for run in client.read_flow_runs(flow_run_filter=flt):
                if (run.created.timestamp() >= after - 1 and run.state.state_details.pause_key == str(n)
                        and run.state.state_details.run_input_keyset):
                    return run
            time.sleep(0.3)
    raise TimeoutError(f"the run did not pause for the {n}th time")


class Approver(threading.Thread):
    """Waits for the run to pause, then answers; ``answers`` is one run input per pause, in order."""

    def __init__(self, answers: list[dict], started_after: float):
        super().__init__(daemon=True)
        self.answers, self.after, self.error = answers, started_after, None

    def run(self):
        try:
            for n, answer in enumerate(self.answers, start=1):
                resume_flow_run(wait_paused(n, self.after).id, run_input=answer)
        except Exception as exc:  # reported by the test
            self.error = exc


def form_of(run) -> tuple[dict, str]:
    """The pause's form schema and the text above it, as the UI reads them."""
    keyset = run.state.state_details.run_input_keyset
    with get_client(sync_client=True) as client:
        schema = json.loads(client.read_flow_run_input(run.id, keyset["schema"]))
        description = json.loads(client.read_flow_run_input(run.id, keyset["description"]))
    return schema, description


def test_approve_one_reject_one_after_a_refused_self_approval(tmp_path):
    p = params(tmp_path, approvals="ui", approval_timeout_minutes=3)
    approver = Approver([
        {"approver": " maria  petrova", "comment": "looks fine"},            # the preparer: refused
        {"approver": "Ivan Georgiev", "comment": "checked against the SOW",
         "doc_01": "approve", "doc_02": "reject"},
    ], time.time())
    approver.start()
    summary = month_end_close(p)
    approver.join(10)
    assert approver.error is None
    store = Store(f"sqlite:///{tmp_path / 'out' / 'billing.sqlite'}")
    decisions = store.approvals()
    refused = decisions[decisions["decision"] == "refused"]
    assert set(refused["approver"]) == {" maria  petrova"}
    assert refused["comment"].str.contains("self-approval refused").all()
    decided = decisions[decisions["decision"].isin(["approved", "rejected"])]
    assert len(decided) == 2 and set(decided["approver"]) == {"Ivan Georgiev"}
    assert set(decided["comment"]) == {"checked against the SOW"}
    docs = store.documents().set_index("document_key")
    approved = decided.loc[decided["decision"] == "approved", "document_key"].item()
    rejected = decided.loc[decided["decision"] == "rejected", "document_key"].item()
    assert docs.loc[approved, "status"] == "handed_off"
    assert docs.loc[rejected, "status"] == "rejected"
    assert (tmp_path / "out" / "2026-10" / "handoff" / f"{approved}.json").exists()
    assert not (tmp_path / "out" / "2026-10" / "handoff" / f"{rejected}.json").exists()
    a = summary["approvals"]
    assert (a["approver"], a["approved"], a["rejected"], a["refused_attempts"]) == ("Ivan Georgiev", 1, 1, 1)
    assert a["pending"] == (docs["status"] == "pending_approval").sum() > 0
    # nothing that waits for approval left the building
    waiting = docs[docs["status"] == "pending_approval"].index
    assert not any((tmp_path / "out" / "2026-10" / "handoff" / f"{k}.json").exists() for k in waiting)


def test_the_second_pause_shows_the_refusal_above_the_form(tmp_path):
    p = params(tmp_path, approvals="ui", approval_timeout_minutes=3)
    started, seen = time.time(), {}
    thread = threading.Thread(target=lambda: seen.setdefault("summary", month_end_close(p)), daemon=True)
    thread.start()
    first = wait_paused(1, started)
    schema, description = form_of(first)
    assert description.startswith("### ") and "Prepared by **Maria Petrova**" in description
    assert "approver" in schema["required"]
    labels = [f["title"] for name, f in schema["properties"].items() if name.startswith("doc_")]
    assert labels and all(label.count(" · ") == 3 for label in labels)
    resume_flow_run(first.id, run_input={"approver": "Maria Petrova"})
    second = wait_paused(2, started)
    _, description = form_of(second)
    assert description.startswith("**Refused:** self-approval refused: 'Maria Petrova' prepared this run")
    resume_flow_run(second.id, run_input={"approver": "Ivan Georgiev"})   # every document left pending
    thread.join(60)
    a = seen["summary"]["approvals"]
    assert (a["approved"], a["rejected"], a["refused_attempts"]) == (0, 0, 1)
    assert a["pending"] == len(labels)


def test_overdue_approval_escalates_and_keeps_documents_pending(tmp_path, sinks):
    settings, smtp, hook = sinks
    p = params(tmp_path, approvals="ui", approval_timeout_minutes=0.05, alerts=settings)
    state = month_end_close(p, return_state=True)
    assert state.is_completed(), state.message
    summary = state.result()
    assert summary["approvals"]["escalated"] and summary["approvals"]["pending"] > 0
    store = Store(f"sqlite:///{tmp_path / 'out' / 'billing.sqlite'}")
    escalated = store.approvals()
    assert set(escalated["decision"]) == {"escalated"}
    assert len(escalated) == summary["approvals"]["pending"]
    assert (hook.wait_for(1)[0]["text"]).startswith("Month-end close 2026-10: approval overdue")
    mail = smtp.wait_for(1)[0]
    assert mail["Subject"] == "Month-end close 2026-10: approval overdue"
    assert mail["To"] == "billing-team@example.test"


def test_blocking_quality_failure_alerts_and_hands_off_nothing(tmp_path, sinks):
    settings, smtp, hook = sinks
    data = generate(OCT, 2000, 11)
    items = data["expenditure_items"]
    data["expenditure_items"] = pd.concat([items, items.iloc[:3]], ignore_index=True)  # item ids twice
    write_folder(data, tmp_path / "src", "csv")
    state = month_end_close(params(tmp_path, source=f"files:{tmp_path / 'src'}", alerts=settings), return_state=True)
    assert state.is_failed()
    with pytest.raises(BlockingDataQualityError, match="item_id_unique"):
        state.result()
    store = Store(f"sqlite:///{tmp_path / 'out' / 'billing.sqlite'}")
    assert store.documents().empty and store.handoffs().empty
    assert not (tmp_path / "out" / "2026-10" / "handoff").exists()
    mail = smtp.wait_for(1)[0]
    assert mail["Subject"].startswith("Month-end close 2026-10 failed")
    assert "item_id_unique" in mail.get_payload()
    assert "item_id_unique" in hook.wait_for(1)[0]["text"]


def test_warning_quarantines_exactly_the_bad_rows_and_the_close_completes(tmp_path):
    data = generate(OCT, 2000, 11)
    items = data["expenditure_items"].copy()
    bad = items.index[[5, 17, 400]]  # 3 of 2,000 items (0.15%) on a project nobody knows
    items.loc[bad, "project_id"] = "P-DOES-NOT-EXIST"
    data["expenditure_items"] = items
    write_folder(data, tmp_path / "src", "csv")
    summary = month_end_close(params(tmp_path, source=f"files:{tmp_path / 'src'}"))
    store = Store(f"sqlite:///{tmp_path / 'out' / 'billing.sqlite'}")
    q = store.quarantine(summary["run_id"])
    q_items = q[q["dataset"] == "expenditure_items"]
    assert set(q_items.loc[q_items["expectation"] == "project_exists", "record_key"]) == set(items.loc[bad, "item_id"])
    assert set(q_items["record_key"]) >= set(items.loc[bad, "item_id"])
    unbilled = store.unbilled("2026-10")
    dq = unbilled[unbilled["reason"] == "data_quality"]
    assert set(items.loc[bad, "item_id"]) <= set(dq["line_id"].str.split(":").str[-1])
    assert summary["conservation"]["balanced"]
    assert summary["handoff"]["delivered"] > 0


def test_a_failing_business_unit_does_not_lose_the_others(tmp_path, monkeypatch):
    import tasks.compute as tc

    real = tc.compute_close

    def fails_for_uk(data, period, **kw):
        if set(data["contracts"]["business_unit"]) == {"UK01"}:
            raise RuntimeError("rate table for UK01 unreadable")
        return real(data, period, **kw)

    monkeypatch.setattr(tc, "compute_close", fails_for_uk)
    state = month_end_close(params(tmp_path), return_state=True)
    assert state.is_failed()
    with pytest.raises(CloseIncompleteError, match=r"UK01: compute: .*rate table for UK01 unreadable.*"
                       r"the others were recorded: BG01, DE01, US01"):
        state.result()
    store = Store(f"sqlite:///{tmp_path / 'out' / 'billing.sqlite'}")
    docs = store.documents()
    assert len(docs) and set(docs["business_unit"]) <= {"BG01", "DE01", "US01"}
    assert (docs["status"] == "handed_off").any()

    # The re-run (UK01 fixed) closes UK01 and hands off nothing twice.
    monkeypatch.setattr(tc, "compute_close", real)
    handed = set(docs.loc[docs["status"] == "handed_off", "document_key"])
    summary = month_end_close(params(tmp_path))
    assert summary["business_units"]["UK01"] == "closed"
    again = Store(f"sqlite:///{tmp_path / 'out' / 'billing.sqlite'}").handoffs()
    assert again.groupby(["document_key", "target"]).size().max() == 1   # one hand-off per target
    assert handed <= set(again["document_key"])


def test_dry_run_previews_and_hands_off_nothing(tmp_path):
    summary = month_end_close(params(tmp_path, dry_run=True))
    assert summary["handoff"]["dry_run"] and summary["handoff"]["delivered"] == 0
    store = Store(f"sqlite:///{tmp_path / 'out' / 'billing.sqlite'}")
    assert store.documents().empty and store.handoffs().empty
    assert not (tmp_path / "out" / "2026-10" / "handoff").exists()


def test_working_day_guard_skips_other_days(tmp_path, monkeypatch):
    import datetime as dt

    import flows.month_end_close as m

    monkeypatch.setattr(m, "_run_day", lambda: dt.date(2027, 5, 5))  # working day 1 of May 2027 (BG)
    summary = month_end_close(params(tmp_path, period=None, working_day=2))
    assert summary == {"skipped": "2027-05-05 is not working day 2 of the month (BG); that is 2027-05-07"}
    monkeypatch.setattr(m, "_run_day", lambda: dt.date(2027, 5, 7))
    summary = month_end_close(params(tmp_path, period=None, working_day=2, dry_run=True))
    assert summary["period"] == "2027-04"


def test_a_document_a_target_refuses_stays_pending_and_goes_after_the_fix(tmp_path):
    data = generate(OCT, 2000, 11)
    docs = compute_close(data, OCT).batch.documents
    peppol = docs[(docs["delivery_channel"] == "peppol") & (docs["document_type"] == "invoice")]
    assert len(peppol)
    who = peppol["customer_id"].iloc[0]
    customers = data["customers"]
    row = customers.index[customers["customer_id"] == who][0]
    endpoint = customers.loc[row, "peppol_endpoint_id"]
    customers.loc[row, "peppol_endpoint_id"] = None
    write_folder(data, tmp_path / "src", "csv")
    p = params(tmp_path, source=f"files:{tmp_path / 'src'}", approval_threshold=10**9)
    month_end_close(p)
    store = Store(f"sqlite:///{tmp_path / 'out' / 'billing.sqlite'}")
    for key in store.documents(status="pending_approval")["document_key"]:   # approve what waits
        store.record_approval(key, "approved", "Ivan Georgiev", "Maria Petrova", None, None)
    summary = month_end_close(p)
    docs = store.documents().set_index("document_key")
    mine = docs[(docs["customer_id"] == who) & (docs["document_type"] == "invoice")]
    assert len(mine)
    refused = docs[docs["handoff_error"].notna()]
    assert set(refused.index) == set(mine.index) == set(summary["refused_by_targets"])
    for key in mine.index:
        assert f"ubl_peppol refused {key}: peppol_endpoint_id" in refused.loc[key, "handoff_error"]
        assert docs.loc[key, "status"] in ("prepared", "approved")
        assert not (tmp_path / "out" / "2026-10" / "handoff" / f"{key}.json").exists()
    assert summary["handoff"]["delivered"] > 0   # the others went

    data["customers"].loc[row, "peppol_endpoint_id"] = endpoint
    write_folder(data, tmp_path / "src", "csv")
    month_end_close(p)
    docs = store.documents().set_index("document_key")
    assert (docs.loc[mine.index, "status"] == "handed_off").all()
    assert docs.loc[mine.index, "handoff_error"].isna().all()
    assert all((tmp_path / "out" / "2026-10" / "handoff" / "ubl" / f"{k}.xml").exists() for k in mine.index)


def test_units_computed_on_a_dask_cluster_total_the_same_as_in_process(tmp_path):
    local = month_end_close(params(tmp_path / "threads", dry_run=True))
    dask = month_end_close(params(tmp_path / "dask", dry_run=True, dask_address="local"))
    assert dask["documents"] == local["documents"]
    assert dask["conservation"] == local["conservation"]
    assert dask["unbilled_aging_cents"] == local["unbilled_aging_cents"]
    assert dask["business_units"] == local["business_units"]


def test_units_computed_on_an_existing_cluster_by_its_address_total_the_same(tmp_path):
    """Production points the close at a running cluster (``dask_address=tcp://host:8786``): here a
    cluster started beside the test, in its own worker processes, reached only by its address."""
    from distributed import LocalCluster, get_task_stream

    local = month_end_close(params(tmp_path / "threads", dry_run=True))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            cluster.get_client() as client, get_task_stream(client) as stream:
        assert cluster.scheduler_address.startswith("tcp://")
        remote = month_end_close(params(tmp_path / "cluster", dry_run=True, dask_address=cluster.scheduler_address))
    assert len({r["worker"] for r in stream.data}) >= 1 and len(stream.data) >= len(local["business_units"])
    assert remote["documents"] == local["documents"]
    assert remote["conservation"] == local["conservation"]
    assert remote["unbilled_aging_cents"] == local["unbilled_aging_cents"]
