"""A second, independent implementation of the billable and unbilled computation, in DuckDB SQL.

Bench-only (DuckDB is in the dev and bench extras, never imported by the close). It is written from the
billing conventions (docs/CONVENTIONS.md, billing/reasons.py), not translated from the pandas code, and
runs on the same canonical frames, quarantine and credit holds. `compare_with_pandas` runs both and
checks that their totals are equal to the cent:

- every candidate line by currency and reason (count, candidate, billed, not billed, cost);
- the unbilled report by currency, reason and aging bucket (count, not billed, unbilled cost).

Money stays in integer cents: integer arithmetic with `//` and one explicit half-away-from-zero rounding
macro (DuckDB's `/` on integers returns a float, and its `//` truncates toward zero, so floors are
spelled out too).

    .venv/bin/python bench/duckdb_reference.py --items 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from billing import columns as col  # noqa: E402
from billing.periods import Period  # noqa: E402
from billing.reasons import PRECEDENCE  # noqa: E402

BILLED = "(billed)"
NO_CURRENCY = "(none)"
LINE_KEYS = ["currency", "reason"]
LINE_TOTALS = ["lines", "amount_cents", "billed_cents", "unbilled_cents", "cost_cents"]
UNBILLED_KEYS = ["currency", "reason", "aging_bucket"]
UNBILLED_TOTALS = ["lines", "unbilled_cents", "cost_cents"]

# Reason codes in precedence order, split as the rules apply them: item-level reasons are known from
# the item alone; the rest needs the contract, customer and period.
NOT_BILLABLE = tuple(r.code for r in PRECEDENCE if r.category == "not_billable")

SQL = r"""
-- Half away from zero, exact on integers (d > 0): 2.5 -> 3, -2.5 -> -3.
CREATE OR REPLACE TEMP MACRO rhu(n, d) AS
    CASE WHEN n < 0 THEN -((-n + d // 2) // d) ELSE (n + d // 2) // d END;
-- Floor division (DuckDB's // truncates toward zero), b > 0.
CREATE OR REPLACE TEMP MACRO fdiv(a, b) AS (a - ((a % b) + b) % b) // b;

-- Set-up rows the data-quality gate quarantined are left out of the reference data.
CREATE OR REPLACE TEMP TABLE c_customers AS
SELECT * FROM customers x
WHERE NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.dataset = 'customers' AND q.record_key = x.customer_id);
CREATE OR REPLACE TEMP TABLE c_contracts AS
SELECT * FROM contracts x
WHERE NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.dataset = 'contracts' AND q.record_key = x.contract_id);
CREATE OR REPLACE TEMP TABLE c_scope AS
SELECT * REPLACE (CAST(start_date AS DATE) AS start_date, CAST(end_date AS DATE) AS end_date) FROM scope_lines x
WHERE NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.dataset = 'scope_lines' AND q.record_key = x.scope_line_id);
CREATE OR REPLACE TEMP TABLE c_projects AS
SELECT * FROM projects x
WHERE NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.dataset = 'projects' AND q.record_key = x.project_id);
CREATE OR REPLACE TEMP TABLE c_rates AS
SELECT * REPLACE (CAST(effective_from AS DATE) AS effective_from, CAST(effective_to AS DATE) AS effective_to)
FROM rate_card x
WHERE NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.dataset = 'rate_card' AND q.record_key =
    x.contract_id || '|' || coalesce(x.role, '') || '|' || coalesce(strftime(x.effective_from, '%Y-%m-%d'), ''));
CREATE OR REPLACE TEMP TABLE c_prior AS SELECT * FROM prior_invoice_lines WHERE period < $period;

-- Contracts with what the holds need from their customer.
CREATE OR REPLACE TEMP TABLE k AS
SELECT k.contract_id, k.customer_id, k.business_unit, k.currency,
       CAST(k.start_date AS DATE) AS start_date, CAST(k.end_date AS DATE) AS end_date,
       coalesce(c.po_required, false) AS po_required,
       coalesce(k.po_number, c.po_number) AS po_effective,
       coalesce(c.credit_hold OR c.customer_id IN (SELECT customer_id FROM holds), false) AS credit_hold,
       coalesce(c.invoice_frequency = 'quarterly', false) AS quarterly,
       k.contract_id IN (SELECT contract_id FROM c_scope
                         WHERE billing_type IN ('fixed_fee', 'milestone', 'recurring')) AS fee_based
