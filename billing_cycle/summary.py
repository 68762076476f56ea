"""The close summary: the same figures as text for the terminal and as Markdown for the Prefect UI."""

from __future__ import annotations

from billing.close import CloseResult
from billing.money import format_cents
from billing.unbilled import BUCKET_NAMES


def summary_dict(result: CloseResult, handoff: dict | None = None, validation: dict | None = None) -> dict:
    totals = result.totals_by_currency()
    aging = result.aging
    by_currency_bucket = {}
    if len(aging):
        g = aging.groupby("currency")[list(BUCKET_NAMES)].sum()
        by_currency_bucket = {cur: {b: int(v) for b, v in row.items()} for cur, row in g.iterrows()}
    reasons = result.exceptions_by_reason()
    c = result.conservation
    return {
        "period": str(result.period),
        "documents": {f"{r.currency}/{r.document_type}": {"count": int(r.documents), "net_cents": int(r.net_cents),
                                                          "tax_cents": int(r.tax_cents),
                                                          "gross_cents": int(r.gross_cents)}
                      for r in totals.itertuples(index=False)},
        "unbilled_aging_cents": by_currency_bucket,
        "not_billed_by_reason": {r.reason: {"category": r.reason_category, "lines": int(r.lines),
                                            "unbilled_cents": int(r.unbilled_cents), "cost_cents": int(r.cost_cents)}
                                 for r in reasons.itertuples(index=False)},
        "conservation": {"candidate_cents": c.candidate_cents, "billed_cents": c.billed_cents,
                         "unbilled_cents": c.unbilled_cents, "input_cost_cents": c.input_cost_cents,
                         "balanced": c.ok},
        "cost_transfers": len(result.batch.cost_transfers),
        "handoff": handoff or {},
        "validation": validation or {},
    }


def summary_text(s: dict) -> str:
    out = [f"Month-end close {s['period']}", ""]
    out.append("Invoices and credit memos (net / tax / gross):")
    if not s["documents"]:
        out.append("  none")
    for k, v in sorted(s["documents"].items()):
        cur, kind = k.split("/")
        out.append(f"  {cur} {kind:<12} {v['count']:>5}  {format_cents(v['net_cents']):>18}  "
                   f"{format_cents(v['tax_cents']):>15}  {format_cents(v['gross_cents']):>18}")
    out += ["", "Unbilled at period end by age (amount):"]
    out.append("  " + " " * 4 + "".join(f"{b:>16}" for b in BUCKET_NAMES))
    for cur, buckets in sorted(s["unbilled_aging_cents"].items()):
        out.append(f"  {cur:<4}" + "".join(f"{format_cents(buckets[b]):>16}" for b in BUCKET_NAMES))
    out += ["", "Not billed, by reason (lines / amount / cost):"]
    for reason, v in sorted(s["not_billed_by_reason"].items(), key=lambda kv: (kv[1]["category"], kv[0])):
        out.append(f"  {v['category']:<13} {reason:<22} {v['lines']:>7}  {format_cents(v['unbilled_cents']):>16}  "
                   f"{format_cents(v['cost_cents']):>16}")
    c = s["conservation"]
    out += ["", f"Conservation: candidate {format_cents(c['candidate_cents'])} = billed "
            f"{format_cents(c['billed_cents'])} + not billed {format_cents(c['unbilled_cents'])}"
            f"  [{'balanced' if c['balanced'] else 'BROKEN'}]  (all currencies, in cents of each)"]
    v = s.get("validation") or {}
    if v:
        out.append(f"Data quality: {v.get('quarantined_records', 0)} records quarantined, "
                   f"{v.get('warnings', 0)} warning expectations failed, {v.get('blocking', 0)} blocking")
        for rule, f in (v.get("seeded_faults") or {}).items():
            rate = f["seeded"] / f["records"] if f["records"] else 0
            verdict = "all caught" if f["caught"] == f["seeded"] else f"{f['seeded'] - f['caught']} MISSED"
            out.append(f"  seeded faults ({rule}): {f['seeded']} of {f['records']} {f['dataset']} "
                       f"({rate:.2%}, seeded rate {f['seeded_rate']:.2%}), {f['caught']} caught: {verdict}")
    h = s.get("handoff") or {}
    if h:
        if h.get("dry_run"):
            out.append("Hand-off: dry run, nothing handed off.")
        elif h.get("delivered", 0) == 0:
            out.append(f"Hand-off: nothing new to hand off ({h.get('unchanged', 0)} documents already handed off "
                       "with the same content).")
        else:
            out.append(f"Hand-off: {h['delivered']} documents handed off ({h.get('revisions', 0)} revisions, "
                       f"{h.get('reversals', 0)} reversing credit memos); {h.get('unchanged', 0)} unchanged.")
    a = s.get("approvals") or {}
    if a:
        decided = (f"; {a['approved']} approved and {a['rejected']} rejected by {a['approver']}"
                   if a.get("approver") else "")
        escalated = "; approval overdue, escalated" if a.get("escalated") else ""
        out.append(f"Approvals: {a['pending']} documents wait for approval{decided}{escalated}."
                   + ("  List and decide: billing-cycle approve" if a["pending"] else ""))
    refused = s.get("refused_by_targets") or {}
    if refused:
        out.append(f"Refused by a target ({len(refused)} documents stay pending; fix the data and run again):")
        out += [f"  {why}" for why in list(refused.values())[:5]]
        if len(refused) > 5:
            out.append(f"  ... and {len(refused) - 5} more (see the store's documents.handoff_error)")
    units = s.get("business_units") or {}
    if units:
        out.append("Business units: " + ", ".join(f"{u} {st}" for u, st in sorted(units.items())))
    if s.get("output_dir"):
        out.append(f"Files: {s['output_dir']}")
    return "\n".join(out)


