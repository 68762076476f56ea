"""`billing-cycle`: run the month-end close and its helpers from a terminal.

    billing-cycle close --period 2026-10                 # sample company, SQLite store, files in out/
    billing-cycle close --period 2026-10 --source files:exports/2026-10
    billing-cycle sample --period 2026-10 --out exports/2026-10   # write the sample company as CSV files
    billing-cycle approve --approver "Ivan Georgiev" --approve all  # decide what waits for approval
    billing-cycle schema                                 # the canonical schema as Markdown
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def _prefect_env(verbose: bool) -> None:
    # Offline, the server otherwise logs a telemetry error at every start.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # The embedded (ephemeral) API starts in 10-20 s on a quiet 2-core machine; Prefect gives up at 20 s,
    # which a busy month-end machine can exceed.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    if not verbose:
        # The CLI reports outcomes itself (a summary, or one line per error); Prefect's own log lines,
        # tracebacks included, show with --verbose.
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")
        # The embedded API server logs its own shutdown noise (a session dropped when the close stops
        # early on bad input) to the same terminal.
        os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")
        os.environ.setdefault("PREFECT_LOGGING_LOG_PRINTS", "false")
        import logging

        logging.getLogger("great_expectations").setLevel(logging.WARNING)


class UserError(Exception):
    """A problem with the user's input: reported in one line, exit status 2."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="billing-cycle", description="Monthly billing-cycle pipelines on Prefect.")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("close", help="Run the month-end close for a period.")
    c.add_argument("--period", required=True, help="Month to close, YYYY-MM.")
    c.add_argument("--source", "--sources", dest="source", default="sample",
                   help="sample | sample:items=N,seed=S | files:PATH | emulated | live (default: sample).")
    c.add_argument("--out", default="out", help="Output folder (default: out).")
    c.add_argument("--store", default=None, help="Store URL (default: SQLite in the output folder).")
    c.add_argument("--dry-run", action="store_true", help="Compute and report; record and hand off nothing.")
    c.add_argument("--preparer", default=None, help="Who prepares the run (default: the OS user).")
    c.add_argument("--business-unit", dest="business_units", action="append", default=[], metavar="BU",
                   help="Close only this business unit (repeat for several; default: all).")
    c.add_argument("--approval-threshold", default="25000",
                   help="Invoices at or above this gross amount wait for approval (default: 25000).")
    c.add_argument("--approvals", choices=["defer", "ui"], default="defer",
                   help="defer: leave documents pending for `billing-cycle approve` (default); ui: pause for "
                   "approval in the Prefect UI (needs a Prefect server).")
    c.add_argument("--targets", default="ubl,ar_interface,file_drop,files",
                   help="Hand-off targets in order (default: ubl,ar_interface,file_drop,files; also "
                   "webhook:URL, ar_interface:URL). See docs/DELIVERY.md.")
    c.add_argument("--json", action="store_true", help="Print the summary as JSON.")
    c.add_argument("-v", "--verbose", action="store_true", help="Show Prefect's logs.")
    a = sub.add_parser("approve", help="List documents waiting for approval, or approve / reject them.")
    a.add_argument("--out", default="out", help="Output folder of the close (its store is there).")
    a.add_argument("--store", default=None, help="Store URL (default: SQLite in the output folder).")
    a.add_argument("--approver", help="Your name (must not be the run's preparer).")
    a.add_argument("--approve", nargs="*", default=[], metavar="KEY", help="Document keys to approve, or 'all'.")
    a.add_argument("--reject", nargs="*", default=[], metavar="KEY", help="Document keys to reject.")
    a.add_argument("--comment", default=None)
    s = sub.add_parser("sample", help="Write the sample company as CSV files in the canonical schema.")
    s.add_argument("--period", required=True)
    s.add_argument("--items", type=int, default=10_000)
    s.add_argument("--seed", type=int, default=20261)
    s.add_argument("--out", required=True)
    s.add_argument("--format", choices=["csv", "parquet"], default="csv")
    sub.add_parser("schema", help="Print the canonical schema as Markdown.")
    from billing_cycle import collections_cli

    collections_cli.add_parser(sub)
    from billing_cycle import cash_cli

    cash_cli.add_parser(sub)
    return p


