"""AR interface: RA_INTERFACE_LINES_ALL rows equal the document to the cent, once, on SQLite and PostgreSQL."""

from datetime import date
from decimal import Decimal

import pandas as pd
import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.dialects import oracle
from sqlalchemy.schema import CreateTable

from delivery.ar_interface import ArInterfaceSettings, ArInterfaceTarget, line_taxes
from delivery.base import check_document
from delivery.errors import DeliveryRejected
from tests.delivery.samples import CM, INV, credit_lines, credit_memo, invoice, invoice_lines, line

IKEY = "a" * 64


def count(target) -> int:
    with target.engine.connect() as c:
        return c.execute(select(func.count()).select_from(target.table)).scalar()


def test_interface_rows_equal_the_invoice_lines_to_the_cent(db_engine):
    target = ArInterfaceTarget(db_engine)
    ref = target.deliver(invoice(), invoice_lines(), IKEY)
    assert ref == f"RA_INTERFACE_LINES_ALL:BILLING_CYCLE:{INV}"
    rows = target.read_back(INV).sort_values(["LINE_TYPE", "INTERFACE_LINE_ATTRIBUTE2"]).reset_index(drop=True)
    line_rows = rows[rows["LINE_TYPE"] == "LINE"]
    assert list(line_rows["AMOUNT"]) == [Decimal("900.00"), Decimal("245.50"), Decimal("2500.00")]
    assert sum(line_rows["AMOUNT"]) == Decimal("3645.50")            # the invoice's net
    assert list(line_rows["QUANTITY"]) == [Decimal("7.5"), Decimal("1"), Decimal("1")]
    assert line_rows["UNIT_SELLING_PRICE"].iloc[0] == Decimal("120.00")
    assert line_rows["UNIT_SELLING_PRICE"].iloc[1] is None            # travel has no unit price
    assert list(line_rows["DESCRIPTION"]) == ["Senior consultant", "Travel Berlin-Munich",
                                              "Advisory fixed fee, installment 2 of 4"]
    # Tax per line: 900.00 x 19% = 171.00; 245.50 x 19% = 46.645 -> 46.65; 2500 x 19% = 475.00;
    # 171.00 + 46.65 + 475.00 = 692.65 = the invoice's tax.
    tax_rows = rows[rows["LINE_TYPE"] == "TAX"]
    assert list(tax_rows["AMOUNT"]) == [Decimal("171.00"), Decimal("46.65"), Decimal("475.00")]
    assert list(tax_rows["LINK_TO_LINE_ATTRIBUTE2"]) == ["1", "2", "3"]
    assert set(tax_rows["LINK_TO_LINE_ATTRIBUTE3"]) == {"LINE"} and set(tax_rows["TAX_RATE"]) == {Decimal("19")}
    first = rows.iloc[0]
    assert (first["BATCH_SOURCE_NAME"], first["CUST_TRX_TYPE_NAME"], first["TERM_NAME"]) == (
        "BILLING CYCLE", "Invoice", "NET 30")
    assert (first["CURRENCY_CODE"], first["ORIG_SYSTEM_BILL_CUSTOMER_REF"], first["PURCHASE_ORDER"]) == (
        "EUR", "C1", "PO-4711")
    # DE01 keeps its ledger in EUR: an EUR document goes at the User rate 1.
    assert (first["CONVERSION_TYPE"], first["CONVERSION_RATE"]) == ("User", Decimal(1))
    assert (first["TRX_DATE"], first["GL_DATE"]) == (date(2026, 10, 31), date(2026, 10, 31))
    assert set(rows["INTERFACE_LINE_CONTEXT"]) == {"BILLING_CYCLE"}
    assert set(rows["INTERFACE_LINE_ATTRIBUTE1"]) == {INV} and set(rows["INTERFACE_LINE_ATTRIBUTE4"]) == {IKEY}


def test_redelivery_with_the_same_key_inserts_nothing(db_engine):
    target = ArInterfaceTarget(db_engine)
    first = target.deliver(invoice(), invoice_lines(), IKEY)
    assert count(target) == 6          # 3 LINE + 3 TAX
    assert target.deliver(invoice(), invoice_lines(), IKEY) == first
    assert count(target) == 6


def test_the_same_document_under_another_key_is_refused(db_engine):
    target = ArInterfaceTarget(db_engine)
    target.deliver(invoice(), invoice_lines(), IKEY)
    with pytest.raises(DeliveryRejected) as e:
        target.deliver(invoice(), invoice_lines(), "b" * 64)
    assert (e.value.document_key, e.value.field) == (INV, "document_key")
    assert count(target) == 6


def test_a_currency_the_ledger_refuses_names_document_and_field_and_writes_nothing(db_engine):
    target = ArInterfaceTarget(db_engine, ArInterfaceSettings(currencies=("EUR", "USD")))
    doc = invoice(currency="GBP", document_key="INV-2026-10-C1-K1-GBP")
    with pytest.raises(DeliveryRejected) as e:
        target.deliver(doc, invoice_lines("INV-2026-10-C1-K1-GBP"), IKEY)
    assert (e.value.document_key, e.value.target, e.value.field) == ("INV-2026-10-C1-K1-GBP", "ar_interface",
                                                                    "currency")
    assert "GBP" in str(e.value) and "INV-2026-10-C1-K1-GBP" in str(e.value)
    assert count(target) == 0


