"""Billable activity of a period: every candidate billing event as one line, priced, with its reason.

`compute_billing_lines` turns the canonical input datasets into BILLING_LINES. Each input record that
can bill (an expenditure item, a fixed-fee installment, a milestone, a recurring fee, a tracker
addition) becomes exactly one line, so nothing is lost: a line is billed in full, billed in part (a
cap), or not billed with the first reason of billing.reasons.PRECEDENCE that applies.

Conventions (docs/CONVENTIONS.md): amounts are rounded half away from zero per line (per expenditure
item); a fixed fee is split in equal installments with the remainder on the last; a recurring fee is
prorated by calendar days of the month; credits for items billed in an earlier period reverse the
amount actually billed, and are exempt from term, approval, holds and caps.

How it stays fast at millions of items (docs/BENCHMARKS.md): the rules work on integer positions, not
on text. Each text column of the items is encoded once as codes into a small dictionary of its
distinct values (`TextCodes`); every rule that depends on the project, contract, role or expense type is
evaluated once per distinct value and gathered by code; reasons are small integers until the end. The
result frame is built once, already in line-id order, with each text column materialised by a single
Arrow take from its dictionary.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from billing import columns as col
from billing.money import div_round_half_up, mul_div_round
from billing.periods import Period
from billing.reasons import PRECEDENCE, RANK
from billing.schema import TEXT, TextCodes, empty_frame, repeated_rows, sort_order, text_array, text_series

# Line kinds in alphabetical order: a line id is "<kind>:<source id>" and no kind is a prefix of another,
# so sorting by line id is sorting by (kind, source id) -- which is how the result is ordered.
KINDS = ("expense", "fixed_fee", "labor", "manual", "milestone", "recurring")
KIND = {k: i for i, k in enumerate(KINDS)}
# Item-level holds ranked with the contract-level ones in _apply_holds (codes past the real reasons).
_AWAITING_ITEM = len(PRECEDENCE)
_HOLD_ITEM = len(PRECEDENCE) + 1
_NOT_BILLABLE = [RANK[r.code] for r in PRECEDENCE if r.category == "not_billable"]


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
    fees = [
        _installment_lines(ref, prior, period),
        _milestone_lines(data["milestones"], ref, prior, period, quarantine.get("milestones", set())),
        _recurring_lines(ref, prior, period),
        _tracker_lines(data["tracker_additions"], ref, prior, period, quarantine.get("tracker_additions", set())),
    ]
    fees = [f for f in fees if len(f)]
    parts = [_item_lines(data["expenditure_items"], ref, prior, period, quarantine.get("expenditure_items", set()))]
    if fees:
        parts.append(_Lines.from_frame(pd.concat(fees, ignore_index=True), ref))
    parts = [p for p in parts if p is not None and p.n]
    if not parts:
        return empty_frame(col.BILLING_LINES)
    lines = _Lines.concat(parts)
    _apply_holds(lines, ref, period)
    _apply_caps(lines, ref, prior)
    return lines.to_frame(period, ref)


# --- look-ups by position -----------------------------------------------------------------------
def _positions(index: pd.Index, values: Sequence) -> np.ndarray:
    """Position of each value in `index` (-1 if absent), plus a last -1 for the null code."""
    pos = index.get_indexer(pd.Index(list(values), dtype="object")) if len(values) else np.empty(0, np.intp)
    return np.append(pos, -1).astype(np.int64)


def _with_null(a: np.ndarray, null_value) -> np.ndarray:
    """Append the value a null code (-1) gathers: numpy's a[-1] is the last element."""
    return np.append(a, np.asarray([null_value], dtype=a.dtype))


def _gather(a: np.ndarray, pos: np.ndarray, missing) -> np.ndarray:
    """a[pos] where pos >= 0, else `missing` (a position -1 means "not found", and picks the
    appended last element)."""
    return _with_null(a, missing)[pos]


