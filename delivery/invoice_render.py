"""The readable invoice: HTML from one Jinja2 template, and PDF from the same HTML where a renderer exists.

``templates/invoice.html.j2`` is the only layout. Values reach it already formatted as exact decimals
(``1,083.30``), so the template computes nothing and cannot round. The PDF is made with WeasyPrint
when it imports (it needs the system's Pango); otherwise ``write_invoice`` writes the HTML only and
says so in its result, and the rest of the close goes on.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from functools import cache
from pathlib import Path

import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from billing.periods import Period
from delivery.base import check_document, money_text, optional_text, percent_decimal, quantity_decimal
from delivery.ubl import SellerParty

TEMPLATES = Path(__file__).parent / "templates"
TEMPLATE = "invoice.html.j2"


@cache
def _environment() -> Environment:
    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined,
                       trim_blocks=False, lstrip_blocks=False)


def pdf_renderer_available() -> bool:
    """True when WeasyPrint (and the Pango it loads) imports."""
    try:
        import weasyprint  # noqa: F401
    except Exception:   # ImportError, or OSError when the Pango library is missing
        return False
    return True


def render_invoice_html(document: Mapping, lines: pd.DataFrame, *, customer: Mapping | None = None,
                        seller: SellerParty | None = None) -> str:
    """The invoice or credit note as one HTML page. ``customer``: its master-data row (name, country...)."""
    doc = check_document(document, lines, "invoice_render")
    seller = seller or SellerParty()
    customer = customer or {}
    cur = doc.currency
    credit = doc.document_type == "credit_memo"
    period = Period.parse(doc.period)
    return _environment().get_template(TEMPLATE).render(
        title="Credit note" if credit else "Invoice",
        credit=credit,
        doc=doc,
        seller=seller,
        customer={"name": optional_text(customer.get("customer_name")) or optional_text(
                      document.get("customer_name")) or doc.customer_id,
                  "country": optional_text(customer.get("tax_country")),
                  "email": optional_text(customer.get("billing_email"))},
        period_start=period.start.isoformat(), period_end=period.end.isoformat(),
        terms_days=doc.payment_terms_days,
        tax_label=f"VAT {percent_decimal(doc.tax_rate_bp):f}%",
        lines=[{"line_no": x.line_no, "description": x.description, "project_id": x.project_id,
                "quantity": f"{quantity_decimal(x.quantity_milli):f}",
                "unit_price": None if x.unit_price_cents is None else money_text(x.unit_price_cents, cur, True),
                "amount": money_text(x.amount_cents, cur, True)} for x in doc.lines],
        totals={"net": money_text(doc.net_cents, cur, True), "tax": money_text(doc.tax_cents, cur, True),
                "gross": money_text(doc.gross_cents, cur, True)},
    )


def write_invoice(document: Mapping, lines: pd.DataFrame, folder: Path | str, *, customer: Mapping | None = None,
                  seller: SellerParty | None = None, pdf: bool = True) -> dict[str, Path]:
    """Write ``<key>.html`` and, when ``pdf`` and a renderer is installed, ``<key>.pdf``; returns the paths."""
    html = render_invoice_html(document, lines, customer=customer, seller=seller)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", str(document["document_key"]))
    out = {"html": folder / f"{stem}.html"}
    _atomic(out["html"], html.encode("utf-8"))
    if pdf and pdf_renderer_available():
        import weasyprint

        out["pdf"] = folder / f"{stem}.pdf"
        _atomic(out["pdf"], weasyprint.HTML(string=html, base_url=str(TEMPLATES)).write_pdf())
    return out


def _atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
