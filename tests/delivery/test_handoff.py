"""The targets behind the store's exactly-once hand-off: a refused document stays pending, not lost.

Runs the project's hand-off loop (billing_cycle.handoff.hand_off) with the real targets on SQLite and
PostgreSQL: documents of a small close are recorded in the store, delivered to the e-invoice, AR and
batch-file targets, and read back.
"""

from decimal import Decimal

import pandas as pd
import pytest

from billing.close import compute_close
from billing.periods import Period
from billing_cycle.handoff import hand_off, record_documents
from delivery.ar_interface import ArInterfaceSettings, ArInterfaceTarget
from delivery.batch_files import BatchFilesTarget, verify_batch_folder
from delivery.ubl import UblTarget
from store import Store
from tests.billing.builders import company, contract, customer, item, project, rate, scope
from tests.delivery.samples import GLN

OCT = Period(2026, 10)


def two_customers(c2_endpoint=None):
    # C1: 7.5 h at 100.00 = 750.00 + 19% = 142.50. C2: 2 h at 100.00 = 200.00 + 19% = 38.00.
    return company(
        customers=[customer(delivery_channel="peppol", peppol_endpoint_id=f"0088:{GLN}"),
                   customer(customer_id="C2", customer_name="Borealis AG", delivery_channel="peppol",
                            peppol_endpoint_id=c2_endpoint)],
        contracts=[contract(), contract(contract_id="K2", customer_id="C2")],
        scope_lines=[scope(), scope(scope_line_id="K2-L1", contract_id="K2")],
        rates=[rate(), rate(contract_id="K2")],
        projects=[project(), project(project_id="P2", contract_id="K2")],
        items=[item("A", quantity_milli=7500), item("B", project_id="P2", quantity_milli=2000)])


def targets(tmp_path, engine, customers):
    return [UblTarget(tmp_path / "ubl", customers), ArInterfaceTarget(engine),
            BatchFilesTarget(tmp_path / "batches")]


def test_a_peppol_customer_without_endpoint_leaves_its_invoice_pending_and_the_others_go(db_engine, tmp_path):
    data = two_customers()
    result = compute_close(data, OCT)
    store = Store(db_engine)
    store.start_run("r1", str(OCT), "test")
    plan = record_documents(store, result.batch, str(OCT), "r1")
    k1, k2 = "INV-2026-10-C1-K1-EUR", "INV-2026-10-C2-K2-EUR"
    assert sorted(plan.to_deliver) == [k1, k2]

    ubl, ar, files = targets(tmp_path, db_engine, data["customers"])
    outcome = hand_off(store, [ubl, ar, files], plan.to_deliver, "r1")
    assert outcome.delivered == [k1]
    assert list(outcome.refused) == [k2]
    assert "peppol_endpoint_id" in outcome.refused[k2] and "C2" in outcome.refused[k2]
    docs = store.documents().set_index("document_key")
    assert docs.loc[k1, "status"] == "handed_off"
    assert docs.loc[k2, "status"] == "prepared" and "peppol_endpoint_id" in docs.loc[k2, "handoff_error"]
    # Refused by the first target, so nothing of it reached the others.
    assert ar.read_back(k2).empty and not (tmp_path / "batches" / k2).exists()
    lines = ar.read_back(k1)
    assert lines.loc[lines["LINE_TYPE"] == "LINE", "AMOUNT"].sum() == Decimal("750.00")
    assert lines.loc[lines["LINE_TYPE"] == "TAX", "AMOUNT"].sum() == Decimal("142.50")

    # The customer's endpoint is fixed in the master data; the next hand-off delivers the pending invoice.
    fixed = two_customers(c2_endpoint=f"0088:{GLN}")["customers"]
    ubl2, ar2, files2 = targets(tmp_path, db_engine, fixed)
    outcome2 = hand_off(store, [ubl2, ar2, files2], [k1, k2], "r2")
    assert outcome2.delivered == [k2] and outcome2.refused == {}
    docs = store.documents().set_index("document_key")
    assert docs.loc[k2, "status"] == "handed_off" and pd.isna(docs.loc[k2, "handoff_error"])
    assert (tmp_path / "ubl" / f"{k2}.xml").exists()
    assert ar2.read_back(k2).loc[lambda r: r["LINE_TYPE"] == "LINE", "AMOUNT"].sum() == Decimal("200.00")


