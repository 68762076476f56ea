"""The provision matrix on a small history, computed by hand; specific provisions, overrides, movement, journal.

History of segment DE01 / enterprise / EUR (cents per bucket current, 1-30, 31-60, 61-90, 91-120, 121-150,
151+):
  2026-08: 100000  50000  20000  10000  4000  2000     0
  2026-09: 100000  50000  20000  10000  5000  3000  9999
  2026-10: 100000  50000  30000  10000  5000  4000  1000
Roll rates over the two transitions (sum of what reached the next bucket / sum of what was in the bucket):
  current->1-30 (50000+50000)/(100000+100000) = 1/2;  1-30->31-60 (20000+30000)/(50000+50000) = 1/2;
  31-60->61-90 (10000+10000)/(20000+20000) = 1/2;    61-90->91-120 (5000+5000)/(10000+10000) = 1/2;
  91-120->121-150 (3000+4000)/(4000+5000) = 7/9 (what sat in 151+ already defaulted: it does not roll).
Loss rates with LGD 100%: 121-150 and 151+ 1; 91-120 7/9; 61-90 7/18; 31-60 7/36; 1-30 7/72; current 7/144.
"""

from fractions import Fraction

import pandas as pd
import pytest

from billing.approvals import SegregationOfDutiesError
from billing.periods import Period
from receivables.cash_application import WRITE_OFF_PROPOSALS
from receivables.provision import (
    AGING_SNAPSHOTS,
    BUCKETS,
    ProvisionError,
    ProvisionSettings,
    SegmentOverride,
    compute_provision,
    provision_matrix,
    rate_ppm,
    small_balance_write_offs,
    snapshots_from_history,
    write_off_batch,
    write_off_journal,
)

OCT = Period(2026, 10)
HISTORY = {"2026-08": [100000, 50000, 20000, 10000, 4000, 2000, 0],
           "2026-09": [100000, 50000, 20000, 10000, 5000, 3000, 9999]}


def rows(period, customer, balances, bu="DE01", cls="enterprise", currency="EUR"):
    return [{"period": period, "customer_id": customer, "business_unit": bu, "customer_class": cls,
             "currency": currency, "bucket": b, "balance_cents": v} for b, v in zip(BUCKETS, balances, strict=True)
            if v != 0]


def snapshots():
    data = []
    for p, balances in HISTORY.items():
        data += rows(p, "A", balances)
    data += rows("2026-10", "A", [100000, 50000, 30000, 0, 0, 0, 0])
    data += rows("2026-10", "B", [0, 0, 0, 10000, 5000, 4000, 1000])
    data += rows("2026-10", "E", [0, 0, 0, 0, 0, 0, 8000], cls="smb")            # escalated to legal
    data += rows("2026-10", "F", [-1000, 0, 0, 0, 6000, 0, 0], cls="smb")        # with an agency; a credit
    return pd.DataFrame(data, columns=AGING_SNAPSHOTS.names)


ESCALATIONS = pd.DataFrame({"customer_id": ["E", "F"], "escalation": ["legal", "agency"]})
PREVIOUS = pd.DataFrame({"customer_id": ["A", "B", "G"], "currency": ["EUR"] * 3, "business_unit": ["DE01"] * 3,
                         "allowance_cents": [15000, 12000, 500]})


def test_roll_rates_and_loss_rates_of_the_matrix():
    m = provision_matrix(snapshots(), OCT, ProvisionSettings(lookback_months=2), exclude_customers=["E", "F"])
    ent = m[m["customer_class"] == "enterprise"].set_index("bucket")
    assert ent["from_balance_cents"].tolist() == [200000, 100000, 40000, 20000, 9000, 0, 0]
    assert ent["to_balance_cents"].tolist() == [100000, 50000, 20000, 10000, 7000, 0, 0]
    assert ent["months"].unique().tolist() == [2]
    assert ent["roll_rate_ppm"].tolist()[:5] == [500000, 500000, 500000, 500000, 777778]  # 7/9 = 0.7777777...
    assert ent.loc[["121-150", "151+"], "roll_rate_ppm"].isna().all()
    assert ent["loss_rate"].tolist() == [Fraction(7, 144), Fraction(7, 72), Fraction(7, 36), Fraction(7, 18),
                                         Fraction(7, 9), Fraction(1), Fraction(1)]
    # 7/144 = 0.04861111 -> 48611 ppm; 7/72 -> 97222; 7/36 -> 194444; 7/18 = 0.3888889 -> 388889.
    assert ent["loss_rate_ppm"].tolist() == [48611, 97222, 194444, 388889, 777778, 1000000, 1000000]
    assert m[m["customer_class"] == "smb"].empty  # escalated customers leave the collective matrix


