"""Sending letters: recorded before, sent once per key and day, retried after a failure, never twice after
a crash mid-send (the outcome is unknown: a person checks), and nothing recorded on a dry run."""

import pandas as pd
import pytest

from receivables.cycle import CollectionsState, compute_collections
from receivables.dunning import load_policy
from receivables.interest import load_reference_rates
from receivables.letters import Sender
from store import Store
from store.receivables import CollectionsStore
from tests.receivables.builders import accounts, applications, item, items, notes, receipts

AS_OF = pd.Timestamp("2026-11-05")
POLICY = load_policy()


class RecordingMailer:
    name = "recording"

    def __init__(self, fail: bool = False):
        self.sent, self.fail = [], fail

    def send(self, message):
        if self.fail:
            raise ConnectionRefusedError("SMTP server down")
        self.sent.append(message)
        return str(message["Message-ID"])


@pytest.fixture
def day(tmp_path):
    data = {"open_items": items(item("A", "2026-10-20", 120_00)), "cash_receipts": receipts(),
            "receipt_applications": applications(), "collection_accounts": accounts({"customer_id": "C1"}),
            "account_notes": notes()}
    result = compute_collections(data, CollectionsState(), AS_OF, POLICY, load_reference_rates())
    return CollectionsStore(Store(f"sqlite:///{tmp_path / 's.sqlite'}")), data, result, tmp_path


def _send(cs, mailer, data, result, folder, dry_run=False):
    from tasks.collections import send_letters

    return send_letters.fn(cs, mailer, result, data, POLICY, "letter", folder, "run", "Ann", dry_run, Sender())


def test_a_letter_is_sent_once_retried_after_a_failure_and_never_twice(day):
    cs, data, result, folder = day
    assert result.letters["level_code"].tolist() == ["reminder_1"]
    down = RecordingMailer(fail=True)
    assert _send(cs, down, data, result, folder)["failed"] == 1
    row = cs.actions().iloc[0]
    assert row["state"] == "failed" and "SMTP server down" in row["error"]
    assert cs.ladder_history().empty  # a failed letter did not reach the level
    up = RecordingMailer()
    assert _send(cs, up, data, result, folder)["sent"] == 1 and len(up.sent) == 1
    assert _send(cs, up, data, result, folder)["skipped"] == 1 and len(up.sent) == 1
    assert cs.ladder_history()["level"].tolist() == [1]
    msg = up.sent[0]
    assert msg["To"] == "ap@example.com" and msg["Message-ID"] == "<letter.C1.2026-11-05@billing-cycle.example>"


def test_a_letter_caught_mid_send_by_a_crash_is_not_sent_again(day):
    cs, data, result, folder = day
    _send(cs, RecordingMailer(fail=True), data, result, folder)
    cs.set_action("letter:C1:2026-11-05", state="sending")   # as a kill between 'sending' and 'sent' leaves it
    mailer = RecordingMailer()
    assert _send(cs, mailer, data, result, folder)["unknown"] == 1 and mailer.sent == []


def test_a_dry_run_writes_the_letter_and_records_nothing(day):
    cs, data, result, folder = day
    mailer = RecordingMailer()
    assert _send(cs, mailer, data, result, folder, dry_run=True)["dry_run"] == 1
    written = folder / "dry-run" / "letter_C1_2026-11-05"
    assert (written / "letter.html").exists() and (written / "statement.html").exists()
    assert (written / "message.eml").exists()
    assert mailer.sent == [] and cs.actions().empty
