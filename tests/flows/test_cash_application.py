"""The cash-application flow end to end on the sample company's October.

A month of statements (weekly camt.053 in EUR and USD, MT940 in GBP, camt.054 returns) and an inbox of
inquiries are applied; replies reach a real SMTP server (aiosmtpd on 127.0.0.1); the provision sign-off
and the write-off batch wait in real Prefect pauses resumed from another thread, as a person would from
the UI (a self-approval is refused first). The truth the sample generator wrote (expected.csv) says what
each bank line is; the run must reach it. A second run applies and sends nothing again; a GL control total
off by one cent stops the sign-off and alerts by e-mail.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd
import pytest

from store import Store
from store.cash import CashStore
from store.receivables import CollectionsStore
from tests.support.alert_sinks import SmtpSink
from tests.support.flow_runs import resume, started_flow_run_id, wait_paused

PERIOD = "2026-10"
PREPARER = "Ivan Petrov"
APPROVER = "Petra Koleva"


@pytest.fixture(scope="module")
def smtp():
    with SmtpSink() as sink:
        yield sink


def _params(out: Path, port: int, **kw):
    from flows.cash_application import CashApplicationParameters

    return CashApplicationParameters(period=PERIOD, output_dir=str(out), preparer=PREPARER, smtp_port=port,
                                     approval_poll_seconds=1, approval_timeout_seconds=120, **kw)


def _flow_run_id(store: Store, timeout: float = 180) -> str:
    return started_flow_run_id(store, "cash_application", timeout)


def _wait_paused(flow_run_id: str, pause_number: int, timeout: float = 180):
    return wait_paused(flow_run_id, pause_number, timeout)


_resume = resume


def _pause_description(flow_run_id: str) -> str:
    """The markdown above the resume form (what the approver reads in the UI)."""
    from prefect.client.orchestration import get_client
    from prefect.input.run_input import keyset_from_paused_state

    with get_client(sync_client=True) as client:
        state = client.read_flow_run(flow_run_id).state
        return client.read_flow_run_input(flow_run_id, keyset_from_paused_state(state)["description"])


OVERRIDE = {"override_business_unit": "DE01", "override_customer_class": "enterprise", "override_currency": "EUR",
            "override_factor_bp": 12000, "override_reason": "Sector downturn in Q4"}


@pytest.fixture(scope="module")
def month(prefect_harness, smtp, tmp_path_factory):
    """The month applied with approvals, then the same run again without them."""
    from flows.cash_application import cash_application

    out = tmp_path_factory.mktemp("cash")
    store = Store(f"sqlite:///{out / 'billing.sqlite'}")
    box: dict = {}

    def go():
        try:
            box["summary"] = cash_application(_params(out, smtp.port))
        except BaseException as exc:  # surfaced by the test below
            box["error"] = exc

    th = threading.Thread(target=go)
    th.start()
    frid = _flow_run_id(store)
    _wait_paused(frid, 1)
    mails_at_pause = len(smtp.messages)  # the replies went out before the sign-off was asked for
    _resume(frid, {"approver": " ivan  PETROV ", "decision": "approve"})       # refused: the preparer
    _wait_paused(frid, 2)
    refusals = [_pause_description(frid)]
    _resume(frid, {"approver": APPROVER, "decision": "approve", **OVERRIDE, "override_currency": None})
    _wait_paused(frid, 3)                                                         # refused: half a segment
    refusals.append(_pause_description(frid))
    _resume(frid, {"approver": APPROVER, "decision": "approve", **OVERRIDE})
    _wait_paused(frid, 4)
    _resume(frid, {"approver": APPROVER, "decision": "approve", "comment": "fees and residues"})
    th.join(timeout=300)
    assert "error" not in box, box.get("error")
    first_mails = list(smtp.messages)
    again = cash_application(_params(out, smtp.port, approvals="defer"))
    return {"out": out, "store": store, "cs": CashStore(store), "first": box["summary"], "again": again,
            "mails_at_pause": mails_at_pause, "first_mails": first_mails, "smtp": smtp, "refusals": refusals}


def _truth(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / PERIOD / "bank" / "expected.csv", dtype=str)


def test_every_bank_line_is_applied_as_the_truth_says(month):
    cs, truth = month["cs"], _truth(month["out"])
    receipts = cs.receipts().set_index("bank_reference")
    apps = cs.applications()
    assert len(receipts) == len(truth)
    applied = apps[apps["status"] == "APP"].groupby("cash_receipt_id")["applied_payment_schedule_id"].agg(
        lambda s: sorted(set(s)))
    for t in truth.itertuples(index=False):
        r = receipts.loc[t.bank_reference]
        expected = sorted(str(t.expected_items).split()) if isinstance(t.expected_items, str) else []
        got = applied.get(r["cash_receipt_id"], [])
        if t.scenario in ("exact_ref", "split_ref", "rf_ref", "fee_short", "partial", "over", "name_only",
                          "advice_no_ref"):
            assert (r["status"], r["band"], got) == ("APP", "auto", expected), (t.scenario, r.to_dict())
        elif t.scenario == "split_no_ref":
            assert (r["status"], r["band"]) == ("UNAPP", "review"), r.to_dict()
            sugg = cs.suggestions("open")
            assert sorted(sugg.loc[sugg["cash_receipt_id"] == r["cash_receipt_id"], "payment_schedule_id"]) == expected
        elif t.scenario == "unknown_payer":
            assert (r["status"], r["band"]) == ("UNID", "unidentified") and pd.isna(r["customer_id"])
        elif t.scenario == "return":
            assert r["status"] == "REV", r.to_dict()
    # Every receipt's applications add up to it, to the cent.
    net = apps.groupby("cash_receipt_id")["amount_applied_cents"].sum()
    assert (net.reindex(receipts["cash_receipt_id"]).to_numpy() == receipts["amount_cents"].to_numpy()).all()
    reasons = set(";".join(receipts["reason_codes"]).split(";"))
    assert {"REF_INVOICE", "REF_CREDITOR", "REF_ADVICE", "AMT_SPLIT", "AMT_FEE_SHORT", "AMT_OVER", "AMT_PARTIAL",
            "PAYER_IBAN", "PAYER_ALIAS", "PAYER_NAME", "RETURN"} <= reasons


def test_returned_payments_reopen_their_items_for_collections(month):
    cs, truth = month["cs"], _truth(month["out"])
    ledger = CollectionsStore(month["store"]).read("open_items")
    items = cs.effective_open_items(ledger).set_index("payment_schedule_id")
    returned = truth[truth["scenario"] == "return"]["expected_items"].unique()
    assert len(returned) == 2  # one in camt.054, one in MT940
    for psid in returned:
        assert items.loc[psid, "status"] == "OP"
        assert items.loc[psid, "amount_due_remaining_cents"] == ledger.set_index("payment_schedule_id").loc[
            psid, "amount_due_remaining_cents"]
    paid = truth[truth["scenario"] == "exact_ref"]["expected_items"].iloc[0]
    assert items.loc[paid, "status"] == "CL"


def test_inquiries_are_answered_once_each_by_smtp(month):
    first = month["first_mails"]
    subjects = sorted(m["Subject"] for m in first)
    assert len(first) == 2 and subjects[0].startswith("Re: Copy of invoice") and subjects[1].startswith("Re: Invoice")
    assert month["mails_at_pause"] == 2  # answered before the month-end sign-offs, not held up by them
    copy = next(m for m in first if m["Subject"].startswith("Re: Copy"))
    trx = copy["Subject"].removeprefix("Re: Copy of invoice ")
    names = [p.get_filename() for p in copy.walk() if p.get_filename()]
    assert names == [f"{trx}.json"] and copy["In-Reply-To"].startswith("<inq-2026-10-20@")
    ack = next(m for m in first if m["Subject"].startswith("Re: Invoice"))
    assert "registered your dispute" in ack.get_payload() or "registered your dispute" in str(ack)
    log = month["cs"].inquiries().set_index("category")
    assert set(log.index) == {"remittance_advice", "invoice_copy_request", "dispute", "balance_inquiry",
                              "forward_to_sales"}
    assert log.loc["balance_inquiry", ["status", "owner"]].tolist() == ["queued", "Billing team"]
    assert log.loc["forward_to_sales", ["status", "owner"]].tolist() == ["queued", "Sales operations"]
    assert log.loc["remittance_advice", "status"] == "done"
    disputes = CollectionsStore(month["store"]).disputes()
    opened = disputes[disputes["opened_on"] == pd.Timestamp("2026-10-31")]
    assert len(opened) == 1 and opened["status"].iloc[0] == "open"
    assert opened["trx_number"].iloc[0] == log.loc["dispute", "trx_numbers"]
    # The re-run sent nothing more and applied nothing twice.
    assert len(month["smtp"].messages) == len(first)
    again = month["again"]["cash"]
    assert again["receipts"] == 0 and again["skipped"] == {"already_loaded": len(_truth(month["out"]))}
    assert month["again"]["inquiries_new"] == 0


def test_provision_is_signed_off_by_another_person_with_the_override_recorded(month):
    from billing.money import parse_amount_to_cents

    cs, first = month["cs"], month["first"]
    assert first["provision"]["signed_off_by"] == APPROVER
    self_approval, half_segment = month["refusals"]
    assert "**Refused:** self-approval refused" in self_approval and "IFRS 9" in self_approval
    assert "**Refused:** override: field override_currency: name the whole segment" in half_segment
    ov = cs.overrides(PERIOD)
    assert ov[["factor_bp", "reason", "preparer", "approver"]].values.tolist() == [
        [12000, "Sector downturn in Q4", PREPARER, APPROVER]]
    matrix = pd.read_csv(month["out"] / PERIOD / "cash" / "provision_matrix.csv", dtype=str)
    assert {"current", "1-30", "31-60", "61-90", "91-120", "121-150", "151+"} == set(matrix["bucket"])
    allowance = cs.allowances(PERIOD)
    journal = pd.read_csv(month["out"] / "erp" / f"provision-journal-{PERIOD}.csv", dtype=str)
    for (bu, ccy), g in journal.groupby(["business_unit", "currency"]):
        movement = int(allowance.loc[(allowance["business_unit"] == bu) & (allowance["currency"] == ccy),
                                     "movement_cents"].sum())
        debit = sum(parse_amount_to_cents(x) for x in g["debit"])
        assert debit == abs(movement) and g["debit"].tolist() != g["credit"].tolist()
    exports = cs.exports().set_index("export_key")
    assert exports.loc[f"provision-journal-{PERIOD}", ["state", "attempts"]].tolist() == ["delivered", 1]
    snaps = cs.aging_snapshots()
    assert snaps["period"].nunique() == 13  # the month and the twelve before it, rebuilt from the ledger


def test_write_off_batch_is_approved_and_handed_to_the_erp_once(month):
    cs, first = month["cs"], month["first"]
    wo = first["write_offs"]
    assert wo["status"] == "handed_off" and wo["approver"] == APPROVER
    residues = cs.write_offs()
    assert set(residues["status"]) == {"handed_off"}
    fee_lines = _truth(month["out"]).query("scenario == 'fee_short'")
    assert (residues["reason"] == "bank_fee_residue").sum() == len(fee_lines)
    erp = sorted(p.name for p in (month["out"] / "erp").iterdir())
    assert erp == sorted([f"provision-journal-{PERIOD}.csv", f"provision-journal-{PERIOD}.json",
                          f"write-off-{wo['batch']}.csv", f"write-off-{wo['batch']}.json",
                          f"write-off-journal-{wo['batch']}.csv", f"write-off-journal-{wo['batch']}.json"])
    # Written-off residues close their items.
    ledger = CollectionsStore(month["store"]).read("open_items")
    items = cs.effective_open_items(ledger).set_index("payment_schedule_id")
    assert (items.loc[residues["payment_schedule_id"], "amount_due_remaining_cents"] == 0).all()


def test_reconciliation_passed_and_files_are_written(month):
    first = month["first"]
    assert first["reconciliation"] == {"status": "passed", "breaks": []}
    tie = pd.read_csv(month["out"] / PERIOD / "cash" / "tie_out.csv", dtype=str)
    assert set(tie["aging_difference"]) == {"0.00"} and set(tie["control_difference"]) == {"0.00"}
    cash = pd.read_csv(month["out"] / PERIOD / "cash" / "unapplied_cash.csv", dtype=str)
    assert cash["owner"].notna().all() and set(cash["status"]) == {"UNAPP", "UNID"}


def test_a_one_cent_break_blocks_sign_off_and_alerts(month, tmp_path):
    from prefect_email import EmailServerCredentials

    from billing.money import cents_to_decimal, parse_amount_to_cents
    from billing_cycle.alerts import AlertSettings
    from flows.cash_application import cash_application
    from receivables.reconciliation import ReconciliationBreak

    smtp = month["smtp"]
    EmailServerCredentials(smtp_server="127.0.0.1", smtp_port=smtp.port, smtp_type="INSECURE").save(
        "cash-test-alerts", overwrite=True)
    tie = pd.read_csv(month["out"] / PERIOD / "cash" / "tie_out.csv", dtype=str)
    control = tie[["business_unit", "currency", "control"]].rename(columns={"control": "amount"})
    control.loc[0, "amount"] = str(cents_to_decimal(parse_amount_to_cents(control.loc[0, "amount"]) + 1))
    control.to_csv(tmp_path / "gl.csv", index=False)
    before = len(smtp.messages)
    alerts = AlertSettings(email_block="cash-test-alerts", email_to=["controller@sample-company.example"])
    with pytest.raises(ReconciliationBreak) as err:
        cash_application(_params(month["out"], smtp.port, approvals="defer", control_totals=str(tmp_path / "gl.csv"),
                                 alerts=alerts))
    assert "open_items_equal_control" in str(err.value)
    mails = smtp.wait_for(before + 1)[before:]
    assert len(mails) == 1 and mails[0]["To"] == "controller@sample-company.example"
    assert "failed" in mails[0]["Subject"] and "open_items_equal_control" in mails[0].get_payload()
    runs = month["store"].runs()
    assert runs[runs["process"] == "cash_application"]["status"].iloc[-1] == "failed"


def test_cli_refuses_a_file_that_is_not_a_statement(tmp_path, capsys):
    from billing_cycle.cli import main

    bad = tmp_path / "oct.xml"
    bad.write_bytes(b"<?xml version='1.0'?><Invoice xmlns='urn:oasis:names:specification:ubl:schema:xsd:Invoice-2'/>")
    assert main(["cash-apply", "--statement", str(bad), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "oct.xml: not an ISO 20022 camt.052/053/054 document" in err and "nothing recorded" in err
    assert not (tmp_path / "billing.sqlite").exists()


def test_a_person_accepts_a_suggestion_from_the_command_line_and_it_is_learned(month, capsys):
    from billing_cycle.cli import main

    cs, out = month["cs"], month["out"]
    truth = _truth(out)
    line = truth[truth["scenario"] == "split_no_ref"].iloc[0]
    receipt = cs.receipts().set_index("bank_reference").loc[line["bank_reference"]]
    rid = receipt["cash_receipt_id"]
    # The wrong customer is refused with the field named, and nothing is recorded.
    assert main(["cash-apply", "--correct", rid, "--customer", "C00001", "--by", "Elena Dimitrova",
                 "--allocate", f"{line['expected_items'].split()[0]}=1.00", "--out", str(out)]) == 2
    assert "field customer_id" in capsys.readouterr().err
    assert main(["cash-apply", "--correct", rid, "--customer", line["customer_id"], "--by", "Elena Dimitrova",
                 "--comment", "confirmed with their AP", "--out", str(out)]) == 0
    r = cs.receipts().set_index("cash_receipt_id").loc[rid]
    assert r["status"] == "APP"
    apps = cs.applications()
    paid = sorted(apps[(apps["cash_receipt_id"] == rid) & (apps["status"] == "APP")]["applied_payment_schedule_id"])
    assert paid == sorted(line["expected_items"].split())
    assert apps[apps["cash_receipt_id"] == rid]["amount_applied_cents"].sum() == r["amount_cents"]
    assert set(cs.suggestions(None).query("cash_receipt_id == @rid")["state"]) == {"accepted"}
    learned = cs.payer_map().query("source == 'correction'")
    assert set(learned["customer_id"]) == {line["customer_id"]}
    assert cs.corrections()["corrected_by"].tolist() == ["Elena Dimitrova"]


class _Mailer:
    """Stands in for the SMTP server where a test needs it to fail on demand."""

    name = "fake"

    def __init__(self, fail_times: int = 0):
        self.sent, self.fail_times = [], fail_times

    def send(self, message):
        if self.fail_times:
            self.fail_times -= 1
            raise ConnectionRefusedError("mail server down")
        self.sent.append(message)
        return str(message["Message-ID"])


def test_replies_survive_a_mail_server_outage_and_a_refused_dispute_waits_for_a_person(tmp_path):
    from receivables import inquiries as inq
    from tasks.cash import Responders, act_on_inquiries, plan_inquiries
    from tests.receivables.test_inquiries import CUSTOMERS, ITEMS, eml

    cs = CashStore(Store(f"sqlite:///{tmp_path / 's.sqlite'}"))
    items = ITEMS.assign(due_date=pd.Timestamp("2026-10-01"))
    messages = [inq.parse_eml(eml("Copy of invoice INV-1001", "please resend invoice INV-1001"), "a.eml"),
                inq.parse_eml(eml("Dispute INV-1002", "we dispute EUR 100.00 of INV-1002", msgid="<m2@acme.example>"),
                              "b.eml")]
    plan_inquiries.fn(cs, messages, inq.load_rules(), inq.InquiryContext.build(CUSTOMERS, items), "run-1")
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "INV-1001.json").write_text("{}")

    def refuse(*_args):
        raise ValueError("dispute on P2: amount_cents exceeds what is open")

    mailer = _Mailer(fail_times=1)
    r = Responders(mailer=mailer, sender="billing@x.example", archive=archive, open_dispute=refuse, open_items=items,
                   on=pd.Timestamp("2026-10-31").date())
    with pytest.raises(ConnectionRefusedError):       # the task retries on this (retry_on_io)
        act_on_inquiries.fn(cs, messages, r)
    assert cs.replies()["state"].tolist() == ["started"] and mailer.sent == []
    counts = act_on_inquiries.fn(cs, messages, r)      # the retry sends the copy once
    assert counts["copies_sent"] == 1 and counts["failed"] == 1 and len(mailer.sent) == 1
    log = cs.inquiries().set_index("category")
    assert log.loc["dispute", "status"] == "failed" and "amount_cents exceeds" in log.loc["dispute", "detail"]
    assert act_on_inquiries.fn(cs, messages, r)["copies_sent"] == 0 and len(mailer.sent) == 1
    assert cs.replies()[["kind", "state", "attempts"]].values.tolist() == [["invoice_copy", "sent", 2]]


def test_imap_inbox_needs_its_settings(monkeypatch):
    from tasks.cash import FolderInbox, ImapInbox, inbox_for

    for k in ("BILLING_IMAP_HOST", "BILLING_IMAP_USER", "BILLING_IMAP_PASSWORD"):
        monkeypatch.delenv(k, raising=False)
    with pytest.raises(ValueError, match="BILLING_IMAP_HOST, BILLING_IMAP_USER, BILLING_IMAP_PASSWORD"):
        inbox_for("imap")
    assert inbox_for(None) is None and isinstance(inbox_for("mail/"), FolderInbox)
    monkeypatch.setenv("BILLING_IMAP_HOST", "imap.example")
    monkeypatch.setenv("BILLING_IMAP_USER", "billing")
    monkeypatch.setenv("BILLING_IMAP_PASSWORD", "s3cret")
    box = inbox_for("imap")
    assert isinstance(box, ImapInbox) and box.settings.port == 993
    assert "s3cret" not in repr(box.settings)
