"""Billing inquiries: inbound e-mails parsed, categorised by rules a billing team edits, and planned.

Pure: an ``.eml`` file's bytes in (read with the standard library's ``email`` package), decisions out.
Reading the folder or mailbox, sending replies and writing the store are the flow's tasks.

Categories and their actions (``inquiry_rules.yaml`` maps categories to owners and holds the rules):

| category | action |
|---|---|
| invoice_copy_request | send the invoices named back from the archive, as a reply |
| remittance_advice | a hint for cash application: customer, invoices and amount paid |
| dispute | open a dispute on the invoices named (collections pauses dunning) and acknowledge it |
| balance_inquiry, forward_to_sales, other | queue with the category's owner |

Invoices are recognised the way cash application recognises them: tokens of the text normalised to
letters and digits and looked up among the known transaction numbers. The customer is the one whose
billing e-mail sent the message, else the one whose invoices it names.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path

import pandas as pd
import yaml

from receivables.cash_application import tokens_in

RULES_PATH = Path(__file__).resolve().parent / "inquiry_rules.yaml"
ACTIONS = ("send_invoice_copy", "cash_hint", "open_dispute", "queue")
CONDITIONS = ("subject", "body", "subject_or_body", "sender", "attachment_name")


class InquiryError(ValueError):
    """An inquiry file or rule file that cannot be used; names the file, the rule or header and the field."""


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Inquiry:
    """One inbound message."""

    inquiry_key: str             # Message-ID, else a digest of the bytes (so the same file is one inquiry)
    message_id: str | None
    sender: str                  # address, lower case
    sender_name: str
    subject: str
    received: pd.Timestamp | None
    body: str
    attachments: tuple[Attachment, ...] = ()
    origin: str = ""

    @property
    def text(self) -> str:
        extra = " ".join(a.data.decode("utf-8", "replace") for a in self.attachments
                         if a.content_type.startswith("text/"))
        return f"{self.subject}\n{self.body}\n{extra}"


@dataclass(frozen=True)
class Rule:
    category: str
    conditions: Mapping[str, tuple[re.Pattern, ...]]
    position: int

    def matches(self, inquiry: Inquiry) -> str | None:
        """The first pattern of each condition that matched ('condition: pattern'), or None."""
        found = []
        for cond, patterns in self.conditions.items():
            texts = {"subject": [inquiry.subject], "body": [inquiry.text[len(inquiry.subject) + 1:]],
                     "subject_or_body": [inquiry.text], "sender": [inquiry.sender],
                     "attachment_name": [a.filename for a in inquiry.attachments]}[cond]
            hit = next((p.pattern for p in patterns for t in texts if p.search(t)), None)
            if hit is None:
                return None
            found.append(f"{cond}: {hit}")
        return "; ".join(found)


@dataclass(frozen=True)
class InquiryRules:
    categories: Mapping[str, Mapping[str, str]]
    rules: tuple[Rule, ...]
    default: str

    def classify(self, inquiry: Inquiry) -> tuple[str, str]:
        """(category, why): the first rule that matches, or the default category."""
        for rule in self.rules:
            why = rule.matches(inquiry)
            if why is not None:
                return rule.category, f"rule {rule.position} ({why})"
        return self.default, "no rule matched"

    def owner(self, category: str) -> str:
        return self.categories[category]["owner"]

    def action(self, category: str) -> str:
        return self.categories[category]["action"]


def load_rules(path: Path | str = RULES_PATH, text: str | None = None) -> InquiryRules:
    """Read and check the rule file; errors name the file, the rule and the field."""
    origin = str(path)
    try:
        doc = yaml.safe_load(text if text is not None else Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InquiryError(f"{origin}: not valid YAML ({exc})") from None
    if not isinstance(doc, dict) or "categories" not in doc or "rules" not in doc:
        raise InquiryError(f"{origin}: needs 'categories' and 'rules'")
    cats = doc["categories"]
    for name, spec in cats.items():
        if not isinstance(spec, dict) or spec.get("action") not in ACTIONS:
            raise InquiryError(f"{origin}: category {name}: field action: must be one of {', '.join(ACTIONS)}")
        if not str(spec.get("owner") or "").strip():
            raise InquiryError(f"{origin}: category {name}: field owner: every category needs an owner")
    default = doc.get("default", "other")
    if default not in cats:
        raise InquiryError(f"{origin}: field default: {default!r} is not a category")
    rules = []
    for pos, r in enumerate(doc["rules"] or [], start=1):
        if not isinstance(r, dict) or r.get("category") not in cats:
            got = r.get("category") if isinstance(r, dict) else r
            raise InquiryError(f"{origin}: rule {pos}: field category: {got!r} is not a category")
        conds = {}
        for key, patterns in r.items():
            if key == "category":
                continue
            if key not in CONDITIONS:
                raise InquiryError(f"{origin}: rule {pos}: field {key}: unknown condition "
                                   f"(use {', '.join(CONDITIONS)})")
            if isinstance(patterns, str):
                patterns = [patterns]
            compiled = []
            for p in patterns:
                try:
                    compiled.append(re.compile(str(p), re.IGNORECASE | re.DOTALL))
                except re.error as exc:
                    raise InquiryError(f"{origin}: rule {pos}: field {key}: pattern {p!r} is not a valid regular "
                                       f"expression ({exc})") from None
            conds[key] = tuple(compiled)
        if not conds:
            raise InquiryError(f"{origin}: rule {pos}: has no condition")
        rules.append(Rule(r["category"], conds, pos))
    return InquiryRules(cats, tuple(rules), default)


# --- .eml ----------------------------------------------------------------------------------------------------
def parse_eml(data: bytes, origin: str) -> Inquiry:
    """An RFC 5322 message (an .eml file) as an Inquiry; errors name the file and the header."""
    if not data or not data.strip():
        raise InquiryError(f"{origin}: the file is empty")
    msg = BytesParser(policy=policy.default).parsebytes(data)
    if not msg.keys():
        raise InquiryError(f"{origin}: not an e-mail message (no headers)")
    try:
        senders = getaddresses([str(msg.get("From", ""))])
    except (TypeError, ValueError, IndexError):  # a malformed header is a data error of this file
        senders = []
    sender_name, sender = (senders[0] if senders else ("", ""))
    if not sender or "@" not in sender:
        raise InquiryError(f"{origin}: header From: {msg.get('From')!r} has no e-mail address")
    message_id = (str(msg.get("Message-ID") or "").strip() or None)
    received = None
    if msg.get("Date"):
        try:
            received = pd.Timestamp(parsedate_to_datetime(str(msg["Date"])))
        except (TypeError, ValueError):
            raise InquiryError(f"{origin}: header Date: {msg['Date']!r} is not an RFC 5322 date") from None
    body_part = msg.get_body(preferencelist=("plain", "html"))
    body = ""
    if body_part is not None:
        body = body_part.get_content()
        if body_part.get_content_type() == "text/html":
            body = re.sub(r"<[^>]+>", " ", body)
    attachments = tuple(Attachment(a.get_filename() or "attachment", a.get_content_type(),
                                   a.get_payload(decode=True) or b"") for a in msg.iter_attachments())
    key = message_id or "sha256:" + hashlib.sha256(data).hexdigest()[:32]
    return Inquiry(inquiry_key=key, message_id=message_id, sender=sender.lower(), sender_name=sender_name,
                   subject=str(msg.get("Subject") or "").strip(), received=received, body=body.strip(),
                   attachments=attachments, origin=origin)


# --- understanding -----------------------------------------------------------------------------------------------
_AMOUNT = re.compile(r"(?:(?P<c1>EUR|USD|GBP|BGN|€|£|\$)\s?(?P<a1>\d[\d.,' ]*\d|\d))|"
                     r"(?:(?P<a2>\d[\d.,' ]*\d|\d)\s?(?P<c2>EUR|USD|GBP|BGN|€|£))", re.IGNORECASE)
_SYMBOL = {"€": "EUR", "£": "GBP", "$": "USD"}


def parse_amount(text: str) -> int | None:
    """'1,234.56', '1.234,56', "1'234.56" or '1234' to cents; None when it is not an amount."""
    t = text.strip().replace("'", "").replace(" ", "")
    if "," in t and "." in t:
        decimal_sep = "," if t.rfind(",") > t.rfind(".") else "."
    elif "," in t:
        decimal_sep = "," if re.search(r",\d{1,2}$", t) else None
    elif "." in t:
        decimal_sep = "." if re.search(r"\.\d{1,2}$", t) else None
    else:
        decimal_sep = None
    if decimal_sep:
        whole, frac = t.rsplit(decimal_sep, 1)
        whole = re.sub(r"[.,]", "", whole)
        t = f"{whole}.{frac}"
    else:
        t = re.sub(r"[.,]", "", t)
    try:
        d = Decimal(t)
    except InvalidOperation:
        return None
    cents = d * 100
    return int(cents) if cents == cents.to_integral_value() else None


def amounts_in(text: str) -> list[tuple[str, int, int]]:
    """(currency, cents, position) of every amount written with its currency."""
    out = []
    for m in _AMOUNT.finditer(text):
        cur = (m.group("c1") or m.group("c2")).upper()
        cents = parse_amount(m.group("a1") or m.group("a2"))
        if cents is not None:
            out.append((_SYMBOL.get(cur, cur), cents, m.start()))
    return out


@dataclass(frozen=True)
class InquiryContext:
    """What the planner knows: customers (id, billing e-mail) and open items (trx numbers and amounts)."""

    customers: pd.DataFrame          # customer_id, billing_email
    open_items: pd.DataFrame         # OPEN_ITEMS
    trx_by_key: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, customers: pd.DataFrame, open_items: pd.DataFrame,
              documents: Sequence[str] = ()) -> InquiryContext:
        from receivables.cash_application import normalise_reference

        keys = {normalise_reference(t): t for t in open_items["trx_number"].astype(str)}
        keys.update({normalise_reference(t): t for t in documents})
        return cls(customers, open_items, keys)


INQUIRY_LOG_COLUMNS = ["inquiry_key", "message_id", "origin", "received", "sender", "subject", "category", "why",
                       "action", "owner", "customer_id", "trx_numbers", "currency", "amount_cents", "status", "detail"]


def plan_inquiry(inquiry: Inquiry, rules: InquiryRules, ctx: InquiryContext) -> dict:
    """What to do with one inquiry: a row of the inquiry log (status 'planned' until the flow acts)."""
    category, why = rules.classify(inquiry)
    action = rules.action(category)
    trx = [ctx.trx_by_key[k] for k in tokens_in(inquiry.text) if k in ctx.trx_by_key]
    trx = list(dict.fromkeys(trx))
    items = ctx.open_items[ctx.open_items["trx_number"].isin(trx)]
    customer = _customer_of(inquiry.sender, ctx.customers)
    if customer is None and items["customer_id"].nunique() == 1:
        customer = str(items["customer_id"].iloc[0])
    if customer is not None and len(items):
        items = items[items["customer_id"] == customer]
        trx = [t for t in trx if t in set(items["trx_number"])] or trx
    currency, amount, detail = None, None, ""
    found = amounts_in(inquiry.text)
    if action in ("cash_hint", "open_dispute"):
        currency, amount = _amount_for(inquiry.text, found, items)
    if action == "send_invoice_copy" and not trx:
        action, detail = "queue", "no invoice number recognised: queued for a person"
    if action == "open_dispute" and (customer is None or not trx):
        action, detail = "queue", "dispute without a recognised customer invoice: queued for a person"
    if action == "cash_hint" and (customer is None or amount is None):
        action, detail = "queue", "remittance advice without customer or amount: queued for a person"
    return {"inquiry_key": inquiry.inquiry_key, "message_id": inquiry.message_id, "origin": inquiry.origin,
            "received": inquiry.received, "sender": inquiry.sender, "subject": inquiry.subject,
            "category": category, "why": why, "action": action, "owner": rules.owner(category),
            "customer_id": customer, "trx_numbers": " ".join(trx), "currency": currency, "amount_cents": amount,
            "status": "planned", "detail": detail}


def _customer_of(sender: str, customers: pd.DataFrame) -> str | None:
    emails = customers["billing_email"].astype("string").str.lower()
    exact = customers.loc[(emails == sender).fillna(False).to_numpy(dtype=bool), "customer_id"]
    if len(exact) == 1:
        return str(exact.iloc[0])
    domain = sender.rsplit("@", 1)[-1]
    by_domain = customers.loc[(emails.str.rsplit("@", n=1).str[-1] == domain).fillna(False).to_numpy(dtype=bool),
                              "customer_id"]
    return str(by_domain.iloc[0]) if by_domain.nunique() == 1 else None


def _amount_for(text: str, found: list[tuple[str, int, int]], items: pd.DataFrame) -> tuple[str | None, int | None]:
    """The amount paid or disputed: the one on a 'total' line, else the only one, else the items' balance."""
    lower = text.lower()
    totals = [f for f in found if "total" in lower[max(0, f[2] - 40):f[2]]]
    if totals:
        return totals[-1][0], totals[-1][1]
    distinct = {(c, a) for c, a, _ in found}
    if len(distinct) == 1:
        return next(iter(distinct))
    if len(items) and items["currency"].nunique() == 1:
        return str(items["currency"].iloc[0]), int(items["amount_due_remaining_cents"].sum())
    return None, None


