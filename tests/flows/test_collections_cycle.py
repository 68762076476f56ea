"""The collections flow end to end on the sample company.

Letters go to a real SMTP server (aiosmtpd on 127.0.0.1); disconnections wait in a real Prefect pause
and are resumed from another thread, as a person would from the UI; the crash test kills the command
between the hand-off and its record (os._exit through the hook) and runs it again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest

from store import Store
from store.receivables import CollectionsStore
from tests.support.alert_sinks import SmtpSink
from tests.support.flow_runs import resume, started_flow_run_id, wait_paused

AS_OF = "2026-11-05"
PREPARER = "Maria Ivanova"
APPROVER = "Credit Manager"
BIN = str(Path(sys.executable).with_name("billing-cycle"))


@pytest.fixture(scope="module")
def smtp():
    with SmtpSink() as sink:
        yield sink, sink.port


def _params(out: Path, port: int, **kw):
    from flows.collections_cycle import CollectionsParameters

    return CollectionsParameters(as_of=AS_OF, output_dir=str(out), preparer=PREPARER, smtp_port=port,
                                 approval_poll_seconds=1, approval_timeout_seconds=120, **kw)


def _flow_run_id(store: Store, timeout: float = 120) -> str:
    return started_flow_run_id(store, "collections_cycle", timeout)


def _wait_paused(flow_run_id: str, pause_number: int, timeout: float = 120):
    return wait_paused(flow_run_id, pause_number, timeout)


_resume = resume


def _pause_description(flow_run_id: str) -> str:
    """The markdown shown above the resume form (what a person reads in the UI)."""
    from prefect.client.orchestration import get_client
    from prefect.input.run_input import keyset_from_paused_state

    with get_client(sync_client=True) as client:
        state = client.read_flow_run(flow_run_id).state
        keyset = keyset_from_paused_state(state)
        return client.read_flow_run_input(flow_run_id, keyset["description"])


def _decisions(cstore: CollectionsStore, approve: set[str]) -> list[dict]:
    acts = cstore.actions()
    waiting = acts[(acts["kind"] == "service") & (acts["state"] == "pending_approval")]
    return [{"action_key": a.action_key, "customer_id": a.customer_id, "action": a.level_code,
             "decision": "approve" if a.customer_id in approve else "reject"} for a in waiting.itertuples()]


def _to(inbox: SmtpSink) -> list[str]:
    return sorted(m["To"] for m in inbox.messages)


@pytest.fixture(scope="module")
def day(prefect_harness, smtp, tmp_path_factory):
    """A dry run, then the day's run with a self-approval refused and a second person approving, then a re-run."""
    from flows.collections_cycle import collections_cycle

    inbox, port = smtp
    out = tmp_path_factory.mktemp("collections")
    store = Store(f"sqlite:///{out / 'billing.sqlite'}")
    cstore = CollectionsStore(store)
    dry = collections_cycle(_params(out, port, dry_run=True))
    after_dry = len(inbox.messages)

    box: dict = {}
    th = threading.Thread(target=lambda: box.setdefault("summary", collections_cycle(_params(out, port))))
    th.start()
    frid = _flow_run_id(store)
    _wait_paused(frid, 1)
    letters_before_approval = len(inbox.messages)
    first_description = _pause_description(frid)
    decisions = _decisions(cstore, approve={"C00001"})
    _resume(frid, {"approver": " maria  IVANOVA ", "comment": "mine", "decisions": decisions})
    _wait_paused(frid, 2)
    second_description = _pause_description(frid)
    _resume(frid, {"approver": APPROVER, "comment": "C00001 only", "decisions": decisions})
    th.join(timeout=300)
    first = box["summary"]
    messages_after_first = list(inbox.messages)
    again = collections_cycle(_params(out, port))
    return {"out": out, "store": store, "cstore": cstore, "dry": dry, "after_dry": after_dry, "first": first,
            "again": again, "letters_before_approval": letters_before_approval, "inbox": inbox,
            "first_messages": messages_after_first, "descriptions": (first_description, second_description),
            "decisions": decisions}