# --- reference data ---------------------------------------------------------------------------------
class _Ref:
    """Contracts joined to customers, scope lines and rates, after quarantined set-up rows are removed.

    Besides the frames, the per-contract and per-scope-line facts the rules need, as arrays by row
    position (a line carries the position of its contract and scope line).
    """

    def __init__(self, contracts: pd.DataFrame, scope: pd.DataFrame, rates: pd.DataFrame,
                 projects: pd.DataFrame):
        self.contracts = contracts
        self.scope = scope
        self.rates = rates
        self.projects = projects
        c = contracts
        self.contract_index = pd.Index(c["contract_id"].to_numpy(dtype=object))
        self.contract_text = {name: text_array(c[name]) for name in ("customer_id", "business_unit", "currency")}
        self.contract_start = c["start_date"].to_numpy(dtype="datetime64[ns]")
        self.contract_end = c["end_date"].to_numpy(dtype="datetime64[ns]")
        self.customer_missing = c["customer_id"].isna().to_numpy()
        self.credit_hold = _true(c["credit_hold"])
        self.po_required = _true(c["po_required"])
        self.po_missing = c["po_effective"].isna().to_numpy()
        self.quarterly = _true(c["invoice_frequency"] == "quarterly")
        self.fee_based = _true(c["fee_based"])
        self.scope_index = pd.Index(scope["scope_line_id"].to_numpy(dtype=object))
        self.scope_start = scope["start_date"].to_numpy(dtype="datetime64[ns]")
        self.scope_end = scope["end_date"].to_numpy(dtype="datetime64[ns]")


def _true(flags: pd.Series) -> np.ndarray:
    """A flag column as bool, unknown (null) as False."""
    return flags.astype("object").where(flags.notna(), False).to_numpy(dtype=bool)


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
    return _Ref(c.set_index("contract_id", drop=False), scope.reset_index(drop=True), rates, projects)


def _contract_cols(lines: pd.DataFrame, ref: _Ref) -> pd.DataFrame:
    """Attach contract-level columns (customer, unit, currency) by contract_id."""
    c = ref.contracts
    cid = lines["contract_id"]
    for name, src in (("customer_id", "customer_id"), ("business_unit", "business_unit"),
                      ("currency", "currency")):
        lines[name] = cid.map(c[src]).astype("string")
    return lines


