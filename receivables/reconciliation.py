"""Month-end AR reconciliation: open items tie to the aging and to the AR control total, to the cent.

One tie-out row per business unit and currency (per currency alone when the control totals carry no
business unit): the sum of open items, the aging report's total and the sum of its buckets, the AR
control total from the source (a figure or a GL extract), their differences, and the unapplied and
unidentified cash with the number of such receipts nobody owns.

The checks are Great Expectations expectations in the AR suite ``receivables/cash_ar_reconciliation.json``
(GE 1.x suite format, every rule critical). It lives beside this module rather than in
``expectations/gx/expectations/``: the close's runner validates every suite in that folder against the
close's datasets and would stop with "no data for suite ar_reconciliation".
``validate_tie_out`` runs it in an ephemeral context and returns the outcomes; ``ReconciliationBreak``
names the rule, the rows and the differences, for the flow to block sign-off and alert.

Unapplied and unidentified cash is aged (days since the receipt's value date) with an owner: the
customer's collector for unapplied cash, the cash-application team for unidentified cash.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from billing.money import format_cents
from receivables.aging import BUCKET_COLUMNS

SUITE_PATH = Path(__file__).resolve().parent / "cash_ar_reconciliation.json"
CASH_AGE_BUCKETS = ("0-30", "31-60", "61-90", "91+")
TIE_OUT_COLUMNS = ["business_unit", "currency", "open_items_cents", "aging_cents", "aging_buckets_cents",
                   "control_cents", "aging_difference_cents", "bucket_difference_cents", "control_difference_cents",
                   "unapplied_cents", "unidentified_cents", "unowned_receipts"]


@dataclass(frozen=True)
class CashOwners:
    """Who works unapplied and unidentified cash."""

    unidentified: str = "Cash application team"
    default: str | None = None                      # for unapplied cash of a customer without a collector
    collectors: Mapping[str, str] | None = None      # customer_id -> collector


@dataclass(frozen=True)
class RuleOutcome:
    rule: str
    severity: str
    success: bool
    unexpected_count: int
    element_count: int
    description: str


class ReconciliationBreak(RuntimeError):
    """A critical reconciliation rule failed: sign-off is blocked until it is explained."""

    def __init__(self, failures: list[RuleOutcome], tie_out: pd.DataFrame):
        self.failures, self.tie_out = failures, tie_out
        detail = []
        for f in failures:
            detail.append(f"ar_reconciliation.{f.rule}: {f.unexpected_count} of {f.element_count} row(s) break "
                          f"({f.description})")
        rows = tie_out[(tie_out["aging_difference_cents"] != 0) | (tie_out["control_difference_cents"] != 0)
                       | tie_out["control_cents"].isna() | (tie_out["bucket_difference_cents"] != 0)
                       | (tie_out["unowned_receipts"] != 0)]
        for r in rows.itertuples(index=False):
            where = f"{r.business_unit or 'all units'}/{r.currency}"
            detail.append(f"{where}: open items {format_cents(r.open_items_cents)}, aging "
                          f"{format_cents(r.aging_cents)}, control "
                          f"{'missing' if pd.isna(r.control_cents) else format_cents(int(r.control_cents))}, "
                          f"unowned receipts {r.unowned_receipts}")
        super().__init__("AR reconciliation break: " + "; ".join(detail))


@dataclass
class ReconciliationReport:
    tie_out: pd.DataFrame
    outcomes: list[RuleOutcome]
    unapplied_cash: pd.DataFrame

    @property
    def breaks(self) -> list[RuleOutcome]:
        return [o for o in self.outcomes if o.severity == "critical" and not o.success]

    @property
    def passed(self) -> bool:
        return not self.breaks

    def raise_for_breaks(self) -> None:
        if self.breaks:
            raise ReconciliationBreak(self.breaks, self.tie_out)

    def summary_markdown(self) -> str:
        out = [f"# AR reconciliation: {'passed' if self.passed else 'BREAK - sign-off blocked'}", "",
               "| unit | currency | open items | aging | control | aging diff | control diff | unapplied | "
               "unidentified | unowned |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in self.tie_out.itertuples(index=False):
            control = "missing" if pd.isna(r.control_cents) else format_cents(int(r.control_cents))
            cdiff = "" if pd.isna(r.control_difference_cents) else format_cents(int(r.control_difference_cents))
            out.append(f"| {r.business_unit or 'all'} | {r.currency} | {format_cents(r.open_items_cents)} | "
                       f"{format_cents(r.aging_cents)} | {control} | {format_cents(r.aging_difference_cents)} | "
                       f"{cdiff} | {format_cents(r.unapplied_cents)} | {format_cents(r.unidentified_cents)} | "
                       f"{r.unowned_receipts} |")
        out += ["", "| rule | result | rows breaking |", "|---|---|---:|"]
        out += [f"| {o.rule} | {'pass' if o.success else 'BREAK'} | {o.unexpected_count} |" for o in self.outcomes]
        return "\n".join(out) + "\n"


# --- unapplied cash -----------------------------------------------------------------------------------------
def unapplied_cash_aging(receipts: pd.DataFrame, applications: pd.DataFrame, as_of,
                         owners: CashOwners | None = None) -> pd.DataFrame:
    """Receipts with money still unapplied or unidentified, aged from their value date, each with an owner."""
    owners = owners or CashOwners()
    waiting = applications[applications["status"].isin(["UNAPP", "UNID"])]
    net = waiting.groupby(["cash_receipt_id", "status"], as_index=False)["amount_applied_cents"].sum()
    net = net[net["amount_applied_cents"] != 0]
    rec = receipts.set_index("cash_receipt_id")
    net = net[net["cash_receipt_id"].isin(rec.index)]
    day = np.datetime64(pd.Timestamp(as_of).date(), "D")
    dates = pd.to_datetime(rec.loc[net["cash_receipt_id"], "receipt_date"]).to_numpy(dtype="datetime64[D]")
    age = (day - dates).astype(np.int64)
    customer = rec.loc[net["cash_receipt_id"], "customer_id"].to_numpy(dtype=object, na_value=None)
    collectors = owners.collectors or {}
    owner = [owners.unidentified if s == "UNID" else (collectors.get(c) or owners.default)
             for s, c in zip(net["status"], customer, strict=True)]
    return pd.DataFrame({
        "cash_receipt_id": net["cash_receipt_id"].to_numpy(), "status": net["status"].to_numpy(),
        "customer_id": customer, "currency": rec.loc[net["cash_receipt_id"], "currency"].to_numpy(),
        "amount_cents": net["amount_applied_cents"].to_numpy(dtype=np.int64),
        "receipt_date": pd.to_datetime(dates), "age_days": age,
        "age_bucket": np.asarray(CASH_AGE_BUCKETS, dtype=object)[np.searchsorted([30, 60, 90], age, side="left")],
        "owner": pd.array(owner, dtype="string"),
    })


# --- the tie-out --------------------------------------------------------------------------------------------
def ar_tie_out(open_items: pd.DataFrame, aging_report: pd.DataFrame, control_totals: pd.DataFrame,
               unapplied_cash: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per business unit and currency (or currency): open items vs aging vs control, to the cent.

    `aging_report`: the collections aging (``receivables.aging.aging``): customer_id, currency, the bucket
    columns and total_cents. `control_totals`: currency, control_cents and optionally business_unit.
    `unapplied_cash`: ``unapplied_cash_aging`` (receipts carry no business unit: counted per currency).
    """
    by_unit = "business_unit" in control_totals.columns
    level = ["business_unit", "currency"] if by_unit else ["currency"]
    op = open_items[(open_items["status"] == "OP") & (open_items["amount_due_remaining_cents"] != 0)]
    items = op.groupby(level)["amount_due_remaining_cents"].sum().rename("open_items_cents")
    ag = aging_report.copy()
    if by_unit and "business_unit" not in ag.columns:
        unit_of = open_items.drop_duplicates("customer_id").set_index("customer_id")["business_unit"]
        several = open_items.groupby("customer_id")["business_unit"].nunique()
        if (several > 1).any():
            raise ValueError(f"customer(s) {', '.join(several[several > 1].index[:5])} have items in several "
                             "business units: give the aging report a business_unit column")
        ag["business_unit"] = ag["customer_id"].map(unit_of)
    ag["buckets"] = ag[list(BUCKET_COLUMNS)].sum(axis=1).astype("int64")
    aging = ag.groupby(level)[["total_cents", "buckets"]].sum().rename(
        columns={"total_cents": "aging_cents", "buckets": "aging_buckets_cents"})
    control = control_totals.groupby(level)["control_cents"].sum()
    out = pd.concat([items, aging, control], axis=1).reset_index()
    for c in ("open_items_cents", "aging_cents", "aging_buckets_cents"):
        out[c] = out[c].fillna(0).astype("int64")
    out["control_cents"] = out["control_cents"].astype("Int64")
    out["aging_difference_cents"] = out["aging_cents"] - out["open_items_cents"]
    out["bucket_difference_cents"] = out["aging_buckets_cents"] - out["aging_cents"]
    out["control_difference_cents"] = (out["control_cents"] - out["open_items_cents"]).astype("Int64")
    cash = unapplied_cash if unapplied_cash is not None else pd.DataFrame(
        columns=["currency", "status", "amount_cents", "owner"])
    per_ccy = pd.DataFrame({
        "unapplied_cents": cash[cash["status"] == "UNAPP"].groupby("currency")["amount_cents"].sum(),
        "unidentified_cents": cash[cash["status"] == "UNID"].groupby("currency")["amount_cents"].sum(),
        "unowned_receipts": cash[cash["owner"].isna()].groupby("currency")["cash_receipt_id"].nunique()
        if "cash_receipt_id" in cash.columns else pd.Series(dtype="int64"),
    })
    if by_unit:
        # Cash is reported once per currency, on the first unit of that currency.
        first = ~out.duplicated("currency")
        for c in per_ccy.columns:
            out[c] = np.where(first, out["currency"].map(per_ccy[c]).fillna(0), 0)
    else:
        out["business_unit"] = None
        for c in per_ccy.columns:
            out[c] = out["currency"].map(per_ccy[c]).fillna(0)
    missing_ccy = sorted(set(per_ccy.index) - set(out["currency"]))
    if missing_ccy:
        extra = pd.DataFrame({"currency": missing_ccy, "business_unit": None})
        for c in ("open_items_cents", "aging_cents", "aging_buckets_cents", "aging_difference_cents",
                  "bucket_difference_cents"):
            extra[c] = 0
        extra["control_cents"] = pd.array([0] * len(extra), dtype="Int64")
        extra["control_difference_cents"] = pd.array([0] * len(extra), dtype="Int64")
        for c in per_ccy.columns:
            extra[c] = extra["currency"].map(per_ccy[c]).fillna(0)
        out = pd.concat([out, extra], ignore_index=True)
    for c in ("unapplied_cents", "unidentified_cents", "unowned_receipts"):
        out[c] = out[c].astype("int64")
    out["business_unit"] = out["business_unit"].astype("string")
    out["currency"] = out["currency"].astype("string")
    return out[TIE_OUT_COLUMNS].sort_values(["currency", "business_unit"], na_position="first").reset_index(drop=True)


