"""Approval rules: which documents wait for a person, and who may approve them.

Pure: the flow asks these questions and records the answers; the Prefect pause is only the form.

Which documents need approval (each reason is kept, so the approver sees why):
- ``over_threshold``: an invoice whose gross amount is at or above the run's approval threshold
  (compared in the document's currency; thresholds are given in major units per currency, with a
  default for currencies not listed);
- ``credit_memo``: every credit memo, whatever its amount;
- ``data_quality_warning``: any document of a customer that had a row quarantined or flagged by a
  warning-level expectation in this run.

Segregation of duties: the approver must be a named person other than the run's preparer. Names are
compared case-insensitively after trimming and collapsing inner spaces, so "J. Doe" and " j.  doe"
are the same person.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import pandas as pd

APPROVAL_REASONS = ("over_threshold", "credit_memo", "data_quality_warning")
DECISIONS = ("approved", "rejected")


class SegregationOfDutiesError(ValueError):
    """The approver is the preparer (or nobody): the decision is refused."""


def normalise_person(name: str | None) -> str:
    return re.sub(r"\s+", " ", (name or "").strip()).casefold()


def check_segregation(preparer: str | None, approver: str | None) -> str:
    """Return the approver's name as typed (trimmed) if they may approve; raise otherwise."""
    who = normalise_person(approver)
    if not who:
        raise SegregationOfDutiesError("an approval needs the approver's name")
    if who == normalise_person(preparer):
        raise SegregationOfDutiesError(
            f"self-approval refused: {approver.strip()!r} prepared this run; another person must approve "
            "(segregation of duties)")
    return re.sub(r"\s+", " ", approver.strip())


def approval_reasons(documents: pd.DataFrame, threshold_cents: Mapping[str, int] | int | None,
                     warning_customers: Iterable[str] = ()) -> pd.Series:
    """For each document key, the reasons it needs approval ('' when none), joined by ', '.

    ``threshold_cents``: one amount for every currency, or a mapping currency -> cents with an
    optional ``"*"`` default; ``None`` means no amount threshold.
    """
    if documents.empty:
        return pd.Series([], dtype="object", name="approval_reasons")
    docs = documents.set_index("document_key")
    reasons = pd.DataFrame(index=docs.index)
    if threshold_cents is None:
        reasons["over_threshold"] = False
    else:
        if isinstance(threshold_cents, Mapping):
            default = threshold_cents.get("*")
            limit = docs["currency"].map(lambda c: threshold_cents.get(c, default))
        else:
            limit = pd.Series(int(threshold_cents), index=docs.index)
        limit = pd.to_numeric(limit, errors="coerce")
        reasons["over_threshold"] = (docs["document_type"] == "invoice") & limit.notna() & (
            docs["gross_cents"].abs() >= limit)
    reasons["credit_memo"] = docs["document_type"] == "credit_memo"
    reasons["data_quality_warning"] = docs["customer_id"].isin(set(warning_customers)) & (
        docs["document_type"] != "cost_transfer")
    joined = reasons.apply(lambda r: ", ".join(name for name in APPROVAL_REASONS if r[name]), axis=1)
    return joined.rename("approval_reasons")


def customers_of_rows(rows_by_dataset: Mapping[str, pd.DataFrame], data: Mapping[str, pd.DataFrame]) -> set[str]:
    """The customers that flagged rows belong to (through contract, project or scope line)."""
    contract_customer = data["contracts"].drop_duplicates("contract_id").set_index("contract_id")["customer_id"]
    project_contract = data["projects"].drop_duplicates("project_id").set_index("project_id")["contract_id"]
    scope_contract = data["scope_lines"].drop_duplicates("scope_line_id").set_index("scope_line_id")["contract_id"]
    found: set[str] = set()
    for rows in rows_by_dataset.values():
        if rows.empty:
            continue
        if "customer_id" in rows:
            customers = rows["customer_id"]
        elif "contract_id" in rows:
            customers = rows["contract_id"].map(contract_customer)
        elif "project_id" in rows:
            customers = rows["project_id"].map(project_contract).map(contract_customer)
        elif "scope_line_id" in rows:
            customers = rows["scope_line_id"].map(scope_contract).map(contract_customer)
        else:
            continue
        found |= set(customers.dropna().astype(str))
    return found
