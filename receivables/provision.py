"""Bad-debt provision under IFRS 9's simplified approach (lifetime expected credit losses), and write-offs.

Pure: frames and settings in, frames out; the period and every rate come in as arguments.

**Aging snapshots.** One row per month, customer, business unit, customer class, currency and aging
bucket with the open balance (``AGING_SNAPSHOTS``), buckets as in ``receivables.aging`` (current,
1-30, 31-60, 61-90, 91-120 days past due) with 120+ split into 121-150 and 151+ (see ``BUCKETS``).
``aging_snapshot`` takes one from open items; ``snapshots_from_history`` rebuilds month-ends from the
invoices and their applications.

**Provision matrix (roll rates).** Per segment (``segment_by``, by default business unit and customer
class) and currency — amounts in different currencies are never added up — over the last
``lookback_months`` month-to-month transitions ending at the period:

    roll rate k -> k+1 = sum over months of balance in bucket k+1 at month t+1
                         / sum over months of balance in bucket k at month t       (capped at 1)
    loss rate of bucket k = roll(k) x roll(k+1) x ... x roll(91-120 -> 121-150) x LGD
    loss rate of 121-150 and 151+ (default) = LGD

The rates are exact fractions; the matrix shows them rounded half-up to parts per million, and the
allowance of each customer and bucket is its positive balance times the exact rate, rounded half-up to
the cent once (credit balances carry no credit risk and get no allowance). A segment without history in
a bucket (no balance to roll from) gets a rate of 0 and is flagged.

**Specific provisions.** Customers escalated to legal or to a collection agency are provided for one
by one (``specific_rates_bp``, default legal 100%, agency 50% of their positive open balance) and
leave the collective matrix so nothing is provided twice.

**Overrides.** A management overlay per segment multiplies its loss rates (``factor_bp``: 12000 =
+20%, capped at 100%), with a reason and an approver who is not the preparer
(``billing.approvals.check_segregation``).

**Output.** The matrix, the allowance per customer and in total, the movement against last month's
allowance, and a journal per business unit and currency: an increase debits bad-debt expense and
credits the allowance; a release does the opposite.

**Write-offs.** Small balances (positive, at most a threshold, past due at least some days, not in
dispute) are proposed in a batch with the bank-fee residues cash application left; approved write-offs
debit the allowance and credit receivables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import pandas as pd

from billing.approvals import check_segregation
from billing.columns import Column, Dataset
from billing.periods import Period
from receivables.aging import days_past_due
from receivables.cash_application import WRITE_OFF_PROPOSALS, as_dataset

PPM = 1_000_000
# The collections aging's buckets with 120+ split in two: a balance 91-120 days past due at one month-end
# is 121-150 at the next if it is still open, so the roll into default counts only new arrivals (120+ as
# one bucket would also count what was already there). Both default buckets carry the LGD as loss rate.
BUCKETS = ("current", "1-30", "31-60", "61-90", "91-120", "121-150", "151+")
ROLLING = BUCKETS[:5]
_UPPER = np.array([0, 30, 60, 90, 120, 150], dtype=np.int64)


def bucket_index(dpd: np.ndarray) -> np.ndarray:
    """0 for current (not past due) ... 6 for 151 days and more."""
    return np.searchsorted(_UPPER, dpd, side="left")

AGING_SNAPSHOTS = Dataset(
    "aging_snapshots", ("period", "customer_id", "currency", "bucket"),
    "Month-end open balance per customer, currency and aging bucket (the provision's history).", (
        Column("period", "string", "Month of the snapshot, YYYY-MM (balances at its last day)."),
        Column("customer_id", "string", "Customer."),
        Column("business_unit", "string", "Operating unit (segment)."),
        Column("customer_class", "string", "Customer class (segment)."),
        Column("currency", "string", "ISO 4217."),
        Column("bucket", "string", "Aging bucket.", allowed=BUCKETS),
        Column("balance_cents", "int64", "Open balance in the bucket (credits negative)."),
    ))

ESCALATION_TYPES = ("legal", "agency")


class ProvisionError(ValueError):
    """Provision input or override that cannot be used; names the segment or customer and the field."""


@dataclass(frozen=True)
class ProvisionSettings:
    lookback_months: int = 12
    lgd_bp: int = 10_000                  # share of a 120+ balance expected to be lost
    segment_by: tuple[str, ...] = ("business_unit", "customer_class")
    specific_rates_bp: Mapping[str, int] = field(default_factory=lambda: {"legal": 10_000, "agency": 5_000})
    expense_account: str = "6850"         # bad-debt expense
    allowance_account: str = "1290"       # allowance for doubtful accounts (contra receivable)
    receivable_account: str = "1200"      # trade receivables

    def __post_init__(self):
        if self.lookback_months < 1:
            raise ProvisionError("lookback_months must be at least 1")
        if not 0 <= self.lgd_bp <= 10_000:
            raise ProvisionError("lgd_bp must be between 0 and 10000")
        unknown = set(self.segment_by) - {"business_unit", "customer_class"}
        if unknown:
            raise ProvisionError(f"segment_by: unknown column(s) {', '.join(sorted(unknown))}")

    @property
    def keys(self) -> list[str]:
        return [*self.segment_by, "currency"]


@dataclass(frozen=True)
class SegmentOverride:
    """A management overlay on one segment's loss rates, with who asked and who approved."""

    segment: Mapping[str, str]       # e.g. {"business_unit": "DE01", "customer_class": "smb", "currency": "EUR"}
    factor_bp: int                   # 12000 multiplies the loss rates by 1.2
    reason: str
    preparer: str
    approver: str

    def checked(self) -> SegmentOverride:
        label = ", ".join(f"{k}={v}" for k, v in self.segment.items())
        if self.factor_bp <= 0:
            raise ProvisionError(f"override for {label}: field factor_bp: {self.factor_bp} must be positive")
        if not (self.reason or "").strip():
            raise ProvisionError(f"override for {label}: field reason: a reason is required")
        approver = check_segregation(self.preparer, self.approver)
        return SegmentOverride(dict(self.segment), self.factor_bp, self.reason.strip(), self.preparer, approver)