# --- the lines while the rules run ----------------------------------------------------------------------
class _Lines:
    """Candidate lines as arrays: text as TextCodes, reasons as codes (-1 = none), money as int64 cents."""

    TEXT_COLUMNS = ("source_id", "contract_id", "project_id", "scope_line_id", "billing_type", "description",
                    "role", "person_id", "expenditure_type", "adjusts_item_id", "adjustment_type")
    ARRAY_COLUMNS = ("kind", "service_date", "quantity_milli", "unit_price_cents", "unit_price_na", "cost_cents",
                     "amount_cents", "credits_prior_billing", "item_reason", "exempt")

    def __init__(self, order: np.ndarray, **cols):
        self.order = order  # positions in line-id order
        for name in (*self.TEXT_COLUMNS, *self.ARRAY_COLUMNS):
            setattr(self, name, cols[name])
        self.reason: np.ndarray | None = None
        self.billed_cents: np.ndarray | None = None
        self.unbilled_cents: np.ndarray | None = None
        self.contract_pos: np.ndarray | None = None
        self.scope_pos: np.ndarray | None = None

    @property
    def n(self) -> int:
        return len(self.kind)

    @classmethod
    def from_frame(cls, df: pd.DataFrame, ref: _Ref) -> _Lines:
        """Contract-level lines (fees, milestones, tracker), built as small frames, as arrays."""
        kind = df["source_kind"].map(KIND).to_numpy(dtype=np.int8)
        sid = df["source_id"].astype("object").tolist()
        order = np.array(sorted(range(len(df)), key=lambda i: (kind[i], sid[i])), dtype=np.int64)
        price = pd.array(df["unit_price_cents"], dtype="Int64")
        reason = df["item_reason"].astype("object").where(df["item_reason"].notna(), None)
        return cls(
            order,
            **{name: TextCodes.positional(df[name]) for name in cls.TEXT_COLUMNS},
            kind=kind,
            service_date=pd.to_datetime(df["service_date"]).to_numpy(dtype="datetime64[ns]"),
            quantity_milli=df["quantity_milli"].to_numpy(dtype=np.int64),
            unit_price_cents=price.to_numpy(dtype=np.int64, na_value=0),
            unit_price_na=price.isna(),
            cost_cents=df["cost_cents"].to_numpy(dtype=np.int64),
            amount_cents=df["amount_cents"].to_numpy(dtype=np.int64),
            credits_prior_billing=df["credits_prior_billing"].to_numpy(dtype=bool),
            item_reason=np.array([-1 if r is None else RANK[r] for r in reason], dtype=np.int16),
            exempt=df["exempt"].to_numpy(dtype=bool),
        )

    @classmethod
    def concat(cls, parts: Sequence[_Lines]) -> _Lines:
        if len(parts) == 1:
            return parts[0]
        offsets = np.cumsum([0, *[p.n for p in parts]])
        # Parts are in (kind, source id) order and no two parts share a kind (items bill as labor and
        # expense, contract-level lines as fees), so the whole is ordered kind by kind.
        present = np.array([np.bincount(p.kind, minlength=len(KINDS)) > 0 for p in parts])
        if (present.sum(axis=0) > 1).any():
            raise AssertionError("two parts of the billing lines share a kind: their order would be wrong")
        segments = []
        for k in range(len(KINDS)):
            for off, p in zip(offsets, parts, strict=False):
                seg = p.order[p.kind[p.order] == k]
                if len(seg):
                    segments.append(seg + off)
        order = np.concatenate(segments)
        return cls(order, **{name: TextCodes.concat([getattr(p, name) for p in parts]) for name in cls.TEXT_COLUMNS},
                   **{name: np.concatenate([getattr(p, name) for p in parts]) for name in cls.ARRAY_COLUMNS})

    def locate(self, ref: _Ref) -> None:
        """Each line's contract and scope line as row positions in the reference data (-1: none)."""
        self.contract_pos = self.contract_id.per_value(_positions(ref.contract_index, self.contract_id.value_list()))
        self.scope_pos = self.scope_line_id.per_value(_positions(ref.scope_index, self.scope_line_id.value_list()))

    def to_frame(self, period: Period, ref: _Ref) -> pd.DataFrame:
        """BILLING_LINES in canonical dtypes, sorted by line id."""
        o = self.order
        n = len(o)
        kind = pa.array(KINDS, type=TEXT).take(pa.array(self.kind[o].astype(np.int32)))
        source_id = self.source_id.to_arrow(o)
        cpos = self.contract_pos[o]
        reason = TextCodes(self.reason[o].astype(np.int32), pa.array([r.code for r in PRECEDENCE], type=TEXT))
        cols = {
            "line_id": text_series(pc.binary_join_element_wise(kind, source_id, pa.scalar(":", type=TEXT))),
            "period": text_series(pa.array([str(period)], type=TEXT).take(pa.array(np.zeros(n, dtype=np.int32)))),
            "source_kind": text_series(kind),
            "source_id": text_series(source_id),
            "service_date": _numbers(self.service_date[o], "datetime64[ns]"),
            "quantity_milli": _numbers(self.quantity_milli[o], "int64"),
            "unit_price_cents": pd.Series(pd.arrays.IntegerArray(self.unit_price_cents[o], self.unit_price_na[o]),
                                          copy=False),
            "cost_cents": _numbers(self.cost_cents[o], "int64"),
            "amount_cents": _numbers(self.amount_cents[o], "int64"),
            "billed_cents": _numbers(self.billed_cents[o], "int64"),
            "unbilled_cents": _numbers(self.unbilled_cents[o], "int64"),
            "reason": text_series(reason.to_arrow()),
            "credits_prior_billing": _numbers(self.credits_prior_billing[o], "bool"),
        }
        for name, values in ref.contract_text.items():
            cols[name] = text_series(TextCodes(cpos.astype(np.int32), values).to_arrow())
        for name in self.TEXT_COLUMNS:
            if name != "source_id":
                cols[name] = text_series(getattr(self, name).to_arrow(o))
        return pd.DataFrame({name: cols[name] for name in col.BILLING_LINES.names}, copy=False)