FROM c_contracts k LEFT JOIN c_customers c ON c.customer_id = k.customer_id;

-- Scope look-ups: the first matching line in scope-line order.
CREATE OR REPLACE TEMP TABLE tm_role AS
SELECT contract_id, role, scope_line_id FROM c_scope
WHERE billing_type = 'time_and_materials' AND role IS NOT NULL
QUALIFY row_number() OVER (PARTITION BY contract_id, role ORDER BY _row) = 1;
CREATE OR REPLACE TEMP TABLE tm_any AS
SELECT contract_id, scope_line_id FROM c_scope
WHERE billing_type = 'time_and_materials' AND role IS NULL
QUALIFY row_number() OVER (PARTITION BY contract_id ORDER BY _row) = 1;
CREATE OR REPLACE TEMP TABLE exp_line AS
SELECT contract_id, scope_line_id, markup_bp FROM c_scope WHERE billing_type = 'expense'
QUALIFY row_number() OVER (PARTITION BY contract_id ORDER BY _row) = 1;
-- What an adjusted item was billed in an earlier period (first prior line of the item).
CREATE OR REPLACE TEMP TABLE billed_before AS
SELECT source_id, quantity_milli, amount_cents, scope_line_id, period FROM c_prior
WHERE source_kind IN ('labor', 'expense')
QUALIFY row_number() OVER (PARTITION BY source_id ORDER BY _row) = 1;

-- Per contract id (known or only named by scope lines): its T&M all-roles line, expense line and markup,
-- and whether the contract is known with its terms and holds.
CREATE OR REPLACE TEMP TABLE kc AS
WITH ids AS (SELECT contract_id FROM k UNION SELECT contract_id FROM tm_any UNION SELECT contract_id FROM exp_line)
SELECT ids.contract_id, k.contract_id IS NOT NULL AS known, k.currency, k.customer_id,
       k.start_date, k.end_date, k.po_required, k.po_effective, k.credit_hold, k.quarterly,
       coalesce(k.fee_based, false) AS fee_based,
       ta.scope_line_id AS any_line, e.scope_line_id AS exp_line, coalesce(e.markup_bp, 0) AS markup_bp
FROM ids LEFT JOIN k ON k.contract_id = ids.contract_id
LEFT JOIN tm_any ta ON ta.contract_id = ids.contract_id LEFT JOIN exp_line e ON e.contract_id = ids.contract_id;
-- Per project: its contract and the contract's facts.
CREATE OR REPLACE TEMP TABLE pk AS
SELECT p.project_id, p.contract_id, kc.* EXCLUDE (contract_id)
FROM c_projects p LEFT JOIN kc ON kc.contract_id = p.contract_id;

-- Items keyed in twice: same person, date, project, type, quantity and cost; the first by item id stays.
CREATE OR REPLACE TEMP TABLE first_of_repeats AS
SELECT arg_min(_row, struct_pack(i := item_id, r := _row)) AS first_row,
       person_id, expenditure_date, project_id, expenditure_type, quantity_milli, raw_cost_cents
FROM expenditure_items
GROUP BY person_id, expenditure_date, project_id, expenditure_type, quantity_milli, raw_cost_cents
HAVING count(*) > 1;

CREATE OR REPLACE TEMP TABLE item_base AS
SELECT i._row, i.item_id, i.project_id, p.contract_id, i.role, CAST(i.expenditure_date AS DATE) AS service_date,
       i.expenditure_type = 'labor' AS is_labor, i.quantity_milli, i.raw_cost_cents, i.billable, i.bill_hold,
       i.approved, i.billed_period, i.adjusts_item_id, i.adjustment_type,
       q.record_key IS NOT NULL AS quarantined,
       f.first_row IS NOT NULL AND f.first_row <> i._row AS repeats,
       p.known, p.currency, p.customer_id, p.start_date, p.end_date, p.po_required, p.po_effective,
       p.credit_hold, p.quarterly, coalesce(p.fee_based, false) AS fee_based, p.any_line, p.exp_line,
       coalesce(p.markup_bp, 0) AS markup_bp