@dataclass
class ProvisionResult:
    period: Period
    matrix: pd.DataFrame            # segment, currency, bucket, balances rolled, roll and loss rates (ppm)
    by_bucket: pd.DataFrame         # customer x bucket: balance, rate, allowance
    by_customer: pd.DataFrame       # customer: balance, collective, specific, allowance, previous, movement
    totals: pd.DataFrame            # business unit x currency
    journal: pd.DataFrame           # lines for the ERP
    overrides: pd.DataFrame         # overrides applied

    def summary(self) -> dict:
        t = self.totals
        return {"period": str(self.period),
                "allowance": {f"{r.business_unit}/{r.currency}": int(r.allowance_cents) for r in t.itertuples()},
                "movement": {f"{r.business_unit}/{r.currency}": int(r.movement_cents) for r in t.itertuples()},
                "customers_with_allowance": int((self.by_customer["allowance_cents"] > 0).sum()),
                "specific_customers": int((self.by_customer["specific_cents"] > 0).sum()),
                "overrides": len(self.overrides), "journal_lines": len(self.journal)}


# --- snapshots ------------------------------------------------------------------------------------------------
def aging_snapshot(open_items: pd.DataFrame, customers: pd.DataFrame, period: Period) -> pd.DataFrame:
    """The month-end snapshot of open items (as they stand at the period's last day)."""
    op = open_items[(open_items["status"] == "OP") & (open_items["amount_due_remaining_cents"] != 0)]
    bucket = bucket_index(days_past_due(op, period.end_ts))
    return _snapshot_rows(op, op["amount_due_remaining_cents"].to_numpy(dtype=np.int64), bucket, customers, period)


def snapshots_from_history(items: pd.DataFrame, applications: pd.DataFrame, customers: pd.DataFrame,
                           periods: Sequence[Period]) -> pd.DataFrame:
    """Month-end snapshots rebuilt from the invoices (original amounts) and applications with their dates.

    At each month-end an item issued by then is open for its original amount less what was applied to
    it on or before that day. `applications`: payment_schedule_id, amount_applied_cents, apply_date.
    """
    parts = []
    app_date = pd.to_datetime(applications["apply_date"]).to_numpy()
    app_item = applications["payment_schedule_id"].to_numpy()
    app_amount = applications["amount_applied_cents"].to_numpy(dtype=np.int64)
    trx_date = pd.to_datetime(items["trx_date"]).to_numpy()
    for p in periods:
        end = np.datetime64(p.end_ts)
        paid = pd.Series(app_amount[app_date <= end]).groupby(app_item[app_date <= end]).sum()
        remaining = items["amount_due_original_cents"].to_numpy(dtype=np.int64) - items["payment_schedule_id"].map(
            paid).fillna(0).to_numpy(dtype=np.int64)
        live = (trx_date <= end) & (remaining != 0)
        its = items[live]
        bucket = bucket_index(days_past_due(its, p.end_ts))
        parts.append(_snapshot_rows(its, remaining[live], bucket, customers, p))
    return pd.concat(parts, ignore_index=True) if parts else _empty(AGING_SNAPSHOTS)


