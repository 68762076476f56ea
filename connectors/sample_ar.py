"""The sample company's receivables history: the embedded default source of collections.

`generate_ar(as_of)` builds 24 months of invoices and payments for the sample company's customers
(connectors.sample_company.generate), seeded and deterministic: same arguments, same frames. Each
customer pays according to a profile, so every collections step has real cases:

| profile | behaviour |
|---|---|
| prompt | pays around the due date |
| late | pays 5-40 days late |
| chronic | pays 45-100 days late (reaches the final notice and disconnection) |
| stopped | paid late, then stopped paying 8 months ago (hard-disconnected in the history; escalation) |
| partial | pays about 60% first, the rest weeks later |
| disputer | pays late and disputes part of its recent invoices |
| plan_breaker | stopped paying 6 months ago, agreed a payment plan, paid one installment, missed the next |

Fixed customers carry the named cases (C00001 chronic, C00002 stopped, C00003 partial, C00004
disputer, C00005 late and flagged "do not dun", C00006 plan breaker); the rest draw a profile. Credit
memos (3% of invoices, applied) and a few unapplied credits appear too.

Beside the ledger (open items, receipts, applications, accounts, notes) it returns the collections
history up to a week before the as-of date: letters sent per the default policy's ladder, service
requests for the stopped customer, open disputes and the payment plan. `load_history` puts all of it in
the store; `load_oracle` fills the Oracle-shaped AR tables (connectors.oracle_ar) for the connector test.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from billing.periods import Period
from billing.schema import conform
from receivables.datasets import ACCOUNT_NOTES, COLLECTION_ACCOUNTS, RECEIPT_APPLICATIONS
from receivables.dunning import DunningPolicy, load_policy
from receivables.open_items import CASH_RECEIPTS, OPEN_ITEMS

PROFILES = ("prompt", "late", "chronic", "stopped", "partial", "disputer", "plan_breaker")
FIXED_PROFILES = {0: "chronic", 1: "stopped", 2: "partial", 3: "disputer", 4: "late", 5: "plan_breaker", 6: "prompt"}
COLLECTORS = ("Maria Ivanova", "Georgi Petrov", "Elena Dimitrova")
DO_NOT_DUN = {4: "Insolvency administrator appointed; claim filed in the proceedings"}
HISTORY_GAP_DAYS = 7  # the history stops a week before the as-of date: the run has a week of work
UNIT_BY_COUNTRY = {"BG": "BG01", "DE": "DE01", "GB": "UK01", "US": "US01"}


def generate_ar(as_of: date, customers: pd.DataFrame | None = None, months: int = 24, seed: int = 20261,
                policy: DunningPolicy | None = None) -> dict[str, pd.DataFrame]:
    """The ledger and collections history of the sample company as of `as_of` (see the module doc)."""
    as_of = pd.Timestamp(as_of).normalize()
    if customers is None:
        from connectors.sample_company import generate

        p = Period(as_of.year, as_of.month).previous()
        customers = generate(p, 10_000, seed)["customers"]
    return _ArGenerator(as_of, customers.reset_index(drop=True), months, seed, policy or load_policy()).build()


class _ArGenerator:
    def __init__(self, as_of: pd.Timestamp, customers: pd.DataFrame, months: int, seed: int,
                 policy: DunningPolicy):
        self.as_of, self.customers, self.months, self.policy = as_of, customers, months, policy
        self.rng = np.random.default_rng(seed + 7)
        n = len(customers)
        drawn = self.rng.choice(PROFILES[:6], size=n, p=[0.45, 0.25, 0.1, 0.05, 0.1, 0.05])
        self.profile = np.array([FIXED_PROFILES.get(i, drawn[i]) for i in range(n)], dtype=object)

    def build(self) -> dict[str, pd.DataFrame]:
        items, pays = self.invoices()
        items, receipts, apps = self.payments(items, pays)
        items, credits, credit_apps = self.credit_memos(items)
        apps = pd.concat([apps, credit_apps], ignore_index=True)
        items = pd.concat([items, credits], ignore_index=True)
        items["status"] = np.where(items["amount_due_remaining_cents"] != 0, "OP", "CL")
        self.disputes_in_source(items)
        accounts = self.accounts()
        plan = self.plan(items, receipts)
        receipts = pd.concat([receipts, plan.pop("receipts")], ignore_index=True)
        notes = self.notes(items)
        actions, action_items, service = self.dunning_history(items, plan["plan_items"])
        disputes = self.register(items)
        out = {
            "open_items": conform(items, OPEN_ITEMS, origin="sample_ar:open_items"),
            "cash_receipts": conform(receipts, CASH_RECEIPTS, origin="sample_ar:cash_receipts"),
            "receipt_applications": conform(apps, RECEIPT_APPLICATIONS, origin="sample_ar:receipt_applications"),
            "collection_accounts": conform(accounts, COLLECTION_ACCOUNTS, origin="sample_ar:collection_accounts"),
            "account_notes": conform(notes, ACCOUNT_NOTES, origin="sample_ar:account_notes"),
            "actions": actions, "action_items": action_items, "service_requests": service, "disputes": disputes,
            **plan,
        }
        return out

    # -- ledger -----------------------------------------------------------------------------------------
    def invoices(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        rng, c = self.rng, self.customers
        rows = []
        first = Period(self.as_of.year, self.as_of.month)
        for _ in range(self.months):
            first = first.previous()
        for i, cust in enumerate(c.itertuples(index=False)):
            p = first
            for _m in range(self.months):
                trx_date = pd.Timestamp(p.end)
                gross = int(rng.lognormal(mean=13.3, sigma=0.6)) // 100 * 100 + int(rng.integers(0, 100))
                split = rng.random() < 0.1
                shares = [gross // 2, gross - gross // 2] if split else [gross]
                for k, amount in enumerate(shares, start=1):
                    trx = f"INV-{p}-{cust.customer_id}-H-{cust.currency}"
                    rows.append({
                        "payment_schedule_id": f"PS-{trx}-{k}", "trx_number": trx, "trx_class": "INV",
                        "customer_id": cust.customer_id, "business_unit": UNIT_BY_COUNTRY.get(cust.tax_country, "BG01"),
                        "currency": cust.currency, "trx_date": trx_date,
                        "due_date": trx_date + pd.Timedelta(days=int(cust.payment_terms_days) + 30 * (k - 1)),
                        "installment": k, "amount_due_original_cents": amount, "amount_due_remaining_cents": amount,
                        "amount_in_dispute_cents": 0, "profile": self.profile[i]})
                p = p.next()
        items = pd.DataFrame(rows)
        n = len(items)
        prof = items["profile"].to_numpy()
        late = np.select(
            [prof == "prompt", prof == "late", prof == "chronic", prof == "disputer", prof == "partial"],
            [rng.integers(-5, 4, n), rng.integers(5, 41, n), rng.integers(45, 101, n), rng.integers(5, 31, n),
             rng.integers(0, 21, n)], default=rng.integers(5, 41, n))
        pay_date = items["due_date"] + pd.to_timedelta(late, unit="D")
        stop = np.select([prof == "stopped", prof == "plan_breaker"],
                         [self.as_of - pd.DateOffset(months=8), self.as_of - pd.DateOffset(months=6)],
                         default=pd.Timestamp.max.normalize())
        pays = pd.DataFrame({"row": np.arange(n), "pay_date": pay_date,
                             "share_bp": np.where(prof == "partial", 6000, 10_000)})
        pays = pays[items["trx_date"].to_numpy() < stop]
        # Partial payers pay the rest 40-120 days after the due date.
        part = pays[pays["share_bp"] < 10_000]
        rest = pd.DataFrame({"row": part["row"].to_numpy(), "pay_date": items["due_date"].to_numpy()[part["row"]]
                             + pd.to_timedelta(rng.integers(40, 121, len(part)), unit="D"), "share_bp": -1})
        return items, pd.concat([pays, rest], ignore_index=True)

    def payments(self, items: pd.DataFrame, pays: pd.DataFrame):
        pays = pays[pays["pay_date"] < self.as_of].sort_values(["pay_date", "row"]).reset_index(drop=True)
        original = items["amount_due_original_cents"].to_numpy()[pays["row"]]
        first_part = original * 6000 // 10_000
        amount = np.select([pays["share_bp"] == 10_000, pays["share_bp"] == 6000], [original, first_part],
                           default=original - first_part)
        ids = [f"CR-{i:07d}" for i in range(1, len(pays) + 1)]
        it = items.iloc[pays["row"]]
        receipts = pd.DataFrame({
            "cash_receipt_id": ids, "receipt_number": [f"BANK-{i:08d}" for i in range(1, len(pays) + 1)],
            "customer_id": it["customer_id"].to_numpy(), "currency": it["currency"].to_numpy(),
            "amount_cents": amount, "receipt_date": pays["pay_date"].to_numpy(), "status": "APP"})
        apps = pd.DataFrame({
            "application_id": [f"RA-{i:07d}" for i in range(1, len(pays) + 1)], "cash_receipt_id": ids,
            "payment_schedule_id": it["payment_schedule_id"].to_numpy(), "customer_id": it["customer_id"].to_numpy(),
            "currency": it["currency"].to_numpy(), "amount_applied_cents": amount,
            "apply_date": pays["pay_date"].to_numpy()})
        paid = pd.Series(amount).groupby(pays["row"].to_numpy()).sum()
        rem = items["amount_due_remaining_cents"].to_numpy().copy()
        rem[paid.index.to_numpy()] -= paid.to_numpy()
        items = items.assign(amount_due_remaining_cents=rem)
        return items, receipts, apps

    def credit_memos(self, items: pd.DataFrame):
        rng = self.rng
        inv = items[(items["installment"] == 1) & (items["amount_due_remaining_cents"] > 0)
                    & (items["trx_date"] < self.as_of - pd.Timedelta(days=20))]
        pick = inv.sample(frac=0.03, random_state=int(rng.integers(1 << 30))) if len(inv) else inv
        rows, apps = [], []
        rem = items["amount_due_remaining_cents"].to_numpy().copy()
        for k, (idx, r) in enumerate(pick.iterrows(), start=1):
            amount = int(r["amount_due_original_cents"] * int(rng.integers(10, 31)) // 100)
            amount = min(amount, int(rem[idx]))
            on = r["trx_date"] + pd.Timedelta(days=10)
            trx = f"CM-{r['trx_number'][4:]}-{k}"
            applied = k % 5 != 0  # every fifth credit stays unapplied (an open credit on the account)
            rows.append({"payment_schedule_id": f"PS-{trx}-1", "trx_number": trx, "trx_class": "CM",
                         "customer_id": r["customer_id"], "business_unit": r["business_unit"],
                         "currency": r["currency"], "trx_date": on, "due_date": on, "installment": 1,
                         "amount_due_original_cents": -amount,
                         "amount_due_remaining_cents": 0 if applied else -amount, "amount_in_dispute_cents": 0,
                         "profile": r["profile"]})
            if applied:
                rem[idx] -= amount
                apps.append({"application_id": f"CMA-{k:06d}", "cash_receipt_id": None,
                             "payment_schedule_id": r["payment_schedule_id"], "customer_id": r["customer_id"],
                             "currency": r["currency"], "amount_applied_cents": amount, "apply_date": on})
        items = items.assign(amount_due_remaining_cents=rem)
        return (items, pd.DataFrame(rows, columns=items.columns),
                pd.DataFrame(apps, columns=RECEIPT_APPLICATIONS.names))

    def disputes_in_source(self, items: pd.DataFrame) -> None:
        op = items[(items["profile"] == "disputer") & (items["status"] == "OP") & (items["trx_class"] == "INV")]
        last = op.sort_values("due_date").groupby("customer_id").tail(2).index
        items.loc[last, "amount_in_dispute_cents"] = items.loc[last, "amount_due_remaining_cents"] * 3 // 10

    def accounts(self) -> pd.DataFrame:
        c = self.customers
        limit = c["credit_limit_cents"].astype("Int64").copy()
        limit.iloc[1] = 2_000_000  # the stopped customer: a 20,000.00 limit it is far over
        return pd.DataFrame({
            "customer_id": c["customer_id"], "customer_name": c["customer_name"],
            "customer_class": c["customer_class"], "currency": c["currency"], "billing_email": c["billing_email"],
            "credit_limit_cents": limit,
            "collector": [COLLECTORS[i % len(COLLECTORS)] for i in range(len(c))],
            "do_not_dun": [i in DO_NOT_DUN for i in range(len(c))],
            "do_not_dun_reason": [DO_NOT_DUN.get(i) for i in range(len(c))]})

    def plan(self, items: pd.DataFrame, receipts: pd.DataFrame) -> dict[str, pd.DataFrame]:
        """The plan breaker's plan: approved 50 days ago, installment 1 paid, installment 2 missed."""
        cid = self.customers["customer_id"].iloc[5]
        cur = self.customers["currency"].iloc[5]
        agreed = self.as_of - pd.Timedelta(days=50)
        od = items[(items["customer_id"] == cid) & (items["status"] == "OP") & (items["trx_class"] == "INV")
                   & (items["due_date"] < agreed)]
        total = int(od["amount_due_remaining_cents"].sum())
        share = total // 4
        inst = pd.DataFrame({"plan_id": "PP-000001", "seq": [1, 2, 3, 4],
                             "due_date": [agreed + pd.Timedelta(days=10 + 30 * k) for k in range(4)],
                             "amount_cents": [share, share, share, total - 3 * share]})
        plans = pd.DataFrame([{"plan_id": "PP-000001", "customer_id": cid, "currency": cur, "total_cents": total,
                               "status": "active", "prepared_by": COLLECTORS[5 % 3], "approved_by": "Credit Manager",
                               "created_on": agreed - pd.Timedelta(days=2), "approved_on": agreed}])
        paid = pd.DataFrame([{"cash_receipt_id": "CR-PLAN-0001", "receipt_number": "BANK-PLAN-0001",
                              "customer_id": cid, "currency": cur, "amount_cents": share,
                              "receipt_date": inst["due_date"].iloc[0], "status": "UNAPP"}])
        return {"payment_plans": plans, "plan_installments": inst,
                "plan_items": pd.DataFrame({"plan_id": "PP-000001", "payment_schedule_id": od["payment_schedule_id"]}),
                "receipts": paid}

    def notes(self, items: pd.DataFrame) -> pd.DataFrame:
        rng = self.rng
        overdue = items[(items["status"] == "OP") & (items["due_date"] < self.as_of)]
        rows = []
        for k, (cid, g) in enumerate(overdue.groupby("customer_id", sort=True), start=1):
            author = COLLECTORS[int(cid[1:]) % len(COLLECTORS)]
            on = self.as_of - pd.Timedelta(days=int(rng.integers(10, 40)))
            promise = k % 3 == 0
            amount = int(g["amount_due_remaining_cents"].clip(lower=0).sum()) // 2
            rows.append({"note_id": f"N-{k:05d}", "customer_id": cid, "note_date": on, "author": author,
                         "text": "Called AP; promised to pay half by the date given" if promise
                         else "Called AP; invoice copies re-sent on request",
                         "promise_date": on + pd.Timedelta(days=7) if promise else None,
                         "promise_amount_cents": amount if promise else None,
                         "currency": g["currency"].iloc[0] if promise else None})
        return pd.DataFrame(rows, columns=ACCOUNT_NOTES.names)

    # -- collections history ----------------------------------------------------------------------------
    def dunning_history(self, items: pd.DataFrame, plan_items: pd.DataFrame):
        """Letters (levels 1-3; 4-5 for stopped customers) sent up to HISTORY_GAP_DAYS before as-of."""
        pol = self.policy
        until = self.as_of - pd.Timedelta(days=HISTORY_GAP_DAYS)
        od = items[(items["status"] == "OP") & (items["trx_class"] == "INV") & (items["due_date"] < until)]
        rows = []
        dnd = do_not_dun_ids(self.customers)
        for r in od.itertuples(index=False):
            if r.customer_id in dnd:
                continue
            top = 5 if r.profile == "stopped" else 3
            prev = None
            for lvl in range(1, top + 1):
                lv = pol.level(lvl)
                at = r.due_date + pd.Timedelta(days=lv.days_past_due)
                if prev is not None:
                    at = max(at, prev + pd.Timedelta(days=lv.wait_days))
                # The daily run works on working days: a weekend date goes out on Monday.
                at = at + pd.Timedelta(days=(7 - at.weekday()) % 7 if at.weekday() >= 5 else 0)
                if at > until:
                    break
                rows.append({"customer_id": r.customer_id, "as_of": at, "level": lvl,
                             "payment_schedule_id": r.payment_schedule_id, "currency": r.currency,
                             "overdue_cents": int(r.amount_due_remaining_cents - r.amount_in_dispute_cents)})
                prev = at
        h = pd.DataFrame(rows, columns=["customer_id", "as_of", "level", "payment_schedule_id", "currency",
                                        "overdue_cents"])
        h["kind"] = np.where(h["level"] >= 4, "service", "letter")
        h["action_key"] = (h["kind"] + ":" + h["customer_id"] + ":" + h["as_of"].dt.strftime("%Y-%m-%d"))
        head = h.sort_values("level").groupby("action_key").agg(
            customer_id=("customer_id", "first"), as_of=("as_of", "first"), kind=("kind", "first"),
            level=("level", "max")).reset_index()
        head["level_code"] = head["level"].map(lambda v: pol.level(int(v)).code)
        head["channel"] = head["level"].map(lambda v: pol.level(int(v)).channel)
        head["state"] = "sent"
        head["policy_version"] = pol.version_label
        items_out = h[["action_key", "payment_schedule_id", "level", "currency", "overdue_cents"]]
        # A customer is disconnected once per level: the first service action of each level is the request.
        svc = head[head["kind"] == "service"].sort_values("as_of").drop_duplicates(["customer_id", "level_code"])
        service = pd.DataFrame({
            "request_key": [f"sample-{k}" for k in svc["action_key"]], "customer_id": svc["customer_id"],
            "action": svc["level_code"], "source_key": svc["action_key"], "requested_on": svc["as_of"],
            "state": "delivered", "external_ref": "sample history"})
        return head, items_out, service

    def register(self, items: pd.DataFrame) -> pd.DataFrame:
        d = items[items["amount_in_dispute_cents"] > 0]
        return pd.DataFrame({
            "dispute_id": [f"D-{i:06d}" for i in range(1, len(d) + 1)],
            "payment_schedule_id": d["payment_schedule_id"].to_numpy(), "trx_number": d["trx_number"].to_numpy(),
            "customer_id": d["customer_id"].to_numpy(), "currency": d["currency"].to_numpy(),
            "amount_cents": d["amount_in_dispute_cents"].to_numpy(),
            "reason": "Hours billed above the agreed estimate", "owner": COLLECTORS[0], "level": 1,
            "status": "open", "opened_on": (d["due_date"] + pd.Timedelta(days=3)).to_numpy()})