def test_dry_run_writes_letters_and_sends_nothing(day):
    assert day["after_dry"] == 0
    dry = day["dry"]
    assert dry["dry_run"] and dry["letters"]["dry_run"] > 0 and dry["letters"]["sent"] == 0
    written = list((day["out"] / "collections" / AS_OF / "dry-run").glob("*/letter.html"))
    assert len(written) == dry["letters"]["dry_run"]
    # Nothing recorded by the dry run: the real run's letters were all new.
    assert day["first"]["letters"]["skipped"] == 0


def test_letters_reach_the_smtp_server_once_each_with_the_statement(day):
    first = day["first"]
    sent = first["letters"]["sent"]
    assert sent > 0 and first["letters"]["failed"] == 0
    # Letters went out before the run paused for disconnections.
    assert day["letters_before_approval"] == sent
    notices = [m for m in day["first_messages"] if m["Subject"].startswith(("Soft", "Hard"))]
    letters = [m for m in day["first_messages"] if m not in notices]
    recipients = [m["To"] for m in letters]
    # One letter per customer (all its items consolidated), plus the disconnection notice.
    assert len(recipients) == len(set(recipients)) == sent
    assert len(notices) == first["service"]["notices_sent"] == 1
    m = letters[0]
    names = [p.get_filename() for p in m.walk() if p.get_filename()]
    assert "statement.html" in names
    html = next(p for p in m.walk() if p.get_content_type() == "text/html" and not p.get_filename())
    assert "Reminder" in html.get_payload(decode=True).decode() or "notice" in html.get_payload(decode=True).decode()
    acts = day["cstore"].actions()
    letter_rows = acts[acts["kind"] == "letter"]
    today = letter_rows[letter_rows["as_of"] == pd.Timestamp(AS_OF)]
    assert (today["state"] == "sent").sum() == sent
    assert today["content_hash"].str.len().eq(64).all() and today["message_id"].notna().all()
    for p in today["letter_path"]:
        assert Path(p).exists()


def test_a_rerun_the_same_day_sends_and_hands_off_nothing(day):
    again = day["again"]
    assert len(day["inbox"].messages) == len(day["first_messages"])
    # Today's letters are in the ladder history now: nothing is proposed again, nothing is in doubt.
    assert again["letters"] == {"sent": 0, "failed": 0, "skipped": 0, "unknown": 0, "dry_run": 0}
    assert again["service"]["handed_off"] == 0 and "approvals" not in again
    files = list((day["out"] / "queues" / "service_requests").glob("*.json"))
    assert len(files) == 1


def test_disconnection_waits_for_approval_and_self_approval_is_refused(day):
    first_description, second_description = day["descriptions"]
    assert "Disconnection requests" in first_description and "service:C00001:2026-11-05" in first_description
    assert "Refused" not in first_description
    assert "self-approval refused" in second_description and "maria  IVANOVA" in second_description
    d = day["cstore"].decisions()
    refused = d[d["decision"] == "refused_self_approval"]
    assert len(refused) == len(day["decisions"]) and set(refused["approver"]) == {" maria  IVANOVA "}
    final = d[d["decision"].isin(["approved", "rejected"])]
    assert set(final.loc[final["decision"] == "approved", "customer_id"]) == {"C00001"}
    assert set(final["approver"]) == {APPROVER} and set(final["preparer"]) == {PREPARER}
    assert day["first"]["approvals"] == {"approved": 1, "rejected": len(day["decisions"]) - 1}


