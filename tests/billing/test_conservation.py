"""Every cent of candidate amount and input cost is accounted for, on random companies."""

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.close import compute_close
from billing.conservation import ConservationError, check_conservation
from billing.periods import Period
from connectors.sample_company import FaultRates, generate


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), n=st.integers(50, 1500), month=st.integers(1, 12),
       fault=st.floats(0.0, 0.2))
def test_candidate_equals_billed_plus_not_billed_per_contract_on_random_companies(seed, n, month, fault):
    faults = FaultRates(outside_term=fault / 4, duplicate=fault / 4, unapproved=fault, bill_hold=fault,
                        non_billable=fault, reversal=fault / 10, transfer=fault / 20,
                        credit_hold_customers=fault, missing_po_customers=fault / 2, quarterly_customers=fault)
    period = Period(2026, month)
    data = generate(period, n, seed, faults)
    r = compute_close(data, period)
    assert r.conservation.ok, r.conservation.problems
    lines = r.lines
    assert (lines["amount_cents"] == lines["billed_cents"] + lines["unbilled_cents"]).all()
    assert r.batch.documents["net_cents"].sum() == lines["billed_cents"].sum()
    assert r.conservation.input_cost_cents == int(data["expenditure_items"]["raw_cost_cents"].sum())
    # No line billed more than its candidate in the direction of its sign.
    pos = lines["amount_cents"] >= 0
    assert (lines.loc[pos, "billed_cents"] <= lines.loc[pos, "amount_cents"]).all()


def test_a_lost_line_breaks_conservation_and_names_the_contract():
    period = Period(2026, 10)
    data = generate(period, 800, 7)
    r = compute_close(data, period)
    held = r.unbilled[r.unbilled["unbilled_cents"] > 0]
    lost = held["line_id"].iloc[0]
    report = check_conservation(data["expenditure_items"], r.lines, r.batch,
                                r.unbilled[r.unbilled["line_id"] != lost])
    assert not report.ok
    assert any(lost in p for p in report.problems)
    with pytest.raises(ConservationError, match="contract K"):
        report.raise_if_broken()


def test_a_lost_cost_only_line_breaks_the_unbilled_count():
    period = Period(2026, 10)
    data = generate(period, 800, 7)
    r = compute_close(data, period)
    zero = r.unbilled[(r.unbilled["unbilled_cents"] == 0) & (r.unbilled["cost_cents"] > 0)]["line_id"].iloc[0]
    report = check_conservation(data["expenditure_items"], r.lines, r.batch, r.unbilled[r.unbilled["line_id"] != zero])
    assert any(zero in p for p in report.problems)


def test_a_missing_item_breaks_the_count():
    period = Period(2026, 10)
    data = generate(period, 300, 3)
    r = compute_close(data, period)
    extra = pd.concat([data["expenditure_items"], data["expenditure_items"].iloc[[0]].assign(item_id="GHOST")])
    report = check_conservation(extra, r.lines, r.batch, r.unbilled)
    assert any("GHOST" in p for p in report.problems)
