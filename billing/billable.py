"""Billable activity of a period: every candidate billing event as one line, priced, with its reason.

`compute_billing_lines` turns the canonical input datasets into BILLING_LINES. Each input record that
can bill (an expenditure item, a fixed-fee installment, a milestone, a recurring fee, a tracker
addition) becomes exactly one line, so nothing is lost: a line is billed in full, billed in part (a
cap), or not billed with the first reason of billing.reasons.PRECEDENCE that applies.

Conventions (docs/CONVENTIONS.md): amounts are rounded half away from zero per line (per expenditure
item); a fixed fee is split in equal installments with the remainder on the last; a recurring fee is
prorated by calendar days of the month; credits for items billed in an earlier period reverse the
amount actually billed, and are exempt from term, approval, holds and caps.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from billing import columns as col
from billing.money import div_round_half_up, mul_div_round
from billing.periods import Period
from billing.reasons import PRECEDENCE, RANK
from billing.schema import empty_frame


def compute_billing_lines(data: Mapping[str, pd.DataFrame], period: Period,
                          quarantine: Mapping[str, set[str]] | None = None,
                          extra_credit_holds: set[str] | None = None) -> pd.DataFrame:
    """All candidate billing lines of `period`, priced and dispositioned (billed / not, with reason).

    data: canonical input datasets (billing.columns.INPUT_DATASETS).
    quarantine: dataset name -> record keys quarantined by the data-quality gate; those records get
        reason `data_quality` (activity) or are left out of the reference data (set-up rows).
    extra_credit_holds: customer ids on hold in the project's store (collections), on top of the
        source's credit_hold flag.
    """
    quarantine = quarantine or {}
    ref = _reference(data, quarantine, extra_credit_holds or set())
    prior = data["prior_invoice_lines"]
    prior = prior[prior["period"] < str(period)]
    parts = [
        _item_lines(data["expenditure_items"], ref, prior, period, quarantine.get("expenditure_items", set())),
        _installment_lines(ref, prior, period),
        _milestone_lines(data["milestones"], ref, prior, period, quarantine.get("milestones", set())),
        _recurring_lines(ref, prior, period),
        _tracker_lines(data["tracker_additions"], ref, prior, period, quarantine.get("tracker_additions", set())),
    ]
    lines = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) else None
    if lines is None:
        return empty_frame(col.BILLING_LINES)
    lines = _apply_holds(lines, ref, period)
    lines = _apply_caps(lines, ref, prior)
    lines["period"] = str(period)
    out = lines[col.BILLING_LINES.names].copy()
    for c in col.BILLING_LINES.columns:
        if c.dtype == "string":
            out[c.name] = out[c.name].astype("string")
        elif c.dtype == "int64":
            out[c.name] = out[c.name].astype("int64")
        elif c.dtype == "Int64":
            out[c.name] = out[c.name].astype("Int64")
        elif c.dtype == "bool":
            out[c.name] = out[c.name].astype("bool")
        elif c.dtype == "date":
            out[c.name] = out[c.name].astype("datetime64[ns]")
    return out.sort_values("line_id", kind="stable").reset_index(drop=True)


# --- reference data ---------------------------------------------------------------------------------
class _Ref:
    """Contracts joined to customers, scope lines and rates, after quarantined set-up rows are removed."""

    def __init__(self, contracts: pd.DataFrame, scope: pd.DataFrame, rates: pd.DataFrame,
                 projects: pd.DataFrame):
        self.contracts = contracts
        self.scope = scope
        self.rates = rates
        self.projects = projects


def _keys(df: pd.DataFrame, dataset: col.Dataset) -> pd.Series:
    k = df[list(dataset.key)].astype("string")
    out = k.iloc[:, 0]
    for c in k.columns[1:]:
        out = out + "|" + k[c].fillna("")
    return out


def _drop_quarantined(df: pd.DataFrame, dataset: col.Dataset, quarantine: Mapping[str, set[str]]):
    bad = quarantine.get(dataset.name)
    if not bad or df.empty:
        return df
    return df[~_keys(df, dataset).isin(bad).to_numpy()]


def _reference(data, quarantine, extra_holds) -> _Ref:
    customers = _drop_quarantined(data["customers"], col.CUSTOMERS, quarantine)
    contracts = _drop_quarantined(data["contracts"], col.CONTRACTS, quarantine)
    scope = _drop_quarantined(data["scope_lines"], col.SCOPE_LINES, quarantine)
    rates = _drop_quarantined(data["rate_card"], col.RATE_CARD, quarantine)
    projects = _drop_quarantined(data["projects"], col.PROJECTS, quarantine)
    cust = customers.rename(columns={"currency": "customer_currency", "po_number": "customer_po"})
    cust = cust.assign(credit_hold=cust["credit_hold"] | cust["customer_id"].isin(extra_holds))
    c = contracts.merge(cust[["customer_id", "customer_currency", "customer_po", "po_required", "credit_hold",
                              "invoice_frequency"]], on="customer_id", how="left")
    c["po_effective"] = c["po_number"].fillna(c["customer_po"])
    c["customer_known"] = c["customer_currency"].notna()
    fee_types = ["fixed_fee", "milestone", "recurring"]
    c["fee_based"] = c["contract_id"].isin(scope.loc[scope["billing_type"].isin(fee_types), "contract_id"])
    return _Ref(c.set_index("contract_id", drop=False), scope, rates, projects)


def _contract_cols(lines: pd.DataFrame, ref: _Ref) -> pd.DataFrame:
    """Attach contract-level columns (customer, unit, currency) by contract_id."""
    c = ref.contracts
    cid = lines["contract_id"]
    for name, src in (("customer_id", "customer_id"), ("business_unit", "business_unit"),
                      ("currency", "currency")):
        lines[name] = cid.map(c[src]).astype("string")
    return lines


# --- expenditure items --------------------------------------------------------------------------------
def _item_lines(items, ref: _Ref, prior, period: Period, quarantined: set[str]) -> pd.DataFrame:
    if items.empty:
        return items.iloc[0:0]
    proj = ref.projects.set_index("project_id")["contract_id"]
    df = pd.DataFrame({
        "source_id": items["item_id"].astype("string"),
        "project_id": items["project_id"].astype("string"),
        "service_date": items["expenditure_date"],
        "person_id": items["person_id"], "role": items["role"],
        "expenditure_type": items["expenditure_type"],
        "quantity_milli": items["quantity_milli"].astype("int64"),
        "cost_cents": items["raw_cost_cents"].astype("int64"),
        "adjusts_item_id": items["adjusts_item_id"], "adjustment_type": items["adjustment_type"],
    })
    df["contract_id"] = df["project_id"].map(proj).astype("string")
    df["source_kind"] = np.where(items["expenditure_type"].to_numpy() == "labor", "labor", "expense")
    df["line_id"] = df["source_kind"] + ":" + df["source_id"]
    df = _contract_cols(df, ref)
    is_labor = df["source_kind"].to_numpy() == "labor"

    # Scope: a labor item bills on the contract's T&M line for its role (or the all-roles T&M line);
    # an expense on the contract's expense line.
    tm = ref.scope[ref.scope["billing_type"] == "time_and_materials"]
    tm_role = tm[tm["role"].notna()].drop_duplicates(["contract_id", "role"]).set_index(
        ["contract_id", "role"])["scope_line_id"]
    tm_any = tm[tm["role"].isna()].drop_duplicates("contract_id").set_index("contract_id")["scope_line_id"]
    exp = ref.scope[ref.scope["billing_type"] == "expense"].drop_duplicates("contract_id").set_index(
        "contract_id")
    scope_id = pd.Series(pd.NA, index=df.index, dtype="string")
    if len(tm_role):
        key = pd.MultiIndex.from_arrays([df["contract_id"], df["role"]])
        scope_id = scope_id.fillna(pd.Series(tm_role.reindex(key).to_numpy(), index=df.index, dtype="string"))
    scope_id = scope_id.fillna(df["contract_id"].map(tm_any).astype("string"))
    scope_id = scope_id.where(is_labor, df["contract_id"].map(exp["scope_line_id"]).astype("string"))
    df["scope_line_id"] = scope_id
    df["billing_type"] = np.where(is_labor, "time_and_materials", "expense")
    df.loc[df["scope_line_id"].isna(), "billing_type"] = pd.NA

    # Price: labor at the rate effective on the item's date; expenses at cost plus markup.
    rate = _effective_rate(df, ref.rates)
    markup = df["contract_id"].map(exp["markup_bp"]).astype("Int64").fillna(0).astype("int64")
    amount = np.zeros(len(df), dtype=np.int64)
    has_rate = rate.notna().to_numpy()
    lab = is_labor & has_rate
    if lab.any():
        amount[lab] = mul_div_round(df["quantity_milli"].to_numpy()[lab], rate.to_numpy(dtype="int64",
                                    na_value=0)[lab], 1000)
    ex = ~is_labor
    if ex.any():
        amount[ex] = mul_div_round(df["cost_cents"].to_numpy()[ex], 10_000 + markup.to_numpy()[ex], 10_000)
    df["unit_price_cents"] = pd.array(np.where(is_labor, rate.to_numpy(dtype="float", na_value=np.nan),
                                               np.nan), dtype="Float64").astype("Int64")

    # Adjustments of items billed earlier reverse what was actually billed, pro rata to the quantity.
    billed_before = prior[prior["source_kind"].isin(["labor", "expense"])].drop_duplicates("source_id")
    billed_before = billed_before.set_index("source_id")
    adj = df["adjusts_item_id"].notna().to_numpy() & df["adjusts_item_id"].isin(billed_before.index).to_numpy()
    adj &= (df["quantity_milli"].to_numpy() < 0) | (df["cost_cents"].to_numpy() < 0)
    if adj.any():
        b = billed_before.reindex(df.loc[adj, "adjusts_item_id"])
        prior_qty = b["quantity_milli"].to_numpy(dtype="int64")
        prior_amt = b["amount_cents"].to_numpy(dtype="int64")
        qty = np.abs(df.loc[adj, "quantity_milli"].to_numpy())
        # A full reversal credits exactly what was billed; a partial one the same share of it.
        full = (prior_qty == 0) | (qty == prior_qty)
        credit = prior_amt.copy()
        if (~full).any():
            credit[~full] = [div_round_half_up(int(a), int(d)) for a, d in
                             zip(prior_amt[~full] * qty[~full], prior_qty[~full], strict=True)]
        amount[adj] = -credit
        # The credit bills on the scope line the original was billed on.
        df.loc[adj, "scope_line_id"] = b["scope_line_id"].to_numpy()
        df.loc[adj, "billing_type"] = np.where(is_labor[adj], "time_and_materials", "expense")
    df["amount_cents"] = amount
    df["credits_prior_billing"] = adj
    labor_text = df["role"].fillna("Labor").astype("object") + " time"
    expense_text = df["expenditure_type"].astype("object").str.title() + " expense"
    df["description"] = np.where(is_labor, labor_text, expense_text)
    if adj.any():
        df.loc[adj, "description"] = ("Credit: " + df.loc[adj, "description"].astype("object")
                                      + " billed in " + b["period"].to_numpy())

    # Reasons that come from the item itself (contract- and customer-level ones follow in _apply_holds).
    reason = pd.Series(pd.NA, index=df.index, dtype="object")

    def first(mask, code):
        nonlocal reason
        reason = reason.mask(reason.isna() & np.asarray(mask, dtype=bool), code)

    first(df["source_id"].isin(quarantined).to_numpy(), "data_quality")
    dup_key = ["person_id", "service_date", "project_id", "expenditure_type", "quantity_milli", "cost_cents"]
    order = df.sort_values("source_id", kind="stable")
    dup = order.duplicated(dup_key, keep="first") & order["adjustment_type"].isna()
    dup &= ~order["source_id"].isin(quarantined)
    first(dup.reindex(df.index).to_numpy(), "duplicate")
    first(df["contract_id"].isna().to_numpy(), "out_of_scope")
    first(items["billed_period"].notna().to_numpy(), "previously_billed")
    first(~items["billable"].to_numpy(dtype=bool), "non_billable")
    no_scope = df["scope_line_id"].isna().to_numpy()
    fee_based = _flag(df["contract_id"], ref.contracts["fee_based"])
    first(no_scope & fee_based, "covered_by_fixed_fee")
    first(no_scope, "out_of_scope")
    first(is_labor & ~has_rate & ~adj, "missing_bill_rate")
    exempt = adj  # credits of billed items skip term, approval and item holds
    first(~items["approved"].to_numpy(dtype=bool) & ~exempt, "awaiting_approval_item")
    first(items["bill_hold"].to_numpy(dtype=bool) & ~exempt, "bill_hold_item")
    df["item_reason"] = reason
    df["exempt"] = exempt
    return df


def _effective_rate(df: pd.DataFrame, rates: pd.DataFrame) -> pd.Series:
    """Bill rate in force on each labor item's date for its (contract, role); NA if none.

    Where two rates overlap (a set-up fault the gate reports), the one that started last wins.
    """
    out = pd.Series(pd.NA, index=df.index, dtype="Int64")
    lab = df[df["source_kind"] == "labor"][["contract_id", "role", "service_date"]]
    if lab.empty or rates.empty:
        return out
    r = rates[["contract_id", "role", "bill_rate_cents", "effective_from", "effective_to"]]
    m = lab.reset_index().merge(r, on=["contract_id", "role"], how="inner")
    end = m["effective_to"].fillna(pd.Timestamp.max.normalize())
    m = m[(m["effective_from"] <= m["service_date"]) & (m["service_date"] <= end)]
    m = m.sort_values(["index", "effective_from"]).drop_duplicates("index", keep="last")
    out.loc[m["index"].to_numpy()] = m["bill_rate_cents"].to_numpy()
    return out


# --- contract-level lines: fees, milestones, tracker ----------------------------------------------------
def _fee_frame(rows: dict, ref: _Ref) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    df = _contract_cols(df, ref)
    for c in ("project_id", "role", "person_id", "expenditure_type", "adjusts_item_id", "adjustment_type"):
        if c not in df:
            df[c] = pd.NA
    df["cost_cents"] = df.get("cost_cents", 0)
    df["item_reason"] = pd.NA
    df["exempt"] = False
    df["credits_prior_billing"] = False
    return df


def _installment_lines(ref: _Ref, prior, period: Period) -> pd.DataFrame:
    """Fixed-fee installments due up to this period and not yet billed (late ones catch up)."""
    ff = ref.scope[(ref.scope["billing_type"] == "fixed_fee") & (ref.scope["installments"].fillna(0) > 0)]
    billed = set(prior.loc[prior["source_kind"] == "fixed_fee", "source_id"])
    rows = []
    p_idx = period.index()
    for s in ff.itertuples(index=False):
        n, total = int(s.installments), int(s.amount_cents)
        first_idx = s.start_date.year * 12 + s.start_date.month - 1
        share = total // n
        for k in range(1, n + 1):
            due_idx = first_idx + k - 1
            if due_idx > p_idx:
                break
            sid = f"{s.scope_line_id}:{k}"
            if sid in billed:
                continue
            amt = share + (total - share * n if k == n else 0)
            due = pd.Timestamp(year=due_idx // 12, month=due_idx % 12 + 1, day=1)
            rows.append(dict(line_id=f"fixed_fee:{sid}", source_kind="fixed_fee", source_id=sid,
                             contract_id=s.contract_id, scope_line_id=s.scope_line_id, billing_type="fixed_fee",
                             service_date=max(due, s.start_date), description=f"{s.service_line} fixed fee, "
                             f"installment {k} of {n}", quantity_milli=1000, unit_price_cents=amt,
                             amount_cents=amt))
    return _fee_frame(rows, ref)


def _milestone_lines(milestones, ref: _Ref, prior, period: Period, quarantined: set[str]) -> pd.DataFrame:
    """Milestones completed on or before the period end and not billed yet."""
    billed = set(prior.loc[prior["source_kind"] == "milestone", "source_id"])
    m = milestones[milestones["completed_date"].notna() & (milestones["completed_date"] <= period.end_ts)]
    m = m[~m["milestone_id"].isin(billed)]
    scope = ref.scope.set_index("scope_line_id")
    m = m[m["scope_line_id"].isin(scope.index)]
    rows = dict(line_id="milestone:" + m["milestone_id"], source_kind="milestone", source_id=m["milestone_id"],
                contract_id=m["scope_line_id"].map(scope["contract_id"]), scope_line_id=m["scope_line_id"],
                billing_type=m["scope_line_id"].map(scope["billing_type"]), service_date=m["completed_date"],
                description=m["description"], quantity_milli=1000, unit_price_cents=m["amount_cents"],
                amount_cents=m["amount_cents"])
    df = _fee_frame({k: (v.to_numpy() if isinstance(v, pd.Series) else v) for k, v in rows.items()}, ref) \
        if len(m) else pd.DataFrame()
    if len(df):
        df["item_reason"] = np.where(m["milestone_id"].isin(quarantined).to_numpy(), "data_quality", None)
    return df


def _recurring_lines(ref: _Ref, prior, period: Period) -> pd.DataFrame:
    """This month's recurring fee, prorated by the days of the month the line is in force."""
    rec = ref.scope[ref.scope["billing_type"] == "recurring"]
    billed = set(prior.loc[prior["source_kind"] == "recurring", "source_id"])
    rows = []
    for s in rec.itertuples(index=False):
        start = max(s.start_date, period.start_ts)
        end = min(s.end_date, period.end_ts)
        days = (end - start).days + 1
        sid = f"{s.scope_line_id}:{period}"
        if days <= 0 or sid in billed:
            continue
        fee = int(s.amount_cents)
        amt = div_round_half_up(fee * days, period.days)
        note = "" if days == period.days else f" ({days}/{period.days} days)"
        rows.append(dict(line_id=f"recurring:{sid}", source_kind="recurring", source_id=sid,
                         contract_id=s.contract_id, scope_line_id=s.scope_line_id, billing_type="recurring",
                         service_date=start, description=f"{s.service_line} monthly fee {period}{note}",
                         quantity_milli=days * 1000 // period.days if days != period.days else 1000,
                         unit_price_cents=fee, amount_cents=amt))
    return _fee_frame(rows, ref)