FROM expenditure_items i
LEFT JOIN pk p ON p.project_id = i.project_id
LEFT JOIN (SELECT DISTINCT record_key FROM quarantine WHERE dataset = 'expenditure_items') q
       ON q.record_key = i.item_id
LEFT JOIN first_of_repeats f
       ON f.person_id IS NOT DISTINCT FROM i.person_id AND f.expenditure_date IS NOT DISTINCT FROM i.expenditure_date
      AND f.project_id IS NOT DISTINCT FROM i.project_id AND f.expenditure_type IS NOT DISTINCT FROM i.expenditure_type
      AND f.quantity_milli = i.quantity_milli AND f.raw_cost_cents = i.raw_cost_cents;

-- The rate in force on the item's date for (contract, role); of two, the one that started last.
CREATE OR REPLACE TEMP TABLE item_rate AS
SELECT b._row, r.bill_rate_cents AS rate
FROM item_base b JOIN c_rates r ON r.contract_id = b.contract_id AND r.role = b.role
WHERE b.is_labor AND r.effective_from <= b.service_date
  AND b.service_date <= coalesce(r.effective_to, DATE '9999-12-31')
QUALIFY row_number() OVER (PARTITION BY b._row ORDER BY r.effective_from DESC, r._row DESC) = 1;

CREATE OR REPLACE TEMP TABLE item_lines AS
WITH x AS (
    SELECT b.*, r.rate,
           bb.source_id IS NOT NULL AND (b.quantity_milli < 0 OR b.raw_cost_cents < 0) AS credit,
           bb.quantity_milli AS prior_qty, bb.amount_cents AS prior_amount, bb.scope_line_id AS prior_scope,
           CASE WHEN b.is_labor THEN coalesce(tr.scope_line_id, b.any_line) ELSE b.exp_line END AS own_scope
    FROM item_base b
    LEFT JOIN item_rate r ON r._row = b._row
    LEFT JOIN tm_role tr ON tr.contract_id = b.contract_id AND tr.role = b.role
    LEFT JOIN billed_before bb ON bb.source_id = b.adjusts_item_id
)
SELECT CASE WHEN is_labor THEN 'labor' ELSE 'expense' END AS source_kind, item_id AS source_id, contract_id,
       CASE WHEN credit THEN prior_scope ELSE own_scope END AS scope_line_id, service_date,
       raw_cost_cents AS cost_cents, credit,
       CASE WHEN credit THEN -(CASE WHEN prior_qty = 0 OR abs(quantity_milli) = prior_qty THEN prior_amount
                                    ELSE rhu(prior_amount * abs(quantity_milli), prior_qty) END)
            WHEN is_labor AND rate IS NOT NULL THEN rhu(quantity_milli * rate, 1000)
            WHEN NOT is_labor THEN rhu(raw_cost_cents * (10000 + markup_bp), 10000)
            ELSE 0 END AS amount_cents,
       CASE WHEN quarantined THEN 'data_quality'
            WHEN repeats AND adjustment_type IS NULL THEN 'duplicate'
            WHEN contract_id IS NULL THEN 'out_of_scope'
            WHEN billed_period IS NOT NULL THEN 'previously_billed'
            WHEN NOT billable THEN 'non_billable'
            WHEN (CASE WHEN credit THEN prior_scope ELSE own_scope END) IS NULL AND fee_based
                THEN 'covered_by_fixed_fee'
            WHEN (CASE WHEN credit THEN prior_scope ELSE own_scope END) IS NULL THEN 'out_of_scope'
            WHEN is_labor AND rate IS NULL AND NOT credit THEN 'missing_bill_rate'
            WHEN NOT approved AND NOT credit THEN 'awaiting_approval_item'
            WHEN bill_hold AND NOT credit THEN 'bill_hold_item'
       END AS item_reason,
       known, currency, customer_id, start_date, end_date, po_required, po_effective, credit_hold, quarterly
