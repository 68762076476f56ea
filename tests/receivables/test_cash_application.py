"""Cash application, case by case: each score, band, application and residue computed by hand here.

Customers and their open items (cents):
  C1 Acme Systems GmbH, IBAN DE44500105175407324931: INV-1001 100000 (due 09-30), INV-1002 250000 (10-15),
     INV-1003 40000 (10-20)
  C2 Borealis Foods Ltd, IBAN GB29NWBK60161331926819: INV-2001 50000 (09-15), INV-2002 70000 (10-01),
     INV-2003 30000 (10-10)
  C3 Cobalt Energy Inc., no IBAN on file: INV-3001 123456 (10-01), credit memo CM-3002 -20000 (10-05)
Points: REF 50, ADVICE 40, EXACT 30, SPLIT 25, FEE_SHORT 20, OVER 15, PARTIAL 10, IBAN 20, ALIAS 15,
NAME 10, AMBIGUOUS -10, CONFLICT -30. Auto at 70, review at 40; fee tolerance 35.00.
"""

import pandas as pd
import pytest

from receivables.bank_statements import STATEMENT_ENTRIES
from receivables.cash_application import (
    APPLICATIONS,
    PAYER_MAP,
    RECEIPTS,
    CashApplicationError,
    MatchSettings,
    apply_cash,
    check_applications_balance,
    correct_receipt,
    item_creditor_reference,
    normalise_name,
    open_items_after,
    payer_map_from_master,
    receipt_statuses,
)
from receivables.open_items import OPEN_ITEMS

IBAN1, IBAN2 = "DE44500105175407324931", "GB29NWBK60161331926819"
D = pd.Timestamp


def _item(psid, trx, customer, remaining, due, trx_class="INV", currency="EUR"):
    return {"payment_schedule_id": psid, "trx_number": trx, "trx_class": trx_class, "customer_id": customer,
            "business_unit": "DE01", "currency": currency, "trx_date": D("2026-09-01"), "due_date": D(due),
            "installment": 1, "amount_due_original_cents": remaining, "amount_due_remaining_cents": remaining,
            "amount_in_dispute_cents": 0, "status": "OP"}


ITEMS = pd.DataFrame([
    _item("PS-1001-1", "INV-1001", "C1", 100000, "2026-09-30"),
    _item("PS-1002-1", "INV-1002", "C1", 250000, "2026-10-15"),
    _item("PS-1003-1", "INV-1003", "C1", 40000, "2026-10-20"),
    _item("PS-2001-1", "INV-2001", "C2", 50000, "2026-09-15"),
    _item("PS-2002-1", "INV-2002", "C2", 70000, "2026-10-01"),
    _item("PS-2003-1", "INV-2003", "C2", 30000, "2026-10-10"),
    _item("PS-3001-1", "INV-3001", "C3", 123456, "2026-10-01"),
    _item("PS-3002-1", "CM-3002", "C3", -20000, "2026-10-05", trx_class="CM"),
], columns=OPEN_ITEMS.names)
CUSTOMERS = pd.DataFrame({"customer_id": ["C1", "C2", "C3"],
                          "customer_name": ["Acme Systems GmbH", "Borealis Foods Ltd", "Cobalt Energy Inc."]})
ACCOUNTS = pd.DataFrame({"customer_id": ["C1", "C2"], "iban": ["DE44 5001 0517 5407 3249 31", IBAN2]})
PAYERS = payer_map_from_master(CUSTOMERS, ACCOUNTS)


def entry(ref, amount, *, name=None, iban=None, text=None, rf=None, e2e=None, is_return=False, charges=0,
          docs=None, date="2026-10-20", currency="EUR"):
    return {"statement_id": "S1", "source_format": "camt.053.001.08", "account_iban": "DE89370400440532013000",
            "entry_id": f"N-{ref}", "bank_reference": f"BR-{ref}", "end_to_end_id": e2e, "booking_date": D(date),
            "value_date": D(date), "amount_cents": amount, "currency": currency, "counterparty_name": name,
            "counterparty_iban": iban, "remittance_text": text, "creditor_reference": rf,
            "referenced_documents": docs, "charges_cents": charges, "is_return": is_return,
            "return_reason": "AM04" if is_return else None, "bank_tx_code": "PMNT/RCDT/ESCT", "booked": True}


