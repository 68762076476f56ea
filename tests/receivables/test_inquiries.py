"""Inbound billing e-mails: each category from the shipped rules, what is planned, replies, and bad input."""

from email.message import EmailMessage

import pandas as pd
import pytest

from receivables.inquiries import (
    InquiryContext,
    InquiryError,
    build_reply,
    load_rules,
    parse_amount,
    parse_eml,
    plan_inquiry,
    remittance_hints,
    reply_key,
)

RULES = load_rules()
CUSTOMERS = pd.DataFrame({"customer_id": ["C1", "C2"], "billing_email": ["ap@acme.example", "AP@borealis.example"]})
ITEMS = pd.DataFrame({"payment_schedule_id": ["P1", "P2", "P3"], "trx_number": ["INV-1001", "INV-1002", "INV-2001"],
                      "customer_id": ["C1", "C1", "C2"], "currency": ["EUR", "EUR", "EUR"],
                      "amount_due_remaining_cents": [100000, 250000, 50000]})
CTX = InquiryContext.build(CUSTOMERS, ITEMS)


def eml(subject, body, sender="Accounts Payable <ap@acme.example>", msgid="<m1@acme.example>", html=False,
        attachment=None) -> bytes:
    m = EmailMessage()
    m["From"] = sender
    m["To"] = "billing@ourco.example"
    m["Subject"] = subject
    m["Date"] = "Tue, 20 Oct 2026 09:30:00 +0200"
    if msgid:
        m["Message-ID"] = msgid
    if html:
        m.set_content(body, subtype="html")
    else:
        m.set_content(body)
    if attachment:
        name, ctype, data = attachment
        maintype, subtype = ctype.split("/")
        m.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return bytes(m)


def plan(data: bytes) -> dict:
    return plan_inquiry(parse_eml(data, "in/x.eml"), RULES, CTX)


def test_invoice_copy_request_names_the_invoice_and_the_customer():
    p = plan(eml("Copy of invoice INV-1001 please", "Could you resend invoice INV-1001? We cannot find it."))
    assert (p["category"], p["action"], p["owner"]) == ("invoice_copy_request", "send_invoice_copy", "Billing team")
    assert p["customer_id"] == "C1" and p["trx_numbers"] == "INV-1001"
    assert p["why"].startswith("rule 3 (subject_or_body:")


def test_remittance_advice_becomes_a_cash_hint_with_the_total():
    body = "We have paid the following invoices:\nINV-1001 EUR 1,000.00\nINV-1002 EUR 2.500,00\nTotal: EUR 3,500.00"
    p = plan(eml("Payment advice", body))
    assert (p["category"], p["action"]) == ("remittance_advice", "cash_hint")
    assert (p["currency"], p["amount_cents"], p["trx_numbers"]) == ("EUR", 350000, "INV-1001 INV-1002")
    hints = remittance_hints(pd.DataFrame([p]))
    assert hints[["customer_id", "currency", "amount_cents", "trx_numbers"]].values.tolist() == [
        ["C1", "EUR", 350000, "INV-1001 INV-1002"]]


def test_remittance_advice_in_an_attachment_of_an_html_message():
    p = plan(eml("Remittance", "<p>Please see the <b>remittance</b> attached.</p>", html=True,
                 attachment=("remittance.csv", "text/csv", b"invoice,amount\nINV-1002,2500.00\n")))
    # No amount with a currency: the invoice's open balance is taken.
    assert (p["action"], p["trx_numbers"], p["amount_cents"]) == ("cash_hint", "INV-1002", 250000)


def test_dispute_opens_a_dispute_for_the_amount_named():
    p = plan(eml("Dispute INV-2001", "The hours on INV-2001 are wrong: we dispute EUR 200.00 of it.",
                 sender="ap@borealis.example"))
    assert (p["category"], p["action"], p["owner"]) == ("dispute", "open_dispute", "Maria Ivanova")
    assert (p["customer_id"], p["trx_numbers"], p["amount_cents"]) == ("C2", "INV-2001", 20000)


def test_balance_inquiry_sales_and_other_go_to_a_queue_with_an_owner():
    balance = plan(eml("Account", "What is our current balance with you?"))
    sales = plan(eml("Quote", "Please send a quotation for a new project in Sofia."))
    other = plan(eml("Hello", "Our office moves next month."))
    assert [(x["category"], x["action"], x["owner"]) for x in (balance, sales, other)] == [
        ("balance_inquiry", "queue", "Billing team"), ("forward_to_sales", "queue", "Sales operations"),
        ("other", "queue", "Billing team")]
    assert other["why"] == "no rule matched"


