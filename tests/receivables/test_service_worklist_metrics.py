"""Disconnection checks, reconnection after payment, escalation; the worklist's order; the metrics."""

import pandas as pd

from receivables.dunning import evaluate_ladder, load_policy
from receivables.metrics import metrics, promises_kept
from receivables.service import disconnection_checks, escalations, reconnections
from receivables.worklist import worklist
from tests.receivables.builders import accounts, history, item, items, notes, receipts

POLICY = load_policy()  # final_notice_min_days 14; escalation 30 days after hard, 120 days past due, legal >= 25,000
AS_OF = pd.Timestamp("2026-11-05")


def ago(days):
    return AS_OF - pd.Timedelta(days=days)


def test_a_disconnection_needs_a_final_notice_14_days_old_no_dispute_and_no_plan():
    acts = pd.DataFrame({"customer_id": ["C1", "C2", "C3", "C4", "C5"], "level_code": "soft_disconnection"})
    sent = pd.Series({"C1": ago(13), "C2": ago(14), "C3": ago(30), "C4": ago(30)})
    got = disconnection_checks(acts, AS_OF, POLICY, sent, disputed_customers={"C3"}, plan_customers={"C4"})
    assert got["blocked_reason"].tolist() == ["final notice sent 13 days ago; the policy needs 14", "",
                                              "open dispute", "active payment plan", "no final notice sent"]


def _requests(*rows):
    return pd.DataFrame([{"request_id": i, "request_key": f"K{i}", "customer_id": r[0], "action": r[1],
                          "requested_on": pd.Timestamp(r[2]), "state": r[3]} for i, r in enumerate(rows)])


def test_reconnection_follows_payment_of_the_overdue_balance():
    reqs = _requests(("C1", "soft_disconnection", "2026-10-01", "delivered"),
                     ("C2", "hard_disconnection", "2026-10-01", "delivered"),
                     ("C3", "soft_disconnection", "2026-09-01", "delivered"),
                     ("C3", "reconnection", "2026-10-01", "delivered"),     # already reconnected
                     ("C4", "soft_disconnection", "2026-10-01", "started"))  # not delivered yet
    overdue = pd.Series({"C1": 0, "C2": 10_00, "C3": 0, "C4": 0})
    got = reconnections(reqs, overdue)
    assert got.to_dict("records") == [{"customer_id": "C1", "disconnection_key": "K0"}]


def test_escalation_after_hard_disconnection_and_the_policy_age_to_legal_or_agency():
    df = items(item("A", str(ago(130).date()), 30_000_00),                   # C1: 130 days, 30,000.00: legal
               item("B", str(ago(130).date()), 5_000_00, customer="C2"),     # C2: agency
               item("C", str(ago(119).date()), 9_000_00, customer="C3"),     # C3: too young
               item("D", str(ago(200).date()), 9_000_00, customer="C4"))     # C4: hard 29 days ago only
    lad = evaluate_ladder(df, AS_OF, POLICY)
    reqs = _requests(("C1", "hard_disconnection", ago(30), "delivered"), ("C2", "hard_disconnection", ago(40),
                                                                         "delivered"),
                     ("C3", "hard_disconnection", ago(60), "delivered"), ("C4", "hard_disconnection", ago(29),
                                                                         "delivered"),
                     ("C5", "soft_disconnection", ago(90), "delivered"))
    got = escalations(reqs, lad, AS_OF, POLICY, already_escalated=set()).set_index("customer_id")
    assert got["target"].to_dict() == {"C1": "legal", "C2": "agency"}
    assert got.loc["C1", "overdue"] == {"EUR": 30_000_00} and got.loc["C1", "oldest_days_past_due"] == 130
    assert escalations(reqs, lad, AS_OF, POLICY, already_escalated={"C1", "C2"}).empty