def statement(*rows):
    return pd.DataFrame(list(rows), columns=STATEMENT_ENTRIES.names)


def run(*rows, items=ITEMS, payers=PAYERS, **kw):
    result = apply_cash(statement(*rows), items, payers, **kw)
    assert check_applications_balance(result.receipts, result.applications).empty
    return result


def one(result, rid):
    r = result.receipts.set_index("cash_receipt_id").loc[rid]
    apps = result.applications[result.applications["cash_receipt_id"] == rid]
    return r, apps


def test_exact_payment_with_invoice_number_and_known_iban_is_applied_automatically():
    res = run(entry("1", 100000, name="ACME SYSTEMS", iban=IBAN1, text="Payment INV-1001 thank you"))
    r, apps = one(res, "BR-1:N-1")
    assert r["score"] == 50 + 30 + 20 and r["band"] == "auto" and r["status"] == "APP"
    assert r["reason_codes"].split(";") == ["REF_INVOICE", "PAYER_IBAN", "AMT_EXACT"]
    assert r["customer_id"] == "C1"
    assert apps[["status", "applied_payment_schedule_id", "amount_applied_cents"]].values.tolist() == [
        ["APP", "PS-1001-1", 100000]]
    assert list(res.receipts.columns) == RECEIPTS.names and list(res.applications.columns) == APPLICATIONS.names
    assert apps["reason_codes"].iloc[0] == r["reason_codes"] and apps["score"].iloc[0] == 100


def test_split_payment_naming_several_invoices_pays_each_in_full():
    res = run(entry("2", 120000, iban=IBAN2, text="INV-2001, INV-2002"))
    r, apps = one(res, "BR-2:N-2")
    assert r["score"] == 100 and r["band"] == "auto"
    assert apps.set_index("applied_payment_schedule_id")["amount_applied_cents"].to_dict() == {
        "PS-2001-1": 50000, "PS-2002-1": 70000}


def test_split_payment_without_references_found_by_subset_sum_is_suggested():
    # 80000 = INV-2001 50000 + INV-2003 30000, the only combination of C2's items.
    res = run(entry("3", 80000, iban=IBAN2, text="October payment"))
    r, apps = one(res, "BR-3:N-3")
    assert r["score"] == 20 + 25 and r["band"] == "review"
    assert "AMT_SPLIT" in r["reason_codes"] and r["customer_id"] == "C2" and r["status"] == "UNAPP"
    assert apps[["status", "amount_applied_cents"]].values.tolist() == [["UNAPP", 80000]]
    s = res.suggestions.set_index("payment_schedule_id")["amount_cents"].to_dict()
    assert s == {"PS-2001-1": 50000, "PS-2003-1": 30000}


def test_fee_short_payment_closes_what_it_can_and_proposes_the_residue_for_write_off():
    # 250000 - 248500 = 1500 <= 3500 tolerance; the bank reported 15.00 charges.
    res = run(entry("4", 248500, iban=IBAN1, docs="INV-1002", charges=1500))
    r, apps = one(res, "BR-4:N-4")
    assert r["score"] == 50 + 20 + 20 and r["band"] == "auto"
    assert "AMT_FEE_SHORT" in r["reason_codes"] and "FEE_STATED" in r["reason_codes"]
    assert apps["amount_applied_cents"].tolist() == [248500]
    wo = res.write_off_proposals
    assert wo[["payment_schedule_id", "amount_cents", "reason", "cash_receipt_id"]].values.tolist() == [
        ["PS-1002-1", 1500, "bank_fee_residue", "BR-4:N-4"]]