def test_without_a_recognisable_invoice_a_copy_request_waits_for_a_person():
    p = plan(eml("Invoice copy", "Please send me a copy of the invoice from last month."))
    assert (p["category"], p["action"]) == ("invoice_copy_request", "queue")
    assert "no invoice number recognised" in p["detail"]


def test_rules_are_first_match_and_editable():
    text = """
categories:
  dispute: {action: open_dispute, owner: Collections}
  other: {action: queue, owner: Billing}
default: other
rules:
  - category: dispute
    subject: ['complaint']
    sender: ['@borealis\\.example$']
"""
    rules = load_rules("custom.yaml", text=text)
    both = parse_eml(eml("Complaint", "x", sender="ap@borealis.example"), "a.eml")
    wrong_sender = parse_eml(eml("Complaint", "x"), "b.eml")
    assert rules.classify(both)[0] == "dispute" and rules.classify(wrong_sender)[0] == "other"


@pytest.mark.parametrize("text, message", [
    ("categories: {x: {action: fly, owner: a}}\nrules: []", "category x: field action: must be one of"),
    ("categories: {x: {action: queue}}\nrules: []\ndefault: x", "category x: field owner"),
    ("categories: {x: {action: queue, owner: a}}\ndefault: x\nrules: [{category: y, subject: a}]",
     "rule 1: field category: 'y' is not a category"),
    ("categories: {x: {action: queue, owner: a}}\ndefault: x\nrules: [{category: x, subjekt: a}]",
     "rule 1: field subjekt: unknown condition"),
    ("categories: {x: {action: queue, owner: a}}\ndefault: x\nrules: [{category: x, subject: '(['}]",
     "rule 1: field subject: pattern '([' is not a valid regular expression"),
])
def test_a_broken_rule_file_names_the_rule_and_field(text, message):
    with pytest.raises(InquiryError) as err:
        load_rules("rules.yaml", text=text)
    assert message in str(err.value) and "rules.yaml" in str(err.value)


@pytest.mark.parametrize("data, message", [
    (b"", "x.eml: the file is empty"),
    (b"Subject: hi\n\nno sender", "x.eml: header From: None has no e-mail address"),
    (b"From: a@b.example\nDate: yesterday\n\nhi", "x.eml: header Date: 'yesterday' is not an RFC 5322 date"),
])
def test_bad_messages_name_the_file_and_header(data, message):
    with pytest.raises(InquiryError) as err:
        parse_eml(data, "x.eml")
    assert message in str(err.value)


def test_a_message_without_message_id_is_keyed_by_its_content():
    a = parse_eml(eml("Hello", "x", msgid=None), "a.eml")
    b = parse_eml(eml("Hello", "x", msgid=None), "b.eml")
    assert a.inquiry_key == b.inquiry_key and a.inquiry_key.startswith("sha256:")


def test_reply_is_threaded_and_keyed_so_a_resend_is_recognisable():
    inq = parse_eml(eml("Copy of invoice INV-1001", "resend invoice INV-1001"), "x.eml")
    r1 = build_reply(inq, "invoice_copy", "billing@ourco.example", "see attached",
                     [("INV-1001.json", "application/json", b"{}")])
    r2 = build_reply(inq, "invoice_copy", "billing@ourco.example", "see attached")
    assert r1["To"] == "ap@acme.example" and r1["Subject"] == "Re: Copy of invoice INV-1001"
    assert r1["In-Reply-To"] == "<m1@acme.example>"
    assert r1["Message-ID"] == r2["Message-ID"] == f"<reply-{reply_key('<m1@acme.example>', 'invoice_copy')[:32]}" \
                                                    "@billing.example>"
    assert [a.get_filename() for a in r1.iter_attachments()] == ["INV-1001.json"]


@pytest.mark.parametrize("text, cents", [("1,234.56", 123456), ("1.234,56", 123456), ("1'234.5", 123450),
                                         ("200", 20000), ("2.500", 250000), ("12,5", 1250)])
def test_amounts_written_the_usual_ways(text, cents):
    assert parse_amount(text) == cents