def _numbers(values: np.ndarray, dtype: str) -> pd.Series:
    """A fresh numpy array as a Series, without the copy pandas would make."""
    return pd.Series(values.astype(dtype, copy=False), copy=False)


# --- expenditure items --------------------------------------------------------------------------------
def _item_lines(items, ref: _Ref, prior, period: Period, quarantined: set[str]) -> _Lines | None:
    n = len(items)
    if n == 0:
        return None
    source_id = TextCodes.positional(items["item_id"])
    project = TextCodes.encode(items["project_id"])
    role = TextCodes.encode(items["role"])
    etype = TextCodes.encode(items["expenditure_type"])
    quantity = items["quantity_milli"].to_numpy(dtype=np.int64)
    cost = items["raw_cost_cents"].to_numpy(dtype=np.int64)
    service_date = items["expenditure_date"].to_numpy(dtype="datetime64[ns]")
    is_labor = etype.per_value(_with_null(np.array([v == "labor" for v in etype.value_list()], dtype=bool), False))

    # The contract is reached through the project: evaluated once per distinct project, then per
    # distinct contract id (a project may name a contract the reference data does not have).
    proj = ref.projects.set_index("project_id")["contract_id"]
    contract_of_project = proj.reindex(pd.Index(project.value_list(), dtype=object))
    ckey, contract_ids = pd.factorize(contract_of_project.astype("object"), use_na_sentinel=True)
    line_ckey = _with_null(ckey.astype(np.int32), -1)[project.codes]
    contract = TextCodes(line_ckey, pa.array(list(contract_ids), type=TEXT))
    cpos = _positions(ref.contract_index, list(contract_ids))[line_ckey]

    # Scope: a labor item bills on the contract's T&M line for its role (or the all-roles T&M line);
    # an expense on the contract's expense line.
    sc = ref.scope  # RangeIndex: index = row position
    btype_of = sc["billing_type"].to_numpy(dtype=object, na_value=None)
    tm = sc[btype_of == "time_and_materials"]
    tm_any = tm[tm["role"].isna().to_numpy()].drop_duplicates("contract_id")
    tm_any = pd.Series(tm_any.index.to_numpy(), index=tm_any["contract_id"].to_numpy(dtype=object))
    tm_role = tm[tm["role"].notna().to_numpy()].drop_duplicates(["contract_id", "role"])
    tm_role = pd.Series(tm_role.index.to_numpy(), index=pd.MultiIndex.from_arrays(
        [tm_role["contract_id"].to_numpy(dtype=object), tm_role["role"].to_numpy(dtype=object)]))
    exp = sc[btype_of == "expense"].drop_duplicates("contract_id")
    exp_row = pd.Series(exp.index.to_numpy(), index=exp["contract_id"].to_numpy(dtype=object))
    markup_of = pd.Series(exp["markup_bp"].astype("Int64").fillna(0).to_numpy(dtype=np.int64),
                          index=exp_row.index)
    cids = pd.Index(list(contract_ids), dtype=object)
    role_line = _pair_lookup(line_ckey, cids, role, tm_role)
    any_line = _with_null(tm_any.reindex(cids).fillna(-1).to_numpy(dtype=np.int64), -1)[line_ckey]
    exp_line = _with_null(exp_row.reindex(cids).fillna(-1).to_numpy(dtype=np.int64), -1)[line_ckey]
    scope_row = np.where(is_labor, np.where(role_line >= 0, role_line, any_line), exp_line)
    markup = _with_null(markup_of.reindex(cids).fillna(0).to_numpy(dtype=np.int64), 0)[line_ckey]

    # Price: labor at the rate effective on the item's date; expenses at cost plus markup.
    rate, has_rate = _effective_rate(ref.rates, line_ckey, cids, role, service_date, is_labor)
    amount = np.zeros(n, dtype=np.int64)
    lab = is_labor & has_rate
    if lab.any():
        amount[lab] = mul_div_round(quantity[lab], rate[lab], 1000)
    ex = ~is_labor
    if ex.any():
        amount[ex] = mul_div_round(cost[ex], 10_000 + markup[ex], 10_000)

    # Adjustments of items billed earlier reverse what was actually billed, pro rata to the quantity.
    billed_before = prior[prior["source_kind"].isin(["labor", "expense"])].drop_duplicates("source_id")
    billed_before = billed_before.set_index("source_id")
    adjusts = TextCodes.positional(items["adjusts_item_id"])
    with_ref = np.flatnonzero(~adjusts.isna())
    adj_ids = text_series(adjusts.to_arrow(with_ref))
    hit = adj_ids.isin(billed_before.index).to_numpy() & ((quantity[with_ref] < 0) | (cost[with_ref] < 0))
    credited = with_ref[hit]
    adj = np.zeros(n, dtype=bool)
    adj[credited] = True
    scope_values = pa.array(ref.scope_index.tolist(), type=TEXT)
    scope_codes = scope_row.astype(np.int32)
    btype = np.where(scope_row >= 0, np.where(is_labor, 0, 1), -1).astype(np.int32)
    credit_text: list = []
    if len(credited):
        b = billed_before.reindex(adj_ids[hit])
        prior_qty = b["quantity_milli"].to_numpy(dtype="int64")
        prior_amt = b["amount_cents"].to_numpy(dtype="int64")
        qty = np.abs(quantity[credited])
        # A full reversal credits exactly what was billed; a partial one the same share of it.
        full = (prior_qty == 0) | (qty == prior_qty)
        credit = prior_amt.copy()
        if (~full).any():
            credit[~full] = [div_round_half_up(int(a), int(d)) for a, d in
                             zip(prior_amt[~full] * qty[~full], prior_qty[~full], strict=True)]
        amount[credited] = -credit
        # The credit bills on the scope line the original was billed on.
        credit_scope = b["scope_line_id"].astype("object").where(b["scope_line_id"].notna(), None).tolist()
        scope_values = pa.concat_arrays([scope_values, pa.array(credit_scope, type=TEXT)])
        scope_codes[credited] = np.where(b["scope_line_id"].isna().to_numpy(), -1,
                                         len(ref.scope_index) + np.arange(len(credited)))
        btype[credited] = np.where(is_labor[credited], 0, 1)
        credit_text = b["period"].astype("object").where(b["period"].notna(), None).tolist()

    # Description: "<role> time" or "<Type> expense", computed per distinct role and type.
    roles, types = role.value_list(), etype.value_list()
    texts = [f"{r} time" for r in roles] + ["Labor time"]
    texts += [None if t is None else f"{t.title()} expense" for t in types]
    desc = np.where(is_labor, np.where(role.codes >= 0, role.codes, len(roles)),
                    np.where(etype.codes >= 0, len(roles) + 1 + etype.codes, -1)).astype(np.int32)
    if len(credited):
        base = [None if d < 0 else texts[d] for d in desc[credited]]
        texts += [None if t is None or p is None else f"Credit: {t} billed in {p}"
                  for t, p in zip(base, credit_text, strict=True)]
        desc[credited] = len(texts) - len(credited) + np.arange(len(credited))

    # Reasons that come from the item itself (contract- and customer-level ones follow in _apply_holds).
    reason = np.full(n, -1, dtype=np.int16)

    def first(mask, code):
        reason[(reason < 0) & np.asarray(mask, dtype=bool)] = code

    q = [x for x in quarantined if isinstance(x, str)]
    in_quarantine = (pc.is_in(source_id.values, value_set=pa.array(q, type=TEXT)).to_numpy(zero_copy_only=False)
                     if q else np.zeros(n, dtype=bool))
    first(in_quarantine, RANK["data_quality"])
    person = TextCodes.encode(items["person_id"])
    by_id = sort_order(source_id.values)
    dup = repeated_rows([person.codes, service_date.view(np.int64), project.codes, etype.codes, quantity, cost],
                        by_id)
    dup &= items["adjustment_type"].isna().to_numpy() & ~in_quarantine
    first(dup, RANK["duplicate"])
    contract_na = contract.isna()
    first(contract_na, RANK["out_of_scope"])
    first(items["billed_period"].notna().to_numpy(), RANK["previously_billed"])
    first(~items["billable"].to_numpy(dtype=bool), RANK["non_billable"])
    no_scope = scope_codes < 0
    first(no_scope & _gather(ref.fee_based, cpos, False), RANK["covered_by_fixed_fee"])
    first(no_scope, RANK["out_of_scope"])
    first(is_labor & ~has_rate & ~adj, RANK["missing_bill_rate"])
    exempt = adj  # credits of billed items skip term, approval and item holds
    first(~items["approved"].to_numpy(dtype=bool) & ~exempt, _AWAITING_ITEM)
    first(items["bill_hold"].to_numpy(dtype=bool) & ~exempt, _HOLD_ITEM)

    # Line-id order: expenses, then labor, each by item id (the stable sort keeps equal ids in order).
    labor_sorted = is_labor[by_id]
    order = np.concatenate([by_id[~labor_sorted], by_id[labor_sorted]]).astype(np.int64)
    kind = np.where(is_labor, KIND["labor"], KIND["expense"]).astype(np.int8)
    return _Lines(
        order, kind=kind, source_id=source_id, contract_id=contract, project_id=project,
        scope_line_id=TextCodes(scope_codes, scope_values),
        billing_type=TextCodes.of(btype, ["time_and_materials", "expense"]),
        description=TextCodes.of(desc, texts), role=role, person_id=person, expenditure_type=etype,
        adjusts_item_id=adjusts, adjustment_type=TextCodes.encode(items["adjustment_type"]),
        service_date=service_date, quantity_milli=quantity,
        unit_price_cents=np.where(is_labor & has_rate, rate, 0), unit_price_na=~(is_labor & has_rate),
        cost_cents=cost, amount_cents=amount, credits_prior_billing=adj, item_reason=reason, exempt=exempt,
    )


