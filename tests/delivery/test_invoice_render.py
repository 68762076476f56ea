"""The readable invoice: HTML from one template; PDF only where a renderer is installed."""

import sys

import pytest

from delivery import invoice_render
from delivery.invoice_render import pdf_renderer_available, render_invoice_html, write_invoice
from delivery.ubl import SAMPLE_SELLERS
from tests.delivery.samples import CM, INV, credit_lines, credit_memo, customers, invoice, invoice_lines

CUSTOMER = customers().iloc[0].to_dict()


def test_the_html_shows_lines_and_totals_as_exact_decimals():
    html = render_invoice_html(invoice(), invoice_lines(), customer=CUSTOMER, seller=SAMPLE_SELLERS["DE01"])
    assert "<h1>Invoice</h1>" in html and INV in html and "Acme Industrie GmbH" in html
    for text in ("900.00", "245.50", "2,500.00", "3,645.50", "692.65", "4,338.15", "VAT 19%", "PO-4711",
                 "2026-11-30", "DE89370400440532013000", "within 30 days"):
        assert text in html, text


def test_text_from_the_data_is_escaped():
    lines = invoice_lines()
    lines.loc[0, "description"] = "<script>alert(1)</script> & co"
    html = render_invoice_html(invoice(), lines, customer=CUSTOMER)
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in html


def test_a_credit_note_says_so_and_asks_for_no_payment():
    html = render_invoice_html(credit_memo(reverses_key=INV), credit_lines(), customer=CUSTOMER)
    assert "<h1>Credit note</h1>" in html and CM in html and f"<td>{INV}</td>" in html
    assert "-240.00" in html and "-285.60" in html and "Total credit" in html and "within" not in html


def test_without_a_pdf_renderer_only_the_html_is_written(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "weasyprint", None)       # as on a machine without WeasyPrint/Pango
    assert pdf_renderer_available() is False
    out = write_invoice(invoice(), invoice_lines(), tmp_path, customer=CUSTOMER)
    assert out == {"html": tmp_path / f"{INV}.html"}
    assert "4,338.15" in out["html"].read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{INV}.html"]


def test_with_a_pdf_renderer_the_same_html_becomes_a_pdf(tmp_path):
    pytest.importorskip("weasyprint", reason="WeasyPrint (and Pango) not installed: PDF is optional")
    out = write_invoice(invoice(), invoice_lines(), tmp_path, customer=CUSTOMER)
    assert out["pdf"].read_bytes().startswith(b"%PDF")
    assert invoice_render.TEMPLATE == "invoice.html.j2"