def test_worklist_ranks_each_collectors_accounts_by_amount_then_age():
    df = items(item("A", str(ago(10).date()), 500_00, customer="C1"),
               item("B", str(ago(90).date()), 500_00, customer="C2"),
               item("C", str(ago(5).date()), 900_00, customer="C3"),
               item("D", str(ago(40).date()), 100_00, customer="C4"))
    acc = accounts({"customer_id": "C1", "collector": "Ann"}, {"customer_id": "C2", "collector": "Ann"},
                   {"customer_id": "C3", "collector": "Ann"}, {"customer_id": "C4", "collector": "Bob"})
    nts = notes({"note_id": "N1", "customer_id": "C2", "note_date": ago(3), "author": "Ann", "text": "will pay",
                 "promise_date": ago(1), "promise_amount_cents": 500_00, "currency": "EUR"},
                {"note_id": "N0", "customer_id": "C2", "note_date": ago(9), "author": "Ann", "text": "first call",
                 "promise_date": None, "promise_amount_cents": None, "currency": None})
    lad = evaluate_ladder(df, AS_OF, POLICY, history=history(("D", 2, ago(30))))
    wl = worklist(lad, acc, pd.DataFrame(columns=["customer_id", "state"]), nts,
                  pd.DataFrame(columns=["customer_id", "status"]), AS_OF, POLICY)
    assert wl[["collector", "rank", "customer_id"]].values.tolist() == [
        ["Ann", 1, "C3"], ["Ann", 2, "C2"], ["Ann", 3, "C1"], ["Bob", 1, "C4"]]
    row = wl.set_index("customer_id")
    assert row.loc["C2", "next_action"] == "follow up promise" and row.loc["C2", "last_note"] == "will pay"
    assert row.loc["C3", "next_action"] == "Reminder 1 when due"
    assert row.loc["C3", "next_action_date"] == AS_OF + pd.Timedelta(days=2)   # due 5 days ago, trigger at 7
    assert row.loc["C1", "next_action"] == "send Reminder 1"
    assert row.loc["C4", "next_action"] == "send Final notice"


def test_dso_overdue_share_disputes_and_promises_kept():
    df = items(item("A", str(ago(10).date()), 300_00, original=600_00, trx_date=str(ago(40).date())),
               item("B", str(ago(-20).date()), 600_00, trx_date=str(ago(10).date()), dispute=100_00),
               item("OLD", str(ago(200).date()), 0, original=900_00, trx_date=str(ago(230).date())))
    nts = notes({"note_id": "N1", "customer_id": "C1", "note_date": ago(20), "author": "Ann", "text": "p",
                 "promise_date": ago(10), "promise_amount_cents": 200_00, "currency": "EUR"},
                {"note_id": "N2", "customer_id": "C1", "note_date": ago(8), "author": "Ann", "text": "p",
                 "promise_date": ago(2), "promise_amount_cents": 400_00, "currency": "EUR"})
    rec = receipts(("C1", "EUR", 250_00, str(ago(12).date())), ("C1", "EUR", 100_00, str(ago(1).date())))
    m = metrics(df, rec, nts, AS_OF).iloc[0]
    # Open 900.00; sales of the last 90 days 600.00 + 600.00 = 1,200.00: DSO = 900 x 90 / 1,200 = 67.5 days.
    assert m["open_ar_cents"] == 900_00 and m["sales_cents"] == 1_200_00 and m["dso_tenths"] == 675
    # Overdue: A's 300.00 of 900.00 = 33.33% -> 3,333 bp. B is not due yet.
    assert m["overdue_cents"] == 300_00 and m["overdue_bp"] == 3_333
    assert m["disputed_cents"] == 100_00   # B's, though B is not due yet
    # N1: 250.00 paid between its note and its date >= 200.00 (kept); N2: nothing in its window (broken).
    kept = promises_kept(nts, rec, AS_OF).set_index("note_id")
    assert kept["kept"].to_dict() == {"N1": True, "N2": False}
    assert m["promises_due"] == 2 and m["promises_kept"] == 1
