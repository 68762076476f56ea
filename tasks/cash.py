"""Cash application tasks: read, match, record, answer, reconcile, provide, hand off, report.

Thin wrappers over receivables/ (the rules) and store/cash.py (the records). Retries sit on I/O only —
reading files and the mailbox, the SMTP server, the ERP drop folder — with a condition that retries
transient faults (OSError, SMTP errors) and fails fast on bad data. Every write is idempotent by key:
statement lines by bank reference and entry id, inquiries by Message-ID, replies by (inquiry, kind),
exports by their key, so a re-run sends and hands off nothing twice.
"""

from __future__ import annotations

import hashlib
import imaplib
import json
import os
import smtplib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import SecretStr

from billing.money import format_cents
from billing.periods import Period
from billing_cycle.outputs import for_people
from receivables import inquiries as inq
from receivables.bank_statements import StatementError, read_statement
from receivables.cash_application import CashApplicationResult, MatchSettings, apply_cash
from receivables.provision import (
    ProvisionResult,
    ProvisionSettings,
    SegmentOverride,
    aging_snapshot,
    compute_provision,
    provision_matrix,
    snapshots_from_history,
)
from receivables.reconciliation import CashOwners, ReconciliationReport, reconcile
from store.cash import CashStore

STATEMENT_SUFFIXES = (".xml", ".sta", ".mt940", ".940", ".txt")


def _logger():
    """The run's logger inside a run; the module's when a task's logic is called directly (.fn in tests)."""
    from prefect.exceptions import MissingContextError

    try:
        return get_run_logger()
    except MissingContextError:
        import logging

        return logging.getLogger(__name__)


def retry_on_io(task, task_run, state) -> bool:
    """Retry what a second attempt can fix (a file share, the mail server); never bad data."""
    try:
        state.result()
    except (StatementError, inq.InquiryError, ValueError):
        return False
    except (OSError, smtplib.SMTPException, imaplib.IMAP4.error):
        return True
    except Exception:
        return False
    return False