def _tracker_lines(additions, ref: _Ref, prior, period: Period, quarantined: set[str]) -> pd.DataFrame:
    """Manual additions dated on or before the period end and not billed yet; they keep their source."""
    billed = set(prior.loc[prior["source_kind"] == "manual", "source_id"])
    a = additions[(additions["service_date"] <= period.end_ts) & ~additions["addition_id"].isin(billed)]
    if a.empty:
        return pd.DataFrame()
    df = _fee_frame(dict(
        line_id=("manual:" + a["addition_id"]).to_numpy(), source_kind="manual",
        source_id=a["addition_id"].to_numpy(), contract_id=a["contract_id"].to_numpy(),
        project_id=a["project_id"].to_numpy(), scope_line_id=pd.NA, billing_type=pd.NA,
        service_date=a["service_date"].to_numpy(),
        description=(a["description"] + " [" + a["source"] + "]").to_numpy(),
        quantity_milli=1000, unit_price_cents=a["amount_cents"].to_numpy(),
        amount_cents=a["amount_cents"].to_numpy()), ref)
    reason = np.where(a["addition_id"].isin(quarantined).to_numpy(), "data_quality", None)
    reason = np.where(df["customer_id"].isna().to_numpy() & (reason == None), "out_of_scope", reason)  # noqa: E711
    df["item_reason"] = reason
    return df