def test_over_payment_applies_the_invoice_and_keeps_the_excess_on_account():
    res = run(entry("5", 45000, iban=IBAN1, text="INV-1003"))
    r, apps = one(res, "BR-5:N-5")
    assert r["score"] == 50 + 15 + 20 and r["status"] == "APP"
    assert apps[["status", "applied_payment_schedule_id", "amount_applied_cents"]].fillna("").values.tolist() == [
        ["APP", "PS-1003-1", 40000], ["ACC", "", 5000]]
    assert apps["customer_id"].tolist() == ["C1", "C1"]


def test_partial_payment_is_applied_and_the_item_stays_open_for_the_rest():
    res = run(entry("6", 60000, iban=IBAN1, text="INV-1002 first part"))
    r, apps = one(res, "BR-6:N-6")
    assert r["score"] == 50 + 10 + 20 and r["band"] == "auto"
    assert apps["amount_applied_cents"].tolist() == [60000]
    after = open_items_after(ITEMS, res.applications).set_index("payment_schedule_id")
    assert after.loc["PS-1002-1", "amount_due_remaining_cents"] == 250000 - 60000
    assert after.loc["PS-1002-1", "status"] == "OP"
    assert res.write_off_proposals.empty


def test_partial_payment_over_several_invoices_pays_the_oldest_first():
    # 110000 against INV-1001 (100000, due 09-30) and INV-1002 (250000, due 10-15): 100000 + 10000.
    res = run(entry("6b", 110000, iban=IBAN1, text="INV-1002 INV-1001"))
    _, apps = one(res, "BR-6b:N-6b")
    assert apps.set_index("applied_payment_schedule_id")["amount_applied_cents"].to_dict() == {
        "PS-1001-1": 100000, "PS-1002-1": 10000}


def test_payment_from_an_unknown_payer_is_unidentified():
    res = run(entry("7", 77700, name="Zeta Holdings Corp", iban="FR7630006000011234567890189", text="payment"))
    r, apps = one(res, "BR-7:N-7")
    assert r["score"] == 0 and r["band"] == "unidentified" and r["status"] == "UNID"
    assert pd.isna(r["customer_id"]) and "PAYER_UNKNOWN" in r["reason_codes"]
    assert apps[["status", "amount_applied_cents"]].values.tolist() == [["UNID", 77700]]
    assert pd.isna(apps["customer_id"].iloc[0])


def test_structured_creditor_reference_and_exact_legal_name_apply_automatically():
    rf = item_creditor_reference("INV-3001")
    # 'INV3001' + 'RF00' as digits (I=18, N=23, V=31, R=27, F=15): 1823313001271500 mod 97 = 63; 98 - 63 = 35.
    assert 1823313001271500 % 97 == 63
    assert rf == "RF35INV3001"
    res = run(entry("8", 123456, name="COBALT ENERGY", rf=rf))
    r, apps = one(res, "BR-8:N-8")
    assert r["score"] == 50 + 30 + 15 and r["reason_codes"].startswith("REF_CREDITOR")
    assert "PAYER_ALIAS" in r["reason_codes"]
    assert apps["applied_payment_schedule_id"].tolist() == ["PS-3001-1"]


def test_payment_net_of_a_credit_memo_applies_both():
    # 123456 - 20000 = 103456.
    res = run(entry("9", 103456, name="Cobalt Energy Inc", text="INV-3001 less CM-3002"))
    _, apps = one(res, "BR-9:N-9")
    assert apps.set_index("applied_payment_schedule_id")["amount_applied_cents"].to_dict() == {
        "PS-3001-1": 123456, "PS-3002-1": -20000}


def test_similar_name_alone_only_suggests_and_leaves_the_money_unidentified():
    # No IBAN; 'borealis food limited' -> 'borealis food' vs 'borealis foods': token-sort ratio 96 >= 88.
    res = run(entry("10", 70000, name="Borealis Food Limited", text="thanks"))
    r, apps = one(res, "BR-10:N-10")
    assert apps["status"].tolist() == ["UNID"]
    assert r["score"] == 10 + 30 and r["band"] == "review"
    assert r["status"] == "UNID" and pd.isna(r["customer_id"])
    assert res.suggestions[["customer_id", "payment_schedule_id", "amount_cents"]].values.tolist() == [
        ["C2", "PS-2002-1", 70000]]