FROM x;

-- Contract-level lines: fixed-fee installments due and not billed (late ones catch up).
CREATE OR REPLACE TEMP TABLE fee_base AS
SELECT 'fixed_fee' AS source_kind, s.scope_line_id || ':' || g.k AS source_id, s.contract_id, s.scope_line_id,
       greatest(CAST(make_date(CAST(fdiv(due, 12) AS BIGINT), CAST(due % 12 + 1 AS BIGINT), 1) AS DATE),
                s.start_date) AS service_date,
       0 AS cost_cents, false AS credit,
       fdiv(s.amount_cents, s.installments)
         + CASE WHEN g.k = s.installments
                THEN s.amount_cents - fdiv(s.amount_cents, s.installments) * s.installments ELSE 0 END
         AS amount_cents,
       NULL AS item_reason
FROM (SELECT *, year(start_date) * 12 + month(start_date) - 1 AS first_due FROM c_scope
      WHERE billing_type = 'fixed_fee' AND coalesce(installments, 0) > 0) s,
     LATERAL (SELECT k, s.first_due + k - 1 AS due FROM range(1, s.installments + 1) t(k)) g
WHERE g.due <= $period_index
  AND NOT EXISTS (SELECT 1 FROM c_prior p WHERE p.source_kind = 'fixed_fee'
                  AND p.source_id = s.scope_line_id || ':' || g.k)
UNION ALL
-- Milestones completed by the period end and not billed.
SELECT 'milestone', m.milestone_id, s.contract_id, m.scope_line_id, CAST(m.completed_date AS DATE), 0, false,
       m.amount_cents,
       CASE WHEN EXISTS (SELECT 1 FROM quarantine q WHERE q.dataset = 'milestones'
                         AND q.record_key = m.milestone_id) THEN 'data_quality' END
FROM milestones m JOIN c_scope s ON s.scope_line_id = m.scope_line_id
WHERE m.completed_date IS NOT NULL AND CAST(m.completed_date AS DATE) <= $period_end
  AND NOT EXISTS (SELECT 1 FROM c_prior p WHERE p.source_kind = 'milestone' AND p.source_id = m.milestone_id)
UNION ALL
-- This month's recurring fee, by calendar days in force.
SELECT 'recurring', scope_line_id || ':' || $period, contract_id, scope_line_id, greatest(start_date, $period_start),
       0, false, rhu(amount_cents * days, $period_days), NULL
FROM (SELECT *, least(end_date, $period_end) - greatest(start_date, $period_start) + 1 AS days
      FROM c_scope WHERE billing_type = 'recurring')
WHERE days > 0
  AND NOT EXISTS (SELECT 1 FROM c_prior p WHERE p.source_kind = 'recurring'
                  AND p.source_id = scope_line_id || ':' || $period)
UNION ALL
-- Billing-tracker additions dated by the period end and not billed.
SELECT 'manual', a.addition_id, a.contract_id, NULL, CAST(a.service_date AS DATE), 0, false, a.amount_cents,
       CASE WHEN EXISTS (SELECT 1 FROM quarantine q WHERE q.dataset = 'tracker_additions'
                         AND q.record_key = a.addition_id) THEN 'data_quality'
            WHEN k.contract_id IS NULL THEN 'out_of_scope' END
FROM tracker_additions a LEFT JOIN k ON k.contract_id = a.contract_id
WHERE CAST(a.service_date AS DATE) <= $period_end
  AND NOT EXISTS (SELECT 1 FROM c_prior p WHERE p.source_kind = 'manual' AND p.source_id = a.addition_id);

CREATE OR REPLACE TEMP TABLE fee_lines AS
SELECT f.*, k.contract_id IS NOT NULL AS known, k.currency, k.customer_id, k.start_date, k.end_date,
       k.po_required, k.po_effective, k.credit_hold, k.quarterly
FROM fee_base f LEFT JOIN k ON k.contract_id = f.contract_id;