# --- read -------------------------------------------------------------------------------------------------
def statement_paths(paths: list[str]) -> list[Path]:
    """Files as given; folders expanded to their statement files (sorted, so runs are repeatable)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in STATEMENT_SUFFIXES)
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"statement {p}: no such file or folder")
    return out


@task(retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=retry_on_io, cache_policy=NO_CACHE)
def read_statements(paths: list[str]) -> tuple[pd.DataFrame, list[dict]]:
    """Parse every statement file; returns the entries and one record per file (its hash, format, count)."""
    frames, files = [], []
    for path in statement_paths(paths):
        data = path.read_bytes()
        entries = read_statement(data, str(path))
        frames.append(entries)
        fmt = entries["source_format"].iloc[0] if len(entries) else "empty"
        keys = (entries["bank_reference"].astype("string").fillna("-") + ":" + entries["entry_id"]).tolist()
        files.append({"file_id": hashlib.sha256(data).hexdigest(), "filename": str(path), "source_format": fmt,
                      "entries": len(entries), "receipt_keys": keys})
    if not frames:
        raise FileNotFoundError(f"no statement file in {', '.join(paths) or '(nothing given)'}")
    return pd.concat(frames, ignore_index=True), files


class FolderInbox:
    """Inquiries as .eml files in a folder (the local twin of the mailbox). `FolderInbox("in/")`."""

    name = "folder"

    def __init__(self, folder: Path | str):
        self.folder = Path(folder)

    def messages(self) -> list[tuple[str, bytes]]:
        if not self.folder.is_dir():
            raise FileNotFoundError(f"inbox {self.folder}: no such folder")
        return [(str(p), p.read_bytes()) for p in sorted(self.folder.glob("*.eml"))]


@dataclass
class ImapSettings:
    """The billing mailbox, from BILLING_IMAP_HOST, _PORT, _USER, _PASSWORD, _FOLDER (read at run start)."""

    host: str
    user: str
    password: SecretStr
    port: int = 993
    folder: str = "INBOX"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ImapSettings:
        env = os.environ if environ is None else environ
        missing = [k for k in ("BILLING_IMAP_HOST", "BILLING_IMAP_USER", "BILLING_IMAP_PASSWORD") if not env.get(k)]
        if missing:
            raise ValueError(f"inbox 'imap': set {', '.join(missing)}")
        return cls(env["BILLING_IMAP_HOST"], env["BILLING_IMAP_USER"], SecretStr(env["BILLING_IMAP_PASSWORD"]),
                   int(env.get("BILLING_IMAP_PORT", "993")), env.get("BILLING_IMAP_FOLDER", "INBOX"))


class ImapInbox:
    """The billing mailbox over IMAP (SSL), read-only: messages are never flagged or moved here.

    Idempotency is the store's inquiry log (by Message-ID), so reading a message again does nothing.
    """

    name = "imap"

    def __init__(self, settings: ImapSettings):
        self.settings = settings

    def messages(self) -> list[tuple[str, bytes]]:
        s = self.settings
        with imaplib.IMAP4_SSL(s.host, s.port) as box:
            box.login(s.user, s.password.get_secret_value())
            box.select(s.folder, readonly=True)
            _, data = box.search(None, "ALL")
            out = []
            for num in data[0].split():
                _, parts = box.fetch(num, "(BODY.PEEK[])")
                out.append((f"imap:{s.folder}/{num.decode()}", parts[0][1]))
            return out


def inbox_for(spec: str | None):
    """The one place that chooses the inbox: a folder, 'imap' (settings from the environment), or none."""
    if not spec:
        return None
    if spec == "imap":
        return ImapInbox(ImapSettings.from_env())
    return FolderInbox(spec)


@task(retries=2, retry_delay_seconds=[5, 30], retry_condition_fn=retry_on_io, cache_policy=NO_CACHE)
def read_inbox(inbox) -> list[inq.Inquiry]:
    """Every message of the inbox, parsed (a malformed message stops the run, naming the file)."""
    if inbox is None:
        return []
    return [inq.parse_eml(data, name) for name, data in inbox.messages()]


# --- inquiries: plan before cash (advices are hints), act after --------------------------------------------------
@task(cache_policy=NO_CACHE)
def plan_inquiries(cs: CashStore, messages: list[inq.Inquiry], rules: inq.InquiryRules,
                   ctx: inq.InquiryContext, run_id: str) -> list[dict]:
    """Categorise and log new messages; remittance advices become hints for cash application."""
    plans = []
    for message in messages:
        plan = inq.plan_inquiry(message, rules, ctx)
        if cs.log_inquiry(plan, run_id):
            plans.append(plan)
    if plans:
        cs.add_hints(inq.remittance_hints(pd.DataFrame(plans)))
    return plans


@dataclass
class Responders:
    """What acting on inquiries needs besides the store: the mail server, the archive, collections."""

    mailer: object                       # receivables.outbound.Mailer
    sender: str
    archive: Path | None
    open_dispute: object                 # (payment_schedule_id, cents, reason, owner, on) -> dispute id
    open_items: pd.DataFrame
    on: object                           # date disputes are opened on
    counts: dict = field(default_factory=dict)


@task(retries=2, retry_delay_seconds=[5, 30], retry_condition_fn=retry_on_io, cache_policy=NO_CACHE)
def act_on_inquiries(cs: CashStore, messages: list[inq.Inquiry], r: Responders) -> dict:
    """Send invoice copies, open disputes and acknowledge them, leave the rest queued with their owner.

    Replies are recorded before sending and completed after; a reply already sent is never sent again,
    so a retry of this task (or a re-run) repeats nothing.
    """
    log = _logger()
    by_key = {m.inquiry_key: m for m in messages}
    log_rows = cs.inquiries()
    todo = log_rows[log_rows["status"] == "planned"]
    counts = {"copies_sent": 0, "disputes_opened": 0, "queued": 0, "hints": 0, "failed": 0}
    for row in todo.to_dict("records"):
        message = by_key.get(row["inquiry_key"])
        try:
            _act(cs, r, row, message, counts)
        except (inq.InquiryError, ValueError) as exc:
            # One inquiry that cannot be acted on (a dispute collections refuses...) waits for a person;
            # the others go on. Mail-server faults are not caught here: the task retries on them.
            cs.set_inquiry(row["inquiry_key"], status="failed", detail=f"{type(exc).__name__}: {exc}"[:1000])
            counts["failed"] += 1
    log.info("inquiries: %s", counts)
    return counts


def _act(cs: CashStore, r: Responders, row: dict, message: inq.Inquiry | None, counts: dict) -> None:
    """One inquiry: queue it, note its hint, send the copy, or open the dispute and acknowledge it."""
    action = row["action"]
    if action == "queue":
        cs.set_inquiry(row["inquiry_key"], status="queued")
        counts["queued"] += 1
    elif action == "cash_hint":
        cs.set_inquiry(row["inquiry_key"], status="done", detail="remittance hint for cash application")
        counts["hints"] += 1
    elif message is None:
        return  # planned in an earlier run whose message is no longer in the inbox: a person looks
    elif action == "send_invoice_copy":
        files = _archive_files(r.archive, row["trx_numbers"].split())
        if not files:
            cs.set_inquiry(row["inquiry_key"], status="queued", detail="no copy in the archive: queued")
            counts["queued"] += 1
            return
        body = inq.reply_text("invoice_copy", row)
        _send_once(cs, r, message, "invoice_copy", body, files)
        cs.set_inquiry(row["inquiry_key"], status="done", detail=f"sent {', '.join(n for n, _, _ in files)}")
        counts["copies_sent"] += 1
    elif action == "open_dispute":
        opened = _open_disputes(r, row, message)
        if not opened:
            cs.set_inquiry(row["inquiry_key"], status="queued",
                           detail="nothing open to dispute on the invoices named: queued for a person")
            counts["queued"] += 1
            return
        body = inq.reply_text("dispute_ack", row, ", ".join(opened))
        _send_once(cs, r, message, "dispute_ack", body, [])
        cs.set_inquiry(row["inquiry_key"], status="done", detail=f"dispute(s) {', '.join(opened)}")
        counts["disputes_opened"] += len(opened)


def _archive_files(archive: Path | None, trx_numbers: list[str]) -> list[tuple[str, str, bytes]]:
    if archive is None or not archive.is_dir():
        return []
    types = {".pdf": "application/pdf", ".xml": "application/xml", ".json": "application/json",
             ".html": "text/html"}
    out = []
    for trx in trx_numbers:
        safe = trx.replace("/", "_")
        for suffix, ctype in types.items():
            path = archive / f"{safe}{suffix}"
            if path.is_file():
                out.append((path.name, ctype, path.read_bytes()))
                break
    return out


def _open_disputes(r: Responders, row: dict, message: inq.Inquiry) -> list[str]:
    items = r.open_items[r.open_items["trx_number"].isin(row["trx_numbers"].split())
                         & (r.open_items["customer_id"] == row["customer_id"])
                         & (r.open_items["amount_due_remaining_cents"] > 0)].sort_values("due_date")
    left = int(row["amount_cents"]) if pd.notna(row.get("amount_cents")) else None
    reason = f"{message.subject}: {message.body.splitlines()[0] if message.body else ''}".strip(": ")[:400]
    opened = []
    for it in items.itertuples(index=False):
        amount = int(it.amount_due_remaining_cents) if left is None else min(left, int(it.amount_due_remaining_cents))
        if amount <= 0:
            break
        opened.append(r.open_dispute(it.payment_schedule_id, amount, reason, row["owner"], r.on))
        if left is not None:
            left -= amount
    return opened


def _send_once(cs: CashStore, r: Responders, message: inq.Inquiry, kind: str, body: str, files) -> None:
    reply = inq.build_reply(message, kind, r.sender, body, files)
    key = inq.reply_key(message.inquiry_key, kind)
    state = cs.begin_reply(key, message.inquiry_key, kind, message.sender, str(reply["Message-ID"]))
    if state["state"] == "sent":
        return
    r.mailer.send(reply)
    cs.complete_reply(key)


# --- cash --------------------------------------------------------------------------------------------------
@task(cache_policy=NO_CACHE)
def match_receipts(cs: CashStore, entries: pd.DataFrame, open_items: pd.DataFrame,
                   settings: MatchSettings) -> CashApplicationResult:
    """Score and apply the statement's receipts against the open items (idempotent by bank line)."""
    hints = cs.hints("open")
    return apply_cash(entries, open_items, cs.payer_map(), settings, prior_receipts=cs.receipts(),
                      prior_applications=cs.applications(), hints=hints if len(hints) else None)