def do_not_dun_ids(customers: pd.DataFrame) -> set[str]:
    return {customers["customer_id"].iloc[i] for i in DO_NOT_DUN if i < len(customers)}


def load_history(cstore, ar: dict[str, pd.DataFrame]) -> dict[str, int]:
    """Put the sample ledger and collections history in the store (once: a loaded ledger is left alone)."""
    from sqlalchemy import insert

    from store import receivables as t
    from store.db import _now
    from store.receivables import _records

    if cstore.ledger_loaded():
        return {}
    counts = cstore.load_ledger(ar, source="history")
    now = _now()
    with cstore.engine.begin() as c:
        acts = ar["actions"].assign(created_at=now, updated_at=now, sent_at=now)
        c.execute(insert(t.coll_actions), _records(acts, [k for k in acts.columns if k in t.coll_actions.c]))
        if len(ar["action_items"]):
            c.execute(insert(t.coll_action_items), _records(ar["action_items"], list(ar["action_items"].columns)))
        if len(ar["service_requests"]):
            svc = ar["service_requests"].assign(attempts=1, started_at=now, delivered_at=now)
            c.execute(insert(t.coll_service_requests), _records(svc, list(svc.columns)))
        if len(ar["disputes"]):
            d = ar["disputes"].assign(updated_at=now)
            c.execute(insert(t.coll_disputes), _records(d, list(d.columns)))
            ev = pd.DataFrame({"dispute_id": d["dispute_id"], "from_status": None, "to_status": "open",
                               "actor": d["owner"], "comment": d["reason"], "on_date": d["opened_on"], "at": now})
            c.execute(insert(t.coll_dispute_events), _records(ev, list(ev.columns)))
        for name, table in (("payment_plans", t.coll_plans), ("plan_installments", t.coll_plan_installments),
                            ("plan_items", t.coll_plan_items)):
            if len(ar[name]):
                c.execute(insert(table), _records(ar[name], list(ar[name].columns)))
    counts.update(actions=len(ar["actions"]), service_requests=len(ar["service_requests"]),
                  disputes=len(ar["disputes"]), payment_plans=len(ar["payment_plans"]))
    return counts