def test_approved_disconnection_is_handed_off_once_and_the_customer_notified(day):
    reqs = day["cstore"].service_requests()
    new = reqs[reqs["requested_on"] == pd.Timestamp(AS_OF)]
    assert list(new["customer_id"]) == ["C00001"] and list(new["state"]) == ["delivered"]
    assert list(new["action"]) == ["soft_disconnection"]
    payload = json.loads(Path(new["external_ref"].iloc[0]).read_text())
    assert payload["idempotency_key"] == new["request_key"].iloc[0]
    assert payload["approved_by"] == APPROVER and payload["prepared_by"] == PREPARER
    notice = [m for m in day["first_messages"] if m["Subject"].startswith("Soft disconnection")]
    assert len(notice) == 1


def test_plan_breaks_holds_and_escalations_are_recorded(day):
    first, cstore, store = day["first"], day["cstore"], day["store"]
    assert first["plans"] == ["PP-000001: broken (installment 2 missed)"]
    assert cstore.plans().set_index("plan_id").loc["PP-000001", "status"] == "broken"
    assert "C00002" in store.active_holds()  # the stopped customer is far over its 20,000.00 limit
    esc = cstore.escalations()
    assert "C00002" in set(esc["customer_id"]) and (esc["state"] == "delivered").all()
    case = json.loads(Path(esc.set_index("customer_id").loc["C00002", "case_file_path"]).read_text())
    assert case["letters"] and case["statement"] and case["target"] in ("legal", "agency")
    assert day["again"]["escalations"] == 0
    for f in ("aging", "ladder", "interest", "exposure", "metrics", "worklist"):
        assert Path(first["files"][f]).exists()


