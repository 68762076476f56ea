"""`billing-cycle`: run the month-end close and its helpers from a terminal.

    billing-cycle close --period 2026-10                 # sample company, SQLite store, files in out/
    billing-cycle close --period 2026-10 --source files:exports/2026-10
    billing-cycle sample --period 2026-10 --out exports/2026-10   # write the sample company as CSV files
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
    if not verbose:
        # The CLI reports outcomes itself (a summary, or one line per error); Prefect's own log lines,
        # tracebacks included, show with --verbose.
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")
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
    c.add_argument("--json", action="store_true", help="Print the summary as JSON.")
    c.add_argument("-v", "--verbose", action="store_true", help="Show Prefect's logs.")
    s = sub.add_parser("sample", help="Write the sample company as CSV files in the canonical schema.")
    s.add_argument("--period", required=True)
    s.add_argument("--items", type=int, default=10_000)
    s.add_argument("--seed", type=int, default=20261)
    s.add_argument("--out", required=True)
    s.add_argument("--format", choices=["csv", "parquet"], default="csv")
    sub.add_parser("schema", help="Print the canonical schema as Markdown.")
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
    from billing.schema import SchemaError
    from billing_cycle.summary import summary_text
    from connectors.base import PermanentSourceError
    from flows.month_end_close import BlockingDataQualityError, CloseParameters, month_end_close

    params = CloseParameters(period=args.period, source=args.source, output_dir=args.out, store_url=args.store,
                             dry_run=args.dry_run, preparer=args.preparer)
    try:
        summary = month_end_close(params)
    except (SchemaError, PermanentSourceError) as exc:
        raise UserError(f"input error: {exc}") from None
    except BlockingDataQualityError as exc:
        print(f"billing-cycle: close stopped by a blocking data-quality failure: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=1, default=str) if args.json else summary_text(summary))
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
