"""AR aging: buckets at their boundaries, and totals that tie to the open amounts to the cent."""

import pandas as pd

from receivables.aging import BUCKET_COLUMNS, aging, bucket_index, days_past_due
from tests.receivables.builders import item, items

AS_OF = pd.Timestamp("2026-11-05")


def due(days_past_due: int) -> str:
    return str((AS_OF - pd.Timedelta(days=days_past_due)).date())


def test_each_bucket_boundary_falls_on_the_documented_side():
    dpd = [-3, 0, 1, 30, 31, 60, 61, 90, 91, 120, 121, 400]
    df = items(*[item(f"P{d}", due(d), 100) for d in dpd])
    assert list(days_past_due(df, AS_OF)) == dpd
    #            -3 0  1  30 31 60 61 90 91 120 121 400
    assert list(bucket_index(days_past_due(df, AS_OF))) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_buckets_per_customer_and_currency_tie_to_the_open_amounts():
    df = items(
        item("A", due(0), 1_000_01),                     # current
        item("B", due(1), 250_00),                       # 1-30
        item("C", due(30), 49_99),                       # 1-30
        item("D", due(45), 333_33),                      # 31-60
        item("E", due(121), 10_00),                      # 120+
        item("CM", due(10), -75_50, cls="CM"),           # an unapplied credit ages too, negative
        item("PAID", due(200), 0, original=500_00),      # closed: not in the aging
        item("G", due(61), 700_00, currency="USD"),      # same customer, other currency: its own row
        item("H", due(95), 12_34, customer="C2"),        # 91-120
    )
    got = aging(df, AS_OF).set_index(["customer_id", "currency"])
    c1 = got.loc[("C1", "EUR")]
    assert c1["current_cents"] == 1_000_01
    assert c1["days_1_30_cents"] == 250_00 + 49_99 - 75_50   # 224_49
    assert c1["days_31_60_cents"] == 333_33
    assert c1["days_61_90_cents"] == 0 and c1["days_91_120_cents"] == 0
    assert c1["days_over_120_cents"] == 10_00
    assert c1["total_cents"] == 1_000_01 + 250_00 + 49_99 + 333_33 + 10_00 - 75_50  # 1_567_83
    assert got.loc[("C1", "USD"), "days_61_90_cents"] == 700_00
    assert got.loc[("C2", "EUR"), "days_91_120_cents"] == 12_34
    # Every row's buckets add up to its total, and the totals to the open amounts.
    assert (got[list(BUCKET_COLUMNS)].sum(axis=1) == got["total_cents"]).all()
    assert got["total_cents"].sum() == df.loc[df["status"] == "OP", "amount_due_remaining_cents"].sum()


def test_no_open_items_gives_an_empty_aging():
    assert aging(items(item("X", due(5), 0)), AS_OF).empty