def test_iban_of_another_customer_than_the_invoice_lowers_the_score_to_review():
    # C2's account pays C1's invoice: 50 + 30 - 30.
    res = run(entry("11", 40000, iban=IBAN2, text="INV-1003"))
    r, _ = one(res, "BR-11:N-11")
    assert r["score"] == 50 and r["band"] == "review" and "PAYER_CONFLICT" in r["reason_codes"]
    assert r["customer_id"] == "C1" and r["status"] == "UNAPP"


def test_two_receipts_for_one_invoice_the_second_goes_on_account():
    res = run(entry("12a", 100000, iban=IBAN1, text="INV-1001", date="2026-10-20"),
              entry("12b", 100000, iban=IBAN1, text="INV-1001", date="2026-10-21"))
    _, first = one(res, "BR-12a:N-12a")
    r2, second = one(res, "BR-12b:N-12b")
    assert first[["status", "amount_applied_cents"]].values.tolist() == [["APP", 100000]]
    assert second[["status", "amount_applied_cents"]].values.tolist() == [["ACC", 100000]]
    assert "ITEM_TAKEN" in r2["reason_codes"] and r2["status"] == "ACC"


def test_remittance_advice_supplies_the_references_of_a_bare_payment():
    hints = pd.DataFrame({"customer_id": ["C1"], "currency": ["EUR"], "amount_cents": [140000],
                          "trx_numbers": ["INV-1001 INV-1003"]})
    res = run(entry("13", 140000, iban=IBAN1, text="see advice"), hints=hints)
    r, apps = one(res, "BR-13:N-13")
    assert r["score"] == 40 + 30 + 20 and r["reason_codes"].startswith("REF_ADVICE")
    assert sorted(apps["applied_payment_schedule_id"]) == ["PS-1001-1", "PS-1003-1"]


def test_the_same_statement_loaded_twice_applies_nothing_twice():
    e = entry("1", 100000, iban=IBAN1, text="INV-1001")
    first = run(e)
    items = open_items_after(ITEMS, first.applications)
    again = run(e, e, items=items, prior_receipts=first.receipts, prior_applications=first.applications)
    assert again.receipts.empty and again.applications.empty
    assert again.skipped["reason"].tolist() == ["already_loaded", "already_loaded"]
    dup = run(e, e)  # the same line twice in one file counts once
    assert len(dup.receipts) == 1 and dup.skipped["reason"].tolist() == ["duplicate_in_file"]


def test_returned_payment_reverses_the_receipt_and_reopens_the_item():
    paid = run(entry("1", 100000, iban=IBAN1, text="INV-1001", e2e="E2E-1"))
    items = open_items_after(ITEMS, paid.applications)
    assert items.set_index("payment_schedule_id").loc["PS-1001-1", "status"] == "CL"
    back = run(entry("R1", -100000, iban=IBAN1, e2e="E2E-1", is_return=True, date="2026-10-25"), items=items,
               prior_receipts=paid.receipts, prior_applications=paid.applications)
    r, apps = one(back, "BR-R1:N-R1")
    assert r["status"] == "REV" and r["reverses_receipt_id"] == "BR-1:N-1" and r["amount_cents"] == -100000
    assert apps[["status", "applied_payment_schedule_id", "amount_applied_cents", "reversal_of"]].values.tolist() == [
        ["APP", "PS-1001-1", -100000, "BR-1:N-1"]]
    assert back.reversed_receipt_ids == ["BR-1:N-1"]
    all_apps = pd.concat([paid.applications, back.applications])
    reopened = open_items_after(ITEMS, all_apps).set_index("payment_schedule_id").loc["PS-1001-1"]
    assert reopened["amount_due_remaining_cents"] == 100000 and reopened["status"] == "OP"
    receipts = pd.concat([paid.receipts.assign(status="REV"), back.receipts])
    assert receipt_statuses(receipts, all_apps).tolist() == ["REV", "REV"]


