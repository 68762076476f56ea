"""The dispute register's rules: lifecycle, who may resolve, what it does to dunning, credit-memo requests.

Lifecycle: open -> under_review -> resolved_credit_memo | rejected -> closed. Nothing else.
- Routing: a dispute up to the policy's specialist limit (per currency) is level 1 and the collections
  specialist who owns it resolves it; above the limit it is level 2 (escalated): its resolution needs a
  second person, other than the owner (segregation of duties, billing.approvals.check_segregation).
- Open and under-review disputes pause dunning on their amount (see receivables.dunning).
- A credit-memo resolution records a credit-memo request; the next close bills it as a manual credit
  (see `as_tracker_additions` and docs/COLLECTIONS.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from billing.approvals import check_segregation
from billing.money import div_round_half_up

STATUSES = ("open", "under_review", "resolved_credit_memo", "rejected", "closed")
ACTIVE = ("open", "under_review")
TRANSITIONS = {
    "open": ("under_review",),
    "under_review": ("resolved_credit_memo", "rejected"),
    "resolved_credit_memo": ("closed",),
    "rejected": ("closed",),
    "closed": (),
}


class DisputeError(ValueError):
    """A dispute or a step of its lifecycle is refused; the message names the dispute and the field."""


@dataclass(frozen=True)
class Routing:
    level: int
    resolver: str  # "specialist" or "manager"


def route(amount_cents: int, currency: str, disputes_policy) -> Routing:
    """Level 1 (specialist) up to the limit in the currency, level 2 (manager) above it."""
    limit = disputes_policy.limit(currency)
    if limit is None:
        raise DisputeError(f"dispute currency {currency!r}: the policy has no specialist_limit for it")
    return Routing(1, "specialist") if amount_cents <= limit else Routing(2, "manager")


def check_new(payment_schedule_id: str, amount_cents: int, remaining_cents: int, already_disputed: int = 0,
              reason: str | None = "x") -> None:
    """A new dispute must be positive and within what is open and not already disputed."""
    where = f"dispute on {payment_schedule_id}"
    if not reason or not str(reason).strip():
        raise DisputeError(f"{where}: reason is required")
    if amount_cents <= 0:
        raise DisputeError(f"{where}: amount_cents {amount_cents} must be positive")
    if amount_cents > remaining_cents - already_disputed:
        raise DisputeError(f"{where}: amount_cents {amount_cents} exceeds the undisputed open amount "
                           f"{remaining_cents - already_disputed}")


def check_transition(dispute_id: str, current: str, new: str, *, level: int, owner: str, actor: str) -> str:
    """Return the actor's name if `current -> new` is allowed for them; raise DisputeError otherwise."""
    if new not in TRANSITIONS.get(current, ()):
        allowed = ", ".join(TRANSITIONS.get(current, ())) or "nothing (closed)"
        raise DisputeError(f"dispute {dispute_id}: status cannot go from {current!r} to {new!r}; "
                           f"from {current!r} it can go to {allowed}")
    if new in ("resolved_credit_memo", "rejected") and level >= 2:
        try:
            return check_segregation(owner, actor)
        except ValueError as exc:
            raise DisputeError(f"dispute {dispute_id} is escalated (level 2): {exc}") from None
    if not (actor or "").strip():
        raise DisputeError(f"dispute {dispute_id}: the person acting must be named")
    return actor.strip()


def disputed_by_item(register: pd.DataFrame) -> pd.Series:
    """Cents under an active dispute per payment_schedule_id."""
    if register is None or register.empty:
        return pd.Series([], dtype="int64")
    active = register[register["status"].isin(ACTIVE)]
    return active.groupby("payment_schedule_id")["amount_cents"].sum().astype("int64")


def customers_in_dispute(register: pd.DataFrame, items: pd.DataFrame | None = None) -> set[str]:
    """Customers with an active dispute in the register or an amount in dispute in the source."""
    out: set[str] = set()
    if register is not None and len(register):
        out |= set(register.loc[register["status"].isin(ACTIVE), "customer_id"])
    if items is not None and len(items):
        op = items[(items["status"] == "OP") & (items["amount_in_dispute_cents"] > 0)]
        out |= set(op["customer_id"])
    return out


def net_of_tax(gross_cents: int, tax_rate_bp: int) -> int:
    """The net amount whose tax at `tax_rate_bp` gives `gross_cents` (rounded half away from zero)."""
    return int(div_round_half_up(int(gross_cents) * 10_000, 10_000 + int(tax_rate_bp)))


def as_tracker_additions(requests: pd.DataFrame, invoices: pd.DataFrame) -> pd.DataFrame:
    """Pending credit-memo requests as manual credits for the next close (TRACKER_ADDITIONS columns).

    `invoices`: document_key, contract_id, tax_rate_bp of the disputed invoices (from the store's
    documents and document lines). The disputed amount is gross; the credit is its net, because the
    close adds tax. A request whose invoice is unknown is refused with its id.
    """
    cols = ["addition_id", "contract_id", "project_id", "description", "amount_cents", "service_date",
            "source", "entered_by"]
    if requests.empty:
        return pd.DataFrame(columns=cols)
    inv = invoices.drop_duplicates("document_key").set_index("document_key")
    unknown = requests.loc[~requests["trx_number"].isin(inv.index), "request_id"]
    if len(unknown):
        raise DisputeError(f"credit-memo request {unknown.iloc[0]}: trx_number is not an invoice of the store")
    rows = []
    for r in requests.itertuples(index=False):
        doc = inv.loc[r.trx_number]
        rows.append({
            "addition_id": f"CMR-{r.request_id}", "contract_id": doc["contract_id"], "project_id": None,
            "description": f"Credit agreed in dispute {r.dispute_id} on {r.trx_number}",
            "amount_cents": -net_of_tax(r.amount_cents, doc["tax_rate_bp"]),
            "service_date": pd.Timestamp(r.requested_on), "source": f"collections:credit_memo_request:{r.request_id}",
            "entered_by": r.requested_by})
    return pd.DataFrame(rows, columns=cols)