def _flag(keys: pd.Series, flags: pd.Series) -> np.ndarray:
    """Per row: is the flag (indexed by key) true for the row's key? Unknown or missing keys -> False."""
    true_keys = flags.index[flags.fillna(False).to_numpy(dtype=bool)]
    return keys.isin(true_keys).to_numpy(dtype=bool)


# --- holds and caps ---------------------------------------------------------------------------------------
def _apply_holds(lines: pd.DataFrame, ref: _Ref, period: Period) -> pd.DataFrame:
    """Set each line's reason: the first of PRECEDENCE that applies (item reasons first)."""
    c = ref.contracts
    cid = lines["contract_id"]
    item_reason = lines["item_reason"].astype("object")
    # Item-level holds are ranked with the contract-level ones, so they carry a temporary suffix.
    pending = item_reason.isin(["awaiting_approval_item", "bill_hold_item"])
    hard = item_reason.where(~pending)
    reason = hard.copy()

    def first(mask, code):
        nonlocal reason
        reason = reason.mask(reason.isna() & np.asarray(mask, dtype=bool), code)

    exempt = lines["exempt"].to_numpy(dtype=bool)
    currency = lines["currency"]
    bad_currency = ~currency.isin(col.CURRENCIES) | ((currency == "BGN") & (period >= Period(2026, 1)))
    first(bad_currency.to_numpy(dtype=bool) & cid.notna().to_numpy(), "invalid_currency")
    first(lines["customer_id"].isna().to_numpy(), "out_of_scope")
    # Re-rank item reasons that precede the contract-level ones (missing rate, scope...) before term.
    # reindex, not map: with no contract matched at all (a partition of orphan items) map() fails on
    # datetimes; reindex keeps the dtype and gives NaT.
    def dates_of(keys: pd.Series, values: pd.Series) -> pd.Series:
        return pd.Series(values.reindex(keys.to_numpy()).to_numpy(), index=keys.index)

    start = dates_of(cid, c["start_date"])
    end = dates_of(cid, c["end_date"])
    scope = ref.scope.set_index("scope_line_id")
    s_start = dates_of(lines["scope_line_id"], scope["start_date"]).fillna(start)
    s_end = dates_of(lines["scope_line_id"], scope["end_date"]).fillna(end)
    d = lines["service_date"]
    outside = ((d < start) | (d > end) | (d < s_start) | (d > s_end)).fillna(False).to_numpy(dtype=bool)
    first(outside & ~exempt, "outside_contract_term")
    first((item_reason == "awaiting_approval_item").to_numpy(), "awaiting_approval")
    first((item_reason == "bill_hold_item").to_numpy(), "bill_hold")
    first(_flag(cid, c["credit_hold"]) & ~exempt, "credit_hold")
    needs_po = _flag(cid, c["po_required"])
    no_po = cid.map(c["po_effective"]).isna().to_numpy()
    first(needs_po & no_po, "missing_po")
    quarterly = _flag(cid, c["invoice_frequency"] == "quarterly")
    first(quarterly & (not period.is_quarter_end), "invoice_frequency")
    # Sanity: every code used is a known reason.
    unknown = set(reason.dropna().unique()) - set(RANK)
    if unknown:
        raise AssertionError(f"unknown reason codes {unknown}")
    lines["reason"] = reason.astype("string")
    # Not-billable lines (non-billable, previously billed, covered by a fee) have nothing to bill:
    # their candidate amount is zero and only their cost is reported as unbilled cost.
    not_billable = reason.isin([r.code for r in PRECEDENCE if r.category == "not_billable"]).to_numpy()
    lines.loc[not_billable, "amount_cents"] = 0
    lines["billed_cents"] = np.where(reason.isna().to_numpy(), lines["amount_cents"].to_numpy(), 0)
    return lines