def test_return_in_the_same_file_as_the_payment_and_unmatched_return():
    res = run(entry("1", 45000, iban=IBAN1, text="INV-1003", e2e="E-5"),
              entry("R2", -45000, iban=IBAN1, e2e="E-5", is_return=True, date="2026-10-22"),
              entry("R3", -999, iban="FR7630006000011234567890189", is_return=True, date="2026-10-22"))
    statuses = res.receipts.set_index("cash_receipt_id")["status"].to_dict()
    assert statuses == {"BR-1:N-1": "REV", "BR-R2:N-R2": "REV", "BR-R3:N-R3": "UNID"}
    # 45000 paid INV-1003 (40000) with 5000 on account; the return negates both rows.
    rev = res.applications[res.applications["cash_receipt_id"] == "BR-R2:N-R2"]
    assert rev[["status", "applied_payment_schedule_id", "amount_applied_cents"]].fillna("").values.tolist() == [
        ["APP", "PS-1003-1", -40000], ["ACC", "", -5000]]
    after = open_items_after(ITEMS, res.applications).set_index("payment_schedule_id")
    assert after.loc["PS-1003-1", "amount_due_remaining_cents"] == 40000
    assert res.receipts.set_index("cash_receipt_id").loc["BR-R3:N-R3", "reason_codes"] == "RETURN_UNMATCHED"


def test_manual_correction_applies_and_teaches_the_payer_map():
    res = run(entry("7", 77700, name="Zeta Holdings Corp", iban="FR7630006000011234567890189", text="payment"))
    receipt = res.receipts.iloc[0]
    rows, learned = correct_receipt(receipt, res.applications, ITEMS, "C1", [("PS-1003-1", 40000)])
    assert rows[["status", "applied_payment_schedule_id", "amount_applied_cents", "customer_id"]].fillna("") \
        .values.tolist() == [["UNID", "", -77700, ""], ["APP", "PS-1003-1", 40000, "C1"],
                             ["UNAPP", "", 37700, "C1"]]
    assert rows["receivable_application_id"].tolist() == ["BR-7:N-7#2", "BR-7:N-7#3", "BR-7:N-7#4"]
    all_apps = pd.concat([res.applications, rows])
    assert check_applications_balance(res.receipts, all_apps).empty
    assert receipt_statuses(res.receipts, all_apps).tolist() == ["UNAPP"]
    assert learned[["kind", "value", "customer_id"]].values.tolist() == [
        ["iban", "FR7630006000011234567890189", "C1"], ["name", "zeta holdings", "C1"]]
    # Next time the same account pays an invoice of C1, the IBAN is known.
    payers = pd.concat([PAYERS, learned], ignore_index=True)[PAYER_MAP.names]
    nxt = run(entry("14", 100000, iban="FR7630006000011234567890189", text="INV-1001"), payers=payers)
    assert "PAYER_IBAN" in nxt.receipts["reason_codes"].iloc[0] and nxt.receipts["score"].iloc[0] == 100


@pytest.mark.parametrize("customer, allocations, message", [
    ("C2", [("PS-1003-1", 100)], "item PS-1003-1: field customer_id: belongs to C1, not C2"),
    ("C1", [("PS-9999", 100)], "item PS-9999: field payment_schedule_id: no such open item"),
    ("C1", [("PS-1003-1", 40001)], "field amount_cents: 40001 is not between 1 and the item's remaining 40000"),
    ("C1", [("PS-1002-1", 77701)], "field amount_cents: allocations 77701 exceed the 77700 waiting"),
])
def test_a_correction_that_does_not_fit_is_refused_with_the_field(customer, allocations, message):
    res = run(entry("7", 77700, name="Zeta Holdings Corp", text="payment"))
    with pytest.raises(CashApplicationError) as err:
        correct_receipt(res.receipts.iloc[0], res.applications, ITEMS, customer, allocations)
    assert message in str(err.value) and "receipt BR-7:N-7" in str(err.value)