def test_lookback_window_keeps_only_the_latest_transitions():
    # One transition (09 -> 10): 91-120 -> 121-150 is 4000 / 5000 = 4/5.
    m = provision_matrix(snapshots(), OCT, ProvisionSettings(lookback_months=1), exclude_customers=["E", "F"])
    ent = m.set_index("bucket")
    assert ent.loc["91-120", "roll_rate_ppm"] == 800000 and ent.loc["current", "months"] == 1
    assert ent.loc["1-30", "roll_rate_ppm"] == 600000  # 30000 / 50000


def test_allowance_per_customer_specific_provisions_movement_and_journal():
    st = ProvisionSettings(lookback_months=2)
    snap = snapshots()
    m = provision_matrix(snap, OCT, st, exclude_customers=ESCALATIONS["customer_id"])
    res = compute_provision(snap[snap["period"] == "2026-10"], m, OCT, st, escalations=ESCALATIONS, previous=PREVIOUS)
    c = res.by_customer.set_index("customer_id")
    # A: 100000*7/144 = 4861.1 -> 4861; 50000*7/72 = 4861.1 -> 4861; 30000*7/36 = 5833.3 -> 5833.
    assert c.loc["A", "allowance_cents"] == 4861 + 4861 + 5833 == 15555
    # B: 10000*7/18 = 3888.9 -> 3889; 5000*7/9 = 3888.9 -> 3889; 4000*1 + 1000*1 = 5000.
    assert c.loc["B", "allowance_cents"] == 3889 + 3889 + 4000 + 1000 == 12778
    # E legal 100% of 8000; F agency 50% of its positive 6000 (the -1000 credit carries no risk).
    assert (c.loc["E", "specific_cents"], c.loc["E", "collective_cents"]) == (8000, 0)
    assert (c.loc["F", "specific_cents"], c.loc["F", "balance_cents"]) == (3000, 5000)
    # Movement: A +555, B +778, E +8000, F +3000, G (gone) -500.
    assert c["movement_cents"].to_dict() == {"A": 555, "B": 778, "E": 8000, "F": 3000, "G": -500}
    t = res.totals.set_index(["business_unit", "currency"]).loc[("DE01", "EUR")]
    assert t["allowance_cents"] == 15555 + 12778 + 8000 + 3000 == 39333
    assert t["previous_cents"] == 27500 and t["movement_cents"] == 11833
    j = res.journal
    assert j[["journal_id", "account", "debit_cents", "credit_cents"]].values.tolist() == [
        ["PROV-2026-10-DE01-EUR", "6850", 11833, 0], ["PROV-2026-10-DE01-EUR", "1290", 0, 11833]]
    assert j["debit_cents"].sum() == j["credit_cents"].sum()


def test_a_release_debits_the_allowance():
    st = ProvisionSettings(lookback_months=2)
    snap = snapshots()
    m = provision_matrix(snap, OCT, st, exclude_customers=["E", "F"])
    now = snap[(snap["period"] == "2026-10") & (snap["customer_id"] == "A")]
    prev = pd.DataFrame({"customer_id": ["A"], "currency": ["EUR"], "business_unit": ["DE01"],
                         "allowance_cents": [20000]})
    res = compute_provision(now, m, OCT, st, previous=prev)
    assert res.journal[["account", "debit_cents", "credit_cents"]].values.tolist() == [
        ["6850", 0, 20000 - 15555], ["1290", 20000 - 15555, 0]]