def test_a_currency_the_ledger_refuses_keeps_the_invoice_pending_until_the_ledger_takes_it(db_engine, tmp_path):
    data = two_customers(c2_endpoint=f"0088:{GLN}")
    store = Store(db_engine)
    store.start_run("r1", str(OCT), "test")
    plan = record_documents(store, compute_close(data, OCT).batch, str(OCT), "r1")
    ubl = UblTarget(tmp_path / "ubl", data["customers"])
    usd_only = ArInterfaceTarget(db_engine, ArInterfaceSettings(currencies=("USD",)))
    outcome = hand_off(store, [ubl, usd_only], plan.to_deliver, "r1")
    assert outcome.delivered == [] and sorted(outcome.refused) == sorted(plan.to_deliver)
    for key, error in outcome.refused.items():
        assert f"ar_interface refused {key}: currency: EUR is not accepted" in error
    docs = store.documents().set_index("document_key")
    assert set(docs["status"]) == {"prepared"} and docs["handoff_error"].str.contains("currency").all()
    sent = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "ubl").glob("*.xml")}
    assert len(sent) == 2                 # the e-invoice target had already taken both

    # The ledger enables EUR: the next hand-off completes both, without sending the e-invoices again.
    outcome2 = hand_off(store, [ubl, ArInterfaceTarget(db_engine)], plan.to_deliver, "r2")
    assert sorted(outcome2.delivered) == sorted(plan.to_deliver)
    assert set(store.documents()["status"]) == {"handed_off"}
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "ubl").glob("*.xml")} == sent


@pytest.fixture(scope="module")
def sample_close():
    from connectors.sample_company import generate

    # 17 documents: invoices and credit memos, EUR, GBP and USD, VAT 19%, 20% and 0%. Every customer is
    # put on Peppol (with a real GLN) so every document also goes through the e-invoice target.
    data = generate(OCT, 2000, 3)
    data["customers"] = data["customers"].assign(delivery_channel="peppol", peppol_endpoint_id=f"0088:{GLN}")
    return data, compute_close(data, OCT)


def test_every_document_of_a_sample_close_reads_back_to_the_cent(db_engine, tmp_path, sample_close):
    data, result = sample_close
    store = Store(db_engine)
    store.start_run("r1", str(OCT), "sample")
    plan = record_documents(store, result.batch, str(OCT), "r1")
    ubl = UblTarget(tmp_path / "ubl", data["customers"])
    ar, files = ArInterfaceTarget(db_engine), BatchFilesTarget(tmp_path / "batches")
    outcome = hand_off(store, [ubl, ar, files], plan.to_deliver, "r1")
    assert outcome.refused == {} and sorted(outcome.delivered) == sorted(plan.to_deliver)

    docs = store.documents().set_index("document_key")
    for key, doc in docs.iterrows():
        lines = store.document_lines(key).set_index("line_no")
        rows = ar.read_back(key)
        line_rows = rows[rows["LINE_TYPE"] == "LINE"].assign(
            line_no=lambda r: r["INTERFACE_LINE_ATTRIBUTE2"].astype(int)).set_index("line_no").sort_index()
        cents = (line_rows["AMOUNT"] * 100).map(int)
        assert cents.tolist() == lines["amount_cents"].tolist(), key
        assert int(rows.loc[rows["LINE_TYPE"] == "TAX", "AMOUNT"].sum() * 100) == doc["tax_cents"], key
        manifest = verify_batch_folder(tmp_path / "batches" / key)
        assert Decimal(manifest["totals"]["gross"]) * 100 == doc["gross_cents"]
        xml = (tmp_path / "ubl" / f"{key}.xml").read_bytes()
        assert ubl.validator.validate(xml).ok, key
        sign = -1 if doc["document_type"] == "credit_memo" else 1
        assert f'<cbc:PayableAmount currencyID="{doc["currency"]}">{Decimal(sign * doc["gross_cents"]) / 100:.2f}<' \
            in xml.decode(), key
    assert len(docs) == 17 and docs["document_type"].eq("credit_memo").sum() == 3
    assert set(docs["currency"]) == {"EUR", "GBP", "USD"} and set(docs["tax_rate_bp"]) == {0, 1900, 2000}
