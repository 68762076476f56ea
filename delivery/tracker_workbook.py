"""The billing tracker: one XLSX workbook per period with every customer and contract's billing status.

``billing_tracker_<period>.xlsx``, sheet "Status", one row per (customer, contract):

- Customer ID, Customer, Contract ID, Contract, Currency: who and what;
- Status: ``held`` (some amount is held: a hold or exception reason, or a rejected document), else
  ``pending_approval`` (a document waits for an approver), else ``unbilled`` (deferred, e.g. a
  quarterly customer), else ``billed``; ``not_in_this_run`` for a row kept only for its comment;
- Reason: the hold reasons by amount (``credit_hold, awaiting_approval``), the approval wait, or the
  deferral;
- Oldest unbilled (days): age of the oldest line not billed (held or deferred), from its service date
  to the period end;
- Billed, Pending approval, Held, Unbilled: amounts in the contract currency (major units, exact);
- Comments: free text of the billing team, kept across runs.

A sheet "Totals" sums the amounts and counts the statuses per currency (amounts in different
currencies are never added). Other sheets a person adds to the workbook are left alone.

The Comments column is the billing team's: each run rebuilds Status and Totals from the close, then
writes back every comment found in the previous workbook under the same (Customer ID, Contract ID),
wherever the row was (sorted, filtered, moved). A commented row that is not in this run's status is
kept, at the end, with status ``not_in_this_run``, so a comment is never lost. The workbook is saved to
a temporary file and renamed over the old one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from openpyxl import Workbook, load_workbook
from openpyxl.styles import Alignment, Font, PatternFill

from billing.periods import Period
from billing.reasons import BY_CODE
from billing.schema import encode_text, text_array, text_lookup
from delivery.base import to_major

STATUS_SHEET = "Status"
TOTALS_SHEET = "Totals"
COMMENTS = "Comments"
STATUSES = ("held", "pending_approval", "unbilled", "billed", "not_in_this_run")
MONEY_FORMAT = "#,##0.00"

# (header, status-frame column); the key columns come first, Comments last.
COLUMNS = (
    ("Customer ID", "customer_id"), ("Customer", "customer_name"), ("Contract ID", "contract_id"),
    ("Contract", "contract_name"), ("Currency", "currency"), ("Status", "status"), ("Reason", "reason"),
    ("Oldest unbilled (days)", "oldest_unbilled_days"), ("Billed", "billed_cents"),
    ("Pending approval", "pending_approval_cents"), ("Held", "held_cents"), ("Unbilled", "unbilled_cents"),
)
STATUS_COLUMNS = [c for _, c in COLUMNS]
AMOUNT_COLUMNS = ("billed_cents", "pending_approval_cents", "held_cents", "unbilled_cents")
KEY_HEADERS = ("Customer ID", "Contract ID")


def tracker_path(folder: Path | str, period: Period | str) -> Path:
    return Path(folder) / f"billing_tracker_{period}.xlsx"


def contract_status(lines: pd.DataFrame, line_documents: pd.Series, document_status: Mapping[str, str] | pd.Series,
                    period: Period, customers: pd.DataFrame | None = None,
                    contracts: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per (customer, contract): amounts billed, pending approval, held and unbilled, status and reason.

    ``lines``: the period's billing lines (BILLING_LINES); ``line_documents``: billing line id ->
    document key (``Batch.line_documents``); ``document_status``: document key -> status in the store
    (prepared, pending_approval, approved, rejected, handed_off); a billed line whose document is
    missing from it counts as billed. Pure: no I/O, no clock.
    """
    status_of = pd.Series(document_status, dtype="object") if not isinstance(document_status, pd.Series) \
        else document_status
    lines = lines.reset_index(drop=True)
    # Codes per line, not a Python object per line: the line's document and its status, its reason and
    # the reason's category. Text is made only for the lines that give a contract its Reason.
    doc, doc_keys = encode_text(text_lookup(text_array(lines["line_id"]), line_documents))
    doc_keys = np.append(np.asarray(doc_keys, dtype=object), None)               # code -1 -> None
    doc_status = pd.Series(doc_keys[:-1], dtype="object").map(status_of).to_numpy(dtype=object)
    pending = np.append(doc_status == "pending_approval", False)[doc]
    rejected = np.append(doc_status == "rejected", False)[doc]
    reason_codes, reasons = pd.factorize(lines["reason"])
    reasons = np.append(np.asarray(reasons, dtype=object), None)
    category = np.array([BY_CODE[r].category if r in BY_CODE else None for r in reasons[:-1]] + [None], dtype=object)
    held_cat = np.isin(category, ["hold", "exception"])[reason_codes]
    deferred_cat = (category == "deferred")[reason_codes]
    billed = lines["billed_cents"].astype("int64").to_numpy()
    unbilled = lines["unbilled_cents"].astype("int64").to_numpy()
    age = (period.end_ts - pd.to_datetime(lines["service_date"])).dt.days.to_numpy()
    held_open = held_cat & (unbilled != 0)
    deferred_open = deferred_cat & (unbilled != 0)
    hold_amount = np.where(held_cat, np.abs(unbilled), 0) + np.where(rejected, np.abs(billed), 0)

    frame = pd.DataFrame({  # keys as categories: a code per line, not a Python string per line
        "customer_id": lines["customer_id"].astype("category"), "contract_id": lines["contract_id"].astype("category"),
        "currency": lines["currency"].astype("category"),
        "billed_cents": np.where(pending | rejected, 0, billed),
        "pending_approval_cents": np.where(pending, billed, 0),
        "held_cents": np.where(rejected, billed, 0) + np.where(held_cat, unbilled, 0),
        "unbilled_cents": np.where(deferred_cat, unbilled, 0),
        "age": np.where(held_open | deferred_open, age, -1),
    })
    keys = ["customer_id", "contract_id", "currency"]
    g = frame.groupby(keys, sort=True, dropna=False, observed=True)
    out = g[list(AMOUNT_COLUMNS)].sum().astype("int64")
    out["oldest_unbilled_days"] = g["age"].max()
    group = g.ngroup().to_numpy()                     # each line's row of ``out``
    has_hold = held_open | rejected
    held_any = np.bincount(group[has_hold], minlength=len(out)) > 0
    why = has_hold | pending | deferred_open          # the lines that give a contract its Reason
    text = reasons[reason_codes[why]]
    out["reason"] = _reasons(pd.DataFrame({
        "group": group[why],
        "hold_reason": np.where(held_open[why], text, np.where(rejected[why], "approval_rejected", None)),
        "hold_amount": hold_amount[why],
        "deferred_reason": np.where(deferred_open[why], text, None),
        "pending_doc": np.where(pending[why], doc_keys[doc[why]], None),
    }), len(out))
    out = out.reset_index()
    for k in keys:  # back to text, as grouping on text gives it
        out[k] = pd.array(out[k].astype("object"), dtype=pd.StringDtype(na_value=np.nan))
    out["status"] = np.select(
        [held_any | (out["held_cents"] != 0), out["pending_approval_cents"] != 0, out["unbilled_cents"] != 0,
         out["billed_cents"] != 0], ["held", "pending_approval", "unbilled", "billed"], default="")
    out = out[out["status"] != ""]
    out["oldest_unbilled_days"] = pd.array(out["oldest_unbilled_days"].where(out["oldest_unbilled_days"] >= 0),
                                           dtype="Int64")
    names = customers.set_index("customer_id")["customer_name"] if customers is not None else pd.Series(
        dtype="object")
    cnames = contracts.set_index("contract_id")["contract_name"] if contracts is not None else pd.Series(
        dtype="object")
    out["customer_name"] = out["customer_id"].map(names)
    out["contract_name"] = out["contract_id"].map(cnames)
    return out[STATUS_COLUMNS].reset_index(drop=True)