def summary_markdown(s: dict) -> str:
    lines = [f"# Month-end close {s['period']}", "", "| currency | type | documents | net | tax | gross |",
             "|---|---|---:|---:|---:|---:|"]
    for k, v in sorted(s["documents"].items()):
        cur, kind = k.split("/")
        lines.append(f"| {cur} | {kind} | {v['count']} | {format_cents(v['net_cents'])} | "
                     f"{format_cents(v['tax_cents'])} | {format_cents(v['gross_cents'])} |")
    lines += ["", "## Unbilled by age", "", "| currency | " + " | ".join(BUCKET_NAMES) + " |",
              "|---|" + "---:|" * len(BUCKET_NAMES)]
    for cur, b in sorted(s["unbilled_aging_cents"].items()):
        lines.append(f"| {cur} | " + " | ".join(format_cents(b[x]) for x in BUCKET_NAMES) + " |")
    lines += ["", "## Not billed by reason", "", "| category | reason | lines | amount | cost |",
              "|---|---|---:|---:|---:|"]
    for reason, v in sorted(s["not_billed_by_reason"].items(), key=lambda kv: (kv[1]["category"], kv[0])):
        lines.append(f"| {v['category']} | {reason} | {v['lines']} | {format_cents(v['unbilled_cents'])} | "
                     f"{format_cents(v['cost_cents'])} |")
    a = s.get("approvals") or {}
    if a:
        lines += ["", f"**Approvals**: {a['pending']} pending"
                  + (f", {a['approved']} approved and {a['rejected']} rejected by {a['approver']}"
                     if a.get("approver") else "") + (", overdue and escalated" if a.get("escalated") else "") + "."]
    for rule, f in ((s.get("validation") or {}).get("seeded_faults") or {}).items():
        lines += ["", f"**Seeded faults** ({rule}): {f['seeded']} seeded in {f['records']} {f['dataset']} "
                  f"(seeded rate {f['seeded_rate']:.2%}), {f['caught']} caught."]
    units = s.get("business_units") or {}
    if units:
        lines += ["", "**Business units**: " + ", ".join(f"{u} {st}" for u, st in sorted(units.items()))]
    if s.get("output_dir"):
        lines += ["", f"**Files**: `{s['output_dir']}` (invoices, hand-off folders, unbilled and exceptions reports, "
                  "billing tracker)"]
    c = s["conservation"]
    lines += ["", f"**Conservation**: {'balanced' if c['balanced'] else 'BROKEN'} — candidate "
              f"{format_cents(c['candidate_cents'])} = billed {format_cents(c['billed_cents'])} + not billed "
              f"{format_cents(c['unbilled_cents'])}."]
    return "\n".join(lines)