def _pair_lookup(a_codes: np.ndarray, a_values: pd.Index, b: TextCodes, table: pd.Series) -> np.ndarray:
    """table[(a value, b value)] per row (int), -1 where absent or either side is null.

    Evaluated on the grid of distinct values (a few thousand contracts x a few roles), then gathered.
    """
    out = np.full(len(a_codes), -1, dtype=np.int64)
    if table.empty or not len(a_values):
        return out
    b_values = pd.Index(b.value_list(), dtype=object)
    if len(a_values) * len(b_values) <= 4_000_000:
        grid = pd.MultiIndex.from_product([a_values, b_values])
        pos = table.index.get_indexer(grid)
        vals = np.where(pos >= 0, table.to_numpy()[pos], -1).reshape(len(a_values), len(b_values))
        # A last row and column of -1 for null codes (numpy's index -1).
        vals = np.pad(vals, ((0, 1), (0, 1)), constant_values=-1)
        return vals[a_codes, b.codes]
    pair = (a_codes.astype(np.int64) + 1) * (len(b_values) + 1) + b.codes + 1
    codes, uniq = pd.factorize(pair)
    ua, ub = uniq // (len(b_values) + 1) - 1, uniq % (len(b_values) + 1) - 1
    keys = pd.MultiIndex.from_arrays([np.where(ua >= 0, a_values.to_numpy()[ua], None),
                                      np.where(ub >= 0, b_values.to_numpy()[ub], None)])
    pos = table.index.get_indexer(keys)
    vals = np.where((pos >= 0) & (ua >= 0) & (ub >= 0), table.to_numpy()[pos], -1)
    return vals[codes]


