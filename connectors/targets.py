"""Downstream targets invoices are handed off to. Each delivery is idempotent by its key.

The exactly-once contract (with store.Store.begin_handoffs/complete_handoffs): the store records the
intent before delivery and the completion after; a target must treat a second delivery with the same
idempotency key as a no-op that returns the first delivery's reference. So a crash between delivery
and its record, followed by a re-run, never produces a second document downstream.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

import pandas as pd

from billing.money import cents_to_decimal


class DeliveryRejected(ValueError):
    """A target refuses one document for its data (a missing endpoint id, a currency it does not take).

    Permanent for that document: retrying cannot help, so the document stays pending with this
    message and the hand-off goes on with the others.
    """

    def __init__(self, document_key: str, target: str, field: str, message: str):
        self.document_key, self.target, self.field, self.message = document_key, target, field, message
        super().__init__(f"{target} refused {document_key}: {field}: {message}")


# A document's printed lines: a frame of ``document_lines`` rows, or those rows as mappings (what the
# hand-off passes: one query for a chunk of documents, no frame per document).
Lines = pd.DataFrame | Sequence[Mapping]


def line_records(lines: Lines | None) -> list[dict]:
    """The lines as a list of dicts, in line order; missing values as None."""
    if lines is None:
        return []
    if isinstance(lines, pd.DataFrame):
        rows = lines.astype(object).where(lines.notna(), None).to_dict("records")
    else:
        rows = [dict(r) for r in lines]
    return sorted(rows, key=lambda r: (r.get("line_no") is None, r.get("line_no") or 0))


class HandoffTarget(Protocol):
    name: str

    def deliver(self, document: dict, lines: Lines, idempotency_key: str) -> str:
        """Deliver one document; return an external reference. Same key again -> same reference."""
        ...


class FileDropTarget:
    """One JSON file per document in a drop folder (an ERP or e-invoicing gateway polls it).

    The file name is the document key; the idempotency key is inside. Written atomically (temp file,
    fsync, rename), so a reader never sees half a document.
    """

    name = "file_drop"

    def __init__(self, folder: Path | str):
        self.folder = Path(folder)

    def deliver(self, document: dict, lines: Lines, idempotency_key: str) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{document['document_key']}.json"
        if path.exists():
            existing = json.loads(path.read_text())
            if existing.get("idempotency_key") == idempotency_key:
                return str(path)
            raise FileExistsError(f"{path} exists with another idempotency key: refusing to overwrite a "
                                  "handed-off document")
        payload = document_payload(document, lines, idempotency_key)
        tmp = path.with_suffix(".json.tmp")
        with open(tmp, "w") as f:
            f.write(json.dumps(payload, indent=1, default=str))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return str(path)


def document_payload(document: Mapping, lines: Lines, idempotency_key: str) -> dict:
    """The document as JSON: amounts as decimal strings in major units, exact."""
    def money(c):
        return str(cents_to_decimal(int(c)))

    def text(v):
        return None if v is None or (not isinstance(v, str) and pd.isna(v)) else v

    return {
        "idempotency_key": idempotency_key,
        "document_key": document["document_key"], "document_type": document["document_type"],
        "period": document["period"], "customer_id": document["customer_id"], "currency": document["currency"],
        "issue_date": str(pd.Timestamp(document["issue_date"]).date()),
        "due_date": str(pd.Timestamp(document["due_date"]).date()),
        "po_number": text(document.get("po_number")),
        "delivery_channel": document.get("delivery_channel"),
        "reverses": text(document.get("reverses_key")),
        "net": money(document["net_cents"]), "tax": money(document["tax_cents"]),
        "gross": money(document["gross_cents"]), "tax_rate_bp": int(document["tax_rate_bp"]),
        "lines": [{"line_no": int(r["line_no"]), "description": r["description"],
                   "quantity": str(cents_to_decimal(int(r["quantity_milli"]), 3)),
                   "unit_price": None if text(r.get("unit_price_cents")) is None else money(r["unit_price_cents"]),
                   "amount": money(r["amount_cents"]), "project_id": text(r.get("project_id"))}
                  for r in line_records(lines)],
    }