def _close(args) -> int:
    from billing.periods import Period, PeriodError

    try:
        Period.parse(args.period)
    except PeriodError as exc:
        raise UserError(str(exc)) from None
    if args.source.startswith("files:") and not Path(args.source[6:]).is_dir():
        raise UserError(f"source folder {args.source[6:]!r} does not exist")
    _prefect_env(args.verbose)
    from billing.partition import PartitionError
    from billing.schema import SchemaError
    from billing_cycle.summary import summary_text
    from connectors.base import PermanentSourceError
    from flows.month_end_close import BlockingDataQualityError, CloseParameters, month_end_close

    try:
        params = CloseParameters(period=args.period, source=args.source, output_dir=args.out, store_url=args.store,
                                 dry_run=args.dry_run, preparer=args.preparer, business_units=args.business_units,
                                 approval_threshold=args.approval_threshold, approvals=args.approvals,
                                 targets=args.targets)
    except ValueError as exc:
        raise UserError(f"invalid option: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}") from None
    try:
        summary = month_end_close(params)
    except (SchemaError, PermanentSourceError, PartitionError) as exc:
        raise UserError(f"input error: {exc}") from None
    except BlockingDataQualityError as exc:
        print(f"billing-cycle: close stopped by a blocking data-quality failure: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=1, default=str) if args.json else summary_text(summary))
    return 0


def _approve(args) -> int:
    from billing.approvals import SegregationOfDutiesError, check_segregation
    from billing.money import format_cents
    from store import Store

    store = Store(args.store or f"sqlite:///{Path(args.out).resolve() / 'billing.sqlite'}")
    pending = store.documents(status="pending_approval")
    if not args.approve and not args.reject:
        if pending.empty:
            print("No documents wait for approval.")
        for d in pending.itertuples(index=False):
            print(f"{d.document_key}  {d.customer_id}  {format_cents(int(d.gross_cents)):>16} {d.currency}  "
                  f"{d.approval_reasons}")
        return 0
    keys = pending["document_key"].tolist()
    approve = keys if args.approve == ["all"] else args.approve
    unknown = sorted(set(approve + args.reject) - set(keys))
    if unknown:
        raise UserError(f"not waiting for approval: {', '.join(unknown)}")
    both = sorted(set(approve) & set(args.reject))
    if both:
        raise UserError(f"both approved and rejected: {', '.join(both)}")
    runs = store.runs().set_index("run_id")
    preparer_of = pending.set_index("document_key")["run_id"].map(runs["preparer"])
    decisions = [(k, "approved") for k in approve] + [(k, "rejected") for k in args.reject]
    try:
        checked = {k: check_segregation(preparer_of.get(k), args.approver) for k, _ in decisions}
    except SegregationOfDutiesError as exc:
        raise UserError(str(exc)) from None
    for key, decision in decisions:
        store.record_approval(key, decision, checked[key], preparer_of.get(key), args.comment, None)
    print(f"{len(approve)} approved, {len(args.reject)} rejected by {args.approver}. Run the close again to hand "
          "off the approved documents.")
    return 0


def _sample(args) -> int:
    from billing.periods import Period, PeriodError
    from connectors.files import write_folder
    from connectors.sample_company import generate

    try:
        period = Period.parse(args.period)
    except PeriodError as exc:
        raise UserError(str(exc)) from None
    write_folder(generate(period, args.items, args.seed), Path(args.out), args.format)
    print(f"wrote the sample company ({args.items} items) to {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "close":
            return _close(args)
        if args.command == "sample":
            return _sample(args)
        if args.command == "collections":
            from billing_cycle import collections_cli

            return collections_cli.run(args)
        if args.command == "cash-apply":
            from billing_cycle import cash_cli

            return cash_cli.run(args)
        if args.command == "approve":
            return _approve(args)
        if args.command == "schema":
            from billing.columns import schema_markdown
            print(schema_markdown())
            return 0
    except UserError as exc:
        print(f"billing-cycle: {exc}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