def _snapshot_rows(items: pd.DataFrame, remaining: np.ndarray, bucket: np.ndarray, customers: pd.DataFrame,
                   period: Period) -> pd.DataFrame:
    cls = customers.set_index("customer_id")["customer_class"]
    df = pd.DataFrame({"customer_id": items["customer_id"].to_numpy(),
                       "business_unit": items["business_unit"].to_numpy(), "currency": items["currency"].to_numpy(),
                       "bucket": np.asarray(BUCKETS, dtype=object)[bucket], "balance_cents": remaining})
    df["customer_class"] = df["customer_id"].map(cls)
    missing = df.loc[df["customer_class"].isna(), "customer_id"].unique()
    if len(missing):
        raise ProvisionError(f"aging snapshot {period}: customer(s) {', '.join(map(str, missing[:5]))}: field "
                             "customer_class: not in the customers given")
    out = df.groupby(["customer_id", "business_unit", "customer_class", "currency", "bucket"], as_index=False)[
        "balance_cents"].sum()
    out.insert(0, "period", str(period))
    return as_dataset(out, AGING_SNAPSHOTS)


# --- the matrix -------------------------------------------------------------------------------------------------
def provision_matrix(snapshots: pd.DataFrame, period: Period, settings: ProvisionSettings | None = None,
                     exclude_customers: Sequence[str] = ()) -> pd.DataFrame:
    """Roll rates and loss rates per segment, currency and bucket from the snapshots up to `period`.

    Columns: the segment keys, currency, bucket, from_balance_cents (summed over the window in this bucket),
    to_balance_cents (what reached the next bucket a month later), months (transitions seen),
    roll_rate_ppm (to the next bucket; null for the default buckets), loss_rate_ppm, loss_rate (exact
    Fraction), flag (no_history, capped, default).
    """
    st = settings or ProvisionSettings()
    keys = st.keys
    snap = snapshots[~snapshots["customer_id"].isin(set(exclude_customers))]
    snap = snap.assign(pidx=snap["period"].map(lambda p: Period.parse(p).index()).astype("int64"))
    last, first = period.index(), period.index() - st.lookback_months  # transitions first -> ... -> last
    snap = snap[(snap["pidx"] >= first) & (snap["pidx"] <= last)]
    wide = snap.pivot_table(index=[*keys, "pidx"], columns="bucket", values="balance_cents", aggfunc="sum",
                            fill_value=0)
    wide = wide.reindex(columns=list(BUCKETS), fill_value=0).reset_index()
    months_seen = set(snap["pidx"])
    segments = wide[keys].drop_duplicates().reset_index(drop=True)
    rows = []
    lgd = Fraction(st.lgd_bp, 10_000)
    for seg in segments.itertuples(index=False):
        sel = np.ones(len(wide), dtype=bool)
        for k, v in zip(keys, seg, strict=True):
            sel &= (wide[k] == v).to_numpy()
        w = wide[sel].set_index("pidx")
        from_sum = [0] * len(ROLLING)
        to_sum = [0] * len(ROLLING)
        months = 0
        for t in range(first, last):
            if t not in months_seen or t + 1 not in months_seen:
                continue
            months += 1
            now = w.loc[t, list(BUCKETS)].to_numpy(dtype=np.int64) if t in w.index else np.zeros(len(BUCKETS), np.int64)
            nxt = w.loc[t + 1, list(BUCKETS)].to_numpy(dtype=np.int64) if t + 1 in w.index else np.zeros(
                len(BUCKETS), np.int64)
            for k in range(len(ROLLING)):
                from_sum[k] += int(now[k])
                to_sum[k] += int(nxt[k + 1])
        rolls, flags = [], []
        for k in range(len(ROLLING)):
            if from_sum[k] <= 0:
                rolls.append(Fraction(0))
                flags.append("no_history")
            else:
                rolls.append(min(Fraction(to_sum[k], from_sum[k]), Fraction(1)))
                flags.append("capped" if to_sum[k] > from_sum[k] else "")
        loss = [lgd] * (len(BUCKETS) - len(ROLLING))
        for k in range(len(ROLLING) - 1, -1, -1):
            loss.insert(0, rolls[k] * loss[0])
        for k, b in enumerate(BUCKETS):
            rolling = k < len(ROLLING)
            rows.append({**dict(zip(keys, seg, strict=True)), "bucket": b,
                         "from_balance_cents": from_sum[k] if rolling else 0,
                         "to_balance_cents": to_sum[k] if rolling else 0, "months": months,
                         "roll_rate_ppm": rate_ppm(rolls[k]) if rolling else None,
                         "loss_rate_ppm": rate_ppm(loss[k]), "loss_rate": loss[k],
                         "flag": flags[k] if rolling else "default"})
    cols = [*keys, "bucket", "from_balance_cents", "to_balance_cents", "months", "roll_rate_ppm", "loss_rate_ppm",
            "loss_rate", "flag"]
    out = pd.DataFrame(rows, columns=cols)
    out["roll_rate_ppm"] = out["roll_rate_ppm"].astype("Int64")
    return out


