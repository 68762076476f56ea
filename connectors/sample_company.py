"""A seeded, realistic sample company: the embedded default source of the close.

`generate(period, n_items, seed)` builds every input dataset in the canonical schema for closing
`period`. Same arguments, same data, byte for byte. Sizes run from a demo (10,000 items, well under a
second) to bench sizes (millions; generation is vectorised).

Seeded faults, at rates in `FaultRates`, so every rule and every check has real cases: missing bill
rates, activity outside the contract term, duplicate items, unapproved time, bill holds, customers on
credit hold or missing a required PO, quarterly invoicing, non-billable time, reversals of items billed
in an earlier period, cost transfers between projects, capped lines that run over, a contract still in
BGN after Bulgaria's euro changeover, and tracker additions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from billing import columns as col
from billing.periods import Period
from billing.schema import conform

BUSINESS_UNITS = {
    # unit: (main currency, tax country, VAT basis points)
    "BG01": ("EUR", "BG", 2000),
    "DE01": ("EUR", "DE", 1900),
    "UK01": ("GBP", "GB", 2000),
    "US01": ("USD", "US", 0),
}
ROLES = ("Partner", "Manager", "Senior Consultant", "Consultant", "Analyst")
ROLE_RATE_CENTS = np.array([32000, 22000, 16000, 12000, 8500])   # list bill rate per hour
ROLE_COST_CENTS = np.array([15000, 9500, 7000, 5200, 3600])      # cost per hour
SERVICE_LINES = ("Advisory", "Implementation", "Managed Services", "Data & Analytics", "Training")
EXPENSE_TYPES = ("travel", "lodging", "meals", "materials", "subcontract", "software")
NAMES = ("Acme", "Borealis", "Cobalt", "Danube", "Everest", "Fjord", "Granite", "Helix", "Iris", "Juniper",
         "Kestrel", "Lumen", "Meridian", "Nimbus", "Orion", "Pioneer", "Quarry", "Rila", "Sierra", "Tundra",
         "Umbra", "Vitosha", "Willow", "Xenon", "Yarrow", "Zenith")
MILESTONE_NAMES = ("Design", "Build", "Test", "Go-live", "Hypercare")
SUFFIX = {"BG01": "EOOD", "DE01": "GmbH", "UK01": "Ltd", "US01": "Inc."}


@dataclass(frozen=True)
class FaultRates:
    """Share of records carrying each seeded fault."""

    missing_rate_contracts: float = 0.04   # T&M contracts whose rate card lacks one role in use
    outside_term: float = 0.01             # items dated after their contract ended
    duplicate: float = 0.005               # items entered twice
    unapproved: float = 0.02               # timecards/expenses not yet approved
    bill_hold: float = 0.01                # items on bill hold
    non_billable: float = 0.03             # non-billable items
    reversal: float = 0.003                # reversals of items billed last period
    transfer: float = 0.001                # cost transfers between projects
    credit_hold_customers: float = 0.05
    missing_po_customers: float = 0.04
    quarterly_customers: float = 0.08


def _gln(base12: int) -> str:
    """A 13-digit GLN (Peppol scheme 0088) with its GS1 mod-10 check digit."""
    digits = f"{base12:012d}"
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return digits + str((10 - total % 10) % 10)


def _text(values) -> pa.Array:
    return pa.array(values.to_numpy(dtype=object) if isinstance(values, pd.Series) else list(values),
                    type=pa.large_string())


def _series(values: pa.Array) -> pd.Series:
    return pd.Series(pd.arrays.ArrowStringArray(values), copy=False)


def _nulls(n: int) -> pd.Series:
    return _series(pa.nulls(n, type=pa.large_string()))


@dataclass(frozen=True)
class SampleSpec:
    period: Period
    n_items: int = 10_000
    seed: int = 20261
    faults: FaultRates = field(default_factory=FaultRates)


def generate(period: Period, n_items: int = 10_000, seed: int = 20261,
             faults: FaultRates | None = None) -> dict[str, pd.DataFrame]:
    """All input datasets of the sample company for closing `period`."""
    return _Generator(SampleSpec(period, n_items, seed, faults or FaultRates())).build()


class _Generator:
    def __init__(self, spec: SampleSpec):
        self.spec = spec
        self.rng = np.random.default_rng(spec.seed)
        self.p = spec.period

    # -- reference data -------------------------------------------------------------------------
    def build(self) -> dict[str, pd.DataFrame]:
        customers = self.customers()
        contracts = self.contracts(customers)
        scope, rates, milestones_, prior = self.scope(contracts)
        projects = self.projects(contracts)
        items, prior_items = self.items(projects, contracts, scope, rates)
        prior = pd.concat([prior, prior_items], ignore_index=True)
        tracker = self.tracker(contracts, projects)
        raw = {
            "customers": customers, "contracts": contracts, "scope_lines": scope, "rate_card": rates,
            "projects": projects, "expenditure_items": items, "milestones": milestones_,
            "prior_invoice_lines": prior, "tracker_additions": tracker,
        }
        return {name: conform(df, col.INPUT_DATASETS[name], origin=f"sample:{name}")
                for name, df in raw.items()}

    def customers(self) -> pd.DataFrame:
        rng, f = self.rng, self.spec.faults
        n = int(np.clip(self.spec.n_items // 250, 12, 4000))
        units = np.array(list(BUSINESS_UNITS))[np.arange(n) % len(BUSINESS_UNITS)]
        cur = np.array([BUSINESS_UNITS[u][0] for u in units], dtype=object)
        # A quarter of the US unit's customers are billed in EUR (European subsidiaries).
        cur[(units == "US01") & (rng.random(n) < 0.25)] = "EUR"
        ids = np.array([f"C{i:05d}" for i in range(1, n + 1)], dtype=object)
        names = [f"{NAMES[i % len(NAMES)]} {['Systems', 'Foods', 'Logistics', 'Energy', 'Health'][i // len(NAMES) % 5]}"
                 f" {i // 130 + 1 if i >= 130 else ''}".strip() + f" {SUFFIX[u]}" for i, u in enumerate(units)]
        channel = rng.choice(col.DELIVERY_CHANNELS, size=n, p=[0.5, 0.15, 0.1, 0.05, 0.2])
        po_required = rng.random(n) < 0.35
        po = np.array([f"PO-{rng.integers(100000, 999999)}" for _ in range(n)], dtype=object)
        missing_po = po_required & (rng.random(n) < f.missing_po_customers / 0.35)
        po = np.where(po_required & ~missing_po, po, None)
        credit_hold = rng.random(n) < f.credit_hold_customers
        quarterly = rng.random(n) < f.quarterly_customers
        # Even a small company shows each customer-level fault at least once (fixed customers).
        if f.missing_po_customers > 0:
            po_required[5], missing_po[5] = True, True
            po[5] = None
        if f.credit_hold_customers > 0:
            credit_hold[7] = True
        if f.quarterly_customers > 0:
            quarterly[9] = True
        tax_country = [BUSINESS_UNITS[u][1] for u in units]
        tax_bp = [BUSINESS_UNITS[u][2] for u in units]
        return pd.DataFrame({
            "customer_id": ids, "customer_name": names,
            "customer_class": rng.choice(col.CUSTOMER_CLASSES, size=n, p=[0.5, 0.2, 0.3]),
            "currency": cur, "payment_terms_days": rng.choice([14, 30, 30, 45, 60], size=n),
            "invoice_grouping": rng.choice(col.INVOICE_GROUPINGS, size=n, p=[0.5, 0.2, 0.3]),
            "invoice_frequency": np.where(quarterly, "quarterly", "monthly"),
            "delivery_channel": channel,
            "billing_email": [f"ap@{x.split()[0].lower()}{i}.example" for i, x in enumerate(names)],
            "peppol_endpoint_id": np.where(channel == "peppol",
                                           [f"0088:{_gln(579000000000 + i)}" for i in range(n)], None),
            "po_required": po_required, "po_number": po,
            "backup_required": rng.choice(col.BACKUP_REQUIREMENTS, size=n, p=[0.6, 0.3, 0.1]),
            "credit_hold": credit_hold,
            "credit_limit_cents": rng.choice([5_000_000, 10_000_000, 25_000_000, 50_000_000], size=n),
            "tax_country": tax_country, "tax_rate_bp": tax_bp,
            "business_unit": units,  # not canonical: used below to place contracts
        })

    def contracts(self, customers: pd.DataFrame) -> pd.DataFrame:
        rng = self.rng
        per = rng.integers(1, 4, size=len(customers))
        cust = customers.loc[customers.index.repeat(per)].reset_index(drop=True)
        n = len(cust)
        kind = rng.choice(["tm", "fixed", "milestone", "recurring"], size=n, p=[0.6, 0.15, 0.1, 0.15])
        p_start = pd.Timestamp(self.p.start)
        start = p_start - pd.to_timedelta(rng.integers(60, 700, size=n), unit="D")
        end = p_start + pd.to_timedelta(rng.integers(90, 700, size=n), unit="D")
        # Some contracts ended mid-period: activity after their end is "outside_contract_term".
        ends_mid = rng.random(n) < self.spec.faults.outside_term * 8
        end = end.where(~ends_mid, p_start + pd.Timedelta(days=14))
        currency = cust["currency"].to_numpy().copy()
        # One Bulgarian contract still set up in BGN after the euro changeover: a set-up fault.
        if self.p >= Period(2026, 1):
            bg = np.flatnonzero(cust["business_unit"].to_numpy() == "BG01")
            if len(bg):
                currency[bg[len(bg) // 2]] = "BGN"
        return pd.DataFrame({
            "contract_id": [f"K{i:06d}" for i in range(1, n + 1)],
            "customer_id": cust["customer_id"], "contract_name": [
                f"{SERVICE_LINES[i % 5]} {k.upper() if k == 'tm' else k.title()} {i + 1}" for i, k in enumerate(kind)],
            "business_unit": cust["business_unit"], "currency": currency,
            "start_date": start.normalize(), "end_date": end.normalize(),
            "po_number": None, "kind": kind,
        })

    def scope(self, contracts: pd.DataFrame):
        rng, p = self.rng, self.p
        scope_rows, rate_rows, ms_rows, prior_rows = [], [], [], []
        prev = p.previous()
        rate_change = pd.Timestamp(p.start) + pd.Timedelta(days=15)
        for c in contracts.itertuples(index=False):
            sl = 0

            def line(billing_type, role=None, amount=None, installments=None, nte=None, markup=None,
                     _c=c):
                nonlocal sl
                sl += 1
                sid = f"{_c.contract_id}-L{sl}"
                scope_rows.append(dict(
                    scope_line_id=sid, contract_id=_c.contract_id, quote_id=f"Q{_c.contract_id[1:]}",
                    service_line=SERVICE_LINES[int(_c.contract_id[1:]) % 5], billing_type=billing_type,
                    role=role, amount_cents=amount, installments=installments, not_to_exceed_cents=nte,
                    markup_bp=markup, start_date=_c.start_date, end_date=_c.end_date))
                return sid

            kind = c.kind
            if kind in ("tm", "recurring"):
                capped = rng.random() < 0.3
                nte = int(rng.integers(20, 60)) * 1_000_000 if capped else None  # 200k-600k
                sid = line("time_and_materials", nte=nte)
                if capped:
                    # Earlier periods already used most of the cap on some lines.
                    used = int(nte * rng.uniform(0.5, 0.995))
                    prior_rows.append(dict(invoice_id=f"INV-{prev}-{c.contract_id}", line_no=1,
                                           period=str(prev), contract_id=c.contract_id, scope_line_id=sid,
                                           source_kind="labor", source_id=f"{c.contract_id}-history",
                                           quantity_milli=0, amount_cents=used))
                drop_role = (rng.random() < self.spec.faults.missing_rate_contracts)
                for r, role in enumerate(ROLES):
                    if drop_role and r == 3:
                        continue  # seeded fault: the Consultant rate is missing from this contract
                    base = int(ROLE_RATE_CENTS[r] * rng.uniform(0.85, 1.15)) // 100 * 100
                    if rng.random() < 0.2:
                        # A rate increase effective mid-period: items split by date.
                        rate_rows.append(dict(contract_id=c.contract_id, role=role, bill_rate_cents=base,
                                              effective_from=c.start_date,
                                              effective_to=rate_change - pd.Timedelta(days=1)))
                        rate_rows.append(dict(contract_id=c.contract_id, role=role,
                                              bill_rate_cents=base + base // 20 // 100 * 100 + 500,
                                              effective_from=rate_change, effective_to=None))
                    else:
                        rate_rows.append(dict(contract_id=c.contract_id, role=role, bill_rate_cents=base,
                                              effective_from=c.start_date, effective_to=None))
            if kind == "recurring":
                line("recurring", amount=int(rng.integers(20, 200)) * 10_000)
            if kind == "fixed":
                total = int(rng.integers(50, 500)) * 100_000 + int(rng.integers(0, 100)) * 1
                n_inst = int(rng.choice([3, 6, 12]))
                sid = line("fixed_fee", amount=total, installments=n_inst)
                start_idx = Period(c.start_date.year, c.start_date.month).index()
                billed_before = min(max(p.index() - start_idx, 0), n_inst)
                share = total // n_inst
                for k in range(1, billed_before + 1):
                    amt = share + (total - share * n_inst if k == n_inst else 0)
                    prior_rows.append(dict(invoice_id=f"INV-FF-{c.contract_id}-{k}", line_no=1,
                                           period=str(p.previous()), contract_id=c.contract_id,
                                           scope_line_id=sid, source_kind="fixed_fee",
                                           source_id=f"{sid}:{k}", quantity_milli=1000, amount_cents=amt))
            if kind == "milestone":
                sid = line("milestone")
                for m in range(1, int(rng.integers(3, 6)) + 1):
                    amt = int(rng.integers(10, 200)) * 100_000
                    state = rng.choice(["billed", "this_period", "future"], p=[0.4, 0.3, 0.3])
                    done = None
                    if state == "billed":
                        done = pd.Timestamp(p.start) - pd.Timedelta(days=int(rng.integers(20, 200)))
                        prior_rows.append(dict(invoice_id=f"INV-MS-{sid}-{m}", line_no=1,
                                               period=str(prev), contract_id=c.contract_id, scope_line_id=sid,
                                               source_kind="milestone", source_id=f"{sid}-M{m}",
                                               quantity_milli=1000, amount_cents=amt))
                    elif state == "this_period":
                        done = pd.Timestamp(p.start) + pd.Timedelta(days=int(rng.integers(0, p.days)))
                    ms_rows.append(dict(milestone_id=f"{sid}-M{m}", scope_line_id=sid,
                                        description=f"Milestone {m}: {MILESTONE_NAMES[m - 1]} accepted",
                                        amount_cents=amt, completed_date=done))
            if kind != "recurring" and rng.random() < 0.92:
                markup = int(rng.choice([0, 500, 1000, 1500])) or None
                line("expense", markup=markup)
        scope = pd.DataFrame(scope_rows)
        rates = pd.DataFrame(rate_rows, columns=["contract_id", "role", "bill_rate_cents", "effective_from",
                                                 "effective_to"])
        ms = pd.DataFrame(ms_rows, columns=["milestone_id", "scope_line_id", "description", "amount_cents",
                                            "completed_date"])
        prior = pd.DataFrame(prior_rows, columns=col.PRIOR_INVOICE_LINES.names)
        return scope, rates, ms, prior

    def projects(self, contracts: pd.DataFrame) -> pd.DataFrame:
        per = self.rng.integers(1, 3, size=len(contracts))
        c = contracts.loc[contracts.index.repeat(per)].reset_index(drop=True)
        seq = c.groupby("contract_id").cumcount() + 1
        return pd.DataFrame({
            "project_id": c["contract_id"].str.replace("K", "P", regex=False) + "-" + seq.astype(str),
            "project_name": c["contract_name"] + " / workstream " + seq.astype(str),
            "contract_id": c["contract_id"], "business_unit": c["business_unit"],
        })

    # -- activity ---------------------------------------------------------------------------------
    def items(self, projects, contracts, scope, rates):
        rng, f, p = self.rng, self.spec.faults, self.p
        n = self.spec.n_items
        # Project sizes follow a skewed distribution, as real portfolios do.
        weights = rng.pareto(1.5, size=len(projects)) + 0.2
        # Most booked time sits on T&M work; fee-based contracts carry less, unbilled, cost.
        kind = projects["contract_id"].map(contracts.set_index("contract_id")["kind"]).to_numpy()
        weights = weights * np.where(np.isin(kind, ["fixed", "milestone"]), 0.35, 1.0)
        proj = rng.choice(len(projects), size=n, p=weights / weights.sum())
        # Text columns are built as Arrow arrays (a take from a small list of values): at millions of
        # items, Python objects per row cost more than the rest of the generation.
        project_ids = _text(projects["project_id"]).take(pa.array(proj))
        is_labor = rng.random(n) < 0.8
        # Each person books about 40 entries a month, at most two a day, at most 8 h each: a
        # realistic timesheet that passes the per-person-day hours check unless a fault is seeded.
        idx = rng.permutation(n)
        person = idx // 40 + 1
        day = (idx % 40) // 2 % p.days
        aged = rng.random(n) < 0.06
        offset = np.where(aged, -1 - (idx % 150), day)
        dates = np.datetime64(p.start.isoformat(), "D") + offset.astype("timedelta64[D]")
        role_idx = rng.choice(len(ROLES), size=n, p=[0.05, 0.15, 0.3, 0.3, 0.2])
        quarter_hours = rng.integers(1, 33, size=n)  # 0.25 h .. 8 h
        qty_labor = quarter_hours * 250
        cost_labor = quarter_hours * ROLE_COST_CENTS[role_idx] // 4
        # Drawing positions draws the same numbers as drawing the names (same stream, same result).
        exp_type = rng.choice(len(EXPENSE_TYPES), size=n, p=[0.3, 0.25, 0.2, 0.1, 0.1, 0.05])
        cost_exp = (rng.lognormal(mean=9.5, sigma=0.9, size=n)).astype(np.int64) + 100
        items = pd.DataFrame({
            "item_id": pd.Series(np.arange(1, n + 1)).map("EI{:08d}".format) if n < 200_000 else
            ("EI" + pd.Series(np.arange(1, n + 1), dtype="int64").astype("string").str.zfill(8)),
            "project_id": _series(project_ids),
            "expenditure_date": dates.astype("datetime64[ns]"),
            "person_id": "E" + pd.Series(person).astype("string").str.zfill(5),
            "role": _series(_text(ROLES).take(pa.array(role_idx, mask=~is_labor))),
            "expenditure_type": _series(_text(("labor", *EXPENSE_TYPES)).take(
                pa.array(np.where(is_labor, 0, exp_type + 1)))),
            "quantity_milli": np.where(is_labor, qty_labor, 1000),
            "raw_cost_cents": np.where(is_labor, cost_labor, cost_exp),
            "billable": rng.random(n) >= f.non_billable,
            "bill_hold": rng.random(n) < f.bill_hold,
            "approved": ~(rng.random(n) < f.unapproved),
            "billed_period": _nulls(n), "adjusts_item_id": _nulls(n), "adjustment_type": _nulls(n),
        })
        # Older items were mostly left unbilled for a reason: put most of the aged tail on hold.
        aged_hold = aged & (rng.random(n) < 0.5)
        items.loc[aged_hold, "bill_hold"] = True
        # Duplicates: the same entry keyed in twice.
        n_dup = int(n * f.duplicate)
        prior_rows = []
        extra = []
        if n_dup:
            src = rng.choice(n, size=n_dup, replace=False)
            dup = items.iloc[src].copy()
            dup["item_id"] = [f"EI{n + 1 + i:08d}D" for i in range(n_dup)]
            extra.append(dup)
        # Reversals of items billed last period: the original appears in prior invoice lines.
        n_rev = int(n * f.reversal)
        if n_rev:
            src = rng.choice(np.flatnonzero(is_labor), size=n_rev, replace=False)
            rev = items.iloc[src].copy()
            orig_ids = [f"EIH{i:07d}" for i in range(1, n_rev + 1)]
            prev = p.previous()
            rate_by = rates.drop_duplicates(["contract_id", "role"]).set_index(["contract_id", "role"])[
                "bill_rate_cents"]
            proj_contract = projects.set_index("project_id")["contract_id"]
            tm = scope[scope["billing_type"] == "time_and_materials"].drop_duplicates("contract_id").set_index(
                "contract_id")["scope_line_id"]
            # Only reversals of items whose contract has a T&M line and a rate for the role were billed.
            cids = proj_contract.reindex(rev["project_id"].to_numpy(dtype=object)).to_numpy(dtype=object)
            rate = rate_by.reindex(pd.MultiIndex.from_arrays([cids, rev["role"].to_numpy(dtype=object)]))
            billed = rate.notna().to_numpy() & pd.Index(cids).isin(tm.index)
            keep = np.flatnonzero(billed).tolist()
            qty, rate_of = rev["quantity_milli"].to_numpy(), rate.to_numpy()
            tm_line = tm.to_dict()
            for k in keep:
                cid = cids[k]
                prior_rows.append(dict(invoice_id=f"INV-{prev}-{cid}", line_no=100 + k, period=str(prev),
                                       contract_id=cid, scope_line_id=tm_line[cid], source_kind="labor",
                                       source_id=orig_ids[k], quantity_milli=int(qty[k]),
                                       amount_cents=int(qty[k]) * int(rate_of[k]) // 1000))
            rev = rev.iloc[keep].copy()
            rev["item_id"] = [f"EIR{i:07d}" for i in range(1, len(rev) + 1)]
            rev["adjusts_item_id"] = [orig_ids[k] for k in keep]
            rev["adjustment_type"] = "reversal"
            rev["quantity_milli"] = -rev["quantity_milli"]
            rev["raw_cost_cents"] = -rev["raw_cost_cents"]
            rev["approved"] = True
            rev["bill_hold"] = False
            rev["billable"] = True
            rev["expenditure_date"] = np.datetime64(p.start.isoformat(), "ns") + np.timedelta64(3, "D")
            extra.append(rev)
        # Cost transfers: time booked to the wrong project moved to the right one this period.
        n_tr = int(n * f.transfer)
        if n_tr:
            src = rng.choice(np.flatnonzero(is_labor & (offset >= 0)), size=n_tr, replace=False)
            out_ = items.iloc[src].copy()
            in_ = out_.copy()
            targets = rng.choice(projects["project_id"].to_numpy(), size=n_tr)
            out_["item_id"] = [f"EIT{i:07d}O" for i in range(1, n_tr + 1)]
            in_["item_id"] = [f"EIT{i:07d}I" for i in range(1, n_tr + 1)]
            out_["adjusts_item_id"] = items["item_id"].iloc[src].to_numpy()
            in_["adjusts_item_id"] = items["item_id"].iloc[src].to_numpy()
            out_["adjustment_type"] = "transfer_out"
            in_["adjustment_type"] = "transfer_in"
            out_["quantity_milli"] = -out_["quantity_milli"]
            out_["raw_cost_cents"] = -out_["raw_cost_cents"]
            in_["project_id"] = targets
            extra += [out_, in_]
        # A few items already billed come back in the extract (a known Oracle re-extract fault).
        n_prev = max(1, n // 2000)
        items.loc[rng.choice(n, size=n_prev, replace=False), "billed_period"] = str(p.previous())
        if extra:
            items = pd.concat([items, *extra], ignore_index=True)
        prior = pd.DataFrame(prior_rows, columns=col.PRIOR_INVOICE_LINES.names)
        return items, prior

    def tracker(self, contracts, projects) -> pd.DataFrame:
        rng, p = self.rng, self.p
        k = max(3, len(contracts) // 25)
        pick = rng.choice(len(contracts), size=k, replace=False)
        c = contracts.iloc[pick].reset_index(drop=True)
        what = rng.choice(["Change request approved by email", "Out-of-pocket courier fee",
                           "Workshop room hire", "Goodwill credit agreed with customer"], size=k)
        amount = np.where(what == "Goodwill credit agreed with customer", -1, 1) * (
            rng.integers(5, 300, size=k) * 1000)
        first_project = projects.drop_duplicates("contract_id").set_index("contract_id")["project_id"]
        return pd.DataFrame({
            "addition_id": [f"TRK-{p}-{i:04d}" for i in range(1, k + 1)],
            "contract_id": c["contract_id"], "project_id": c["contract_id"].map(first_project),
            "description": what, "amount_cents": amount,
            "service_date": pd.Timestamp(p.start) + pd.to_timedelta(rng.integers(0, p.days, size=k), unit="D"),
            "source": [f"billing-tracker-{p}.xlsx:Additions:row {i + 2}" for i in range(k)],
            "entered_by": rng.choice(["m.ivanova", "j.smith", "a.muller"], size=k),
        })