-- Every line: the first reason that applies, in the convention's order; not-billable lines bill 0.
CREATE OR REPLACE TEMP TABLE held AS
WITH l AS (SELECT * FROM item_lines UNION ALL BY NAME SELECT * FROM fee_lines),
r AS (
    SELECT l.source_kind, l.source_id, l.scope_line_id, l.service_date, l.cost_cents, l.amount_cents, l.currency,
      s.not_to_exceed_cents AS cap,
      CASE WHEN l.item_reason IS NOT NULL AND l.item_reason NOT IN ('awaiting_approval_item', 'bill_hold_item')
               THEN l.item_reason
           WHEN l.contract_id IS NOT NULL AND (NOT coalesce(l.known, false)
                 OR coalesce(l.currency NOT IN ($currencies), true) OR (l.currency = 'BGN' AND $euro_only))
               THEN 'invalid_currency'
           WHEN l.customer_id IS NULL THEN 'out_of_scope'
           WHEN NOT l.credit AND coalesce(l.service_date < l.start_date OR l.service_date > l.end_date
                 OR l.service_date < coalesce(s.start_date, l.start_date)
                 OR l.service_date > coalesce(s.end_date, l.end_date), false) THEN 'outside_contract_term'
           WHEN l.item_reason = 'awaiting_approval_item' THEN 'awaiting_approval'
           WHEN l.item_reason = 'bill_hold_item' THEN 'bill_hold'
           WHEN l.credit_hold AND NOT l.credit THEN 'credit_hold'
           WHEN l.po_required AND l.po_effective IS NULL THEN 'missing_po'
           WHEN l.quarterly AND NOT $quarter_end THEN 'invoice_frequency'
      END AS reason
    FROM l LEFT JOIN c_scope s ON s.scope_line_id = l.scope_line_id
)
SELECT * REPLACE (CASE WHEN reason IN ($not_billable) THEN 0 ELSE amount_cents END AS amount_cents),
       CASE WHEN reason IS NULL THEN amount_cents ELSE 0 END AS billed_cents
FROM r;

-- Caps: a line's headroom is what its scope line's cap leaves after earlier periods and this period's
-- earlier lines (credits first, then by date and line id); the line crossing the cap bills in part.
CREATE OR REPLACE TEMP TABLE lines AS
WITH used AS (SELECT scope_line_id, sum(amount_cents) AS used FROM c_prior GROUP BY scope_line_id),
c AS (
    SELECT h.*, greatest(h.cap - coalesce(u.used, 0), 0) AS headroom,
           sum(h.billed_cents) OVER (
               PARTITION BY h.scope_line_id
               ORDER BY h.billed_cents >= 0, h.service_date, h.source_kind || ':' || h.source_id
               ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) - h.billed_cents AS before
    FROM held h LEFT JOIN used u ON u.scope_line_id = h.scope_line_id
    WHERE h.cap IS NOT NULL AND h.reason IS NULL
),
b AS (
    SELECT * EXCLUDE (headroom, before) REPLACE (
        CASE WHEN billed_cents > 0 THEN least(billed_cents, greatest(headroom - before, 0)) ELSE billed_cents END
        AS billed_cents)
    FROM c
)
SELECT * REPLACE (CASE WHEN amount_cents - billed_cents <> 0 THEN 'over_cap' ELSE reason END AS reason),
       amount_cents - billed_cents AS unbilled_cents
FROM b
UNION ALL
SELECT *, amount_cents - billed_cents AS unbilled_cents FROM held WHERE NOT (cap IS NOT NULL AND reason IS NULL);
"""

TOTALS_SQL = f"""
SELECT coalesce(currency, '{NO_CURRENCY}') AS currency, coalesce(reason, '{BILLED}') AS reason,
       count(*) AS lines, CAST(sum(amount_cents) AS BIGINT) AS amount_cents,
       CAST(sum(billed_cents) AS BIGINT) AS billed_cents, CAST(sum(unbilled_cents) AS BIGINT) AS unbilled_cents,
       CAST(sum(cost_cents) AS BIGINT) AS cost_cents