def _reasons(frame: pd.DataFrame, groups: int) -> list[str | None]:
    """The Reason of each group (``frame["group"]``, 0..groups-1): its hold reasons by amount held
    (largest first, then by name), else the documents awaiting approval, else the deferral reasons
    (both sorted); None when there is none of these."""
    held = frame[frame["hold_reason"].notna()].groupby(["group", "hold_reason"], sort=True)["hold_amount"].sum()
    held = held.reset_index().sort_values(["group", "hold_amount"], ascending=[True, False], kind="stable")
    found = {column: frame.loc[frame[column].notna(), ["group", column]].drop_duplicates().sort_values(
        ["group", column]) for column in ("pending_doc", "deferred_reason")}
    held_by, pending_by, deferred_by = (_by_group(t["group"], t[c]) for t, c in (
        (held, "hold_reason"), (found["pending_doc"], "pending_doc"), (found["deferred_reason"], "deferred_reason")))
    reason: list[str | None] = [None] * groups
    for grp, values in deferred_by.items():
        reason[grp] = ", ".join(values)
    for grp, values in pending_by.items():
        reason[grp] = f"awaiting approval: {', '.join(values)}"
    for grp, values in held_by.items():
        reason[grp] = ", ".join(values)
    return reason


def _by_group(groups: pd.Series, values: pd.Series) -> dict[int, list]:
    """group -> its values, in the order given."""
    out: dict[int, list] = {}
    for grp, value in zip(groups.tolist(), values.tolist(), strict=True):
        out.setdefault(grp, []).append(value)
    return out


def read_comments(path: Path | str) -> dict[tuple[str, str], object]:
    """(Customer ID, Contract ID) -> the Comments cell's value, from an existing tracker workbook."""
    path = Path(path)
    if not path.exists():
        return {}
    wb = load_workbook(path)
    if STATUS_SHEET not in wb.sheetnames:
        return {}
    ws = wb[STATUS_SHEET]
    header = {str(c.value).strip(): c.column for c in ws[1] if c.value is not None}
    missing = [h for h in (*KEY_HEADERS, COMMENTS) if h not in header]
    if missing:
        raise ValueError(f"{path.name}: sheet {STATUS_SHEET} has no column {', '.join(missing)} in row 1; restore "
                         "the header so the billing team's comments can be kept")
    comments = {}
    for row in ws.iter_rows(min_row=2):
        cust = row[header["Customer ID"] - 1].value
        contract = row[header["Contract ID"] - 1].value
        value = row[header[COMMENTS] - 1].value
        if cust is None or contract is None or value is None or (isinstance(value, str) and not value.strip()):
            continue
        comments[(str(cust).strip(), str(contract).strip())] = value
    return comments