def test_override_multiplies_the_segment_rates_and_needs_another_approver():
    st = ProvisionSettings(lookback_months=2)
    snap = snapshots()
    m = provision_matrix(snap, OCT, st, exclude_customers=["E", "F"])
    seg = {"business_unit": "DE01", "customer_class": "enterprise", "currency": "EUR"}
    ov = SegmentOverride(seg, 12000, "Sector downturn", preparer="Ivan Petrov", approver="Petra Koleva")
    now = snap[(snap["period"] == "2026-10") & snap["customer_id"].isin(["A", "B"])]
    res = compute_provision(now, m, OCT, st, overrides=[ov])
    c = res.by_customer.set_index("customer_id")["allowance_cents"]
    # x 6/5: 100000*7/120 = 5833.3 -> 5833; 50000*7/60 = 5833.3 -> 5833; 30000*7/30 = 7000.
    assert c["A"] == 5833 + 5833 + 7000
    # 10000*7/15 = 4666.7 -> 4667; 5000*14/15 = 4666.7 -> 4667; default capped at 100%: 4000 + 1000.
    assert c["B"] == 4667 + 4667 + 4000 + 1000
    assert res.overrides[["factor_bp", "reason", "approver"]].values.tolist() == [
        [12000, "Sector downturn", "Petra Koleva"]]
    with pytest.raises(SegregationOfDutiesError):
        compute_provision(now, m, OCT, st, overrides=[SegmentOverride(seg, 12000, "x", "Ivan Petrov", " ivan  petrov")])
    with pytest.raises(ProvisionError, match="field reason"):
        compute_provision(now, m, OCT, st, overrides=[SegmentOverride(seg, 12000, " ", "Ivan", "Petra")])


def test_rate_rounding_is_half_up_in_ppm():
    assert rate_ppm(Fraction(1, 8_000_000)) == 0 and rate_ppm(Fraction(1, 2_000_000)) == 1
    assert rate_ppm(Fraction(7, 9)) == 777778


def test_snapshots_rebuilt_from_history():
    items = pd.DataFrame({"payment_schedule_id": ["X1"], "trx_number": ["INV-X1"], "customer_id": ["A"],
                          "business_unit": ["DE01"], "currency": ["EUR"], "trx_date": [pd.Timestamp("2026-08-31")],
                          "due_date": [pd.Timestamp("2026-09-30")], "amount_due_original_cents": [10000]})
    apps = pd.DataFrame({"payment_schedule_id": ["X1", "X1"], "amount_applied_cents": [4000, 6000],
                         "apply_date": pd.to_datetime(["2026-09-15", "2026-11-05"])})
    customers = pd.DataFrame({"customer_id": ["A"], "customer_class": ["smb"]})
    s = snapshots_from_history(items, apps, customers, [Period(2026, m) for m in (7, 8, 9, 10, 11)])
    # 07: not issued; 08: 10000 current (due in 30 days); 09: 6000 current (due that day); 10: 6000, 31 days
    # past due; 11: paid.
    assert s[["period", "bucket", "balance_cents"]].values.tolist() == [
        ["2026-08", "current", 10000], ["2026-09", "current", 6000], ["2026-10", "31-60", 6000]]
    assert set(s["customer_class"]) == {"smb"}


def test_small_balances_are_proposed_and_batched_with_fee_residues_once_per_item():
    def item(psid, remaining, due, dispute=0):
        return {"payment_schedule_id": psid, "trx_number": f"INV-{psid}", "customer_id": "A", "business_unit": "DE01",
                "currency": "EUR", "due_date": pd.Timestamp(due), "amount_due_remaining_cents": remaining,
                "amount_in_dispute_cents": dispute, "status": "OP"}
    items = pd.DataFrame([item("S1", 900, "2026-06-30"), item("S2", 900, "2026-10-01"), item("S3", 1500, "2026-06-30"),
                          item("S4", 900, "2026-06-30", dispute=900), item("S5", -900, "2026-06-30")])
    small = small_balance_write_offs(items, pd.Timestamp("2026-10-31"), {"EUR": 1000}, min_days_past_due=90)
    assert small[["write_off_id", "amount_cents", "reason"]].values.tolist() == [["WO-small_balance-S1", 900,
                                                                                  "small_balance"]]
    fee = pd.DataFrame([{"write_off_id": "WO-bank_fee_residue-S1-R1", "payment_schedule_id": "S1", "trx_number": "x",
                         "customer_id": "A", "business_unit": "DE01", "currency": "EUR", "amount_cents": 900,
                         "reason": "bank_fee_residue", "cash_receipt_id": "R1"}], columns=WRITE_OFF_PROPOSALS.names)
    batch = write_off_batch(fee, small)
    assert batch["write_off_id"].tolist() == ["WO-bank_fee_residue-S1-R1"]
    j = write_off_journal("B1", batch, "2026-10-31")
    assert j[["account", "debit_cents", "credit_cents"]].values.tolist() == [["1290", 900, 0], ["1200", 0, 900]]
