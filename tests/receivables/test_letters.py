"""Letters and statements: rendered from the templates, deterministic, with the statement attached."""

import email

import pandas as pd

from receivables import letters as lt
from receivables.dunning import evaluate_ladder, load_policy
from tests.receivables.builders import history, item, items

POLICY = load_policy()
AS_OF = pd.Timestamp("2026-11-05")
ACCOUNT = {"customer_id": "C1", "customer_name": "Acme <Foods> Ltd", "billing_email": "ap@acme.example"}
INTEREST = pd.DataFrame({"payment_schedule_id": ["A"], "trx_number": ["INV-1"], "customer_id": ["C1"],
                         "currency": ["EUR"], "due_date": [pd.Timestamp("2026-09-20")], "late_days": [46],
                         "interest_cents": [12_79], "compensation_cents": [40_00]})


def _final_notice():
    df = items(item("A", "2026-09-20", 1_000_00, trx="INV-1"), item("B", "2026-10-25", 250_50, trx="INV-2"))
    lad = evaluate_ladder(df, AS_OF, POLICY, history=history(("A", 2, "2026-10-20")))
    return df, lad


def test_the_letter_lists_items_totals_fee_and_the_charges_apart_from_principal():
    _, lad = _final_notice()
    html = lt.render_letter(POLICY.level(3), lad, ACCOUNT, {"EUR": 10_00}, INTEREST, AS_OF, lt.Sender(), "letter:C1")
    assert "<h1>Final notice</h1>" in html and "Acme &lt;Foods&gt; Ltd" in html   # autoescaped
    assert "INV-1" in html and "INV-2" in html and "2026-11-05" in html
    # Principal 1,000.00 + 250.50 = 1,250.50; fee 10.00; interest 12.79 and compensation 40.00 shown apart.
    assert ">1,250.50<" in html and ">10.00<" in html and ">12.79<" in html and ">40.00<" in html
    assert "paying the principal does not settle them" in html


def test_rendering_is_deterministic_so_the_content_hash_identifies_the_letter():
    df, _ = _final_notice()
    one = lt.render_statement(df, ACCOUNT, INTEREST, AS_OF, lt.Sender(), "statement:C1")
    two = lt.render_statement(df, ACCOUNT, INTEREST, AS_OF, lt.Sender(), "statement:C1")
    assert one == two and lt.content_hash(one) == lt.content_hash(two)
    assert lt.content_hash("a", "bc") != lt.content_hash("ab", "c")
    assert ">1,250.50<" in one  # aging total


def test_the_email_carries_text_html_and_the_statement():
    msg = lt.build_email(lt.Sender(), "ap@acme.example", "Final notice", "text", "<p>letter</p>",
                         [("statement.html", b"<p>statement</p>", "text/html")], "letter.C1.2026-11-05")
    parsed = email.message_from_bytes(bytes(msg))
    assert parsed["Message-ID"] == "<letter.C1.2026-11-05@billing-cycle.example>"
    parts = [(p.get_content_type(), p.get_filename()) for p in parsed.walk() if not p.is_multipart()]
    assert parts == [("text/plain", None), ("text/html", None), ("text/html", "statement.html")]


def test_pdf_only_where_a_renderer_imports():
    try:
        import weasyprint  # noqa: F401
    except Exception:
        assert lt.pdf_bytes("<p>x</p>") is None
    else:
        assert lt.pdf_bytes("<p>x</p>").startswith(b"%PDF")