def remittance_hints(log: pd.DataFrame) -> pd.DataFrame:
    """Cash-application hints (customer_id, currency, amount_cents, trx_numbers) from planned advices."""
    h = log[log["action"] == "cash_hint"]
    return pd.DataFrame({"hint_id": h["inquiry_key"].astype(str), "customer_id": h["customer_id"].astype(str),
                         "currency": h["currency"].astype(str), "amount_cents": h["amount_cents"].astype("int64"),
                         "trx_numbers": h["trx_numbers"].astype(str)})


# --- replies -------------------------------------------------------------------------------------------------------
def reply_key(inquiry_key: str, kind: str) -> str:
    """One reply of each kind per inquiry: the key the store records before sending."""
    return hashlib.sha256(f"{inquiry_key}|{kind}".encode()).hexdigest()[:40]


def build_reply(inquiry: Inquiry, kind: str, sender: str, body: str,
                attachments: Sequence[tuple[str, str, bytes]] = (), domain: str = "billing.example") -> EmailMessage:
    """A reply threaded to the inquiry, with a Message-ID fixed by (inquiry, kind) so a resend is recognisable."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = inquiry.sender
    subject = inquiry.subject or "your message"
    msg["Subject"] = subject if subject.lower().startswith("re:") else f"Re: {subject}"
    msg["Message-ID"] = f"<reply-{reply_key(inquiry.inquiry_key, kind)[:32]}@{domain}>"
    if inquiry.message_id:
        msg["In-Reply-To"] = inquiry.message_id
        msg["References"] = inquiry.message_id
    msg["X-Billing-Reply-Key"] = reply_key(inquiry.inquiry_key, kind)
    msg.set_content(body)
    for filename, content_type, data in attachments:
        maintype, subtype = content_type.split("/", 1)
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg


def reply_text(kind: str, plan: Mapping, extra: str = "") -> str:
    """The words of a reply (kept plain: the billing team reads them in the store's log)."""
    trx = plan.get("trx_numbers") or ""
    if kind == "invoice_copy":
        return (f"Dear customer,\n\nplease find attached the copy of {trx} you asked for.\n\n"
                f"{extra}Kind regards,\nBilling team\n")
    if kind == "dispute_ack":
        return (f"Dear customer,\n\nwe have registered your dispute on {trx} ({extra}). Reminders for the disputed "
                "amount are paused while we review it; the undisputed balance remains due.\n\n"
                "Kind regards,\nCollections\n")
    raise InquiryError(f"unknown reply kind {kind!r}")
