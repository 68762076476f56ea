"""Collections tasks: read, compute, record, send, hand off, report (thin wrappers over receivables/).

Retries sit on I/O only (the mail server, the queues); the rules are in receivables/ and run once.
Every write is idempotent by key, so a re-run of the same day sends and hands off nothing twice:
- letters and statements: one action per customer, kind and day (``letter:C00001:2026-11-05``); an
  action already ``sending`` or ``sent`` is never sent again (``sending`` means the outcome is unknown
  after a crash: it is reported for a person to check, not re-sent); ``prepared`` or ``failed`` is sent;
- service requests and escalations: intent recorded before delivery, completion after, one
  idempotency key per request that the queue honours.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path

import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from billing.money import cents_to_decimal, format_cents
from receivables import letters as lt
from receivables.aging import age_items
from receivables.credit import HOLD_ACTOR
from receivables.cycle import CollectionsResult, CollectionsState, compute_collections
from receivables.datasets import check_inputs
from receivables.dunning import DunningPolicy
from receivables.outbound import FolderQueue, Mailer, write_archive
from store import Store
from store.receivables import CollectionsStore
from tasks.extract import retry_on_transient

# Set to "service_handoff" to end the process (os._exit) after a service request reached the queue and
# before its completion is recorded: the crash test uses it like a real kill.
CRASH_ENV = "BILLING_CYCLE_CRASH_AT"
SOURCES = ("store", "oracle")


def _crash_point(name: str) -> None:
    if os.environ.get(CRASH_ENV) == name:
        os._exit(17)


def request_key(customer_id: str, action: str, source_key: str) -> str:
    return hashlib.sha256(f"service|{customer_id}|{action}|{source_key}".encode()).hexdigest()[:40]


# --- extract ------------------------------------------------------------------------------------------
@task(cache_policy=NO_CACHE)
def prepare_ledger(cstore: CollectionsStore, as_of: pd.Timestamp, source: str) -> dict:
    """Embedded default: add the close's handed-off documents to the ledger; seed the sample history once."""
    if source != "store":
        return {}
    counts = {}
    if not cstore.ledger_loaded():
        from connectors.sample_ar import generate_ar, load_history

        counts["sample_history"] = load_history(cstore, generate_ar(as_of.date()))
    docs = cstore.store.documents(status="handed_off")
    counts["close_documents"] = cstore.load_ledger({"open_items": documents_as_open_items(docs)}, source="close")[
        "open_items"]
    return counts


def documents_as_open_items(docs: pd.DataFrame) -> pd.DataFrame:
    """The close's handed-off invoices and credit memos as open items (one installment each, nothing paid)."""
    d = docs[docs["document_type"].isin(["invoice", "credit_memo"])] if len(docs) else docs
    if d.empty:
        return pd.DataFrame()
    return pd.DataFrame({
        "payment_schedule_id": "PS-" + d["document_key"] + "-1", "trx_number": d["document_key"],
        "trx_class": d["document_type"].map({"invoice": "INV", "credit_memo": "CM"}),
        "customer_id": d["customer_id"], "business_unit": d["business_unit"], "currency": d["currency"],
        "trx_date": pd.to_datetime(d["issue_date"]), "due_date": pd.to_datetime(d["due_date"]), "installment": 1,
        "amount_due_original_cents": d["gross_cents"], "amount_due_remaining_cents": d["gross_cents"],
        "amount_in_dispute_cents": 0, "status": "OP"})


