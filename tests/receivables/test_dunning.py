"""The dunning policy file and the ladder: triggers, waits, minimums, no skipping, exclusions, letters.

The shipped policy (receivables/policy/dunning.yaml): Reminder 1 at 7 days past due; Reminder 2 at 21
days and 10 days after Reminder 1; Final notice at 35 days and 10 days after, fee EUR 10.00; Soft
disconnection at 50 days and 14 days after; Hard at 80 days and 21 days after. Minimum overdue total:
EUR 50.00 for reminders, 100.00 for the final notice, 500.00 for disconnections (GBP 40/80/400).
"""

from pathlib import Path

import pandas as pd
import pytest
import yaml

from receivables.dunning import DunningInputError, PolicyError, consolidate, evaluate_ladder, load_policy
from tests.receivables.builders import accounts, history, item, items, policy, raw_policy

AS_OF = pd.Timestamp("2026-11-05")
POLICY = load_policy()


def due(dpd: int) -> str:
    return str((AS_OF - pd.Timedelta(days=dpd)).date())


def ago(days: int) -> str:
    return str((AS_OF - pd.Timedelta(days=days)).date())


def ladder(df, **kw):
    return evaluate_ladder(df, AS_OF, kw.pop("policy", POLICY), **kw).set_index("payment_schedule_id")


# --- the policy file ----------------------------------------------------------------------------------
def test_the_shipped_policy_loads_with_amounts_in_cents():
    assert [lv.code for lv in POLICY.levels] == ["reminder_1", "reminder_2", "final_notice", "soft_disconnection",
                                                 "hard_disconnection"]
    assert POLICY.level(3).fee == {"EUR": 10_00, "USD": 10_00, "GBP": 8_00}
    assert POLICY.level(1).minimum("EUR") == 50_00 and POLICY.level(1).minimum("CHF") == 50_00  # "*" default
    assert POLICY.interest.fixed_compensation == {"EUR": 40_00}


def test_overlapping_levels_are_refused_naming_the_file_and_field(tmp_path):
    raw = raw_policy()
    raw["levels"][1]["days_past_due"] = 7   # Reminder 2 at the same day as Reminder 1
    path = tmp_path / "dunning.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(PolicyError) as e:
        load_policy(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}: ")
    assert "levels[1] (reminder_2).days_past_due: 7 overlaps levels[0] (reminder_1) at 7" in msg


def test_an_unknown_currency_in_the_policy_is_refused_naming_the_field():
    with pytest.raises(PolicyError, match=r"test-policy.yaml: levels\[2\] \(final_notice\).fee: unknown currency "
                                          r"'EUX'"):
        policy(levels__2__fee={"EUX": "10.00"})


def test_negative_and_inexact_amounts_are_refused():
    with pytest.raises(PolicyError, match=r"levels\[0\] \(reminder_1\).min_overdue: EUR: '-5.00' is negative"):
        policy(levels__0__min_overdue={"EUR": "-5.00"})
    with pytest.raises(PolicyError, match=r"interest.fixed_compensation: EUR: '40.001' is not an amount"):
        policy(interest__fixed_compensation={"EUR": "40.001"})