def rate_ppm(rate: Fraction) -> int:
    """An exact rate in parts per million, rounded half up (rates are never negative)."""
    scaled = rate * PPM
    q, r = divmod(scaled.numerator, scaled.denominator)
    return int(q + (2 * r >= scaled.denominator))


def _round_cents(value: Fraction) -> int:
    """Half away from zero, like billing.money.div_round_half_up, on an exact fraction."""
    q, r = divmod(abs(value.numerator), value.denominator)
    q += 1 if 2 * r >= value.denominator else 0
    return -q if value < 0 else q


# --- the provision ----------------------------------------------------------------------------------------------------
def compute_provision(snapshot: pd.DataFrame, matrix: pd.DataFrame, period: Period,
                      settings: ProvisionSettings | None = None, *, escalations: pd.DataFrame | None = None,
                      overrides: Sequence[SegmentOverride] = (), previous: pd.DataFrame | None = None,
                      ) -> ProvisionResult:
    """Allowance per customer and bucket, specific provisions, movement and journal for `period`.

    `snapshot`: this month's AGING_SNAPSHOTS rows. `escalations`: customer_id, escalation (legal | agency).
    `previous`: last month's allowance per customer (customer_id, currency, allowance_cents).
    """
    st = settings or ProvisionSettings()
    keys = st.keys
    checked = [o.checked() for o in overrides]
    esc = _escalations(escalations, st)
    snap = snapshot.copy()
    snap["specific_type"] = snap["customer_id"].map(esc)
    rates = {tuple(r[k] for k in [*keys, "bucket"]): r["loss_rate"] for _, r in matrix.iterrows()}
    factors: dict[tuple, Fraction] = {}
    for o in checked:
        missing = [k for k in keys if k not in o.segment]
        if missing:
            raise ProvisionError(f"override {dict(o.segment)}: field segment: names no {', '.join(missing)}")
        factors[tuple(o.segment[k] for k in keys)] = Fraction(o.factor_bp, 10_000)

    rate_col, ppm_col, allowance, flags = [], [], [], []
    for r in snap.itertuples(index=False):
        seg = tuple(getattr(r, k) for k in keys)
        if isinstance(r.specific_type, str):
            rate_col.append(None)
            ppm_col.append(None)
            allowance.append(0)
            flags.append("specific")
            continue
        rate = rates.get((*seg, r.bucket))
        flag = ""
        if rate is None:
            rate, flag = Fraction(0), "no_matrix"
        if seg in factors:
            rate, flag = min(rate * factors[seg], Fraction(1)), "override"
        rate_col.append(rate)
        ppm_col.append(rate_ppm(rate))
        allowance.append(_round_cents(rate * int(r.balance_cents)) if r.balance_cents > 0 else 0)
        flags.append(flag)
    by_bucket = snap.drop(columns=["specific_type"]).assign(loss_rate_ppm=pd.array(ppm_col, dtype="Int64"),
                                                            allowance_cents=np.asarray(allowance, dtype=np.int64),
                                                            flag=flags)

    cust_keys = ["customer_id", "business_unit", "customer_class", "currency"]
    pos = snap.assign(positive=snap["balance_cents"].clip(lower=0))
    by_customer = pos.groupby(cust_keys, as_index=False).agg(balance_cents=("balance_cents", "sum"),
                                                              positive_cents=("positive", "sum"))
    collective = by_bucket.groupby(cust_keys)["allowance_cents"].sum()
    by_customer["collective_cents"] = by_customer.set_index(cust_keys).index.map(collective).fillna(0).astype("int64")
    kind = by_customer["customer_id"].map(esc)
    spec_rate = kind.map(lambda k: st.specific_rates_bp.get(k, 0) if isinstance(k, str) else 0).astype("int64")
    by_customer["specific_type"] = kind
    by_customer["specific_cents"] = [_round_cents(Fraction(int(p) * int(bp), 10_000))
                                     for p, bp in zip(by_customer["positive_cents"], spec_rate, strict=True)]
    by_customer["allowance_cents"] = by_customer["collective_cents"] + by_customer["specific_cents"]
    prev = _previous(previous)
    by_customer = by_customer.merge(prev, on=["customer_id", "currency"], how="outer")
    for c in ("balance_cents", "positive_cents", "collective_cents", "specific_cents", "allowance_cents",
              "previous_cents"):
        by_customer[c] = by_customer[c].fillna(0).astype("int64")
    # A customer that left the book since last month keeps its business unit from last month's row.
    by_customer["business_unit"] = by_customer["business_unit"].fillna(by_customer["previous_business_unit"])
    by_customer = by_customer.drop(columns=["previous_business_unit"])
    by_customer["movement_cents"] = by_customer["allowance_cents"] - by_customer["previous_cents"]
    by_customer = by_customer.sort_values(["business_unit", "currency", "customer_id"]).reset_index(drop=True)
    totals = by_customer.groupby(["business_unit", "currency"], as_index=False)[
        ["balance_cents", "collective_cents", "specific_cents", "allowance_cents", "previous_cents",
         "movement_cents"]].sum()
    journal = provision_journal(totals, period, st)
    ov = pd.DataFrame([{**{k: o.segment[k] for k in keys}, "factor_bp": o.factor_bp, "reason": o.reason,
                        "preparer": o.preparer, "approver": o.approver} for o in checked],
                      columns=[*keys, "factor_bp", "reason", "preparer", "approver"])
    return ProvisionResult(period, matrix, by_bucket, by_customer, totals, journal, ov)