@task(cache_policy=NO_CACHE)
def record_cash(cs: CashStore, result: CashApplicationResult, run_id: str, files: list[dict]) -> dict:
    """Record the run's receipts, applications, suggestions and proposals in one transaction, then its files."""
    cs.record_run(result, run_id)
    new = set(result.receipts["cash_receipt_id"])
    seen = cs.record_statement_files(
        [{k: v for k, v in f.items() if k != "receipt_keys"} | {"new_receipts": len(new & set(f["receipt_keys"]))}
         for f in files], run_id)
    return {"files": len(files), "files_seen_before": seen, **result.summary()}


# --- month end ------------------------------------------------------------------------------------------------
@task(cache_policy=NO_CACHE)
def snapshot_aging(cs: CashStore, open_items: pd.DataFrame, customers: pd.DataFrame, period: Period,
                   history_items: pd.DataFrame | None, history_applications: pd.DataFrame | None,
                   months: int, run_id: str) -> pd.DataFrame:
    """This month's aging snapshot, and the earlier months rebuilt from the ledger where none was kept."""
    if history_items is not None and history_applications is not None and len(history_items):
        earlier = []
        p = period
        for _ in range(months):
            p = p.previous()
            earlier.append(p)
        have = set(cs.aging_snapshots([str(x) for x in earlier])["period"])
        missing = [x for x in earlier if str(x) not in have]
        if missing:
            rebuilt = snapshots_from_history(history_items, history_applications, customers, missing)
            for x in missing:
                cs.replace_aging_snapshot(str(x), rebuilt[rebuilt["period"] == str(x)], run_id)
    snap = aging_snapshot(open_items, customers, period)
    cs.replace_aging_snapshot(str(period), snap, run_id)
    return snap