def test_levels_out_of_order_missing_fields_and_missing_files_are_refused(tmp_path):
    raw = raw_policy()
    raw["levels"][0], raw["levels"][1] = raw["levels"][1], raw["levels"][0]
    with pytest.raises(PolicyError, match=r"levels: expected exactly reminder_1, reminder_2"):
        from receivables.dunning import parse_policy
        parse_policy(raw, "p.yaml")
    raw = raw_policy()
    del raw["levels"][3]["wait_days"]
    with pytest.raises(PolicyError, match=r"levels\[3\] \(soft_disconnection\).wait_days: Field required"):
        from receivables.dunning import parse_policy
        parse_policy(raw, "p.yaml")
    with pytest.raises(PolicyError, match="policy file not found"):
        load_policy(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("levels: [unclosed")
    with pytest.raises(PolicyError, match=r"bad\.yaml: not valid YAML"):
        load_policy(tmp_path / "bad.yaml")


# --- triggers, waits, minimums ------------------------------------------------------------------------
def test_reminder_1_triggers_at_7_days_past_due_not_6():
    got = ladder(items(item("A", due(6), 100_00), item("B", due(7), 100_00, customer="C2")))
    assert got.loc["A", "proposed_level"] == 0 and got.loc["A", "reason"] == "not_yet_due"
    assert got.loc["B", "proposed_level"] == 1 and got.loc["B", "reason"] == "proposed"


def test_reminder_2_waits_10_days_after_reminder_1():
    df = items(item("A", due(30), 100_00), item("B", due(30), 100_00, customer="C2"))
    got = ladder(df, history=history(("A", 1, ago(9)), ("B", 1, ago(10))))
    assert got.loc["A", "proposed_level"] == 0 and got.loc["A", "reason"] == "waiting"
    assert got.loc["B", "proposed_level"] == 2


def test_each_level_trigger_and_wait_from_the_policy():
    # Item at level k-1 reached long ago: level k goes out at its trigger, not a day before.
    for k, lv in enumerate(POLICY.levels, start=1):
        before = items(item("X", due(lv.days_past_due - 1), 1_000_00))
        at = items(item("X", due(lv.days_past_due), 1_000_00))
        h = history(("X", k - 1, ago(100))) if k > 1 else None
        assert ladder(before, history=h).loc["X", "proposed_level"] == 0, lv.code
        assert ladder(at, history=h).loc["X", "proposed_level"] == k, lv.code
        if k > 1:  # and the wait after the previous level, counted in days since it went out
            short = history(("X", k - 1, ago(lv.wait_days - 1)))
            enough = history(("X", k - 1, ago(lv.wait_days)))
            old = items(item("X", due(200), 1_000_00))
            assert ladder(old, history=short).loc["X", "reason"] == "waiting", lv.code
            assert ladder(old, history=enough).loc["X", "proposed_level"] == k, lv.code


def test_minimum_overdue_is_the_customers_total_per_currency():
    df = items(
        item("A", due(10), 49_99),                              # C1: 49.99 < 50.00
        item("B", due(10), 30_00, customer="C2"),               # C2: 30.00 + 20.00 = 50.00: both go
        item("C", due(8), 20_00, customer="C2"),
        item("D", due(10), 40_00, customer="C3", currency="GBP"),  # GBP minimum is 40.00
        item("E", due(-3), 500_00, customer="C1"),              # not yet due: does not count for C1
        item("F", due(10), 45_00, customer="C4"),               # C4: 45.00 + 5.00 overdue 2 days = 50.00
        item("G", due(2), 5_00, customer="C4"),                 # (G itself is too young for a letter)
    )
    got = ladder(df)
    assert got.loc["A", "reason"] == "below_minimum" and got.loc["A", "customer_overdue_cents"] == 49_99
    assert got.loc[["B", "C"], "proposed_level"].tolist() == [1, 1]
    assert got.loc["B", "customer_overdue_cents"] == 50_00
    assert got.loc["D", "proposed_level"] == 1
    assert got.loc["F", "proposed_level"] == 1 and got.loc["F", "customer_overdue_cents"] == 50_00
    assert got.loc["G", "reason"] == "not_yet_due"


def test_final_notice_needs_100_and_disconnection_500():
    h = history(("A", 2, ago(30)), ("B", 3, ago(30)))
    got = ladder(items(item("A", due(40), 99_99), item("B", due(60), 499_99, customer="C2")), history=h)
    assert got.loc["A", "reason"] == "below_minimum" and got.loc["B", "reason"] == "below_minimum"
    got = ladder(items(item("A", due(40), 100_00), item("B", due(60), 500_00, customer="C2")), history=h)
    assert got.loc["A", "proposed_level"] == 3 and got.loc["B", "proposed_level"] == 4


# --- partial payments, disputes, plans, do not dun ----------------------------------------------------
def test_no_level_is_skipped_after_a_partial_payment():
    # Reminder 1 went out 20 days ago on 1,000.00; 700.00 was paid since; the item is now 60 days past
    # due, old enough for a disconnection: it gets Reminder 2, the next level, on the 300.00 left.
    df = items(item("A", due(60), 300_00, original=1_000_00))
    got = ladder(df, history=history(("A", 1, ago(20))))
    assert got.loc["A", "level_reached"] == 1
    assert got.loc["A", "proposed_level"] == 2 and got.loc["A", "overdue_cents"] == 300_00


def test_a_partial_payment_below_the_minimum_keeps_the_level_reached():
    got = ladder(items(item("A", due(60), 40_00, original=1_000_00)), history=history(("A", 2, ago(20))))
    assert got.loc["A", "reason"] == "below_minimum" and got.loc["A", "level_reached"] == 2


def test_a_disputed_item_is_excluded_and_a_partial_dispute_excludes_its_amount():
    df = items(item("A", due(30), 500_00, dispute=500_00),             # fully disputed in the source
               item("B", due(30), 120_00, customer="C2"),              # 80.00 disputed in the register
               item("C", due(30), 200_00, customer="C3", dispute=50_00))
    got = ladder(df, disputed=pd.Series({"B": 80_00}))
    assert got.loc["A", "reason"] == "in_dispute" and got.loc["A", "overdue_cents"] == 0
    assert got.loc["B", "disputed_cents"] == 80_00 and got.loc["B", "overdue_cents"] == 40_00
    assert got.loc["B", "reason"] == "below_minimum"                   # 40.00 < 50.00
    assert got.loc["C", "proposed_level"] == 1 and got.loc["C", "overdue_cents"] == 150_00


def test_items_under_an_active_plan_and_do_not_dun_customers_get_no_level():
    df = items(item("A", due(30), 500_00), item("B", due(30), 30_00), item("C", due(30), 500_00, customer="C2"))
    acc = accounts({"customer_id": "C1"}, {"customer_id": "C2", "do_not_dun": True,
                                           "do_not_dun_reason": "insolvency"})
    got = ladder(df, plan_items={"A"}, accounts=acc)
    assert got.loc["A", "reason"] == "payment_plan"
    # B alone (30.00) is below the minimum: the planned 500.00 does not count for the customer.
    assert got.loc["B", "reason"] == "below_minimum" and got.loc["B", "customer_overdue_cents"] == 30_00
    assert got.loc["C", "reason"] == "do_not_dun"


def test_credit_memos_closed_and_top_level_items_are_not_dunned():
    df = items(item("CM", due(30), -100_00, cls="CM"), item("P", due(30), 0, original=100_00),
               item("T", due(200), 900_00, customer="C2"))
    got = ladder(df, history=history(("T", 5, ago(60))))
    assert list(got.index) == ["T"] and got.loc["T", "reason"] == "top_of_ladder"


def test_an_item_currency_without_a_minimum_is_refused_naming_the_item():
    raw = raw_policy()
    for lv in raw["levels"]:
        lv["min_overdue"] = {"EUR": "50.00"}
    from receivables.dunning import parse_policy
    strict = parse_policy(raw, "p.yaml")
    with pytest.raises(DunningInputError, match="open item A: currency 'CHF' has no min_overdue in policy level "
                                                "reminder_1"):
        evaluate_ladder(items(item("A", due(10), 100_00, currency="CHF")), AS_OF, strict)


# --- consolidation --------------------------------------------------------------------------------------
def test_one_letter_per_customer_at_its_highest_level_and_disconnection_apart():
    df = items(item("A", due(10), 60_00), item("B", due(40), 100_00),   # C1: level 1 and level 3
               item("C", due(60), 600_00, customer="C2"), item("D", due(10), 70_00, customer="C2"))
    h = history(("B", 2, ago(15)), ("C", 3, ago(20)))
    acts = consolidate(evaluate_ladder(df, AS_OF, POLICY, history=h), POLICY).set_index(["customer_id", "kind"])
    c1 = acts.loc[("C1", "letter")]
    assert c1["level"] == 3 and c1["level_code"] == "final_notice" and c1["items"] == ["A", "B"]
    assert c1["overdue"] == {"EUR": 160_00} and c1["fees"] == {"EUR": 10_00}
    assert acts.loc[("C2", "letter"), "items"] == ["D"] and acts.loc[("C2", "letter"), "level"] == 1
    svc = acts.loc[("C2", "service")]
    assert svc["level_code"] == "soft_disconnection" and svc["items"] == ["C"] and svc["channel"] == "service_request"


def test_the_ladder_reads_its_policy_file(tmp_path):
    path = Path(tmp_path / "p.yaml")
    raw = raw_policy()
    raw["levels"][0]["days_past_due"] = 3
    path.write_text(yaml.safe_dump(raw))
    got = ladder(items(item("A", due(3), 100_00)), policy=load_policy(path))
    assert got.loc["A", "proposed_level"] == 1