def _escalations(escalations: pd.DataFrame | None, st: ProvisionSettings) -> dict[str, str]:
    if escalations is None or escalations.empty:
        return {}
    out: dict[str, str] = {}
    for r in escalations.itertuples(index=False):
        if r.escalation not in st.specific_rates_bp:
            raise ProvisionError(f"escalation of customer {r.customer_id}: field escalation: {r.escalation!r} is not "
                                 f"one of {', '.join(st.specific_rates_bp)}")
        # Legal outranks agency when a customer has both.
        if out.get(r.customer_id) != "legal":
            out[r.customer_id] = r.escalation
    return out


def _previous(previous: pd.DataFrame | None) -> pd.DataFrame:
    cols = ["customer_id", "currency", "previous_cents", "previous_business_unit"]
    if previous is None or previous.empty:
        return pd.DataFrame({c: pd.Series(dtype="int64" if c == "previous_cents" else "object") for c in cols})
    p = previous.assign(business_unit=previous["business_unit"] if "business_unit" in previous.columns else None)
    p = p.groupby(["customer_id", "currency"], as_index=False).agg(previous_cents=("allowance_cents", "sum"),
                                                                   previous_business_unit=("business_unit", "first"))
    return p[cols]


def provision_journal(totals: pd.DataFrame, period: Period, settings: ProvisionSettings | None = None
                      ) -> pd.DataFrame:
    """Two lines per business unit and currency with a movement: expense against allowance (or the release)."""
    st = settings or ProvisionSettings()
    rows = []
    for t in totals.itertuples(index=False):
        m = int(t.movement_cents)
        if m == 0:
            continue
        jid = f"PROV-{period}-{t.business_unit}-{t.currency}"
        what = "Bad-debt provision increase" if m > 0 else "Bad-debt provision release"
        if m > 0:
            expense, allowance = (m, 0), (0, m)
        else:
            expense, allowance = (0, -m), (-m, 0)
        for line, (account, (dr, cr)) in enumerate(((st.expense_account, expense), (st.allowance_account, allowance)),
                                                   start=1):
            rows.append({"journal_id": jid, "line": line, "business_unit": t.business_unit, "currency": t.currency,
                         "accounting_date": period.end_ts, "account": account, "debit_cents": dr, "credit_cents": cr,
                         "description": f"{what} {period} (IFRS 9 simplified approach)"})
    return pd.DataFrame(rows, columns=JOURNAL_COLUMNS)


