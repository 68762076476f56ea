"""Build tiny hand-made companies for rule tests: one customer, one contract, rows you name."""

from __future__ import annotations

import pandas as pd

from billing import columns as col
from billing.schema import conform

D = pd.Timestamp


def customer(**kw) -> dict:
    return {"customer_id": "C1", "customer_name": "Acme Ltd", "customer_class": "enterprise", "currency": "EUR",
            "payment_terms_days": 30, "invoice_grouping": "per_contract", "invoice_frequency": "monthly",
            "delivery_channel": "email", "billing_email": "ap@acme.example", "peppol_endpoint_id": None,
            "po_required": False, "po_number": None, "backup_required": "none", "credit_hold": False,
            "credit_limit_cents": None, "tax_country": "DE", "tax_rate_bp": 1900} | kw


def contract(**kw) -> dict:
    return {"contract_id": "K1", "customer_id": "C1", "contract_name": "Advisory", "business_unit": "DE01",
            "currency": "EUR", "start_date": D("2026-01-01"), "end_date": D("2026-12-31"), "po_number": None} | kw


def scope(**kw) -> dict:
    return {"scope_line_id": "K1-L1", "contract_id": "K1", "quote_id": "Q1", "service_line": "Advisory",
            "billing_type": "time_and_materials", "role": None, "amount_cents": None, "installments": None,
            "not_to_exceed_cents": None, "markup_bp": None, "start_date": D("2026-01-01"),
            "end_date": D("2026-12-31")} | kw


def rate(**kw) -> dict:
    return {"contract_id": "K1", "role": "Consultant", "bill_rate_cents": 10_000, "effective_from": D("2026-01-01"),
            "effective_to": None} | kw


def project(**kw) -> dict:
    return {"project_id": "P1", "project_name": "Rollout", "contract_id": "K1", "business_unit": "DE01"} | kw


def item(item_id: str, **kw) -> dict:
    return {"item_id": item_id, "project_id": "P1", "expenditure_date": D("2026-10-15"), "person_id": "E1",
            "role": "Consultant", "expenditure_type": "labor", "quantity_milli": 1000, "raw_cost_cents": 5000,
            "billable": True, "bill_hold": False, "approved": True, "billed_period": None, "adjusts_item_id": None,
            "adjustment_type": None} | kw


def expense(item_id: str, cost_cents: int, **kw) -> dict:
    return item(item_id, role=None, expenditure_type="travel", quantity_milli=1000, raw_cost_cents=cost_cents, **kw)


def prior(source_id: str, amount_cents: int, **kw) -> dict:
    return {"invoice_id": "INV-OLD", "line_no": 1, "period": "2026-09", "contract_id": "K1",
            "scope_line_id": "K1-L1", "source_kind": "labor", "source_id": source_id, "quantity_milli": 1000,
            "amount_cents": amount_cents} | kw


def company(customers=None, contracts=None, scope_lines=None, rates=None, projects=None, items=(), milestones=(),
            prior_lines=(), additions=()) -> dict[str, pd.DataFrame]:
    raw = {
        "customers": customers if customers is not None else [customer()],
        "contracts": contracts if contracts is not None else [contract()],
        "scope_lines": scope_lines if scope_lines is not None else [scope()],
        "rate_card": rates if rates is not None else [rate()],
        "projects": projects if projects is not None else [project()],
        "expenditure_items": list(items), "milestones": list(milestones),
        "prior_invoice_lines": list(prior_lines), "tracker_additions": list(additions),
    }
    out = {}
    for name, rows in raw.items():
        spec = col.INPUT_DATASETS[name]
        df = pd.DataFrame(rows, columns=spec.names) if rows else pd.DataFrame({c: [] for c in spec.names})
        out[name] = conform(df, spec, origin=f"test:{name}")
    return out