def update_tracker_workbook(path: Path | str, status: pd.DataFrame, period: Period | str,
                            generated_at: datetime | None = None) -> Path:
    """Write this run's status into the tracker at ``path``, keeping every comment; returns the path."""
    path = Path(path)
    missing = [c for c in STATUS_COLUMNS if c not in status.columns]
    if missing:
        raise ValueError(f"tracker status for {period} lacks column(s) {', '.join(missing)}")
    dupes = status.duplicated(["customer_id", "contract_id"], keep=False)
    if dupes.any():
        first = status.loc[dupes, ["customer_id", "contract_id"]].iloc[0].tolist()
        raise ValueError(f"tracker status for {period}: ({first[0]}, {first[1]}) appears more than once "
                         "(one row per customer and contract; several currencies are not supported)")
    comments = read_comments(path)
    rows = status.sort_values(["customer_id", "contract_id"]).to_dict("records")
    present = {(str(r["customer_id"]), str(r["contract_id"])) for r in rows}
    orphans = [k for k in comments if k not in present]

    wb = load_workbook(path) if path.exists() else Workbook()
    if not path.exists():
        wb.remove(wb.active)
    for name in (STATUS_SHEET, TOTALS_SHEET):
        if name in wb.sheetnames:
            index = wb.sheetnames.index(name)
            wb.remove(wb[name])
            wb.create_sheet(name, index)
        else:
            wb.create_sheet(name)
    ws = wb[STATUS_SHEET]
    headers = [h for h, _ in COLUMNS] + [COMMENTS]
    ws.append(headers)
    for c in ws[1]:
        c.font = Font(bold=True, color="FFFFFF")
        c.fill = PatternFill("solid", fgColor="305496")
        c.alignment = Alignment(wrap_text=True, vertical="top")
    ws.cell(1, len(headers)).fill = PatternFill("solid", fgColor="548235")   # the team's column
    for r in rows:
        cur = str(r["currency"])
        values = []
        for _, col in COLUMNS:
            v = r[col]
            if col in AMOUNT_COLUMNS:
                v = to_major(int(v), cur)
            elif v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
                v = None
            elif isinstance(v, (np.integer,)):
                v = int(v)
            else:
                v = v if isinstance(v, int) else str(v)
            values.append(v)
        ws.append([*values, comments.get((str(r["customer_id"]), str(r["contract_id"])))])
        for cell in ws[ws.max_row][:len(values)]:   # data from the sources is text, never a formula
            if cell.data_type == "f":
                cell.data_type = "s"
    for cust, contract in orphans:
        ws.append([cust, None, contract, None, None, "not_in_this_run", None, None, None, None, None, None,
                   comments[(cust, contract)]])
    for i, (_, col) in enumerate(COLUMNS, start=1):
        if col in AMOUNT_COLUMNS:
            for cell in ws.iter_rows(min_row=2, min_col=i, max_col=i):
                cell[0].number_format = MONEY_FORMAT
    for letter, width in zip("ABCDEFGHIJKLM", (12, 28, 12, 28, 9, 17, 34, 12, 14, 14, 14, 14, 50), strict=True):
        ws.column_dimensions[letter].width = width
    ws.freeze_panes = "C2"
    ws.auto_filter.ref = f"A1:M{max(ws.max_row, 1)}"
    _totals(wb[TOTALS_SHEET], status, period, generated_at)

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        wb.save(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def _totals(ws, status: pd.DataFrame, period, generated_at: datetime | None) -> None:
    ws.append(["Billing tracker", str(period)])
    if generated_at is not None:
        ws.append(["Updated", generated_at.replace(tzinfo=None)])
        ws.cell(ws.max_row, 2).number_format = "yyyy-mm-dd hh:mm"
    ws.append([])
    ws.append(["Currency", "Contracts", *[s for s in STATUSES[:4]], "Billed", "Pending approval", "Held", "Unbilled"])
    for c in ws[ws.max_row]:
        c.font = Font(bold=True)
    for cur, grp in status.groupby("currency", sort=True):
        counts = grp["status"].value_counts()
        ws.append([str(cur), len(grp), *[int(counts.get(s, 0)) for s in STATUSES[:4]],
                   *[to_major(int(grp[c].sum()), str(cur)) for c in AMOUNT_COLUMNS]])
        for i in range(7, 11):
            ws.cell(ws.max_row, i).number_format = MONEY_FORMAT
    ws.column_dimensions["A"].width = 16
    for letter in "BCDEFGHIJ":
        ws.column_dimensions[letter].width = 15
