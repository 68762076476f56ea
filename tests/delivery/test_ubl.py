"""E-invoices: Peppol BIS 3 UBL that validates (UBL 2.1 XSD, EN 16931 rules) and adds up to the document."""

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pandas as pd
import pytest
from lxml import etree

from delivery.base import check_document
from delivery.errors import DeliveryRejected
from delivery.ubl import (
    CUSTOMIZATION_ID,
    PROFILE_ID,
    SAMPLE_SELLERS,
    UblTarget,
    gln_check_digit_ok,
    line_price,
    ubl_resources,
)
from tests.delivery.samples import CM, GLN, INV, credit_lines, credit_memo, customers, invoice, invoice_lines, line

NS = {"cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
      "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"}
IKEY = "c" * 64


def amount(tree, path) -> Decimal:
    return Decimal(tree.findtext(path, namespaces=NS))


def cents(tree, path) -> int:
    return int(amount(tree, path) * 100)


@pytest.fixture
def target(tmp_path):
    return UblTarget(tmp_path / "ubl", customers())


def test_invoice_totals_equal_the_documents_cents_and_the_file_is_schema_valid(target):
    _, xml = target.render(invoice(), invoice_lines())
    tree = etree.fromstring(xml)
    assert etree.QName(tree).localname == "Invoice"
    assert tree.findtext("cbc:InvoiceTypeCode", namespaces=NS) == "380"
    assert tree.findtext("cbc:CustomizationID", namespaces=NS) == CUSTOMIZATION_ID
    assert tree.findtext("cbc:ProfileID", namespaces=NS) == PROFILE_ID
    # net 3,645.50; VAT 19% 692.65; gross 4,338.15 (tests/delivery/samples.py)
    total = "cac:LegalMonetaryTotal/cbc:"
    assert cents(tree, total + "LineExtensionAmount") == 364_550
    assert cents(tree, total + "TaxExclusiveAmount") == 364_550
    assert cents(tree, "cac:TaxTotal/cbc:TaxAmount") == 69_265
    assert cents(tree, total + "TaxInclusiveAmount") == 433_815
    assert cents(tree, total + "PayableAmount") == 433_815
    sub = "cac:TaxTotal/cac:TaxSubtotal/"
    assert (cents(tree, sub + "cbc:TaxableAmount"), cents(tree, sub + "cbc:TaxAmount")) == (364_550, 69_265)
    assert tree.findtext(sub + "cac:TaxCategory/cbc:ID", namespaces=NS) == "S"
    assert tree.findtext(sub + "cac:TaxCategory/cbc:Percent", namespaces=NS) == "19"
    assert [cents(x, "cbc:LineExtensionAmount") for x in tree.findall("cac:InvoiceLine", NS)] == [
        90_000, 24_550, 250_000]
    assert tree.findtext("cbc:DueDate", namespaces=NS) == "2026-11-30"
    assert tree.findtext("cac:OrderReference/cbc:ID", namespaces=NS) == "PO-4711"
    assert tree.findtext("cac:PaymentTerms/cbc:Note", namespaces=NS) == "Net 30 days, due 2026-11-30"
    buyer = tree.find("cac:AccountingCustomerParty/cac:Party", NS)
    assert buyer.findtext("cbc:EndpointID", namespaces=NS) == GLN
    assert buyer.find("cbc:EndpointID", NS).get("schemeID") == "0088"
    assert buyer.findtext("cac:PartyLegalEntity/cbc:RegistrationName", namespaces=NS) == "Acme Industrie GmbH"
    seller = tree.find("cac:AccountingSupplierParty/cac:Party", NS)
    assert seller.findtext("cac:PartyTaxScheme/cbc:CompanyID", namespaces=NS) == SAMPLE_SELLERS["DE01"].vat_id
    # Checked here independently of the target: the OASIS UBL 2.1 XSD accepts the file.
    schema = etree.XMLSchema(etree.parse(str(ubl_resources() / "maindoc" / "UBL-Invoice-2.1.xsd")))
    assert schema.validate(tree), schema.error_log
    assert target.last_validation.ok and target.last_validation.fatal == []


