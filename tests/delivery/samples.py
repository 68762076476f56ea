"""Hand-made documents for the delivery tests, shaped like store rows, with amounts computed by hand.

The invoice INV-2026-10-C1-K1-EUR (business unit DE01, 19% VAT, net 30 days):
    1  Consultant, 7.5 h at 120.00             900.00
    2  Travel (at cost, no unit price)           245.50
    3  Fixed fee, installment 2 of 4, 1 x 2,500 2,500.00
    net 3,645.50; VAT 19% = 692.645 -> 692.65 (half up); gross 4,338.15
The credit memo CM-2026-10-C1-K1-EUR reverses 2 h of consultant time:
    1  Consultant reversal, -2 h at 120.00       -240.00
    net -240.00; VAT -45.60; gross -285.60
"""

from __future__ import annotations

from datetime import date

import pandas as pd

INV = "INV-2026-10-C1-K1-EUR"
CM = "CM-2026-10-C1-K1-EUR"
GLN = "5790000435975"          # a GLN with a valid GS1 check digit


def invoice(**kw) -> dict:
    return {
        "document_key": INV, "base_key": INV, "revision": 1, "document_type": "invoice", "period": "2026-10",
        "business_unit": "DE01", "customer_id": "C1", "currency": "EUR", "grouping": "per_contract",
        "group_key": "K1", "issue_date": date(2026, 10, 31), "due_date": date(2026, 11, 30), "po_number": "PO-4711",
        "delivery_channel": "peppol", "backup_required": "none", "tax_rate_bp": 1900, "line_count": 3,
        "net_cents": 364_550, "tax_cents": 69_265, "gross_cents": 433_815, "content_hash": "h" * 64,
        "status": "prepared", "supersedes_key": None, "reverses_key": None,
    } | kw


def invoice_lines(key: str = INV) -> pd.DataFrame:
    return pd.DataFrame([
        line(key, 1, "Senior consultant", 7_500, 12_000, 90_000, "labor", role="Consultant"),
        line(key, 2, "Travel Berlin-Munich", 1_000, None, 24_550, "expense", expenditure_type="travel"),
        line(key, 3, "Advisory fixed fee, installment 2 of 4", 1_000, 250_000, 250_000, "fixed_fee",
             project_id=None),
    ])


def credit_memo(**kw) -> dict:
    return invoice(document_key=CM, base_key=CM, document_type="credit_memo", line_count=1, net_cents=-24_000,
                   tax_cents=-4_560, gross_cents=-28_560, po_number=None) | kw


def credit_lines(key: str = CM) -> pd.DataFrame:
    return pd.DataFrame([line(key, 1, "Reversal: senior consultant", -2_000, 12_000, -24_000, "labor",
                              role="Consultant")])


def line(key, no, description, qty_milli, price_cents, amount_cents, kind, project_id="P1", role=None,
         expenditure_type=None) -> dict:
    return {"document_key": key, "line_no": no, "contract_id": "K1", "project_id": project_id,
            "scope_line_id": "K1-L1", "source_kind": kind, "role": role, "expenditure_type": expenditure_type,
            "description": description, "quantity_milli": qty_milli, "unit_price_cents": price_cents,
            "amount_cents": amount_cents, "item_count": 1}


def customers(**kw) -> pd.DataFrame:
    c1 = {"customer_id": "C1", "customer_name": "Acme Industrie GmbH", "delivery_channel": "peppol",
          "peppol_endpoint_id": f"0088:{GLN}", "tax_country": "DE", "billing_email": "ap@acme.example",
          "po_required": False, "payment_terms_days": 30} | kw
    return pd.DataFrame([c1])