FROM lines GROUP BY ALL
"""

UNBILLED_SQL = f"""
SELECT coalesce(currency, '{NO_CURRENCY}') AS currency, reason,
       CASE WHEN age <= 30 THEN '0-30' WHEN age <= 60 THEN '31-60' WHEN age <= 90 THEN '61-90' ELSE '90+' END
           AS aging_bucket,
       count(*) AS lines, CAST(sum(unbilled_cents) AS BIGINT) AS unbilled_cents,
       -- a line billed in part reports the unbilled share of its cost
       CAST(sum(CASE WHEN billed_cents <> 0 AND amount_cents <> 0
                THEN rhu(cost_cents * unbilled_cents * CASE WHEN amount_cents < 0 THEN -1 ELSE 1 END,
                         abs(amount_cents))
                ELSE cost_cents END) AS BIGINT) AS cost_cents
FROM (SELECT *, $period_end - service_date AS age FROM lines WHERE reason IS NOT NULL)
GROUP BY ALL
"""


def _arrow(frame: pd.DataFrame) -> pa.Table:
    """A canonical frame as an Arrow table (zero-copy for Arrow text and numpy numbers), with `_row`."""
    table = pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)
    return table.append_column("_row", pa.array(np.arange(len(frame), dtype=np.int64)))


def _params(period: Period) -> dict:
    return {
        "period": str(period), "period_index": period.index(), "period_start": period.start,
        "period_end": period.end, "period_days": period.days, "quarter_end": period.is_quarter_end,
        "euro_only": period >= Period(2026, 1),
    }


def _literal(values) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def reference_totals(data: Mapping[str, pd.DataFrame], period: Period,
                     quarantine: Mapping[str, set[str]] | None = None,
                     credit_holds: set[str] | None = None, threads: int | None = None) -> dict[str, pd.DataFrame]:
    """The billable and unbilled totals computed by DuckDB SQL (see module docstring)."""
    import duckdb

    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    for name in col.INPUT_DATASETS:
        con.register(name, _arrow(data[name]))
    q = [(d, str(k)) for d, keys in (quarantine or {}).items() for k in keys]
    con.register("quarantine", pa.table({"dataset": pa.array([d for d, _ in q], pa.string()),
                                         "record_key": pa.array([k for _, k in q], pa.string())}))
    con.register("holds", pa.table({"customer_id": pa.array(sorted(credit_holds or ()), pa.string())}))
    sql = SQL.replace("$currencies", _literal(col.CURRENCIES)).replace("$not_billable", _literal(NOT_BILLABLE))
    p = _params(period)
    for key in sorted(p, key=len, reverse=True):  # $period_end before $period
        value = p[key]
        text = (f"DATE '{value.isoformat()}'" if hasattr(value, "isoformat") else
                ("true" if value else "false") if isinstance(value, bool) else
                f"'{value}'" if isinstance(value, str) else str(value))
        sql = sql.replace(f"${key}", text)
    unbilled_sql = UNBILLED_SQL.replace("$period_end", f"DATE '{period.end.isoformat()}'")
    con.execute(sql)
    out = {"lines": con.sql(TOTALS_SQL).df(), "unbilled": con.sql(unbilled_sql).df()}
    con.close()
    return {name: _normalise(frame, name) for name, frame in out.items()}


def pandas_totals(lines: pd.DataFrame, unbilled: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The same totals from the close's own billing lines and unbilled report."""
    lines = lines.assign(currency=lines["currency"].astype("object").fillna(NO_CURRENCY),
                         reason=lines["reason"].astype("object").fillna(BILLED))
    by_line = lines.groupby(LINE_KEYS, dropna=False).agg(
        lines=("line_id", "size"), amount_cents=("amount_cents", "sum"), billed_cents=("billed_cents", "sum"),
        unbilled_cents=("unbilled_cents", "sum"), cost_cents=("cost_cents", "sum")).reset_index()
    u = unbilled.assign(currency=unbilled["currency"].astype("object").fillna(NO_CURRENCY))
    by_bucket = u.groupby(UNBILLED_KEYS, dropna=False).agg(
        lines=("line_id", "size"), unbilled_cents=("unbilled_cents", "sum"),
        cost_cents=("cost_cents", "sum")).reset_index()
    return {"lines": _normalise(by_line, "lines"), "unbilled": _normalise(by_bucket, "unbilled")}


