"""Split the close by business unit, and put the units' results back together.

Each business unit is closed on its own slice of the data: its contracts and everything hanging from
them (scope lines, rates, projects, items, milestones, prior invoice lines, tracker additions), plus
the customers those contracts bill. Documents never span units (see billing.invoices), so the units'
batches are disjoint and their union is the whole batch.

Rows that cannot be placed in a unit (an item on an unknown project, a rate for an unknown contract)
go to the partition ``UNASSIGNED`` so they are still billed-or-explained by the rules (as exceptions)
and counted by the conservation check: a partitioned close loses nothing a single close would keep.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

from billing.close import CloseResult
from billing.conservation import check_conservation
from billing.invoices import Batch
from billing.unbilled import aging_summary

UNASSIGNED = "UNASSIGNED"


class PartitionError(ValueError):
    """A requested business unit has no contracts in the data."""


def _unit_of(keys: pd.Series, mapping: pd.Series) -> pd.Series:
    return keys.map(mapping).fillna(UNASSIGNED).astype("object")


def business_units(data: Mapping[str, pd.DataFrame]) -> list[str]:
    return sorted(data["contracts"]["business_unit"].dropna().unique().tolist())


def partition_by_business_unit(data: Mapping[str, pd.DataFrame],
                               units: Iterable[str] | None = None) -> dict[str, dict[str, pd.DataFrame]]:
    """{unit: {dataset: frame}}; ``units`` limits the result (None or empty: every unit)."""
    contracts = data["contracts"]
    contract_unit = contracts.set_index("contract_id")["business_unit"]
    project_unit = _unit_of(data["projects"]["contract_id"], contract_unit)
    project_unit.index = data["projects"]["project_id"]
    scope_unit = _unit_of(data["scope_lines"]["contract_id"], contract_unit)
    scope_unit.index = data["scope_lines"]["scope_line_id"]
    unit_col = {
        "contracts": contracts["business_unit"].fillna(UNASSIGNED).astype("object"),
        "scope_lines": scope_unit.reset_index(drop=True),
        "rate_card": _unit_of(data["rate_card"]["contract_id"], contract_unit),
        "projects": project_unit.reset_index(drop=True),
        "expenditure_items": _unit_of(data["expenditure_items"]["project_id"], project_unit),
        "milestones": _unit_of(data["milestones"]["scope_line_id"], scope_unit),
        "prior_invoice_lines": _unit_of(data["prior_invoice_lines"]["contract_id"], contract_unit),
        "tracker_additions": _unit_of(data["tracker_additions"]["contract_id"], contract_unit),
    }
    present = set(business_units(data))
    for col in unit_col.values():
        present |= set(col.unique())
    wanted = sorted(present) if not units else list(dict.fromkeys(units))
    unknown = [u for u in wanted if u not in present]
    if unknown:
        raise PartitionError(f"business unit(s) {', '.join(unknown)} have no contracts in the data; "
                             f"units present: {', '.join(sorted(present))}")
    customer_units = contracts.assign(bu=unit_col["contracts"].to_numpy())[["customer_id", "bu"]]
    out: dict[str, dict[str, pd.DataFrame]] = {}
    for unit in wanted:
        part: dict[str, pd.DataFrame] = {}
        for name, frame in data.items():
            if name in unit_col:
                part[name] = frame[(unit_col[name] == unit).to_numpy()].reset_index(drop=True)
            elif name == "customers":
                # The customers the unit's contracts bill (a contract billing an unknown customer stays
                # an exception, as in a single close).
                mine = set(customer_units.loc[customer_units["bu"] == unit, "customer_id"])
                part[name] = frame if unit == UNASSIGNED else frame[frame["customer_id"].isin(mine)].reset_index(
                    drop=True)
            else:
                part[name] = frame
        out[unit] = part
    return out


def combine_results(results: Mapping[str, CloseResult], items: pd.DataFrame) -> CloseResult:
    """One result from the units' results (reports, artifacts), conservation rechecked on the union.

    ``items``: the expenditure items of the units combined, straight from the input (not from the
    partitions), so an item lost between partitions breaks conservation.
    """
    parts = list(results.values())
    if not parts:
        raise ValueError("no business unit produced a result")

    def cat(frames):
        frames = list(frames)
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]

    batch = Batch(
        documents=cat(r.batch.documents for r in parts).sort_values("document_key", ignore_index=True),
        document_lines=cat(r.batch.document_lines for r in parts),
        line_documents=pd.concat([r.batch.line_documents for r in parts]),
        cost_transfers=cat(r.batch.cost_transfers for r in parts),
    )
    lines = cat(r.lines for r in parts)
    unbilled = cat(r.unbilled for r in parts)
    report = check_conservation(items, lines, batch, unbilled)
    return CloseResult(parts[0].period, lines, batch, unbilled, aging_summary(unbilled),
                       cat(r.exceptions for r in parts), report)
