"""The compute stage of the month-end close as one pure function: data in, every result out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from billing.billable import compute_billing_lines
from billing.conservation import ConservationReport, check_conservation
from billing.invoices import Batch, build_batch
from billing.periods import Period
from billing.reasons import EXCEPTIONS
from billing.unbilled import aging_summary, unbilled_items


@dataclass
class CloseResult:
    period: Period
    lines: pd.DataFrame
    batch: Batch
    unbilled: pd.DataFrame
    aging: pd.DataFrame
    exceptions: pd.DataFrame
    conservation: ConservationReport

    def totals_by_currency(self) -> pd.DataFrame:
        """Invoices and credit memos: count, net, tax, gross per currency and document type."""
        d = self.batch.documents
        d = d[d["document_type"] != "cost_transfer"]
        return d.groupby(["currency", "document_type"]).agg(
            documents=("document_key", "size"), net_cents=("net_cents", "sum"), tax_cents=("tax_cents", "sum"),
            gross_cents=("gross_cents", "sum")).reset_index()

    def exceptions_by_reason(self) -> pd.DataFrame:
        u = self.unbilled
        return u.groupby(["reason_category", "reason"]).agg(
            lines=("line_id", "size"), unbilled_cents=("unbilled_cents", "sum"), cost_cents=("cost_cents", "sum"),
        ).reset_index().sort_values(["reason_category", "lines"], ascending=[True, False])


def compute_close(data: Mapping[str, pd.DataFrame], period: Period,
                  quarantine: Mapping[str, set[str]] | None = None,
                  credit_holds: set[str] | None = None) -> CloseResult:
    """Billable lines, invoice batch, unbilled aging, exceptions and the conservation check."""
    lines = compute_billing_lines(data, period, quarantine=quarantine, extra_credit_holds=credit_holds)
    batch = build_batch(lines, data["customers"], data["contracts"], period)
    unbilled = unbilled_items(lines, period)
    exceptions = unbilled[unbilled["reason"].isin(EXCEPTIONS).to_numpy(dtype=bool, na_value=False)]
    report = check_conservation(data["expenditure_items"], lines, batch, unbilled)
    return CloseResult(period, lines, batch, unbilled, aging_summary(unbilled), exceptions.reset_index(drop=True),
                       report)
