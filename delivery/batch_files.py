"""Batch files: one folder per document with its lines as CSV and JSON and a manifest of checksums.

Layout (``folder`` is ``<output_dir>/handoff/batches``)::

    <document_key>/lines.csv       the printed lines; money as exact decimal text in major units
    <document_key>/lines.json      the document and its lines (connectors.targets.document_payload)
    <document_key>/manifest.json   counts, totals, SHA-256 and size of each file, idempotency key

A reader never sees half a folder: the three files are written and fsynced in a hidden temporary
folder next to the final one, which is then renamed into place in one step. The manifest is the
contract with the reader: it checks each file's SHA-256 and that the line amounts add up to the
manifest's net.

Idempotency: a folder already there with the same idempotency key in its manifest is the first
delivery (returned as is); with another key the document is refused (a handed-off folder is never
replaced). Money in CSV and JSON is written with two decimals (the JSON shape shared with the file
drop), so this target refuses currencies with other minor units (JPY).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
from decimal import Decimal
from pathlib import Path

import pandas as pd

from billing.columns import MINOR_UNITS
from connectors.targets import document_payload
from delivery.base import CheckedDocument, check_document, quantity_decimal, skip_reason, skipped
from delivery.errors import DeliveryRejected

CSV_COLUMNS = ("document_key", "line_no", "contract_id", "project_id", "scope_line_id", "source_kind", "role",
               "expenditure_type", "description", "quantity", "unit_price", "amount", "currency", "item_count")
MANIFEST_VERSION = 1
TWO_DECIMAL_CURRENCIES = tuple(c for c, m in MINOR_UNITS.items() if m == 2)


class BatchFilesTarget:
    """Writes ``<folder>/<document_key>/{lines.csv, lines.json, manifest.json}`` atomically.

    Example: ``BatchFilesTarget("out/2026-10/handoff/batches").deliver(document, lines, key)`` returns the
    folder's path. Internal (not customer-facing): it takes every receivable document, whatever its
    channel.
    """

    name = "batch_files"
    customer_facing = False
    channels = None

    def __init__(self, folder: Path | str):
        self.folder = Path(folder)

    def path(self, document_key: str) -> Path:
        return self.folder / re.sub(r"[^A-Za-z0-9._-]", "_", document_key)

    def deliver(self, document: dict, lines: pd.DataFrame, idempotency_key: str) -> str:
        if why := skip_reason(document, customer_facing=self.customer_facing, channels=self.channels):
            return skipped(why)
        key = str(document.get("document_key"))
        final = self.path(key)
        if (done := self._delivered(final, key, idempotency_key)) is not None:
            return done
        doc = check_document(document, lines, self.name, TWO_DECIMAL_CURRENCIES)
        files = render_batch_files(doc, document, lines, idempotency_key)   # checked and built, nothing written
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=self.folder, prefix=f".{final.name}.", suffix=".tmp"))
        try:
            for name, data in files.items():
                with open(tmp / name, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
            _fsync_dir(tmp)
            try:
                os.rename(tmp, final)     # atomic; fails if another delivery got there first
            except OSError:
                if (done := self._delivered(final, key, idempotency_key)) is not None:
                    return done
                raise
            _fsync_dir(self.folder)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return str(final)

    def check(self, document: dict, lines: pd.DataFrame) -> None:
        """Everything ``deliver`` checks, without writing (a pre-flight before any target delivers)."""
        if skip_reason(document, customer_facing=self.customer_facing, channels=self.channels) is None:
            render_batch_files(check_document(document, lines, self.name, TWO_DECIMAL_CURRENCIES), document, lines,
                               "0" * 64)

    def _delivered(self, final: Path, key: str, idempotency_key: str) -> str | None:
        manifest = final / "manifest.json"
        if not manifest.exists():
            return None
        found = json.loads(manifest.read_text()).get("idempotency_key")
        if found == idempotency_key:
            return str(final)
        raise DeliveryRejected(key, self.name, "document_key", f"{final} was already handed off under another "
                               "idempotency key; a handed-off batch folder is never replaced")


def render_batch_files(doc: CheckedDocument, document: dict, lines: pd.DataFrame,
                       idempotency_key: str) -> dict[str, bytes]:
    """The three files of one document's folder, as bytes (manifest last: it checksums the others)."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for x in doc.lines:
        w.writerow([doc.document_key, x.line_no, x.contract_id or "", x.project_id or "", x.scope_line_id or "",
                    x.source_kind or "", x.role or "", x.expenditure_type or "", x.description,
                    f"{quantity_decimal(x.quantity_milli):f}",
                    "" if x.unit_price_cents is None else f"{doc.major(x.unit_price_cents):f}",
                    f"{doc.major(x.amount_cents):f}", doc.currency, "" if x.item_count is None else x.item_count])
    files = {
        "lines.csv": out.getvalue().encode("utf-8"),
        "lines.json": json.dumps(document_payload(document, lines, idempotency_key), indent=1,
                                 ensure_ascii=False, default=str).encode("utf-8"),
    }
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "document_key": doc.document_key, "document_type": doc.document_type, "period": doc.period,
        "customer_id": doc.customer_id, "currency": doc.currency, "idempotency_key": idempotency_key,
        "content_hash": doc.content_hash, "line_count": len(doc.lines),
        "item_count": sum(x.item_count or 0 for x in doc.lines),
        "totals": {"lines_amount": f"{doc.major(sum(x.amount_cents for x in doc.lines)):f}",
                   "net": f"{doc.major(doc.net_cents):f}", "tax": f"{doc.major(doc.tax_cents):f}",
                   "gross": f"{doc.major(doc.gross_cents):f}"},
        "files": {name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
                  for name, data in files.items()},
    }
    files["manifest.json"] = json.dumps(manifest, indent=1, ensure_ascii=False).encode("utf-8")
    return files


def verify_batch_folder(folder: Path | str) -> dict:
    """Read a batch folder as a downstream reader would: checksums and totals; returns the manifest.

    Raises ValueError naming the file or total that does not match.
    """
    folder = Path(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    for name, meta in manifest["files"].items():
        data = (folder / name).read_bytes()
        if hashlib.sha256(data).hexdigest() != meta["sha256"] or len(data) != meta["bytes"]:
            raise ValueError(f"{folder.name}/{name}: SHA-256 does not match the manifest")
    with open(folder / "lines.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if len(rows) != manifest["line_count"]:
        raise ValueError(f"{folder.name}/lines.csv: {len(rows)} lines, manifest says {manifest['line_count']}")
    total = sum((Decimal(r["amount"]) for r in rows), Decimal(0))
    if total != Decimal(manifest["totals"]["net"]):
        raise ValueError(f"{folder.name}/lines.csv: amounts add up to {total}, manifest net is "
                         f"{manifest['totals']['net']}")
    return manifest


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