def _apply_caps(lines: pd.DataFrame, ref: _Ref, prior: pd.DataFrame) -> pd.DataFrame:
    """Bill up to each scope line's not-to-exceed; hold the excess as `over_cap`.

    Headroom = cap - everything billed on the line in earlier periods. This period's billable lines
    fill it in order: credits first (they free headroom), then by service date and line id. The line
    that crosses the cap is billed in part.
    """
    caps = ref.scope.set_index("scope_line_id")["not_to_exceed_cents"].dropna()
    lines["unbilled_cents"] = lines["amount_cents"] - lines["billed_cents"]
    if caps.empty:
        return lines
    capped = lines["scope_line_id"].isin(caps.index).to_numpy() & lines["reason"].isna().to_numpy()
    if not capped.any():
        return lines
    used = prior.groupby("scope_line_id")["amount_cents"].sum()
    sub = lines.loc[capped, ["scope_line_id", "service_date", "line_id", "billed_cents"]].copy()
    sub["credit_first"] = (sub["billed_cents"] >= 0).astype(int)
    sub = sub.sort_values(["scope_line_id", "credit_first", "service_date", "line_id"])
    headroom = (sub["scope_line_id"].map(caps).astype("int64")
                - sub["scope_line_id"].map(used).fillna(0).astype("int64")).clip(lower=0)
    cum = sub.groupby("scope_line_id")["billed_cents"].cumsum()
    before = cum - sub["billed_cents"]
    allowed = (headroom - before).clip(lower=0)
    billed = np.minimum(sub["billed_cents"], allowed).where(sub["billed_cents"] > 0, sub["billed_cents"])
    lines.loc[sub.index, "billed_cents"] = billed.astype("int64")
    lines["unbilled_cents"] = lines["amount_cents"] - lines["billed_cents"]
    over = capped & (lines["unbilled_cents"].to_numpy() != 0)
    lines.loc[over, "reason"] = "over_cap"
    return lines
