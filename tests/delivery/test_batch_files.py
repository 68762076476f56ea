"""Batch files: a folder per document with CSV, JSON and a manifest whose checksums and totals match."""

import csv
import hashlib
import json
import os
from decimal import Decimal

import pytest

from delivery.batch_files import BatchFilesTarget, verify_batch_folder
from delivery.errors import DeliveryRejected
from tests.delivery.samples import INV, invoice, invoice_lines

IKEY = "e" * 64


def test_manifest_counts_totals_and_checksums_match_the_files(tmp_path):
    target = BatchFilesTarget(tmp_path / "batches")
    ref = target.deliver(invoice(), invoice_lines(), IKEY)
    folder = tmp_path / "batches" / INV
    assert ref == str(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["lines.csv", "lines.json", "manifest.json"]
    manifest = json.loads((folder / "manifest.json").read_text())
    for name in ("lines.csv", "lines.json"):
        data = (folder / name).read_bytes()
        assert manifest["files"][name] == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    assert (manifest["document_key"], manifest["idempotency_key"], manifest["line_count"]) == (INV, IKEY, 3)
    assert manifest["totals"] == {"lines_amount": "3645.50", "net": "3645.50", "tax": "692.65", "gross": "4338.15"}
    with open(folder / "lines.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["amount"] for r in rows] == ["900.00", "245.50", "2500.00"]
    assert [r["quantity"] for r in rows] == ["7.5", "1", "1"]
    assert [r["unit_price"] for r in rows] == ["120.00", "", "2500.00"]
    assert sum(Decimal(r["amount"]) for r in rows) == Decimal("3645.50")
    payload = json.loads((folder / "lines.json").read_text())
    assert (payload["net"], payload["tax"], payload["gross"]) == ("3645.50", "692.65", "4338.15")
    assert [x["amount"] for x in payload["lines"]] == ["900.00", "245.50", "2500.00"]
    assert verify_batch_folder(folder)["line_count"] == 3


def test_a_reader_detects_a_changed_file(tmp_path):
    folder = tmp_path / "batches" / INV
    BatchFilesTarget(tmp_path / "batches").deliver(invoice(), invoice_lines(), IKEY)
    text = (folder / "lines.csv").read_text().replace("245.50", "245.51")
    (folder / "lines.csv").write_text(text)
    with pytest.raises(ValueError, match=r"lines\.csv: SHA-256"):
        verify_batch_folder(folder)


def test_a_repeat_with_the_same_key_is_a_no_op_and_another_key_is_refused(tmp_path):
    target = BatchFilesTarget(tmp_path / "batches")
    ref = target.deliver(invoice(), invoice_lines(), IKEY)
    before = (tmp_path / "batches" / INV / "manifest.json").stat().st_mtime_ns
    assert target.deliver(invoice(), invoice_lines(), IKEY) == ref
    assert (tmp_path / "batches" / INV / "manifest.json").stat().st_mtime_ns == before
    with pytest.raises(DeliveryRejected) as e:
        target.deliver(invoice(), invoice_lines(), "f" * 64)
    assert (e.value.document_key, e.value.field) == (INV, "document_key")


def test_a_failed_write_leaves_no_folder_and_no_temporary_files(tmp_path, monkeypatch):
    target = BatchFilesTarget(tmp_path / "batches")

    def broken_rename(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "rename", broken_rename)
    with pytest.raises(OSError, match="disk full"):
        target.deliver(invoice(), invoice_lines(), IKEY)
    assert list((tmp_path / "batches").iterdir()) == []     # neither the folder nor its temporary twin
    monkeypatch.undo()
    target.deliver(invoice(), invoice_lines(), IKEY)
    assert [p.name for p in (tmp_path / "batches").iterdir()] == [INV]


def test_bad_input_is_refused_before_anything_is_written(tmp_path):
    target = BatchFilesTarget(tmp_path / "batches")
    lines = invoice_lines()
    lines.loc[2, "description"] = " "
    with pytest.raises(DeliveryRejected) as e:
        target.deliver(invoice(), lines, IKEY)
    assert (e.value.document_key, e.value.field) == (INV, "lines[3].description")
    with pytest.raises(DeliveryRejected) as e:       # the shared JSON shape has two decimals: JPY is refused
        target.deliver(invoice(currency="JPY"), invoice_lines(), IKEY)
    assert e.value.field == "currency"
    assert not (tmp_path / "batches").exists()