# --- the GE suite -------------------------------------------------------------------------------------------
def load_suite(path: Path = SUITE_PATH) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def validate_tie_out(tie_out: pd.DataFrame, unapplied_cash: pd.DataFrame | None = None,
                     suite_path: Path = SUITE_PATH) -> ReconciliationReport:
    """Run the AR suite on the tie-out (ephemeral GE context; nothing written)."""
    from expectations.runner import _context, _run_suite

    doc = load_suite(suite_path)
    context = _context(None)
    source = context.data_sources.add_pandas("ar_reconciliation")
    # GE compares float64 vectorised; nullable Int64 is walked value by value and NA must stay missing.
    frame = tie_out.reset_index(drop=True).astype(
        {c: "float64" for c in tie_out.columns if str(tie_out[c].dtype) == "Int64"})
    result = _run_suite(context, source, doc, frame, {}, keep_results=False)
    outcomes = []
    for res in result.results:
        cfg = res.expectation_config
        r = res.result or {}
        outcomes.append(RuleOutcome(
            rule=str(cfg.meta.get("rule") or cfg.type), severity=getattr(cfg.severity, "value", str(cfg.severity)),
            success=bool(res.success), unexpected_count=int(r.get("unexpected_count") or 0),
            element_count=int(r.get("element_count") or 0), description=str(cfg.meta.get("description", ""))))
    cash = unapplied_cash if unapplied_cash is not None else pd.DataFrame()
    return ReconciliationReport(tie_out=tie_out, outcomes=outcomes, unapplied_cash=cash)