def _effective_rate(rates: pd.DataFrame, ckey: np.ndarray, contract_ids: pd.Index, role: TextCodes,
                    service_date: np.ndarray, is_labor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bill rate in force on each labor item's date for its (contract, role), and whether there is one.

    Where two rates overlap (a set-up fault the gate reports), the one that started last wins (and of
    two that started the same day, the later row of the rate card).
    """
    n = len(ckey)
    rate = np.zeros(n, dtype=np.int64)
    found = np.zeros(n, dtype=bool)
    if rates.empty or not is_labor.any():
        return rate, found
    r = rates[["contract_id", "role", "bill_rate_cents", "effective_from", "effective_to"]].reset_index(drop=True)
    r = r.assign(_row=np.arange(len(r))).sort_values(["contract_id", "role", "effective_from", "_row"])
    r = r[r["contract_id"].notna().to_numpy() & r["role"].notna().to_numpy()]
    if r.empty:
        return rate, found
    group = r.groupby(["contract_id", "role"], sort=False).ngroup().to_numpy()
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    sizes = np.diff(np.r_[starts, len(r)])
    first_row = r.iloc[starts]
    groups = pd.Series(np.arange(len(starts)), index=pd.MultiIndex.from_arrays(
        [first_row["contract_id"].to_numpy(dtype=object), first_row["role"].to_numpy(dtype=object)]))
    gid = _pair_lookup(ckey, contract_ids, role, groups)
    gid[~is_labor] = -1
    eff_from = r["effective_from"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    eff_to = r["effective_to"].fillna(pd.Timestamp.max.normalize()).to_numpy(dtype="datetime64[ns]").view(np.int64)
    amounts = r["bill_rate_cents"].to_numpy(dtype=np.int64)
    day = service_date.view(np.int64)
    nat = np.isnat(service_date)
    todo = np.flatnonzero(gid >= 0)
    k = 0
    while len(todo):
        g = gid[todo]
        todo = todo[sizes[g] > k]
        if not len(todo):
            break
        row = starts[gid[todo]] + k
        d = day[todo]
        hit = (eff_from[row] <= d) & (d <= eff_to[row]) & ~nat[todo]
        rate[todo[hit]] = amounts[row[hit]]
        found[todo[hit]] = True
        k += 1
    return rate, found


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


# --- holds and caps ---------------------------------------------------------------------------------------
def _apply_holds(lines: _Lines, ref: _Ref, period: Period) -> None:
    """Set each line's reason: the first of PRECEDENCE that applies (item reasons first)."""
    lines.locate(ref)
    cpos = lines.contract_pos
    item_reason = lines.item_reason
    # Item-level holds are ranked with the contract-level ones, so they carry a temporary code.
    pending = (item_reason == _AWAITING_ITEM) | (item_reason == _HOLD_ITEM)
    reason = np.where(pending, -1, item_reason).astype(np.int16)

    def first(mask, code):
        reason[(reason < 0) & np.asarray(mask, dtype=bool)] = RANK[code]

    exempt = lines.exempt
    euro_only = period >= Period(2026, 1)
    bad_currency = np.array([c not in col.CURRENCIES or (c == "BGN" and euro_only)
                             for c in ref.contract_text["currency"].to_pylist()], dtype=bool)
    first(_gather(bad_currency, cpos, True) & ~lines.contract_id.isna(), "invalid_currency")
    first(_gather(ref.customer_missing, cpos, True), "out_of_scope")
    # Term: the contract's and the scope line's (a line without a known scope line: the contract's).
    nat = np.datetime64("NaT", "ns")
    start = _gather(ref.contract_start, cpos, nat)
    end = _gather(ref.contract_end, cpos, nat)
    spos = lines.scope_pos
    s_start = _gather(ref.scope_start, spos, nat)
    s_end = _gather(ref.scope_end, spos, nat)
    s_start = np.where(np.isnat(s_start), start, s_start)
    s_end = np.where(np.isnat(s_end), end, s_end)
    d = lines.service_date
    outside = (d < start) | (d > end) | (d < s_start) | (d > s_end)  # NaT compares False: not outside
    first(outside & ~exempt, "outside_contract_term")
    first(item_reason == _AWAITING_ITEM, "awaiting_approval")
    first(item_reason == _HOLD_ITEM, "bill_hold")
    first(_gather(ref.credit_hold, cpos, False) & ~exempt, "credit_hold")
    first(_gather(ref.po_required, cpos, False) & _gather(ref.po_missing, cpos, True), "missing_po")
    if not period.is_quarter_end:
        first(_gather(ref.quarterly, cpos, False), "invoice_frequency")
    lines.reason = reason
    # Not-billable lines (non-billable, previously billed, covered by a fee) have nothing to bill:
    # their candidate amount is zero and only their cost is reported as unbilled cost.
    lines.amount_cents = np.where(np.isin(reason, _NOT_BILLABLE), 0, lines.amount_cents)
    lines.billed_cents = np.where(reason < 0, lines.amount_cents, 0)


def _apply_caps(lines: _Lines, ref: _Ref, prior: pd.DataFrame) -> None:
    """Bill up to each scope line's not-to-exceed; hold the excess as `over_cap`.

    Headroom = cap - everything billed on the line in earlier periods. This period's billable lines
    fill it in order: credits first (they free headroom), then by service date and line id. The line
    that crosses the cap is billed in part.
    """
    lines.unbilled_cents = lines.amount_cents - lines.billed_cents
    cap = ref.scope["not_to_exceed_cents"]
    has_cap = cap.notna().to_numpy()
    if not has_cap.any():
        return
    capped = _gather(has_cap, lines.scope_pos, False) & (lines.reason < 0)
    if not capped.any():
        return
    used = prior.groupby("scope_line_id")["amount_cents"].sum()
    used = used.reindex(ref.scope_index).fillna(0).to_numpy(dtype=np.int64)
    headroom = np.clip(cap.fillna(0).to_numpy(dtype=np.int64) - used, 0, None)
    # Capped lines in line-id order, then stably by scope line, credits first, service date.
    sub = lines.order[capped[lines.order]]
    scope = lines.scope_pos[sub]
    billed = lines.billed_cents[sub]
    date = lines.service_date[sub]
    _, day = np.unique(np.where(np.isnat(date), np.datetime64(np.iinfo(np.int64).max - 1, "ns"), date),
                       return_inverse=True)
    seq = np.argsort(scope.astype(np.int64) * 2 * (len(sub) + 1) + (billed >= 0) * (len(sub) + 1) + day,
                     kind="stable") if len(ref.scope_index) < 2**62 // (2 * (len(sub) + 1)) else \
        np.lexsort((day, billed >= 0, scope))
    sub, scope, billed = sub[seq], scope[seq], billed[seq]
    total = np.cumsum(billed)
    first_of_group = np.flatnonzero(np.r_[True, scope[1:] != scope[:-1]])
    group_start = np.repeat(first_of_group, np.diff(np.r_[first_of_group, len(sub)]))
    before = total - billed - (total[group_start] - billed[group_start])
    allowed = np.clip(headroom[scope] - before, 0, None)
    lines.billed_cents[sub] = np.where(billed > 0, np.minimum(billed, allowed), billed)
    lines.unbilled_cents = lines.amount_cents - lines.billed_cents
    over = capped & (lines.unbilled_cents != 0)
    lines.reason[over] = RANK["over_cap"]