@task(cache_policy=NO_CACHE)
def reconcile_ar(open_items: pd.DataFrame, aging_report: pd.DataFrame, control: pd.DataFrame, cs: CashStore,
                 as_of, owners: CashOwners) -> ReconciliationReport:
    """Tie open items to the aging and the control total through the AR suite; publish the tie-out."""
    report = reconcile(open_items, aging_report, control, cs.receipts(), cs.applications(), as_of, owners)
    create_markdown_artifact(report.summary_markdown(), key="ar-reconciliation",
                             description="AR tie-out: open items, aging, control total")
    return report


@task(cache_policy=NO_CACHE)
def compute_provision_task(cs: CashStore, snapshot: pd.DataFrame, period: Period, settings: ProvisionSettings,
                           escalations: pd.DataFrame, overrides: list[SegmentOverride]) -> ProvisionResult:
    """The provision matrix from the kept snapshots, the allowance and its movement against last month."""
    first = period
    for _ in range(settings.lookback_months):
        first = first.previous()
    history = cs.aging_snapshots()
    history = history[history["period"] >= str(first)]
    matrix = provision_matrix(history, period, settings, exclude_customers=list(escalations["customer_id"]))
    previous = cs.allowances(str(period.previous()))
    return compute_provision(snapshot, matrix, period, settings, escalations=escalations, overrides=overrides,
                             previous=previous if len(previous) else None)


@task(cache_policy=NO_CACHE)
def record_provision(cs: CashStore, result: ProvisionResult, run_id: str) -> None:
    """Keep this month's allowance per customer (next month's movement starts from it) and the overrides."""
    cs.replace_allowances(str(result.period), result.by_customer, run_id)
    for o in result.overrides.to_dict("records"):
        segment = {k: o[k] for k in ("business_unit", "customer_class", "currency") if k in o}
        cs.record_override(str(result.period), segment, int(o["factor_bp"]), o["reason"], o["preparer"],
                           o["approver"], run_id)


# --- hand-off to the ERP, exactly once -------------------------------------------------------------------------------
def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


@task(retries=3, retry_delay_seconds=[2, 10, 30], retry_condition_fn=retry_on_io, cache_policy=NO_CACHE)
def deliver_export(cs: CashStore, export_key: str, kind: str, frame: pd.DataFrame, folder: Path,
                   run_id: str) -> str:
    """Drop one CSV for the ERP (money as decimal text) with its idempotency key beside it; once per key.

    Intent is recorded before writing and completion after; the drop folder treats a second delivery with
    the same key as a no-op, so a crash between the two never produces a second file downstream.
    """
    content = for_people(frame).to_csv(index=False).encode()
    ikey = hashlib.sha256(f"{export_key}|".encode() + content).hexdigest()
    state = cs.begin_export(export_key, kind, "erp_drop", ikey, run_id)
    if state["state"] == "delivered":
        return state["external_ref"]
    folder.mkdir(parents=True, exist_ok=True)
    path, meta = folder / f"{export_key}.csv", folder / f"{export_key}.json"
    if meta.exists() and json.loads(meta.read_text()).get("idempotency_key") == state["idempotency_key"]:
        cs.complete_export(export_key, str(path))
        return str(path)
    if meta.exists():
        raise FileExistsError(f"{meta} holds another delivery of {export_key}: refusing to overwrite")
    _atomic_write(path, content)
    _atomic_write(meta, json.dumps({"idempotency_key": state["idempotency_key"], "kind": kind,
                                    "rows": len(frame)}).encode())
    cs.complete_export(export_key, str(path))
    return str(path)


