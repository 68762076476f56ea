"""`billing-cycle cash-apply`: apply a month's bank statements (the Prefect flow `cash-application`).

    billing-cycle cash-apply --statement bank/camt053-EUR-2026-10-W1.xml      # period from the statement
    billing-cycle cash-apply --period 2026-10 --statement bank/ --inbox mail/ --archive invoices/
    billing-cycle cash-apply --period 2026-10                                  # the sample company's month
    billing-cycle cash-apply --period 2026-10 --approvals defer --json
    billing-cycle cash-apply --correct 'BR2610000010:STMT202610GBP/10/1/6' --customer C00011 --by "Elena Dimitrova"
    billing-cycle cash-apply --correct RECEIPT --customer C00001 --allocate PS-INV-...-1=1234.56 --by "Elena D."

A correction applies a receipt waiting for review (its suggestion as proposed when no --allocate is
given) and teaches the payer map: next time the same IBAN or name pays, it is known.

Statements are camt.052/053/054 (any .001 version) or MT940, files or folders. The provision sign-off and
the write-off batch wait in the Prefect UI for another person than the preparer (--approvals ui), or stay
pending (--approvals defer). Exit status: 0 done, 1 failed (an AR reconciliation break included),
2 bad input (nothing recorded).
"""

from __future__ import annotations

import json
import os
import re
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path


def add_parser(subparsers) -> None:
    c = subparsers.add_parser("cash-apply", help="Apply bank statements to open items; reconcile, provide, write off.")
    c.add_argument("--statement", action="append", default=[], metavar="FILE",
                   help="camt.053/054/052 or MT940 file, or a folder of them (repeatable).")
    c.add_argument("--period", default=None, help="Month, YYYY-MM (default: the month of the latest booking).")
    c.add_argument("--inbox", default=None, help="Folder of .eml inquiries, or 'imap' (BILLING_IMAP_*).")
    c.add_argument("--archive", default=None, help="Folder of invoice copies named by transaction number.")
    c.add_argument("--ledger", choices=["sample", "store"], default="sample",
                   help="Open items from the sample company (default) or the ledger in the store.")
    c.add_argument("--control", default=None, help="CSV of the AR control account ([business_unit,]currency,amount).")
    c.add_argument("--out", default="out", help="Output folder (default: out).")
    c.add_argument("--store", default=None, help="Store URL (default: SQLite in the output folder).")
    c.add_argument("--preparer", default=None, help="Who prepares the run (default: the OS user).")
    c.add_argument("--approvals", choices=["ui", "defer"], default="ui")
    c.add_argument("--approval-timeout", type=int, default=3600, help="Seconds to wait for a decision.")
    c.add_argument("--approval-poll", type=int, default=10, help="Seconds between checks while paused.")
    c.add_argument("--auto-threshold", type=int, default=70)
    c.add_argument("--review-threshold", type=int, default=40)
    c.add_argument("--fee-tolerance", default="35.00", help="Bank-fee tolerance in major units (default 35.00).")
    c.add_argument("--smtp-block", default=None, help="Saved EmailServerCredentials block for replies.")
    c.add_argument("--smtp-server", default="127.0.0.1")
    c.add_argument("--smtp-port", type=int, default=25)
    c.add_argument("--correct", default=None, metavar="RECEIPT", help="Apply this waiting receipt by hand.")
    c.add_argument("--customer", default=None, help="With --correct: the customer who paid.")
    c.add_argument("--allocate", action="append", default=[], metavar="ITEM=AMOUNT",
                   help="With --correct: payment schedule id and amount (repeatable; default: the suggestion).")
    c.add_argument("--rest-on-account", action="store_true", help="With --correct: leave the rest on account.")
    c.add_argument("--by", default=None, help="With --correct: who corrects (recorded).")
    c.add_argument("--comment", default=None, help="With --correct: why (recorded).")
    c.add_argument("--json", action="store_true", help="Print the summary as JSON.")
    c.add_argument("-v", "--verbose", action="store_true", help="Show Prefect's logs.")


class _InputError(Exception):
    pass


def _prefect_env(verbose: bool) -> None:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")
        import logging

        logging.getLogger("great_expectations").setLevel(logging.WARNING)


def _check_statements(paths: list[str]) -> str | None:
    """Read every statement before anything starts (errors name the file and field); the latest booking month."""
    from receivables.bank_statements import StatementError, read_statement
    from tasks.cash import statement_paths

    try:
        files = statement_paths(paths)
    except FileNotFoundError as exc:
        raise _InputError(str(exc)) from None
    if not files:
        raise _InputError(f"no statement file in {', '.join(paths)}")
    latest = None
    for f in files:
        try:
            entries = read_statement(f.read_bytes(), str(f))
        except StatementError as exc:
            raise _InputError(str(exc)) from None
        if len(entries):
            day = entries["booking_date"].max()
            latest = day if latest is None or day > latest else latest
    return None if latest is None else f"{latest.year:04d}-{latest.month:02d}"


