"""`billing-cycle collections`: work the receivables for a day (the Prefect flow `collections-cycle`).

    billing-cycle collections --as-of 2026-11-05                  # store (sample history on first use)
    billing-cycle collections --as-of 2026-11-05 --dry-run        # write letters and reports, send nothing
    billing-cycle collections --as-of 2026-11-30 --mode statements
    billing-cycle collections --as-of 2026-11-05 --smtp-block collections-smtp --preparer "Maria Ivanova"

Disconnections wait for a decision in the Prefect UI (the run shows as Paused; another person than
the preparer resumes it with their name). Exit status: 0 done, 1 failed, 2 bad input (nothing sent).
"""

from __future__ import annotations

import json
import os
import re
import sys


def add_parser(subparsers) -> None:
    c = subparsers.add_parser("collections", help="Work the receivables for a day: letters, approvals, holds.")
    c.add_argument("--as-of", dest="as_of", default=None, help="Day to work, YYYY-MM-DD (default: today, Sofia).")
    c.add_argument("--mode", choices=["daily", "statements"], default="daily")
    c.add_argument("--source", choices=["store", "oracle"], default="store")
    c.add_argument("--policy", default=None, help="Dunning policy file (default: receivables/policy/dunning.yaml).")
    c.add_argument("--out", default="out", help="Output folder (default: out).")
    c.add_argument("--store", default=None, help="Store URL (default: SQLite in the output folder).")
    c.add_argument("--dry-run", action="store_true", help="Write letters and reports; send and record nothing.")
    c.add_argument("--preparer", default=None, help="Who prepares the run (default: the OS user).")
    c.add_argument("--smtp-block", default=None, help="Saved EmailServerCredentials block to send with.")
    c.add_argument("--smtp-server", default="127.0.0.1")
    c.add_argument("--smtp-port", type=int, default=25)
    c.add_argument("--approval-timeout", type=int, default=None, help="Seconds to wait for a decision.")
    c.add_argument("--approval-poll", type=int, default=10, help="Seconds between checks while paused.")
    c.add_argument("--json", action="store_true", help="Print the summary as JSON.")
    c.add_argument("-v", "--verbose", action="store_true", help="Show Prefect's logs.")


def _prefect_env(verbose: bool) -> None:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")


def _text(summary: dict) -> str:
    lines = [f"collections {summary['as_of']} ({summary['mode']}{', dry run' if summary['dry_run'] else ''}) — "
             f"{summary['policy']}"]
    for k, v in summary.items():
        if k in ("as_of", "mode", "dry_run", "policy", "files"):
            continue
        lines.append(f"  {k}: {json.dumps(v, default=str) if isinstance(v, dict | list) else v}")
    lines += [f"  file {k}: {v}" for k, v in summary.get("files", {}).items()]
    return "\n".join(lines)


def run(args) -> int:
    if args.as_of and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", args.as_of):
        print(f"billing-cycle: --as-of {args.as_of!r} is not a day in the form YYYY-MM-DD", file=sys.stderr)
        return 2
    _prefect_env(args.verbose)
    from billing.schema import SchemaError
    from connectors.base import PermanentSourceError
    from flows.collections_cycle import CollectionsParameters, collections_cycle
    from receivables.dunning import DEFAULT_POLICY_PATH, DunningInputError, PolicyError
    from receivables.interest import InterestRateMissing

    params = CollectionsParameters(
        as_of=args.as_of, mode=args.mode, source=args.source, policy_path=args.policy or str(DEFAULT_POLICY_PATH),
        output_dir=args.out, store_url=args.store, dry_run=args.dry_run, preparer=args.preparer,
        smtp_block=args.smtp_block, smtp_server=args.smtp_server, smtp_port=args.smtp_port,
        approval_timeout_seconds=args.approval_timeout, approval_poll_seconds=args.approval_poll)
    try:
        summary = collections_cycle(params)
    except (PolicyError, SchemaError, DunningInputError, InterestRateMissing, PermanentSourceError) as exc:
        print(f"billing-cycle: input error (nothing sent): {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        print(f"billing-cycle: collections failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=1, default=str) if args.json else _text(summary))
    return 0