def test_credit_note_states_the_credit_as_positive_amounts_and_refers_to_the_invoice(target):
    _, xml = target.render(credit_memo(reverses_key=INV), credit_lines())
    tree = etree.fromstring(xml)
    assert etree.QName(tree).localname == "CreditNote"
    assert tree.findtext("cbc:CreditNoteTypeCode", namespaces=NS) == "381"
    # The credit memo's -240.00 / -45.60 / -285.60 are stated as a credit of 240.00 / 45.60 / 285.60.
    assert cents(tree, "cac:LegalMonetaryTotal/cbc:LineExtensionAmount") == 24_000
    assert cents(tree, "cac:TaxTotal/cbc:TaxAmount") == 4_560
    assert cents(tree, "cac:LegalMonetaryTotal/cbc:PayableAmount") == 28_560
    ln = tree.find("cac:CreditNoteLine", NS)
    assert ln.findtext("cbc:CreditedQuantity", namespaces=NS) == "2"
    assert ln.find("cbc:CreditedQuantity", NS).get("unitCode") == "HUR"
    assert amount(ln, "cac:Price/cbc:PriceAmount") == Decimal("120.00")
    assert tree.findtext("cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID", namespaces=NS) == INV
    schema = etree.XMLSchema(etree.parse(str(ubl_resources() / "maindoc" / "UBL-CreditNote-2.1.xsd")))
    assert schema.validate(tree), schema.error_log


def test_a_peppol_customer_without_endpoint_is_refused_naming_document_and_field(tmp_path):
    target = UblTarget(tmp_path / "ubl", customers(peppol_endpoint_id=None))
    with pytest.raises(DeliveryRejected) as e:
        target.deliver(invoice(), invoice_lines(), IKEY)
    err = e.value
    assert (err.document_key, err.target, err.field, err.rule) == (INV, "ubl_peppol", "peppol_endpoint_id",
                                                                   "PEPPOL-EN16931-R010")
    assert "C1" in err.message and INV in str(err)
    assert not (tmp_path / "ubl").exists() or list((tmp_path / "ubl").iterdir()) == []


def test_a_gln_with_a_wrong_check_digit_is_refused_as_peppol_would(tmp_path):
    # 579000043597|5: body weights 3,1,3... from the right give 105 -> check digit 5; 6 is wrong.
    assert gln_check_digit_ok("5790000435975") and not gln_check_digit_ok("5790000435976")
    target = UblTarget(tmp_path / "ubl", customers(peppol_endpoint_id="0088:5790000435976"))
    with pytest.raises(DeliveryRejected) as e:
        target.render(invoice(), invoice_lines())
    assert (e.value.field, e.value.rule) == ("peppol_endpoint_id", "PEPPOL-COMMON-R040")


@pytest.mark.parametrize(("old", "new", "rule", "where"), [
    # The payable amount no longer equals the total with VAT: BR-CO-16.
    (b'<cbc:PayableAmount currencyID="EUR">4338.15<', b'<cbc:PayableAmount currencyID="EUR">4338.16<', "BR-CO-16",
     "/Invoice/LegalMonetaryTotal"),
    # One line's net changes without the total: the lines no longer sum to the total (BR-CO-10).
    (b'<cbc:LineExtensionAmount currencyID="EUR">245.50<', b'<cbc:LineExtensionAmount currencyID="EUR">245.60<',
     "BR-CO-10", "/Invoice/LegalMonetaryTotal"),
    # Total with VAT != total without VAT + VAT: BR-CO-15.
    (b'<cbc:TaxInclusiveAmount currencyID="EUR">4338.15<', b'<cbc:TaxInclusiveAmount currencyID="EUR">4348.15<',
     "BR-CO-15", "/Invoice"),
])
def test_the_en16931_rules_catch_an_arithmetic_break(target, old, new, rule, where):
    _, xml = target.render(invoice(), invoice_lines())
    assert xml.count(old) == 1
    with pytest.raises(DeliveryRejected) as e:
        target.validate(INV, xml.replace(old, new))
    assert (e.value.rule, e.value.field, e.value.document_key) == (rule, where, INV)


def test_a_schema_break_names_the_element_and_the_xsd(target):
    _, xml = target.render(invoice(), invoice_lines())
    with pytest.raises(DeliveryRejected) as e:
        target.validate(INV, xml.replace(b"<cbc:IssueDate>2026-10-31<", b"<cbc:IssueDate>2026-10-32<"))
    assert e.value.rule == "UBL-2.1-XSD"
    assert "IssueDate" in e.value.field and "2026-10-32" in e.value.message