def test_lines_that_do_not_add_up_are_refused_before_any_write(db_engine):
    target = ArInterfaceTarget(db_engine)
    lines = invoice_lines()
    lines.loc[1, "amount_cents"] = 24_551           # one cent more than the document's net allows
    with pytest.raises(DeliveryRejected) as e:
        target.deliver(invoice(), lines, IKEY)
    assert e.value.field == "net_cents" and "364551" in str(e.value)
    assert count(target) == 0


def test_credit_memo_rows_are_negative_and_carry_no_terms(db_engine):
    target = ArInterfaceTarget(db_engine)
    target.deliver(credit_memo(reverses_key=INV), credit_lines(), IKEY)
    rows = target.read_back(CM).set_index("LINE_TYPE")
    assert rows.loc["LINE", "AMOUNT"] == Decimal("-240.00") and rows.loc["LINE", "QUANTITY"] == Decimal("-2")
    assert rows.loc["TAX", "AMOUNT"] == Decimal("-45.60")           # -240.00 x 19%
    assert rows.loc["LINE", "CUST_TRX_TYPE_NAME"] == "Credit Memo"
    assert rows.loc["LINE", "TERM_NAME"] is None                     # AutoInvoice refuses terms on a CM
    assert rows.loc["LINE", "COMMENTS"] == f"Reverses {INV}"


def test_a_document_outside_the_ledger_currency_goes_at_the_corporate_rate_of_its_date(db_engine):
    target = ArInterfaceTarget(db_engine)
    key = "INV-2026-10-C1-K1-USD"
    target.deliver(invoice(currency="USD", document_key=key), invoice_lines(key), IKEY)
    row = target.read_back(key).iloc[0]
    assert (row["CONVERSION_TYPE"], row["CONVERSION_DATE"], row["CONVERSION_RATE"]) == (
        "Corporate", date(2026, 10, 31), None)


def test_cost_transfers_never_reach_the_receivables_interface(db_engine):
    target = ArInterfaceTarget(db_engine)
    ref = target.deliver(invoice(document_type="cost_transfer", document_key="CT-2026-10-I1"), invoice_lines(),
                         IKEY)
    assert ref == "skipped: cost_transfer is not sent to a customer-facing target"
    assert count(target) == 0


def test_a_unit_without_an_org_id_is_refused(db_engine):
    target = ArInterfaceTarget(db_engine, ArInterfaceSettings(org_ids={"UK01": 81}))
    with pytest.raises(DeliveryRejected) as e:
        target.deliver(invoice(), invoice_lines(), IKEY)
    assert e.value.field == "business_unit"
    target_uk = ArInterfaceTarget(db_engine, ArInterfaceSettings(org_ids={"DE01": 204}), create_table=False)
    target_uk.deliver(invoice(), invoice_lines(), IKEY)
    assert set(target_uk.read_back(INV)["ORG_ID"]) == {Decimal(204)}


def test_insert_compiles_for_oracle_with_exact_decimal_binds(tmp_path):
    target = ArInterfaceTarget(f"sqlite:///{tmp_path / 'ar.db'}", create_table=False)
    rows = target.rows(invoice(), invoice_lines(), IKEY)
    compiled = insert(target.table).values(rows[1]).compile(dialect=oracle.dialect())
    sql = str(compiled)
    assert sql.startswith('INSERT INTO "RA_INTERFACE_LINES_ALL" (')
    assert ":AMOUNT" in sql and ":INTERFACE_LINE_ATTRIBUTE1" in sql and ":TRX_DATE" in sql
    p = compiled.params
    assert p["AMOUNT"] == Decimal("245.50") and isinstance(p["AMOUNT"], Decimal)
    assert p["QUANTITY"] == Decimal("1") and p["UNIT_SELLING_PRICE"] is None
    assert (p["LINE_TYPE"], p["INTERFACE_LINE_ATTRIBUTE1"], p["INTERFACE_LINE_ATTRIBUTE2"]) == ("LINE", INV, "2")
    assert p["TRX_DATE"] == date(2026, 10, 31) and p["TERM_NAME"] == "NET 30"
    ddl = str(CreateTable(target.table).compile(dialect=oracle.dialect()))
    assert '"DESCRIPTION" VARCHAR2(240 CHAR) NOT NULL' in ddl and '"AMOUNT" NUMERIC(22, 2)' in ddl


def test_the_documents_tax_is_spread_over_its_lines_exactly():
    # Three lines of 0.05 at 10%: each 0.005 -> 0.01 (half up), 0.03 in all; the document's tax is
    # 0.15 x 10% = 0.015 -> 0.02. The -0.01 difference goes to the largest line (the first of equals).
    lines = [line(INV, n, f"item {n}", 1_000, 5, 5, "expense") for n in (1, 2, 3)]
    doc = check_document(invoice(net_cents=15, tax_cents=2, gross_cents=17, tax_rate_bp=1000),
                         pd.DataFrame(lines), "ar_interface")
    assert line_taxes(doc) == [0, 1, 1]
    big = check_document(invoice(), invoice_lines(), "ar_interface")
    assert line_taxes(big) == [17_100, 4_665, 47_500]     # no difference: 171.00 + 46.65 + 475.00 = 692.65