# --- crash between the hand-off and its record ------------------------------------------------------
def _command(out: Path, port: int, env: dict, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([BIN, "collections", "--as-of", AS_OF, "--out", str(out), "--preparer", PREPARER,
                             "--smtp-port", str(port), "--approval-poll", "1", "--approval-timeout", "120",
                             "--json", *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_service_request_is_handed_off_once_across_a_crash(prefect_harness, smtp, tmp_path):
    from prefect.settings import PREFECT_API_URL

    inbox, port = smtp
    out = tmp_path
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "BILLING_CYCLE_CRASH_AT": "service_handoff"}
    store = Store(f"sqlite:///{out / 'billing.sqlite'}")
    cstore = CollectionsStore(store)
    proc = _command(out, port, env)
    try:
        frid = _flow_run_id(store, timeout=180)
        _wait_paused(frid, 1, timeout=180)
        _resume(frid, {"approver": APPROVER, "decisions": _decisions(cstore, approve={"C00001"})})
        proc.wait(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 17, proc.stderr.read()[-2000:]
    queue = out / "queues" / "service_requests"
    reqs = cstore.service_requests()
    started = reqs[reqs["requested_on"] == pd.Timestamp(AS_OF)]
    assert list(started["state"]) == ["started"] and len(list(queue.glob("*.json"))) == 1
    sent_before = len(inbox.messages)

    env.pop("BILLING_CYCLE_CRASH_AT")
    rerun = _command(out, port, env)
    stdout, stderr = rerun.communicate(timeout=180)
    assert rerun.returncode == 0, stderr[-2000:]
    summary = json.loads(stdout)
    assert "approvals" not in summary  # the decision was recorded before the crash: nobody is asked again
    reqs = cstore.service_requests()
    done = reqs[reqs["requested_on"] == pd.Timestamp(AS_OF)]
    assert list(done["state"]) == ["delivered"] and int(done["attempts"].iloc[0]) == 2
    files = list(queue.glob("*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text())["idempotency_key"] == done["request_key"].iloc[0]
    # The re-run sent only the customer's notice that the crash prevented; no letter twice.
    new = inbox.messages[sent_before:]
    assert [m["Subject"].split(":")[0] for m in new] == ["Soft disconnection"]
    assert summary["letters"]["sent"] == 0


# --- bad input: a clear error naming file or record and field; nothing sent, nothing recorded -----------
def test_bad_input_stops_the_run_before_anything_is_sent(prefect_harness, smtp, tmp_path):
    import yaml
    from sqlalchemy import update

    from billing.schema import SchemaError
    from connectors.sample_ar import generate_ar, load_history
    from flows.collections_cycle import collections_cycle
    from receivables.dunning import DEFAULT_POLICY_PATH, PolicyError
    from store import receivables as t

    inbox, port = smtp
    before = len(inbox.messages)
    store = Store(f"sqlite:///{tmp_path / 'billing.sqlite'}")
    cstore = CollectionsStore(store)
    load_history(cstore, generate_ar(pd.Timestamp(AS_OF).date()))

    raw = yaml.safe_load(Path(DEFAULT_POLICY_PATH).read_text())
    raw["levels"][2]["days_past_due"] = 20          # Final notice before Reminder 2 (21 days)
    bad_policy = tmp_path / "dunning.yaml"
    bad_policy.write_text(yaml.safe_dump(raw))
    with pytest.raises(PolicyError, match=r"dunning.yaml: levels\[2\] \(final_notice\).days_past_due: 20 overlaps"):
        collections_cycle(_params(tmp_path, port, policy_path=str(bad_policy)))

    with store.engine.begin() as c:
        c.execute(update(t.coll_open_items).where(t.coll_open_items.c.payment_schedule_id ==
                                                  "PS-INV-2026-09-C00001-H-EUR-1").values(currency="XYZ"))
    with pytest.raises(SchemaError, match=r"open_items payment_schedule_id=PS-INV-2026-09-C00001-H-EUR-1, column "
                                          r"'currency': unknown currency 'XYZ'"):
        collections_cycle(_params(tmp_path, port))
    with store.engine.begin() as c:
        c.execute(update(t.coll_open_items).values(currency=t.coll_open_items.c.currency).where(
            t.coll_open_items.c.currency == "XYZ").values(currency="EUR"))
        c.execute(update(t.coll_accounts).where(t.coll_accounts.c.customer_id == "C00003").values(
            credit_limit_cents=-100))
    with pytest.raises(SchemaError, match=r"collection_accounts customer_id=C00003, column 'credit_limit_cents': "
                                          r"credit limit -100 is negative"):
        collections_cycle(_params(tmp_path, port))

    assert len(inbox.messages) == before
    # Only the sample history is in the store: nothing dated today.
    assert cstore.actions()["as_of"].max() < pd.Timestamp(AS_OF)
    assert cstore.service_requests()["requested_on"].max() < pd.Timestamp(AS_OF)
    runs = store.runs()
    # The policy is read before the run is even recorded; the two data errors end recorded runs as failed.
    assert runs["status"].tolist() == ["failed", "failed"]

    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    done = subprocess.run([BIN, "collections", "--as-of", AS_OF, "--out", str(tmp_path), "--policy", str(bad_policy),
                           "--smtp-port", str(port)], env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 2
    assert "input error (nothing sent)" in done.stderr and "levels[2] (final_notice).days_past_due" in done.stderr
    assert len(inbox.messages) == before


def test_monthly_statements_go_to_every_customer_with_open_items_once(prefect_harness, smtp, tmp_path):
    from flows.collections_cycle import collections_cycle

    inbox, port = smtp
    before = len(inbox.messages)
    first = collections_cycle(_params(tmp_path, port, mode="statements"))
    cstore = CollectionsStore(Store(f"sqlite:///{tmp_path / 'billing.sqlite'}"))
    items = cstore.read("open_items")
    customers = set(items.loc[items["status"] == "OP", "customer_id"])
    assert first["statements"]["sent"] == len(customers) > 0
    new = inbox.messages[before:]
    assert len(new) == len(customers) and all(m["Subject"].startswith("Statement of account") for m in new)
    # No ladder gates a statement: the same day's second run is stopped by the recorded keys alone.
    second = collections_cycle(_params(tmp_path, port, mode="statements"))
    assert second["statements"]["skipped"] == len(customers) and second["statements"]["sent"] == 0
    assert len(inbox.messages) == before + len(customers)
