"""Letters and statements of account: HTML from the Jinja2 templates in receivables/templates, the email.

Rendering is deterministic (the as-of date is the only date printed, nothing reads the clock), so the
same letter renders to the same bytes on a re-run and its content hash identifies it. PDF is made only
where a renderer imports (weasyprint); otherwise letters and statements travel as HTML.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from email.message import EmailMessage
from email.utils import formataddr
from pathlib import Path

import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from billing.money import format_cents
from receivables.aging import BUCKET_COLUMNS, BUCKETS, age_items, aging

TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class Sender:
    name: str = "Billing Cycle Sample Co."
    address: str = "1 Vitosha Blvd, 1000 Sofia, Bulgaria"
    email: str = "collections@billing-cycle.example"
    bank: str = "IBAN BG80 BNBG 9661 1020 3456 78"


def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html", "j2"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["money"] = lambda cents: format_cents(int(cents)) if cents is not None and not pd.isna(cents) else ""
    return env


_ENV = _env()


def _day(v) -> str:
    return "" if v is None or pd.isna(v) else str(pd.Timestamp(v).date())


def _records(df: pd.DataFrame, dates: tuple[str, ...]) -> list[dict]:
    out = df.copy()
    for c in dates:
        if c in out:
            out[c] = out[c].map(_day)
    return out.to_dict("records")


def letter_totals(letter_items: pd.DataFrame, fees: dict[str, int], interest: pd.DataFrame) -> list[dict]:
    rows = []
    for cur in sorted(set(letter_items["currency"]) | set(fees)):
        mine = interest[interest["currency"] == cur] if len(interest) else interest
        rows.append({"currency": cur,
                     "overdue_cents": int(letter_items.loc[letter_items["currency"] == cur, "overdue_cents"].sum()),
                     "fee_cents": int(fees.get(cur, 0)),
                     "interest_cents": int(mine["interest_cents"].sum()) if len(mine) else 0,
                     "compensation_cents": int(mine["compensation_cents"].sum()) if len(mine) else 0})
    return rows


def render_letter(level, letter_items: pd.DataFrame, account: dict, fees: dict[str, int], interest: pd.DataFrame,
                  as_of, sender: Sender, reference: str, margin_bp: int = 800) -> str:
    """A dunning letter (any level) for one customer; `letter_items` are its ladder rows."""
    items = letter_items.sort_values(["due_date", "trx_number"])
    return _ENV.get_template("letter.html.j2").render(
        level=level, customer=account, sender=asdict(sender), as_of=_day(as_of), reference=reference,
        items=_records(items[["trx_number", "due_date", "days_past_due", "overdue_cents", "currency"]],
                       ("due_date",)),
        totals=letter_totals(items, fees, interest), has_interest=bool(len(interest)),
        margin_pct=f"{margin_bp / 100:g}", disputed_excluded=bool((letter_items["disputed_cents"] > 0).any()),
        pay_within_days=7)


def render_statement(open_items: pd.DataFrame, account: dict, interest: pd.DataFrame, as_of, sender: Sender,
                     reference: str) -> str:
    """A statement of account: every open item of the customer, its aging and the late-payment charges."""
    aged = age_items(open_items, as_of).sort_values(["currency", "due_date", "trx_number", "installment"])
    return _ENV.get_template("statement.html.j2").render(
        customer=account, sender=asdict(sender), as_of=_day(as_of), reference=reference,
        items=_records(aged, ("trx_date", "due_date")), buckets=BUCKETS, bucket_columns=BUCKET_COLUMNS,
        aging=aging(open_items, as_of).to_dict("records"),
        interest=_records(interest, ("due_date",)) if len(interest) else [])


def render_email_text(kind: str, account: dict, as_of, sender: Sender, reference: str, level=None,
                      totals: list[dict] | None = None) -> str:
    return _ENV.get_template("email.txt.j2").render(kind=kind, customer=account, as_of=_day(as_of),
                                                    sender=asdict(sender), reference=reference, level=level,
                                                    totals=totals or [])


def content_hash(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        b = p.encode() if isinstance(p, str) else p
        h.update(len(b).to_bytes(8, "big"))
        h.update(b)
    return h.hexdigest()


def pdf_bytes(html: str) -> bytes | None:
    """PDF of `html` where weasyprint imports (it needs Pango); None otherwise."""
    try:
        from weasyprint import HTML  # type: ignore[import-not-found]
    except Exception:
        return None
    return HTML(string=html).write_pdf()


def build_email(sender: Sender, recipient: str, subject: str, text: str, html: str | None,
                attachments: list[tuple[str, bytes, str]], message_id: str) -> EmailMessage:
    """A MIME message: text, optional HTML alternative, attachments (filename, bytes, 'type/subtype')."""
    msg = EmailMessage()
    msg["From"] = formataddr((f"{sender.name} Collections", sender.email))
    msg["To"] = recipient
    msg["Subject"] = subject
    # A stable id derived from the letter key lets the receiving side spot a duplicate.
    msg["Message-ID"] = f"<{message_id}@{sender.email.split('@')[-1]}>"
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for filename, data, mime in attachments:
        maintype, subtype = mime.split("/", 1)
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg
