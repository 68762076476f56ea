"""Benchmark: AR aging and dunning-ladder evaluation over synthetic open items; prints JSON.

    .venv/bin/python bench/bench_collections.py                 # 1,000,000 open items
    .venv/bin/python bench/bench_collections.py --items 200000 --repeat 3

The items are generated vectorised (seeded): 50 items per customer, three currencies, due dates
spread over a year, 40% with a level already reached, 5% with an amount in dispute, 2% under a
payment plan. Timings are wall-clock seconds of the pure functions only (no I/O), best of --repeat.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd

from receivables.aging import BUCKET_COLUMNS, aging
from receivables.dunning import consolidate, evaluate_ladder, load_policy

AS_OF = pd.Timestamp("2026-11-05")


def synthetic(n: int, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame, set[str]]:
    rng = np.random.default_rng(seed)
    ids = pd.Series(np.arange(n), dtype="int64").astype("string")
    ps = "PS" + ids
    customers = "C" + (pd.Series(np.arange(n) // 50, dtype="int64")).astype("string")
    currency = np.array(["EUR", "USD", "GBP"], dtype=object)[(np.arange(n) // 50) % 3]
    due = AS_OF - pd.to_timedelta(rng.integers(-60, 300, n), unit="D")
    original = rng.integers(1_000, 5_000_000, n)
    paid = np.where(rng.random(n) < 0.2, original // 2, 0)
    remaining = original - paid
    items = pd.DataFrame({
        "payment_schedule_id": ps, "trx_number": "T" + ids, "trx_class": np.where(rng.random(n) < 0.03, "CM", "INV"),
        "customer_id": customers, "business_unit": "BG01", "currency": pd.array(currency, dtype="string"),
        "trx_date": due - pd.Timedelta(days=30), "due_date": due, "installment": 1,
        "amount_due_original_cents": original, "amount_due_remaining_cents": remaining,
        "amount_in_dispute_cents": np.where(rng.random(n) < 0.05, remaining // 3, 0),
        "status": np.where(remaining != 0, "OP", "CL")})
    items.loc[items["trx_class"] == "CM", ["amount_due_original_cents", "amount_due_remaining_cents"]] *= -1
    has = rng.random(n) < 0.4
    dpd = (AS_OF - due).days.to_numpy()
    level = np.clip(dpd[has] // 25, 1, 5)
    history = pd.DataFrame({"payment_schedule_id": ps[has].to_numpy(), "level": level,
                            "action_date": AS_OF - pd.to_timedelta(rng.integers(1, 40, int(has.sum())), unit="D")})
    plan = set(ps[rng.random(n) < 0.02])
    return items, history, plan


def best(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    policy = load_policy()
    t0 = time.perf_counter()
    items, history, plan = synthetic(args.items)
    gen = time.perf_counter() - t0
    t_aging, ag = best(lambda: aging(items, AS_OF), args.repeat)
    t_ladder, lad = best(lambda: evaluate_ladder(items, AS_OF, policy, history=history, plan_items=plan),
                         args.repeat)
    t_cons, acts = best(lambda: consolidate(lad, policy), args.repeat)
    open_total = int(items.loc[items["status"] == "OP", "amount_due_remaining_cents"].sum())
    print(json.dumps({
        "open_items": int((items["status"] == "OP").sum()), "items": len(items),
        "customers": int(items["customer_id"].nunique()), "generate_seconds": round(gen, 3),
        "aging_seconds": round(t_aging, 3), "ladder_seconds": round(t_ladder, 3),
        "consolidate_seconds": round(t_cons, 3), "overdue_items": len(lad),
        "proposed_items": int((lad["proposed_level"] > 0).sum()), "actions": len(acts),
        "aging_ties_to_open_amounts": bool(int(ag[list(BUCKET_COLUMNS)].to_numpy().sum()) == open_total
                                           == int(ag["total_cents"].sum())),
    }, indent=1))


if __name__ == "__main__":
    main()