def _text(summary: dict) -> str:
    from billing.money import format_cents

    cash = summary.get("cash", {})
    lines = [f"cash application {summary['period']} (run {summary['run_id']})",
             f"  receipts: {cash.get('receipts', 0)} new, {cash.get('skipped', {}).get('already_loaded', 0)} already "
             f"loaded; bands {json.dumps(cash.get('by_band', {}))}",
             "  applied " + (", ".join(f"{format_cents(v)} {c}" for c, v in cash.get("applied_cents", {}).items())
                             or "nothing"),
             "  on account " + (", ".join(f"{format_cents(v)} {c}" for c, v in cash.get("on_account_cents", {}).items())
                                or "nothing")]
    for key in ("inquiries", "reconciliation"):
        if key in summary:
            lines.append(f"  {key}: {json.dumps(summary[key], default=str)}")
    prov = summary.get("provision") or {}
    if prov:
        allowance = ", ".join(f"{k} {format_cents(v)} ({format_cents(prov['movement'].get(k, 0))} movement)"
                              for k, v in prov.get("allowance", {}).items())
        lines.append(f"  provision: {allowance}; signed off by {prov.get('signed_off_by') or 'nobody yet'}")
    wo = summary.get("write_offs") or {}
    if wo.get("batch"):
        lines.append(f"  write-offs: batch {wo['batch']}, {wo['items']} item(s), {wo['status']}")
    lines += [f"  file {k}: {v}" for k, v in summary.get("files", {}).items()]
    return "\n".join(lines)


def _correct(args) -> int:
    from billing.money import parse_amount_to_cents
    from receivables.cash_application import CashApplicationError
    from store import Store
    from store.cash import CashStore
    from store.receivables import CollectionsStore
    from tasks.cash import correct_receipt_in_store

    try:
        if not args.customer or not (args.by or "").strip():
            raise _InputError("--correct needs --customer and --by (who corrects is recorded)")
        allocations = []
        for a in args.allocate:
            item, sep, amount = a.partition("=")
            try:
                allocations.append((item.strip(), parse_amount_to_cents(amount)))
            except (ValueError, ArithmeticError):
                raise _InputError(f"--allocate {a!r}: expected ITEM=AMOUNT, e.g. PS-INV-1-1=1234.56") from None
            if not sep:
                raise _InputError(f"--allocate {a!r}: expected ITEM=AMOUNT")
        url = args.store or f"sqlite:///{Path(args.out).resolve() / 'billing.sqlite'}"
        store = Store(url)
        out = correct_receipt_in_store(CashStore(store), CollectionsStore(store).read("open_items"), args.correct,
                                       args.customer, allocations, args.by.strip(), args.comment,
                                       args.rest_on_account)
    except (_InputError, CashApplicationError) as exc:
        print(f"billing-cycle: correction refused: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(out, indent=1) if args.json else
          f"receipt {out['receipt']} applied to {out['customer']}: {out['applied']}; learned {out['learned']}")
    return 0


def run(args) -> int:
    if args.correct:
        return _correct(args)
    try:
        if args.period and not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", args.period):
            raise _InputError(f"--period {args.period!r} is not a month in the form YYYY-MM")
        try:
            fee = Decimal(args.fee_tolerance)
        except InvalidOperation:
            raise _InputError(f"--fee-tolerance {args.fee_tolerance!r} is not an amount") from None
        period = args.period
        if args.statement:
            found = _check_statements(args.statement)
            period = period or found
        if period is None:
            raise _InputError("give --period, or --statement files with booked entries to take it from")
        if args.control:
            if not Path(args.control).is_file():
                raise _InputError(f"--control {args.control}: no such file")
            import pandas as pd

            from receivables.reconciliation import parse_control_totals

            try:
                parse_control_totals(pd.read_csv(args.control, dtype=str), args.control)
            except ValueError as exc:
                raise _InputError(str(exc)) from None
    except _InputError as exc:
        print(f"billing-cycle: input error (nothing recorded): {exc}", file=sys.stderr)
        return 2
    _prefect_env(args.verbose)
    from flows.cash_application import CashApplicationParameters, cash_application
    from receivables.inquiries import InquiryError
    from receivables.reconciliation import ReconciliationBreak

    params = CashApplicationParameters(
        period=period, statements=args.statement, inbox=args.inbox, archive=args.archive, ledger=args.ledger,
        control_totals=args.control, output_dir=args.out, store_url=args.store, preparer=args.preparer,
        approvals=args.approvals, approval_timeout_seconds=args.approval_timeout,
        approval_poll_seconds=args.approval_poll, auto_threshold=args.auto_threshold,
        review_threshold=args.review_threshold, fee_tolerance=fee, smtp_block=args.smtp_block,
        smtp_server=args.smtp_server, smtp_port=args.smtp_port)
    try:
        summary = cash_application(params)
    except InquiryError as exc:
        print(f"billing-cycle: input error: {exc}", file=sys.stderr)
        return 2
    except ReconciliationBreak as exc:
        print(f"billing-cycle: sign-off blocked: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        print(f"billing-cycle: cash application failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=1, default=str) if args.json else _text(summary))
    return 0