def test_several_items_of_the_same_amount_are_ambiguous():
    items = pd.concat([ITEMS, pd.DataFrame([_item("PS-2004-1", "INV-2004", "C2", 70000, "2026-10-12")])],
                      ignore_index=True)
    res = run(entry("15", 70000, iban=IBAN2), items=items)
    r, _ = one(res, "BR-15:N-15")
    assert r["score"] == 20 + 30 - 10 and r["band"] == "review"
    assert res.suggestions["payment_schedule_id"].tolist() == ["PS-2002-1"]  # the older of the two


def test_thresholds_are_settings():
    e = entry("3", 80000, iban=IBAN2)
    res = run(e, settings=MatchSettings(auto_threshold=45, review_threshold=30))
    r, apps = one(res, "BR-3:N-3")
    assert r["band"] == "auto" and apps["amount_applied_cents"].sum() == 80000
    with pytest.raises(ValueError, match="thresholds"):
        MatchSettings(auto_threshold=30, review_threshold=40)


def test_other_currency_items_are_never_matched():
    res = run(entry("16", 100000, currency="USD", iban=IBAN1, text="INV-1001"))
    r, apps = one(res, "BR-16:N-16")
    assert "REF_INVOICE" not in r["reason_codes"] and apps["status"].tolist() == ["UNAPP"]


def test_debits_and_pending_entries_are_not_receipts():
    pending = entry("17", 5000, iban=IBAN1) | {"booked": False}
    res = run(entry("18", -2500, name="Bank fee"), pending)
    assert res.receipts.empty
    assert res.skipped.set_index("cash_receipt_id")["reason"].to_dict() == {
        "BR-18:N-18": "not_a_receipt", "BR-17:N-17": "not_booked"}


def test_name_normalisation_drops_case_punctuation_and_legal_form():
    assert normalise_name("ACME Systems GmbH.") == "acme systems"
    assert normalise_name("Smith & Sons Ltd") == "smith sons"
    assert normalise_name(None) == ""


def test_paying_the_first_installments_of_an_invoice_is_exact_not_partial():
    items = pd.concat([ITEMS, pd.DataFrame([_item("PS-4001-1", "INV-4001", "C1", 30000, "2026-10-01"),
                                            _item("PS-4001-2", "INV-4001", "C1", 30000, "2026-11-01")])],
                      ignore_index=True)
    res = run(entry("19", 30000, iban=IBAN1, text="INV-4001 first installment"), items=items)
    r, apps = one(res, "BR-19:N-19")
    assert r["score"] == 50 + 30 + 20 and "AMT_EXACT" in r["reason_codes"]
    assert apps[["applied_payment_schedule_id", "amount_applied_cents"]].values.tolist() == [["PS-4001-1", 30000]]


def test_any_statement_leaves_every_receipt_balanced_and_no_item_over_applied():
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    trx = ITEMS["trx_number"].tolist()

    @settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(st.tuples(st.integers(1, 400_000), st.sampled_from([None, IBAN1, IBAN2]),
                              st.lists(st.sampled_from(trx), max_size=3)), min_size=1, max_size=8))
    def check(payments):
        rows = [entry(f"H{i}", amount, iban=iban, text=" ".join(refs) or "payment")
                for i, (amount, iban, refs) in enumerate(payments)]
        res = run(*rows)
        after = open_items_after(ITEMS, res.applications)
        invoices = after[ITEMS["amount_due_original_cents"] > 0]
        assert (invoices["amount_due_remaining_cents"] >= 0).all()
        credits = after[ITEMS["amount_due_original_cents"] < 0]
        assert (credits["amount_due_remaining_cents"] <= 0).all()
        assert set(res.receipts["status"]) <= {"APP", "ACC", "UNAPP", "UNID"}
        auto = res.receipts["band"] == "auto"
        assert (res.receipts.loc[auto, "score"] >= 70).all() and (res.receipts.loc[~auto, "score"] < 70).all()

    check()