def reconcile(open_items: pd.DataFrame, aging_report: pd.DataFrame, control_totals: pd.DataFrame,
              receipts: pd.DataFrame, applications: pd.DataFrame, as_of, owners: CashOwners | None = None
              ) -> ReconciliationReport:
    """Tie-out, unapplied cash aging and the AR suite in one call (the flow's reconcile step)."""
    cash = unapplied_cash_aging(receipts, applications, as_of, owners)
    tie = ar_tie_out(open_items, aging_report, control_totals, cash)
    return validate_tie_out(tie, cash)


def control_totals_from_postings(ledger_items: pd.DataFrame, applications: pd.DataFrame,
                                 write_offs: pd.DataFrame | None = None) -> pd.DataFrame:
    """The AR control figure when no GL extract is given: the ledger's open balance as loaded, less the cash
    posted to it (net APP applications) and the write-offs approved, per business unit and currency.

    It is built from postings, not from the items' remaining amounts, so a posting that did not reach its
    item (or reached the wrong one) shows as a break.
    """
    op = ledger_items[ledger_items["status"] == "OP"]
    unit = ledger_items.drop_duplicates("payment_schedule_id").set_index("payment_schedule_id")["business_unit"]
    app = applications[applications["status"] == "APP"]
    parts = [pd.DataFrame({"business_unit": op["business_unit"].to_numpy(), "currency": op["currency"].to_numpy(),
                           "cents": op["amount_due_remaining_cents"].to_numpy(dtype="int64")}),
             pd.DataFrame({"business_unit": app["applied_payment_schedule_id"].map(unit).to_numpy(),
                           "currency": app["currency"].to_numpy(),
                           "cents": -app["amount_applied_cents"].to_numpy(dtype="int64")})]
    if write_offs is not None and len(write_offs):
        parts.append(pd.DataFrame({"business_unit": write_offs["business_unit"].to_numpy(),
                                   "currency": write_offs["currency"].to_numpy(),
                                   "cents": -write_offs["amount_cents"].to_numpy(dtype="int64")}))
    postings = pd.concat(parts, ignore_index=True)
    total = postings.groupby(["business_unit", "currency"])["cents"].sum().astype("int64")
    return total.rename("control_cents").reset_index()


def parse_control_totals(raw: pd.DataFrame, origin: str) -> pd.DataFrame:
    """A GL extract of the AR control account ([business_unit,] currency, amount as decimal text) in cents.

    Errors name the file, the row and the column.
    """
    from billing.money import parse_amount_to_cents

    missing = [c for c in ("currency", "amount") if c not in raw.columns]
    if missing:
        raise ValueError(f"control totals {origin}: column(s) {', '.join(missing)} missing (expected "
                         "[business_unit,] currency, amount)")
    cents = []
    for i, v in enumerate(raw["amount"], start=1):
        try:
            cents.append(parse_amount_to_cents(str(v)))
        except (ValueError, ArithmeticError):
            raise ValueError(f"control totals {origin}, row {i}, column 'amount': {v!r} is not an amount") from None
    for i, v in enumerate(raw["currency"], start=1):
        if not isinstance(v, str) or len(v.strip()) != 3:
            raise ValueError(f"control totals {origin}, row {i}, column 'currency': {v!r} is not an ISO 4217 code")
    keys = [c for c in ("business_unit", "currency") if c in raw.columns]
    out = raw[keys].astype(str).apply(lambda s: s.str.strip())
    out["control_cents"] = pd.array(cents, dtype="int64")
    return out