# --- report --------------------------------------------------------------------------------------------------------
@task(cache_policy=NO_CACHE)
def write_cash_outputs(folder: Path, frames: dict[str, pd.DataFrame]) -> dict[str, str]:
    """One CSV per frame for people (money as decimal text, dates as YYYY-MM-DD)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, df in frames.items():
        path = folder / f"{name}.csv"
        shown = df.drop(columns=[c for c in df.columns if c == "loss_rate"])
        for_people(shown).to_csv(path, index=False)
        out[name] = str(path)
    return out


@task(cache_policy=NO_CACHE)
def publish_cash_artifacts(summary: dict, receipts: pd.DataFrame, matrix: pd.DataFrame) -> None:
    """The run in the Prefect UI: a summary, the receipts and the provision matrix."""
    cash = summary.get("cash", {})
    band = cash.get("by_band", {})
    lines = [f"# Cash application {summary.get('period')}", "",
             f"- receipts: {cash.get('receipts', 0)}; auto {band.get('auto', 0)}, review {band.get('review', 0)}, "
             f"unidentified {band.get('unidentified', 0)}",
             "- applied " + ", ".join(f"{format_cents(v)} {c}" for c, v in cash.get("applied_cents", {}).items()),
             "- on account " + ", ".join(f"{format_cents(v)} {c}" for c, v in cash.get("on_account_cents", {}).items()),
             f"- write-off proposals: {cash.get('write_off_proposals', 0)}",
             f"- inquiries: {summary.get('inquiries', {})}",
             f"- reconciliation: {summary.get('reconciliation', {}).get('status')}",
             f"- provision: {summary.get('provision', {}).get('allowance', {})}"]
    create_markdown_artifact("\n".join(lines), key="cash-application-summary", description="Cash application")
    cols = ["cash_receipt_id", "customer_id", "currency", "amount_cents", "status", "band", "score", "reason_codes"]
    create_table_artifact(for_people(receipts[cols]).head(500).to_dict("records"), key="cash-receipts",
                          description="Receipts and how they were matched")
    if len(matrix):
        shown = matrix.drop(columns=["loss_rate"])
        create_table_artifact(for_people(shown).to_dict("records"), key="provision-matrix",
                              description="Roll rates and loss rates (ppm) per segment and bucket")


# --- a person's correction (the CLI's `cash-apply --correct`) ---------------------------------------------------------
def correct_receipt_in_store(cs: CashStore, ledger_items: pd.DataFrame, cash_receipt_id: str, customer_id: str,
                             allocations: list[tuple[str, int]], by: str, comment: str | None = None,
                             rest_on_account: bool = False) -> dict:
    """Apply a suggested or unidentified receipt as a person decides; record it and learn the payer.

    `allocations` empty with a suggestion open: the suggestion is accepted as proposed.
    """
    from receivables.cash_application import CashApplicationError, correct_receipt

    receipts = cs.receipts().set_index("cash_receipt_id", drop=False)
    if cash_receipt_id not in receipts.index:
        raise CashApplicationError(f"receipt {cash_receipt_id}: field cash_receipt_id: no such receipt")
    if not allocations:
        sugg = cs.suggestions("open")
        sugg = sugg[(sugg["cash_receipt_id"] == cash_receipt_id) & (sugg["customer_id"] == customer_id)]
        allocations = [(r.payment_schedule_id, int(r.amount_cents)) for r in sugg.itertuples(index=False)]
    items = cs.effective_open_items(ledger_items)
    rows, learned = correct_receipt(receipts.loc[cash_receipt_id], cs.applications(), items, customer_id,
                                    allocations, rest_on_account=rest_on_account, comment=comment or "")
    cs.record_correction(cash_receipt_id, customer_id, allocations, rows, learned, by, comment)
    return {"receipt": cash_receipt_id, "customer": customer_id, "applied": [[p, a] for p, a in allocations],
            "rows": len(rows), "learned": learned[["kind", "value"]].values.tolist()}
