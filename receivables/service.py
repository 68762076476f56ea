"""Service actions after the letters: disconnection checks, reconnection, escalation to a third party.

- Disconnection (soft, then hard) is never automatic. Before a person is even asked, the customer must
  have had a final notice *sent* at least ``final_notice_min_days`` before the as-of date, no open
  dispute and no active payment plan; otherwise the action is blocked with the reason.
- Reconnection follows payment: a customer whose latest delivered service request is a disconnection
  and who has nothing overdue any more (disputed amounts aside) gets a reconnection request.
- Escalation: a customer hard-disconnected at least ``days_after_hard_disconnection`` days ago whose
  oldest overdue item is at least ``min_days_past_due`` old goes to legal when its overdue total reaches
  the policy's legal threshold in a currency, otherwise to the collection agency; once per customer.
"""

from __future__ import annotations

import pandas as pd

from receivables.aging import days_between

DISCONNECTIONS = ("soft_disconnection", "hard_disconnection")


def disconnection_checks(actions: pd.DataFrame, as_of, policy, final_notice_sent: pd.Series,
                         disputed_customers: set[str], plan_customers: set[str]) -> pd.DataFrame:
    """`actions` (customer_id, level_code, ...) with ``blocked_reason`` ('' when it may go to approval).

    `final_notice_sent`: customer_id -> date of the latest final notice actually sent.
    """
    out = actions.copy()
    min_days = policy.disconnection.final_notice_min_days
    reasons = []
    for r in out.itertuples(index=False):
        sent = final_notice_sent.get(r.customer_id)
        if sent is None or pd.isna(sent):
            reasons.append("no final notice sent")
            continue
        days = int(days_between(pd.Series([pd.Timestamp(sent)]), as_of)[0])
        if days < min_days:
            reasons.append(f"final notice sent {days} days ago; the policy needs {min_days}")
        elif r.customer_id in disputed_customers:
            reasons.append("open dispute")
        elif r.customer_id in plan_customers:
            reasons.append("active payment plan")
        else:
            reasons.append("")
    out["blocked_reason"] = reasons
    return out


def reconnections(service_requests: pd.DataFrame, overdue_by_customer: pd.Series) -> pd.DataFrame:
    """customer_id, disconnection_key for customers disconnected whose overdue total is now zero.

    `service_requests`: customer_id, action, request_key, state, requested_on (delivered ones count).
    """
    cols = ["customer_id", "disconnection_key"]
    if service_requests is None or service_requests.empty:
        return pd.DataFrame(columns=cols)
    done = service_requests[service_requests["state"] == "delivered"].sort_values(["requested_on", "request_id"])
    latest = done.drop_duplicates("customer_id", keep="last")
    cut = latest[latest["action"].isin(DISCONNECTIONS)]
    owing = overdue_by_customer.reindex(cut["customer_id"]).fillna(0).to_numpy() > 0
    paid = cut[~owing]
    return pd.DataFrame({"customer_id": paid["customer_id"].to_numpy(),
                         "disconnection_key": paid["request_key"].to_numpy()}, columns=cols)


def escalations(service_requests: pd.DataFrame, ladder: pd.DataFrame, as_of, policy,
                already_escalated: set[str]) -> pd.DataFrame:
    """customer_id, target (legal | agency), overdue (per currency), oldest_days_past_due, disconnected_on."""
    cols = ["customer_id", "target", "overdue", "oldest_days_past_due", "disconnected_on"]
    if service_requests is None or service_requests.empty or ladder.empty:
        return pd.DataFrame(columns=cols)
    esc = policy.escalation
    hard = service_requests[(service_requests["state"] == "delivered")
                            & (service_requests["action"] == "hard_disconnection")]
    if hard.empty:
        return pd.DataFrame(columns=cols)
    first_hard = hard.groupby("customer_id")["requested_on"].min()
    rows = []
    for customer, on in first_hard.items():
        if customer in already_escalated:
            continue
        if int(days_between(pd.Series([pd.Timestamp(on)]), as_of)[0]) < esc.days_after_hard_disconnection:
            continue
        mine = ladder[(ladder["customer_id"] == customer) & (ladder["overdue_cents"] > 0)]
        if mine.empty or int(mine["days_past_due"].max()) < esc.min_days_past_due:
            continue
        overdue = {str(c): int(v) for c, v in mine.groupby("currency")["overdue_cents"].sum().items()}
        legal = any(esc.threshold(c) is not None and v >= esc.threshold(c) for c, v in overdue.items())
        rows.append({"customer_id": customer, "target": "legal" if legal else "agency", "overdue": overdue,
                     "oldest_days_past_due": int(mine["days_past_due"].max()),
                     "disconnected_on": pd.Timestamp(on)})
    return pd.DataFrame(rows, columns=cols)
