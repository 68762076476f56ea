"""One collections day as a pure function: data and state in, every decision out (no I/O, no clock).

The flow (flows/collections_cycle.py) reads the data and the state from the store or Oracle, calls
`compute_collections`, then records, sends, asks for approval and hands off what this returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from receivables import credit, plans
from receivables.aging import aging
from receivables.disputes import customers_in_dispute, disputed_by_item
from receivables.dunning import DunningPolicy, consolidate, evaluate_ladder
from receivables.interest import late_interest
from receivables.metrics import metrics
from receivables.service import disconnection_checks, escalations, reconnections
from receivables.worklist import worklist


def _empty(*cols: str) -> pd.DataFrame:
    return pd.DataFrame(columns=list(cols))


@dataclass
class CollectionsState:
    """What collections recorded before today (all frames may be empty)."""

    history: pd.DataFrame = field(default_factory=lambda: _empty("payment_schedule_id", "level", "action_date"))
    actions: pd.DataFrame = field(default_factory=lambda: _empty("action_key", "customer_id", "as_of", "kind",
                                                                 "level", "state"))
    disputes: pd.DataFrame = field(default_factory=lambda: _empty("dispute_id", "payment_schedule_id",
                                                                  "customer_id", "amount_cents", "status"))
    plans: pd.DataFrame = field(default_factory=lambda: _empty("plan_id", "customer_id", "currency", "total_cents",
                                                               "status", "approved_on"))
    plan_installments: pd.DataFrame = field(default_factory=lambda: _empty("plan_id", "seq", "due_date",
                                                                           "amount_cents"))
    plan_items: pd.DataFrame = field(default_factory=lambda: _empty("plan_id", "payment_schedule_id"))
    service_requests: pd.DataFrame = field(default_factory=lambda: _empty(
        "request_id", "request_key", "customer_id", "action", "source_key", "requested_on", "state"))
    escalations: pd.DataFrame = field(default_factory=lambda: _empty("escalation_key", "customer_id", "state"))
    holds: pd.DataFrame = field(default_factory=lambda: _empty("customer_id", "set_by"))
    unbilled: pd.DataFrame = field(default_factory=lambda: _empty("customer_id", "currency", "unbilled_cents"))


@dataclass
class CollectionsResult:
    as_of: pd.Timestamp
    aging: pd.DataFrame
    ladder: pd.DataFrame
    letters: pd.DataFrame
    service: pd.DataFrame
    interest: pd.DataFrame
    plan_review: pd.DataFrame
    exposure: pd.DataFrame
    holds: pd.DataFrame
    reconnections: pd.DataFrame
    escalations: pd.DataFrame
    worklist: pd.DataFrame
    metrics: pd.DataFrame


def service_in_effect(service_requests: pd.DataFrame) -> pd.Series:
    """customer_id -> the disconnection in effect (soft/hard), from the latest delivered request."""
    if service_requests is None or service_requests.empty:
        return pd.Series([], dtype="object")
    done = service_requests[service_requests["state"] == "delivered"].sort_values(["requested_on", "request_id"])
    latest = done.drop_duplicates("customer_id", keep="last").set_index("customer_id")["action"]
    return latest[latest != "reconnection"]


def compute_collections(data: dict[str, pd.DataFrame], state: CollectionsState, as_of, policy: DunningPolicy,
                        rates: pd.DataFrame) -> CollectionsResult:
    """Aging, ladder, letters and service actions, interest, plans, exposure and holds, worklist, metrics."""
    day = pd.Timestamp(as_of).normalize()
    items, receipts = data["open_items"], data["cash_receipts"]
    accounts, notes = data["collection_accounts"], data["account_notes"]

    review = plans.check_installments(state.plans, state.plan_installments, receipts, day,
                                      policy.payment_plans.grace_days)
    plan_status = state.plans.set_index("plan_id")["status"].copy() if len(state.plans) else pd.Series(dtype=object)
    if len(review):
        plan_status.update(review.set_index("plan_id")["new_status"])
    current_plans = state.plans.assign(status=state.plans["plan_id"].map(plan_status)) if len(state.plans) \
        else state.plans
    plan_items = plans.items_under_active_plans(current_plans, state.plan_items)
    plan_customers = set(current_plans.loc[current_plans["status"] == "active", "customer_id"]) \
        if len(current_plans) else set()

    ladder = evaluate_ladder(items, day, policy, history=state.history, accounts=accounts, plan_items=plan_items,
                             disputed=disputed_by_item(state.disputes))
    actions = consolidate(ladder, policy)
    letters = actions[actions["kind"] == "letter"].reset_index(drop=True)
    service = actions[actions["kind"] == "service"].reset_index(drop=True)
    sent = state.actions
    fn = sent[(sent["kind"] == "letter") & (sent["level"] >= 3) & (sent["state"] == "sent")] if len(sent) else sent
    final_notice_sent = fn.groupby("customer_id")["as_of"].max() if len(fn) else pd.Series(dtype="datetime64[ns]")
    service = disconnection_checks(service, day, policy, final_notice_sent,
                                   customers_in_dispute(state.disputes, items), plan_customers)
    in_effect = service_in_effect(state.service_requests)
    if len(service):
        eff = service["customer_id"].map(in_effect)
        already = (eff == "hard_disconnection") | ((eff == "soft_disconnection") & (service["level"] == 4))
        service.loc[already & (service["blocked_reason"] == ""), "blocked_reason"] = \
            "already in effect: " + eff[already].astype(str)

    classes = accounts.set_index("customer_id")["customer_class"]
    interest = late_interest(items, data["receipt_applications"], day, rates, policy.interest, classes)
    exp = credit.exposure(items, state.unbilled, accounts)
    holds = credit.hold_decisions(exp, state.holds)
    overdue = ladder.groupby("customer_id")["overdue_cents"].sum()
    reconnect = reconnections(state.service_requests, overdue)
    escalated = set(state.escalations["customer_id"]) if len(state.escalations) else set()
    escalate = escalations(state.service_requests, ladder, day, policy, escalated)
    pending = pd.concat([state.actions[["customer_id", "state"]] if len(state.actions) else _empty("customer_id",
                                                                                                    "state"),
                         service.loc[service["blocked_reason"] == "", ["customer_id"]].assign(
                             state="pending_approval")], ignore_index=True)
    wl = worklist(ladder, accounts, pending, notes, state.disputes, day, policy)
    mx = metrics(items, receipts, notes, day, disputed=disputed_by_item(state.disputes))
    return CollectionsResult(day, aging(items, day), ladder, letters, service, interest, review, exp, holds, reconnect,
                             escalate, wl, mx)