def _normalise(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    keys, totals = (LINE_KEYS, LINE_TOTALS) if name == "lines" else (UNBILLED_KEYS, UNBILLED_TOTALS)
    out = pd.DataFrame({k: frame[k].astype("object").astype(str) for k in keys})
    for t in totals:
        out[t] = frame[t].astype("int64")
    return out.sort_values(keys, ignore_index=True)


def differences(a: pd.DataFrame, b: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Rows whose totals differ (or exist on one side only), with both sides' figures."""
    m = a.merge(b, on=keys, how="outer", suffixes=("_pandas", "_duckdb"), indicator=True)
    totals = [c.removesuffix("_pandas") for c in m.columns if c.endswith("_pandas")]
    diff = m["_merge"] != "both"
    for t in totals:
        diff |= m[f"{t}_pandas"].fillna(-1) != m[f"{t}_duckdb"].fillna(-1)
    return m[diff].drop(columns="_merge")


def compare_with_pandas(data: Mapping[str, pd.DataFrame], period: Period,
                        quarantine: Mapping[str, set[str]] | None = None,
                        credit_holds: set[str] | None = None, repeat: int = 1) -> dict:
    """Run the pandas engine and the DuckDB reference on the same data; times, ratio and equality.

    With `repeat` > 1 the two run alternately that many times and the fastest of each is reported: on a
    shared machine, other jobs slow one run or the other, not the same one every time.
    """
    from billing.billable import compute_billing_lines
    from billing.unbilled import unbilled_items

    pandas_runs, duckdb_runs = [], []
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        lines = compute_billing_lines(data, period, quarantine=quarantine, extra_credit_holds=credit_holds)
        unbilled = unbilled_items(lines, period)
        mine = pandas_totals(lines, unbilled)
        pandas_runs.append(time.perf_counter() - t0)
        del lines, unbilled
        t0 = time.perf_counter()
        ref = reference_totals(data, period, quarantine, credit_holds)
        duckdb_runs.append(time.perf_counter() - t0)
    pandas_s, duckdb_s = min(pandas_runs), min(duckdb_runs)
    line_diff = differences(mine["lines"], ref["lines"], LINE_KEYS)
    bucket_diff = differences(mine["unbilled"], ref["unbilled"], UNBILLED_KEYS)
    by_currency = mine["lines"].groupby("currency")[["amount_cents", "billed_cents", "unbilled_cents"]].sum()
    return {
        "equal": line_diff.empty and bucket_diff.empty,
        "pandas_seconds": round(pandas_s, 3),
        "duckdb_seconds": round(duckdb_s, 3),
        "pandas_over_duckdb": round(pandas_s / duckdb_s, 2),
        "runs_seconds": {"pandas": [round(x, 3) for x in pandas_runs], "duckdb": [round(x, 3) for x in duckdb_runs]},
        "duckdb_threads": os.cpu_count(),
        "groups_compared": {"currency_reason": len(mine["lines"]), "currency_reason_bucket": len(mine["unbilled"])},
        "totals_by_currency": {cur: {k: int(v) for k, v in row.items()} for cur, row in by_currency.iterrows()},
        "differences": {"currency_reason": line_diff.to_dict("records"),
                        "currency_reason_bucket": bucket_diff.to_dict("records")},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=20261)
    ap.add_argument("--period", default="2026-10")
    ap.add_argument("--repeat", type=int, default=3, help="alternate runs; the fastest of each is reported")
    args = ap.parse_args(argv)
    from connectors.sample_company import generate

    period = Period.parse(args.period)
    data = generate(period, args.items, args.seed)
    result = compare_with_pandas(data, period, repeat=args.repeat)
    print(json.dumps(result, indent=1, default=str))
    return 0 if result["equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
