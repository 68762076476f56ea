"""Time cash application at scale: `python bench/bench_cash_application.py --receipts 100000 --items 1000000`.

Synthetic, seeded data in the canonical shapes: open items (OPEN_ITEMS) for customers with an IBAN each,
and statement entries (STATEMENT_ENTRIES) that pay them in the ways the sample company does — invoice
numbers in the text, several invoices at once, RF references, fee-short, partial, over-payments, no
reference (amount or a split of the payer's items), the name only (exact and with a typo) and unknown
payers. Prints one JSON object: time of `apply_cash` (the matching, no Prefect, no store), peak memory
(RSS high-water mark and the traced Python allocations of the matching), and how many receipts went
where, checked against what the generator intended. Not a test.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
import tracemalloc

import numpy as np
import pandas as pd

from receivables.bank_statements import STATEMENT_ENTRIES
from receivables.cash_application import MatchSettings, apply_cash, check_applications_balance, item_creditor_reference
from receivables.open_items import OPEN_ITEMS

MIX = {  # share of receipts per scenario
    "exact_ref": 0.55, "split_ref": 0.10, "rf_ref": 0.05, "fee_short": 0.05, "partial": 0.05, "over": 0.03,
    "exact_no_ref": 0.05, "split_no_ref": 0.04, "name_only": 0.03, "name_typo": 0.03, "unknown": 0.02,
}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def build(n_receipts: int, n_items: int, seed: int):
    rng = np.random.default_rng(seed)
    n_customers = max(n_items // 20, 10)
    cust = np.arange(n_customers)
    cust_id = np.char.add("C", np.char.zfill(cust.astype(str), 7)).astype(object)
    currency = np.array(["EUR", "GBP", "USD"], dtype=object)[rng.choice(3, n_customers, p=[0.7, 0.2, 0.1])]
    names = np.array([f"Customer {i} Trading Ltd" for i in cust], dtype=object)
    ibans = np.array([f"DE{(i * 7919) % 97:02d}5001051{i:011d}" for i in cust], dtype=object)
    # Items: each customer's invoices in due-date order, amounts whole euros plus cents.
    item_cust = np.sort(rng.integers(0, n_customers, n_items))
    n = np.arange(n_items)
    trx = np.char.add("INV", np.char.zfill(n.astype(str), 9)).astype(object)
    due = pd.Timestamp("2026-06-01") + pd.to_timedelta(rng.integers(0, 150, n_items), unit="D")
    amount = rng.integers(100, 50_000, n_items) * 100 + rng.integers(0, 100, n_items)
    items = pd.DataFrame({
        "payment_schedule_id": np.char.add("PS", trx.astype(str)).astype(object), "trx_number": trx,
        "trx_class": "INV", "customer_id": cust_id[item_cust], "business_unit": "DE01",
        "currency": currency[item_cust], "trx_date": pd.Timestamp("2026-05-31"), "due_date": due,
        "installment": 1, "amount_due_original_cents": amount, "amount_due_remaining_cents": amount,
        "amount_in_dispute_cents": 0, "status": "OP"})[OPEN_ITEMS.names]
    items = items.sort_values(["customer_id", "due_date", "payment_schedule_id"]).reset_index(drop=True)
    payers = pd.concat([
        pd.DataFrame({"kind": "iban", "value": ibans, "customer_id": cust_id, "source": "master"}),
        pd.DataFrame({"kind": "name", "value": [f"customer {i} trading" for i in cust], "customer_id": cust_id,
                      "source": "master"})], ignore_index=True).astype("string")

    # Receipts: each pays distinct items (a first item chosen at random, the next one of the same customer).
    # A payment without reference pays the customer's oldest items, as payers do; those customers are
    # kept apart (every tenth) so no other receipt pays their items first.
    scen = rng.choice(list(MIX), n_receipts, p=list(MIX.values()))
    owner = items["customer_id"].to_numpy()
    item_cust_idx = np.searchsorted(cust_id, owner)
    reserved = item_cust_idx % 10 == 0
    oldest = np.flatnonzero(reserved & np.r_[True, owner[1:] != owner[:-1]])
    split_rows = np.flatnonzero(scen == "split_no_ref")
    if len(split_rows) > len(oldest):
        scen[split_rows[len(oldest):]] = "exact_ref"
        split_rows = split_rows[:len(oldest)]
    others = np.flatnonzero(~reserved[:-3])
    first = rng.choice(others, n_receipts, replace=False)
    first[split_rows] = rng.choice(oldest, len(split_rows), replace=False)
    same_next = (owner[first + 1] == owner[first])
    scen = np.where(np.isin(scen, ["split_ref", "split_no_ref"]) & ~same_next, "exact_ref", scen)
    rem = items["amount_due_remaining_cents"].to_numpy()
    a0, a1 = rem[first], rem[first + 1]
    trx0, trx1 = items["trx_number"].to_numpy()[first], items["trx_number"].to_numpy()[first + 1]
    ci = cust[np.searchsorted(cust_id, items["customer_id"].to_numpy()[first])]
    fee = rng.integers(5, 30, n_receipts) * 100
    amt = np.select([scen == "split_ref", scen == "split_no_ref", scen == "fee_short", scen == "partial",
                     scen == "over", scen == "unknown"],
                    [a0 + a1, a0 + a1, a0 - fee, a0 // 2, a0 + 10_000, rng.integers(100, 90_000, n_receipts)],
                    a0).astype(np.int64)
    text = np.where(np.isin(scen, ["exact_ref", "fee_short", "partial", "over", "name_only", "name_typo"]),
                    np.char.add("Invoice ", trx0.astype(str)).astype(object), None)
    text = np.where(scen == "split_ref", np.char.add(np.char.add(trx0.astype(str), ", "), trx1.astype(str)), text)
    text = np.where(np.isin(scen, ["exact_no_ref", "split_no_ref", "unknown"]), "Payment", text)
    rf = np.where(scen == "rf_ref", [item_creditor_reference(t) if s == "rf_ref" else "" for t, s in
                                     zip(trx0, scen, strict=True)], None)
    payer_iban = np.where(np.isin(scen, ["name_only", "name_typo"]), None, ibans[ci])
    payer_iban = np.where(scen == "unknown", "NL91ABNA0417164300", payer_iban)
    payer_name = np.where(scen == "name_typo", [f"Custmer {i} Trading Ltd" for i in ci], names[ci])
    payer_name = np.where(scen == "unknown", "Nobody Known BV", payer_name)
    ref = np.char.zfill(np.arange(n_receipts).astype(str), 8).astype(object)
    entries = pd.DataFrame({
        "statement_id": "BENCH", "source_format": "camt.053.001.08", "account_iban": "DE89370400440532013000",
        "entry_id": np.char.add("N", ref.astype(str)).astype(object),
        "bank_reference": np.char.add("BR", ref.astype(str)).astype(object), "end_to_end_id": None,
        "booking_date": pd.Timestamp("2026-10-15"), "value_date": pd.Timestamp("2026-10-15"), "amount_cents": amt,
        "currency": currency[ci], "counterparty_name": payer_name, "counterparty_iban": payer_iban,
        "remittance_text": text, "creditor_reference": rf, "referenced_documents": None,
        "charges_cents": np.where(scen == "fee_short", fee, 0), "is_return": False, "return_reason": None,
        "bank_tx_code": "PMNT/RCDT/ESCT", "booked": True})[STATEMENT_ENTRIES.names]
    truth = pd.DataFrame({"cash_receipt_id": "BR" + ref.astype(str) + ":N" + ref.astype(str), "scenario": scen,
                          "first": items["payment_schedule_id"].to_numpy()[first]})
    return items, payers, entries, truth


EXPECT = {"exact_ref": "auto", "split_ref": "auto", "rf_ref": "auto", "fee_short": "auto", "partial": "auto",
          "over": "auto", "exact_no_ref": "review", "split_no_ref": "review", "name_only": "auto",
          "name_typo": "auto", "unknown": "unidentified"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--receipts", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=20261)
    parser.add_argument("--trace", action="store_true", help="also run once under tracemalloc for the peak of "
                        "Python allocations (about ten times slower; the timed run is never traced)")
    args = parser.parse_args()

    t0 = time.perf_counter()
    items, payers, entries, truth = build(args.receipts, args.items, args.seed)
    generate_s = time.perf_counter() - t0
    rss_before = _rss_mb()

    t0, c0 = time.perf_counter(), time.process_time()
    result = apply_cash(entries, items, payers, MatchSettings())
    match_s, match_cpu = time.perf_counter() - t0, time.process_time() - c0
    peak_rss = _rss_mb()
    traced_peak = None
    if args.trace:
        tracemalloc.start()
        apply_cash(entries, items, payers, MatchSettings())
        traced_peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()

    r = result.receipts.merge(truth, on="cash_receipt_id")
    ok_band = (r["band"] == r["scenario"].map(EXPECT)).groupby(r["scenario"]).mean().round(4).to_dict()
    app = result.applications[result.applications["status"] == "APP"]
    first_paid = set(zip(app["cash_receipt_id"], app["applied_payment_schedule_id"], strict=True))
    auto = r[r["band"] == "auto"]
    right_item = float(np.mean([(c, f) in first_paid for c, f in zip(auto["cash_receipt_id"], auto["first"],
                                                                       strict=True)])) if len(auto) else 0.0
    print(json.dumps({
        "receipts": len(entries), "open_items": len(items), "customers": int(items["customer_id"].nunique()),
        "match_seconds": round(match_s, 3), "match_cpu_seconds": round(match_cpu, 3),
        "receipts_per_second": round(len(entries) / match_s),
        "peak_rss_mb": round(peak_rss, 1), "rss_before_match_mb": round(rss_before, 1),
        "traced_peak_mb_during_match": None if traced_peak is None else round(traced_peak, 1),
        "generate_seconds": round(generate_s, 3),
        "bands": result.summary()["by_band"], "band_as_intended_share": ok_band,
        "auto_applied_to_the_intended_item_share": round(right_item, 4),
        "applications": len(result.applications), "write_off_proposals": len(result.write_off_proposals),
        "applications_balance": bool(check_applications_balance(result.receipts, result.applications).empty),
        "python": platform.python_version(), "machine": platform.machine(),
    }, indent=1))


if __name__ == "__main__":
    main()