@task(retries=3, retry_delay_seconds=[2, 10, 30], retry_condition_fn=retry_on_transient, cache_policy=NO_CACHE)
def extract_receivables(cstore: CollectionsStore, source: str, as_of: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """Open items, receipts, applications, accounts and notes from the store or Oracle, checked."""
    names = ("open_items", "cash_receipts", "receipt_applications", "collection_accounts", "account_notes")
    if source == "store":
        data = {n: cstore.read(n) for n in names}
    elif source == "oracle":
        from connectors.oracle import OracleSettings
        from connectors.oracle_ar import OracleReceivablesConnector

        ar = OracleReceivablesConnector(OracleSettings.from_env())
        data = {n: ar.read(n, as_of.date()) for n in names}
    else:
        raise ValueError(f"unknown receivables source {source!r}; use one of {', '.join(SOURCES)}")
    day = as_of.normalize()
    data["open_items"] = data["open_items"][data["open_items"]["trx_date"] <= day].reset_index(drop=True)
    if source == "store":
        # Cash applied by the cash-application flow (and its reversals, which re-open items) and approved
        # write-offs are recorded beside the ledger: the ladder sees what is really still open.
        from store.cash import CashStore

        data["open_items"] = CashStore(cstore.store).effective_open_items(data["open_items"])
    check_inputs(data, origin=f"{source}")
    return data


@task(cache_policy=NO_CACHE)
def read_state(cstore: CollectionsStore) -> CollectionsState:
    """Ladder history, actions, disputes, plans, service requests, escalations, holds, latest unbilled."""
    store = cstore.store
    runs = store.runs()
    closes = runs[(runs["process"] == "month_end_close") & (runs["status"] == "completed")] if len(runs) else runs
    unbilled = store.unbilled_by_customer(max(closes["period"])) if len(closes) else pd.DataFrame(
        columns=["customer_id", "currency", "unbilled_cents"])
    return CollectionsState(
        history=cstore.ladder_history(), actions=cstore.actions(), disputes=cstore.disputes(), plans=cstore.plans(),
        plan_installments=cstore.plan_installments(), plan_items=cstore.plan_items(),
        service_requests=cstore.service_requests(), escalations=cstore.escalations(),
        holds=cstore.active_hold_setters(), unbilled=unbilled)


@task(cache_policy=NO_CACHE)
def compute_collections_day(data: dict[str, pd.DataFrame], state: CollectionsState, as_of: pd.Timestamp,
                            policy: DunningPolicy, rates: pd.DataFrame) -> CollectionsResult:
    """Aging, ladder, interest, plans, exposure, holds, service actions, worklist and metrics."""
    return compute_collections(data, state, as_of, policy, rates)


# --- record and send ----------------------------------------------------------------------------------
@task(cache_policy=NO_CACHE)
def record_plan_review(cstore: CollectionsStore, result: CollectionsResult) -> list[str]:
    """Mark broken and completed plans (a broken plan's items are back on the ladder)."""
    changed = []
    for r in result.plan_review.itertuples(index=False):
        if r.new_status != "active":
            cstore.set_plan_status(r.plan_id, r.new_status, result.as_of.date())
            changed.append(f"{r.plan_id}: {r.new_status}" + (f" (installment {r.missed_seq} missed)"
                                                            if r.missed_seq else ""))
    return changed


def _account(data: dict[str, pd.DataFrame], customer_id: str) -> dict:
    acc = data["collection_accounts"].set_index("customer_id")
    if customer_id in acc.index:
        return {"customer_id": customer_id, **acc.loc[customer_id].to_dict()}
    return {"customer_id": customer_id, "customer_name": customer_id, "billing_email": None}


def _documents(kind: str, action: dict, result: CollectionsResult, data: dict[str, pd.DataFrame],
               policy: DunningPolicy, sender: lt.Sender) -> dict:
    """Render a letter or statement for one customer: html, statement, pdf where possible, content hash."""
    cid = action["customer_id"]
    account = _account(data, cid)
    interest = result.interest[result.interest["customer_id"] == cid]
    items = data["open_items"]
    statement = lt.render_statement(items[items["customer_id"] == cid], account, interest, result.as_of, sender,
                                    action["action_key"])
    files: dict[str, str | bytes] = {"statement.html": statement}
    letter = None
    totals = []
    if kind != "statement":
        rows = result.ladder[result.ladder["payment_schedule_id"].isin(action["items"])]
        letter = lt.render_letter(policy.level(int(action["level"])), rows, account, action["fees"], interest,
                                  result.as_of, sender, action["action_key"], policy.interest.margin_bp)
        totals = lt.letter_totals(rows, action["fees"], interest)
        files["letter.html"] = letter
    for name in list(files):
        pdf = lt.pdf_bytes(files[name])  # type: ignore[arg-type]
        if pdf is not None:
            files[name.replace(".html", ".pdf")] = pdf
    text = lt.render_email_text(kind, account, result.as_of, sender, action["action_key"],
                                level=policy.level(int(action["level"])) if kind != "statement" else None,
                                totals=totals)
    return {"account": account, "letter": letter, "files": files, "text": text,
            "hash": lt.content_hash(*[files[k] for k in sorted(files)])}


def _email(doc: dict, kind: str, action: dict, policy: DunningPolicy, sender: lt.Sender, as_of) -> object:
    account = doc["account"]
    subject = (f"Statement of account as of {as_of.date()} — {account['customer_name']}" if kind == "statement"
               else f"{policy.level(int(action['level'])).name}: overdue invoices — {account['customer_name']} "
                    f"({account['customer_id']})")
    attachments = [(name, data if isinstance(data, bytes) else data.encode(),
                    "application/pdf" if name.endswith(".pdf") else "text/html")
                   for name, data in sorted(doc["files"].items()) if name.startswith("statement")]
    return lt.build_email(sender, account["billing_email"], subject, doc["text"], doc["letter"], attachments,
                          message_id=action["action_key"].replace(":", "."))


def _items_frame(result: CollectionsResult, action: dict) -> pd.DataFrame:
    rows = result.ladder[result.ladder["payment_schedule_id"].isin(action["items"])]
    return pd.DataFrame({"payment_schedule_id": rows["payment_schedule_id"], "level": rows["proposed_level"],
                         "currency": rows["currency"], "overdue_cents": rows["overdue_cents"]})


def _deliver_letter(cstore: CollectionsStore, mailer: Mailer, action: dict, doc: dict, message,
                    failed_state: str = "failed") -> str:
    """Send one recorded letter: ``sending`` before, ``sent`` after; on failure `failed_state` and the error.

    A disconnection notice that fails keeps its action ``handed_off`` (the service request is done and
    the level reached); the next run sends the notice again.
    """
    key = action["action_key"]
    if not doc["account"].get("billing_email") or pd.isna(doc["account"].get("billing_email")):
        cstore.set_action(key, state=failed_state, error="billing_email is missing on the collection account")
        return "failed"
    cstore.set_action(key, state="sending")
    try:
        mid = mailer.send(message)
    except Exception as exc:  # the letter stays resendable; the run reports it
        cstore.set_action(key, state=failed_state, error=f"{type(exc).__name__}: {exc}")
        return "failed"
    cstore.set_action(key, state="sent", message_id=mid, sent_at=pd.Timestamp.now(tz="UTC").to_pydatetime())
    return "sent"


@task(cache_policy=NO_CACHE)
def send_letters(cstore: CollectionsStore, mailer: Mailer, result: CollectionsResult, data: dict[str, pd.DataFrame],
                 policy: DunningPolicy, kind: str, archive: Path, run_id: str, preparer: str, dry_run: bool,
                 sender: lt.Sender) -> dict:
    """Letters (levels 1-3) or statements: render, archive, record, send; each at most once a day."""
    day = result.as_of.date()
    if kind == "statement":
        op = data["open_items"][data["open_items"]["status"] == "OP"]
        todo = [{"customer_id": c, "level": 0, "level_code": "statement", "channel": "email", "items": [],
                 "fees": {}} for c in sorted(set(op["customer_id"]))]
    else:
        todo = result.letters.to_dict("records")
    existing = cstore.actions(day).set_index("action_key")["state"] if not dry_run else pd.Series(dtype=object)
    counts = {"sent": 0, "failed": 0, "skipped": 0, "unknown": 0, "dry_run": 0}
    for action in todo:
        action["action_key"] = f"{kind}:{action['customer_id']}:{day}"
        state = existing.get(action["action_key"])
        if state in ("sent",):
            counts["skipped"] += 1
            continue
        if state == "sending":
            counts["unknown"] += 1  # sent or not before a crash: a person checks the mail log
            continue
        doc = _documents(kind, action, result, data, policy, sender)
        folder = archive / ("dry-run" if dry_run else "letters") / action["action_key"].replace(":", "_")
        paths = write_archive(folder, doc["files"])
        message = _email(doc, kind, action, policy, sender, result.as_of)
        (folder / "message.eml").write_bytes(bytes(message))  # type: ignore[arg-type]
        if dry_run:
            counts["dry_run"] += 1
            continue
        if state is None:
            cstore.insert_action({
                "action_key": action["action_key"], "run_id": run_id, "customer_id": action["customer_id"],
                "as_of": day, "kind": kind, "level": int(action["level"]), "level_code": action["level_code"],
                "channel": action["channel"], "state": "prepared", "recipient": doc["account"].get("billing_email"),
                "content_hash": doc["hash"], "letter_path": paths.get("letter.html", paths["statement.html"]),
                "fees_json": json.dumps(action["fees"]), "policy_version": policy.version_label,
                "preparer": preparer}, _items_frame(result, action) if kind != "statement" else None)
        counts[_deliver_letter(cstore, mailer, action, doc, message)] += 1
    return counts


@task(cache_policy=NO_CACHE)
def record_service_actions(cstore: CollectionsStore, result: CollectionsResult, policy: DunningPolicy, run_id: str,
                           preparer: str) -> pd.DataFrame:
    """Record today's disconnection proposals (blocked ones with their reason); return those awaiting a decision."""
    day = result.as_of.date()
    for a in result.service.to_dict("records"):
        key = f"service:{a['customer_id']}:{day}"
        cstore.insert_action({
            "action_key": key, "run_id": run_id, "customer_id": a["customer_id"], "as_of": day, "kind": "service",
            "level": int(a["level"]), "level_code": a["level_code"], "channel": a["channel"],
            "state": "blocked" if a["blocked_reason"] else "pending_approval", "blocked_reason": a["blocked_reason"]
            or None, "fees_json": json.dumps(a["fees"]), "policy_version": policy.version_label,
            "preparer": preparer}, _items_frame(result, a))
    acts = cstore.actions(day)
    return acts[(acts["kind"] == "service") & acts["state"].isin(["pending_approval", "timed_out", "approved",
                                                                    "handed_off"])].reset_index(drop=True)


def approval_markdown(actions: pd.DataFrame, result: CollectionsResult, preparer: str, refusal: str | None) -> str:
    lines = []
    if refusal:
        lines += [f"**Refused:** {refusal}", ""]
    lines += [f"### Disconnection requests for {result.as_of.date()}", "",
              f"Prepared by **{preparer}**. Approve or reject each request; the approver must be another person.",
              "", "| request | customer | action | overdue | oldest days past due |", "|---|---|---|---|---|"]
    for a in actions.itertuples(index=False):
        mine = result.ladder[result.ladder["customer_id"] == a.customer_id]
        overdue = ", ".join(format_cents(int(v), c) for c, v in mine.groupby("currency")["overdue_cents"].sum().items())
        lines.append(f"| `{a.action_key}` | {a.customer_id} | {a.level_code.replace('_', ' ')} | {overdue} | "
                     f"{int(mine['days_past_due'].max()) if len(mine) else 0} |")
    lines += ["", "Checked before asking: final notice sent long enough ago, no open dispute, no active payment plan."]
    return "\n".join(lines)


@task(retries=3, retry_delay_seconds=[2, 10, 30], retry_condition_fn=retry_on_transient, cache_policy=NO_CACHE)
def hand_off_service(cstore: CollectionsStore, queue: FolderQueue, mailer: Mailer, result: CollectionsResult,
                     data: dict[str, pd.DataFrame], policy: DunningPolicy, archive: Path, run_id: str,
                     sender: lt.Sender) -> dict:
    """Approved disconnections: hand each request off exactly once, then send the customer's notice."""
    day = result.as_of.date()
    acts = cstore.actions(day)
    acts = acts[(acts["kind"] == "service") & acts["state"].isin(["approved", "handed_off"])]
    items = cstore.action_items()
    counts = {"handed_off": 0, "notices_sent": 0}
    for a in acts.to_dict("records"):
        key = request_key(a["customer_id"], a["level_code"], a["action_key"])
        if a["state"] == "approved":
            req = cstore.begin_service_request(key, a["customer_id"], a["level_code"], a["action_key"], day, run_id)
            if req["state"] != "delivered":
                ref = queue.deliver(key, {"customer_id": a["customer_id"], "action": a["level_code"],
                                          "requested_on": str(day), "approved_by": a["approver"],
                                          "prepared_by": a["preparer"], "source": a["action_key"]})
                _crash_point("service_handoff")
                cstore.complete_service_request(key, ref)
                counts["handed_off"] += 1
            cstore.set_action(a["action_key"], state="handed_off")
        mine = items[items["action_key"] == a["action_key"]]
        action = {**a, "items": list(mine["payment_schedule_id"]), "fees": json.loads(a["fees_json"] or "{}")}
        doc = _documents("service", action, result, data, policy, sender)
        write_archive(archive / "letters" / a["action_key"].replace(":", "_"), doc["files"])
        cstore.set_action(a["action_key"], content_hash=doc["hash"], recipient=doc["account"].get("billing_email"))
        message = _email(doc, "service", action, policy, sender, result.as_of)
        if _deliver_letter(cstore, mailer, action, doc, message, failed_state="handed_off") == "sent":
            counts["notices_sent"] += 1
    return counts


@task(retries=3, retry_delay_seconds=[2, 10, 30], retry_condition_fn=retry_on_transient, cache_policy=NO_CACHE)
def hand_off_reconnections(cstore: CollectionsStore, queue: FolderQueue, result: CollectionsResult,
                           run_id: str) -> int:
    """Customers disconnected who have paid: one reconnection request each, exactly once."""
    n = 0
    for r in result.reconnections.itertuples(index=False):
        key = request_key(r.customer_id, "reconnection", r.disconnection_key)
        req = cstore.begin_service_request(key, r.customer_id, "reconnection", r.disconnection_key,
                                           result.as_of.date(), run_id)
        if req["state"] == "delivered":
            continue
        ref = queue.deliver(key, {"customer_id": r.customer_id, "action": "reconnection",
                                  "requested_on": str(result.as_of.date()), "source": r.disconnection_key})
        cstore.complete_service_request(key, ref)
        n += 1
    return n


@task(cache_policy=NO_CACHE)
def apply_credit_holds(store: Store, result: CollectionsResult) -> dict:
    """Set and release credit holds (the close reads them); each with its reason."""
    counts = {"set": 0, "released": 0}
    for r in result.holds.itertuples(index=False):
        if r.action == "set":
            store.set_hold(r.customer_id, r.reason, set_by=HOLD_ACTOR)
            counts["set"] += 1
        else:
            counts["released"] += min(1, store.release_hold(r.customer_id, released_by=HOLD_ACTOR, reason=r.reason))
    return counts


@task(retries=3, retry_delay_seconds=[2, 10, 30], retry_condition_fn=retry_on_transient, cache_policy=NO_CACHE)
def escalate_accounts(cstore: CollectionsStore, queues: dict[str, FolderQueue], result: CollectionsResult,
                      data: dict[str, pd.DataFrame], archive: Path, run_id: str, sender: lt.Sender) -> int:
    """Accounts past hard disconnection and the policy age: a case file to legal or the agency, once."""
    n = 0
    actions = cstore.actions()
    disputes = cstore.disputes()
    events = cstore.dispute_events()
    notes = data["account_notes"]
    for r in result.escalations.itertuples(index=False):
        key = hashlib.sha256(f"escalation|{r.customer_id}".encode()).hexdigest()[:40]
        cid = r.customer_id
        items = data["open_items"]
        mine = age_items(items[items["customer_id"] == cid], result.as_of)
        sent = actions[(actions["customer_id"] == cid) & actions["state"].isin(["sent", "handed_off"])]
        case = {
            "customer": {k: (None if pd.isna(v) else v) for k, v in _account(data, cid).items()},
            "target": r.target, "as_of": str(result.as_of.date()), "disconnected_on": str(r.disconnected_on.date()),
            "overdue": {c: str(cents_to_decimal(v)) for c, v in r.overdue.items()},
            "statement": [{"trx_number": i.trx_number, "installment": int(i.installment), "class": i.trx_class,
                           "due_date": str(i.due_date.date()), "days_past_due": int(i.days_past_due),
                           "open": str(cents_to_decimal(i.amount_due_remaining_cents)), "currency": i.currency}
                          for i in mine.itertuples(index=False)],
            "letters": [{"date": str(a.as_of.date()), "kind": a.kind, "level": a.level_code, "state": a.state}
                        for a in sent.itertuples(index=False)],
            "disputes": [{**{k: str(v) for k, v in d.items()},
                          "events": events[events["dispute_id"] == d["dispute_id"]].astype(str).to_dict("records")}
                         for d in disputes[disputes["customer_id"] == cid].to_dict("records")],
            "notes": notes[notes["customer_id"] == cid].astype(str).to_dict("records"),
        }
        folder = archive / "cases"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{cid}.json"
        path.write_text(json.dumps(case, indent=1, default=str))
        row = cstore.begin_escalation(key, cid, r.target, result.as_of.date(), str(path), run_id)
        if row["state"] == "delivered":
            continue
        ref = queues[r.target].deliver(key, case)
        cstore.complete_escalation(key, ref)
        n += 1
    return n


# --- report -------------------------------------------------------------------------------------------
def _people(df: pd.DataFrame) -> pd.DataFrame:
    """Cents columns as exact decimal text, dates as ISO days (files and artifacts for people)."""
    out = df.copy()
    for c in out.columns:
        if c.endswith("_cents"):
            out[c.removesuffix("_cents")] = out.pop(c).map(
                lambda v: "" if v is None or pd.isna(v) else str(cents_to_decimal(int(v))))
        elif pd.api.types.is_datetime64_any_dtype(out[c]):
            out[c] = out[c].dt.strftime("%Y-%m-%d").fillna("")
    return out


@task(cache_policy=NO_CACHE)
def write_reports(result: CollectionsResult, folder: Path) -> dict[str, str]:
    """aging.csv, ladder.csv, interest.csv, exposure.csv, metrics.csv and the collector worklist (XLSX)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, df in (("aging", result.aging), ("ladder", result.ladder), ("interest", result.interest),
                     ("exposure", result.exposure), ("metrics", result.metrics)):
        path = folder / f"{name}.csv"
        _people(df).to_csv(path, index=False)
        files[name] = str(path)
    xlsx = folder / "worklist.xlsx"
    with pd.ExcelWriter(xlsx, engine="openpyxl") as xw:
        wl = _people(result.worklist)
        if wl.empty:
            wl.to_excel(xw, sheet_name="worklist", index=False)
        for collector, g in wl.groupby("collector", sort=True):
            g.to_excel(xw, sheet_name=str(collector)[:31], index=False)
    files["worklist"] = str(xlsx)
    return files


@task(cache_policy=NO_CACHE)
def publish_artifacts(result: CollectionsResult, summary: dict) -> None:
    """Collector worklist, metrics and a summary in the Prefect UI."""
    create_table_artifact(_people(result.worklist).astype(str).to_dict("records"), key="collector-worklist",
                          description="Collector worklist: accounts ranked by overdue amount and age")
    create_table_artifact(_people(result.metrics).astype(str).to_dict("records"), key="collections-metrics",
                          description="DSO (tenths of a day), overdue share (bp), disputes, promises kept")
    md = ["# Collections " + str(result.as_of.date()), ""] + [f"- **{k}**: {v}" for k, v in summary.items()
                                                               if not isinstance(v, dict)]
    for k, v in summary.items():
        if isinstance(v, dict):
            md.append(f"- **{k}**: " + ", ".join(f"{a}={b}" for a, b in v.items()))
    create_markdown_artifact("\n".join(md), key="collections-summary", description="Collections run summary")


def sender_from_env() -> lt.Sender:
    """The sender printed on letters (COLLECTIONS_SENDER_* overrides, read when the run starts)."""
    base = asdict(lt.Sender())
    return lt.Sender(**{k: os.environ.get(f"COLLECTIONS_SENDER_{k.upper()}", v) for k, v in base.items()})