def test_line_prices_show_the_rate_where_exact_and_never_a_negative_price():
    lines = pd.DataFrame([
        line(INV, 1, "Consultant", 7_500, 12_000, 90_000, "labor"),               # 7.5 h x 120.00 = 900.00
        line(INV, 2, "Consultant over cap", 7_500, 12_000, 50_000, "labor"),      # billed in part: 500.00
        line(INV, 3, "Manual credit", 1_000, -2_500, -2_500, "manual"),           # -25.00
        line(INV, 4, "Managed service (15/31 days)", 483, 100_000, 48_387, "recurring"),
    ])
    net = 90_000 + 50_000 - 2_500 + 48_387                                        # 185,887 -> 1,858.87
    tax = 35_319                                                                   # 1,858.87 x 19% = 353.1853
    doc = check_document(invoice(net_cents=net, tax_cents=tax, gross_cents=net + tax), lines, "ubl_peppol")
    prices = [line_price(x, 1, doc) for x in doc.lines]
    assert prices[0] == (Decimal("7.5"), "HUR", Decimal("120.00"), None)
    # 7.5 x 120.00 = 900.00 is 400.00 off the 500.00 billed: the price of the 7.5 h is 500.00.
    assert prices[1] == (Decimal("7.5"), "HUR", Decimal("500.00"), Decimal("7.5"))
    assert prices[2] == (Decimal("-1"), "C62", Decimal("25.00"), None)
    assert prices[3] == (Decimal("0.483"), "MON", Decimal("483.87"), Decimal("0.483"))
    for (qty, _, price, base), x in zip(prices, doc.lines, strict=True):       # Peppol R120, within 0.02
        assert abs(qty * price / (base or 1) - Decimal(x.amount_cents) / 100) <= Decimal("0.02")


def test_a_zero_rated_document_validates_with_category_z(tmp_path):
    key = "INV-2026-10-C1-K1-USD"
    target = UblTarget(tmp_path / "ubl", customers(tax_country="US"))
    _, xml = target.render(invoice(document_key=key, currency="USD", business_unit="US01", tax_rate_bp=0,
                                   tax_cents=0, gross_cents=364_550), invoice_lines(key))
    tree = etree.fromstring(xml)
    assert tree.findtext("cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory/cbc:ID", namespaces=NS) == "Z"
    assert cents(tree, "cac:LegalMonetaryTotal/cbc:PayableAmount") == 364_550
    assert tree.findtext("cac:PaymentMeans/cbc:PaymentMeansCode", namespaces=NS) == "30"   # not SEPA


def test_other_channels_and_cost_transfers_are_skipped(target, tmp_path):
    assert target.deliver(invoice(delivery_channel="email"), invoice_lines(), IKEY) == "skipped: channel email"
    assert target.deliver(invoice(document_type="cost_transfer"), invoice_lines(), IKEY) == (
        "skipped: cost_transfer is not sent to a customer-facing target")
    assert not (tmp_path / "ubl").exists()


def test_delivery_writes_once_atomically_and_a_repeat_is_a_no_op(target, tmp_path):
    ref = target.deliver(invoice(), invoice_lines(), IKEY)
    xml_path = tmp_path / "ubl" / f"{INV}.xml"
    assert ref == str(xml_path)
    first = xml_path.read_bytes()
    receipt = json.loads((tmp_path / "ubl" / f"{INV}.receipt.json").read_text())
    assert receipt["idempotency_key"] == IKEY
    assert receipt["sha256"] == hashlib.sha256(first).hexdigest()
    assert target.deliver(invoice(), invoice_lines(), IKEY) == ref
    assert xml_path.read_bytes() == first
    assert sorted(p.name for p in (tmp_path / "ubl").iterdir()) == [f"{INV}.receipt.json", f"{INV}.xml"]
    with pytest.raises(DeliveryRejected) as e:
        target.deliver(invoice(), invoice_lines(), "d" * 64)
    assert e.value.field == "document_key"


def test_a_file_written_before_a_crash_but_never_receipted_is_replaced(target, tmp_path):
    (tmp_path / "ubl").mkdir()
    (tmp_path / "ubl" / f"{INV}.xml").write_bytes(b"<half")
    target.deliver(invoice(), invoice_lines(), IKEY)
    assert etree.fromstring((tmp_path / "ubl" / f"{INV}.xml").read_bytes()) is not None


def test_validation_runs_from_worker_threads(target):
    docs = [(invoice(), invoice_lines()), (credit_memo(), credit_lines())] * 2
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda d: target.render(*d)[1], docs))
    assert [etree.QName(etree.fromstring(x)).localname for x in results] == ["Invoice", "CreditNote"] * 2
    assert target.validator.validate(results[1]).ok and CM.encode() in results[1]
