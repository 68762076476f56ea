"""Late-payment interest (ECB reference rate + 8 points, simple, daily) and the EUR 40 compensation.

Reference rates from the shipped table: 2025 H1 3.15%, 2025 H2 2.15%, 2026 H1 and H2 2.15%; with the
8-point margin 11.15% and 10.15%. Interest = amount x rate-days / (365 x 10,000), rounded once.
"""

import pandas as pd
import pytest

from receivables.dunning import load_policy
from receivables.interest import InterestRateMissing, RateCalendar, late_interest, load_reference_rates
from tests.receivables.builders import applications, item, items, policy

RATES = load_reference_rates()
POLICY = load_policy()
CLASSES = pd.Series({"C1": "enterprise", "C2": "consumer"})
NO_APPS = applications()


def claim(df, as_of, apps=NO_APPS, interest_policy=POLICY.interest):
    return late_interest(df, apps, pd.Timestamp(as_of), RATES, interest_policy, CLASSES).set_index(
        "payment_schedule_id")


def test_the_reference_rate_table_holds_half_years():
    cal = RateCalendar(RATES)
    d = lambda s: pd.to_datetime([s]).to_numpy()  # noqa: E731
    assert cal.rate_days(d("2025-06-30"), d("2025-07-01"))[0] == 215   # 1 July 2025: the H2 rate
    assert cal.rate_days(d("2025-06-29"), d("2025-06-30"))[0] == 315
    assert cal.rate_days(d("2026-01-01"), d("2026-01-01"))[0] == 0


def test_sixty_days_unpaid_at_10_15_percent_and_the_eur_40():
    # 10,000.00 due 31 March 2026, unpaid on 30 May: 60 days x 10.15%:
    # 1,000,000 x 60 x 1,015 / 3,650,000 = 16,684.93 -> 16,685 cents.
    got = claim(items(item("A", "2026-03-31", 1_000_000)), "2026-05-30")
    assert got.loc["A", "late_days"] == 60
    assert got.loc["A", "interest_cents"] == 16_685
    assert got.loc["A", "compensation_cents"] == 40_00


def test_a_period_across_1_july_is_charged_at_each_half_years_rate():
    # Due 20 June 2025, unpaid on 10 July: 10 days at 11.15% + 10 days at 10.15%:
    # 1,000,000 x (10 x 1,115 + 10 x 1,015) / 3,650,000 = 5,835.62 -> 5,836.
    got = claim(items(item("A", "2025-06-20", 1_000_000)), "2025-07-10")
    assert got.loc["A", "interest_cents"] == 5_836


def test_a_partial_payment_stops_interest_on_what_was_paid_only():
    # 6,000.00 paid on 30 April (30 days late), 4,000.00 still open on 30 May (60 days):
    # (600,000 x 30 + 400,000 x 60) x 1,015 / 3,650,000 = 11,679.45 -> 11,679.
    df = items(item("A", "2026-03-31", 400_000, original=1_000_000))
    got = claim(df, "2026-05-30", applications(("A", 600_000, "2026-04-30")))
    assert got.loc["A", "interest_cents"] == 11_679 and got.loc["A", "late_days"] == 60


def test_paying_the_principal_does_not_erase_the_interest_or_the_compensation():
    # The same invoice, the rest paid on 30 May: closed, and the claim is unchanged.
    df = items(item("A", "2026-03-31", 0, original=1_000_000))
    apps = applications(("A", 600_000, "2026-04-30"), ("A", 400_000, "2026-05-30"))
    got = claim(df, "2026-06-15", apps)
    assert got.loc["A", "interest_cents"] == 11_679
    assert got.loc["A", "compensation_cents"] == 40_00 and got.loc["A", "late_days"] == 0


def test_paid_on_time_gives_no_claim():
    df = items(item("A", "2026-03-31", 0, original=1_000_000))
    assert claim(df, "2026-05-30", applications(("A", 1_000_000, "2026-03-31"))).empty


def test_compensation_is_once_per_invoice_not_per_installment():
    df = items(item("A1", "2026-03-31", 500_000, trx="INV-1", installment=1),
               item("A2", "2026-04-30", 500_000, trx="INV-1", installment=2))
    got = claim(df, "2026-05-30")
    assert got["compensation_cents"].tolist() == [40_00, 0]
    # A2: 500,000 x 30 x 1,015 / 3,650,000 = 4,171.23 -> 4,171
    assert got.loc["A2", "interest_cents"] == 4_171


def test_only_business_customers_and_only_where_the_policy_turns_it_on():
    df = items(item("A", "2026-03-31", 1_000_000, customer="C2"))   # a consumer
    assert claim(df, "2026-05-30").empty
    off = policy(interest__enabled=False).interest
    assert claim(items(item("A", "2026-03-31", 1_000_000)), "2026-05-30", interest_policy=off).empty


def test_no_fixed_compensation_where_the_policy_has_none_for_the_currency():
    got = claim(items(item("A", "2026-03-31", 1_000_000, currency="GBP")), "2026-05-30")
    assert got.loc["A", "interest_cents"] == 16_685 and got.loc["A", "compensation_cents"] == 0


def test_a_day_beyond_the_rate_table_is_refused_naming_the_file():
    with pytest.raises(InterestRateMissing, match=r"ecb_reference_rates.csv: no ECB reference rate for 2027-03-01"):
        claim(items(item("A", "2026-12-01", 1_000_000)), "2027-03-01")