JOURNAL_COLUMNS = ["journal_id", "line", "business_unit", "currency", "accounting_date", "account", "debit_cents",
                   "credit_cents", "description"]


# --- write-offs ------------------------------------------------------------------------------------------------------
def small_balance_write_offs(open_items: pd.DataFrame, as_of, threshold_cents: Mapping[str, int] | int,
                             min_days_past_due: int = 90) -> pd.DataFrame:
    """Open items whose positive remainder is at most the threshold and past due long enough, not disputed."""
    it = open_items[(open_items["status"] == "OP") & (open_items["amount_due_remaining_cents"] > 0)
                    & (open_items["amount_in_dispute_cents"] == 0)]
    if isinstance(threshold_cents, Mapping):
        limit = it["currency"].map(lambda c: threshold_cents.get(c, threshold_cents.get("*", 0))).astype("int64")
    else:
        limit = pd.Series(int(threshold_cents), index=it.index)
    sel = it[(it["amount_due_remaining_cents"] <= limit) & (days_past_due(it, as_of) >= min_days_past_due)]
    return as_dataset(pd.DataFrame({
        "write_off_id": "WO-small_balance-" + sel["payment_schedule_id"].astype(str),
        "payment_schedule_id": sel["payment_schedule_id"], "trx_number": sel["trx_number"],
        "customer_id": sel["customer_id"], "business_unit": sel["business_unit"], "currency": sel["currency"],
        "amount_cents": sel["amount_due_remaining_cents"], "reason": "small_balance", "cash_receipt_id": None,
    }), WRITE_OFF_PROPOSALS)


def write_off_batch(*proposals: pd.DataFrame) -> pd.DataFrame:
    """One batch from several sources of proposals: one write-off per item (the first proposal wins)."""
    parts = [p for p in proposals if p is not None and len(p)]
    if not parts:
        return _empty(WRITE_OFF_PROPOSALS)
    out = pd.concat(parts, ignore_index=True).drop_duplicates("payment_schedule_id", keep="first")
    return as_dataset(out.sort_values(["business_unit", "currency", "customer_id", "payment_schedule_id"]),
                  WRITE_OFF_PROPOSALS)


def write_off_journal(batch_id: str, write_offs: pd.DataFrame, accounting_date,
                      settings: ProvisionSettings | None = None) -> pd.DataFrame:
    """Approved write-offs per business unit and currency: debit the allowance, credit receivables."""
    st = settings or ProvisionSettings()
    rows = []
    totals = write_offs.groupby(["business_unit", "currency"], as_index=False)["amount_cents"].sum()
    for t in totals.itertuples(index=False):
        jid = f"WO-{batch_id}-{t.business_unit}-{t.currency}"
        for line, account, dr, cr in ((1, st.allowance_account, int(t.amount_cents), 0),
                                      (2, st.receivable_account, 0, int(t.amount_cents))):
            rows.append({"journal_id": jid, "line": line, "business_unit": t.business_unit, "currency": t.currency,
                         "accounting_date": pd.Timestamp(accounting_date), "account": account, "debit_cents": dr,
                         "credit_cents": cr, "description": f"Write-off batch {batch_id}"})
    return pd.DataFrame(rows, columns=JOURNAL_COLUMNS)


# --- frames ---------------------------------------------------------------------------------------------------
def _empty(dataset: Dataset) -> pd.DataFrame:
    return as_dataset(pd.DataFrame(columns=dataset.names), dataset)
