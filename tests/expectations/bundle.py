"""A tiny, clean close for the data-quality tests: every expectation passes on it.

Two customers, two contracts (K1 time and materials, K2 milestones), two projects and a handful of
items, including a reversal and a transfer pair whose negative quantities and costs are legitimate.
Tests break one record at a time with `with_row` and check exactly that record is caught.
"""

from __future__ import annotations

import pandas as pd

from billing import columns as col
from billing.periods import Period
from billing.schema import conform

PERIOD = Period(2026, 10)
D = pd.Timestamp

_CUSTOMER = dict(customer_name="Acme GmbH", customer_class="enterprise", currency="EUR", payment_terms_days=30,
                 invoice_grouping="per_contract", invoice_frequency="monthly", delivery_channel="email",
                 billing_email="ap@acme.example", peppol_endpoint_id=None, po_required=False, po_number=None,
                 backup_required="none", credit_hold=False, credit_limit_cents=5_000_000, tax_country="DE",
                 tax_rate_bp=1900)
_ITEM = dict(billable=True, bill_hold=False, approved=True, billed_period=None, adjusts_item_id=None,
             adjustment_type=None)


def _labor(item_id, project, day, person, role, qty, cost, **kw):
    return dict(_ITEM, item_id=item_id, project_id=project, expenditure_date=D(day), person_id=person,
                role=role, expenditure_type="labor", quantity_milli=qty, raw_cost_cents=cost) | kw


RAW: dict[str, list[dict]] = {
    "customers": [
        dict(_CUSTOMER, customer_id="C1"),
        dict(_CUSTOMER, customer_id="C2", customer_name="Borealis Ltd", po_required=True, po_number="PO-7"),
    ],
    "contracts": [
        dict(contract_id="K1", customer_id="C1", contract_name="Advisory T&M", business_unit="DE01",
             currency="EUR", start_date=D("2026-01-01"), end_date=D("2026-12-31"), po_number=None),
        dict(contract_id="K2", customer_id="C2", contract_name="Build milestones", business_unit="DE01",
             currency="EUR", start_date=D("2026-01-01"), end_date=D("2026-12-31"), po_number=None),
    ],
    "scope_lines": [
        dict(scope_line_id="K1-L1", contract_id="K1", quote_id="Q1", service_line="Advisory",
             billing_type="time_and_materials", role=None, amount_cents=None, installments=None,
             not_to_exceed_cents=None, markup_bp=None, start_date=D("2026-01-01"), end_date=D("2026-12-31")),
        dict(scope_line_id="K2-L1", contract_id="K2", quote_id="Q2", service_line="Implementation",
             billing_type="milestone", role=None, amount_cents=None, installments=None,
             not_to_exceed_cents=None, markup_bp=None, start_date=D("2026-01-01"), end_date=D("2026-12-31")),
    ],
    "rate_card": [
        dict(contract_id="K1", role="Consultant", bill_rate_cents=12_000, effective_from=D("2026-01-01"),
             effective_to=None),
        dict(contract_id="K1", role="Manager", bill_rate_cents=20_000, effective_from=D("2026-01-01"),
             effective_to=D("2026-12-31")),
    ],
    "projects": [
        dict(project_id="P1", project_name="Advisory / workstream 1", contract_id="K1", business_unit="DE01"),
        dict(project_id="P2", project_name="Build / workstream 1", contract_id="K2", business_unit="DE01"),
    ],
    "expenditure_items": [
        _labor("EI01", "P1", "2026-10-05", "E1", "Consultant", 8_000, 41_600),
        dict(_ITEM, item_id="EI02", project_id="P1", expenditure_date=D("2026-10-05"), person_id="E1", role=None,
             expenditure_type="travel", quantity_milli=1_000, raw_cost_cents=12_000),
        _labor("EI03", "P1", "2026-10-06", "E2", "Manager", 4_000, 38_000),
        # Analyst has no rate on K1, but K2 is a milestone contract: no rate is needed.
        _labor("EI04", "P2", "2026-10-07", "E3", "Analyst", 2_000, 7_200),
        # Reversal of an item billed in September: negative quantity and cost are legitimate.
        _labor("EI05", "P1", "2026-10-03", "E1", "Consultant", -8_000, -41_600, adjusts_item_id="EIH1",
               adjustment_type="reversal"),
        # A cost transfer from P1 to P2: the out leg is negative, the in leg mirrors the source.
        _labor("EI06", "P1", "2026-10-06", "E2", "Manager", -4_000, -38_000, adjusts_item_id="EI03",
               adjustment_type="transfer_out"),
        _labor("EI07", "P2", "2026-10-06", "E2", "Manager", 4_000, 38_000, adjusts_item_id="EI03",
               adjustment_type="transfer_in"),
        # The last day of the period is still in the period.
        _labor("EI08", "P1", "2026-10-31", "E2", "Manager", 24_000, 228_000),
    ],
    "milestones": [
        dict(milestone_id="K2-L1-M1", scope_line_id="K2-L1", description="Design accepted", amount_cents=500_000,
             completed_date=D("2026-10-10")),
    ],
    "prior_invoice_lines": [
        dict(invoice_id="INV-1", line_no=1, period="2026-09", contract_id="K1", scope_line_id="K1-L1",
             source_kind="labor", source_id="EIH1", quantity_milli=8_000, amount_cents=96_000),
    ],
    "tracker_additions": [
        dict(addition_id="TRK-1", contract_id="K1", project_id="P1", description="Workshop room hire",
             amount_cents=50_000, service_date=D("2026-10-12"), source="tracker.xlsx:Additions:row 2",
             entered_by="m.ivanova"),
        dict(addition_id="TRK-2", contract_id="K2", project_id=None, description="Goodwill credit",
             amount_cents=-20_000, service_date=D("2026-10-31"), source="tracker.xlsx:Additions:row 3",
             entered_by="j.smith"),
    ],
}


def clean_bundle() -> dict[str, pd.DataFrame]:
    """Every input dataset of the tiny close, in canonical dtypes."""
    return {name: conform(pd.DataFrame(rows, columns=col.INPUT_DATASETS[name].names),
                          col.INPUT_DATASETS[name], origin=f"test:{name}")
            for name, rows in RAW.items()}


def with_row(frame: pd.DataFrame, like: int = 0, **values) -> pd.DataFrame:
    """`frame` plus a copy of its row `like` with `values` set (after conforming, so any value goes)."""
    row = frame.iloc[[like]].copy()
    for name, value in values.items():
        row[name] = pd.Series([value], index=row.index, dtype=frame[name].dtype)
    return pd.concat([frame, row], ignore_index=True)
