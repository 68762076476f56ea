"""The collector worklist: per collector, accounts ranked by what is overdue and for how long.

Rank within a collector: overdue amount (largest first), then oldest days past due, then customer id
(amounts in different currencies are compared as numbers: a collector's accounts share a currency in
practice, and the currency is printed beside each amount). Next action, in order of precedence:
approve a disconnection waiting for approval, follow up a promise due, review an open dispute, the
proposed dunning level, the next level's date, or "monitor".
"""

from __future__ import annotations

import pandas as pd

from receivables.disputes import ACTIVE


def worklist(ladder: pd.DataFrame, accounts: pd.DataFrame, actions: pd.DataFrame, notes: pd.DataFrame,
             disputes: pd.DataFrame, as_of, policy) -> pd.DataFrame:
    """One row per account with something overdue or pending (see the module doc for the order)."""
    cols = ["collector", "rank", "customer_id", "customer_name", "currency", "overdue_cents", "disputed_cents",
            "oldest_days_past_due", "level_reached", "next_action", "next_action_date", "last_note",
            "last_note_date", "open_promise_cents", "open_promise_date"]
    day = pd.Timestamp(as_of).normalize()
    od = ladder[ladder["overdue_cents"] + ladder["disputed_cents"] > 0]
    if od.empty:
        return pd.DataFrame(columns=cols)
    g = od.groupby("customer_id")
    per = pd.DataFrame({
        "currency": g["currency"].agg(lambda s: ",".join(sorted(set(s)))),
        "overdue_cents": g["overdue_cents"].sum().astype("int64"),
        "disputed_cents": g["disputed_cents"].sum().astype("int64"),
        "oldest_days_past_due": g["days_past_due"].max().astype("int64"),
        "level_reached": g["level_reached"].max().astype("int64"),
        "proposed": g["proposed_level"].max().astype("int64"),
    })
    acc = accounts.set_index("customer_id")
    per["collector"] = per.index.map(acc["collector"]).fillna("unassigned")
    per["customer_name"] = per.index.map(acc["customer_name"])
    nt = notes.sort_values(["note_date", "note_id"]) if len(notes) else notes
    last = nt.drop_duplicates("customer_id", keep="last").set_index("customer_id") if len(nt) else None
    per["last_note"] = per.index.map(last["text"]) if last is not None else None
    per["last_note_date"] = per.index.map(last["note_date"]) if last is not None else pd.NaT
    promises = nt[nt["promise_date"].notna() & (nt["promise_date"] >= day - pd.Timedelta(days=7))] if len(nt) \
        else nt
    prom = promises.drop_duplicates("customer_id", keep="last").set_index("customer_id") if len(promises) else None
    per["open_promise_cents"] = (per.index.map(prom["promise_amount_cents"]) if prom is not None else pd.NA)
    per["open_promise_date"] = (per.index.map(prom["promise_date"]) if prom is not None else pd.NaT)
    waiting = set(actions.loc[actions["state"] == "pending_approval", "customer_id"]) if len(actions) else set()
    disputing = set(disputes.loc[disputes["status"].isin(ACTIVE), "customer_id"]) if len(disputes) else set()
    nxt, when = [], []
    for cid, r in per.iterrows():
        promise_due = pd.notna(r["open_promise_date"]) and r["open_promise_date"] <= day
        if cid in waiting:
            nxt.append("approve disconnection"), when.append(day)
        elif promise_due:
            nxt.append("follow up promise"), when.append(r["open_promise_date"])
        elif cid in disputing:
            nxt.append("review dispute"), when.append(day)
        elif r["proposed"] > 0:
            nxt.append(f"send {policy.level(int(r['proposed'])).name}"), when.append(day)
        elif r["level_reached"] < len(policy.levels):
            lv = policy.level(int(r["level_reached"]) + 1)
            nxt.append(f"{lv.name} when due"), when.append(day + pd.Timedelta(days=max(
                0, lv.days_past_due - int(r["oldest_days_past_due"]))))
        else:
            nxt.append("monitor"), when.append(day)
    per["next_action"] = nxt
    per["next_action_date"] = pd.to_datetime(when)
    per = per.reset_index().sort_values(["collector", "overdue_cents", "oldest_days_past_due", "customer_id"],
                                        ascending=[True, False, False, True])
    per["rank"] = per.groupby("collector").cumcount() + 1
    return per[cols].reset_index(drop=True)
