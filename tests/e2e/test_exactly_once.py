"""A crash between a delivery and its record never produces a second document downstream.

The close runs as a subprocess that is killed for real (SIGKILL, from a failpoint placed right after
the target accepted a document and before the store records it), then runs again.
"""

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.test_close_command import BIN, run

pytestmark = pytest.mark.e2e


def test_kill_after_delivery_then_rerun_delivers_each_document_once(tmp_path):
    args = ("close", "--period", "2026-10", "--source", "sample:items=1500,seed=5", "--targets", "file_drop",
            "--approval-threshold",
            "1000000000")
    # Its own session: the killed close leaves its ephemeral Prefect server behind (as a real crash
    # would); the whole group is cleaned up after.
    env = {"PATH": str(Path(sys.executable).parent), "HOME": str(tmp_path), "PREFECT_HOME": str(tmp_path / ".prefect"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "USER": "maria", "BILLING_CYCLE_FAILPOINTS": "after_deliver"}
    with open(tmp_path / "crash.log", "w") as log:
        proc = subprocess.Popen([BIN, *args], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
        try:
            code = proc.wait(timeout=600)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
    assert code == -signal.SIGKILL, (tmp_path / "crash.log").read_text()[-2000:]

    db = sqlite3.connect(tmp_path / "out" / "billing.sqlite")
    started = db.execute("select document_key, idempotency_key, attempts from handoffs "
                         "where state='started'").fetchall()
    assert len(started) == 1, "the kill came after the first delivery, before its record"
    key, ikey, attempts = started[0]
    assert attempts == 1
    drop = tmp_path / "out" / "2026-10" / "handoff"
    assert [p.stem for p in drop.glob("*.json")] == [key]   # downstream has it, the store does not know yet

    again = run(*args, "--json", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    rows = db.execute("select document_key, idempotency_key, state, attempts from handoffs").fetchall()
    assert len({r[0] for r in rows}) == len(rows), "one hand-off row per document"
    assert all(r[2] == "delivered" for r in rows)
    assert [r[3] for r in rows if r[0] == key] == [2]    # delivered again under the same key...
    files = sorted(p.stem for p in drop.glob("*.json"))
    assert files == sorted(r[0] for r in rows)           # ...and still one document downstream
    assert json.loads((drop / f"{key}.json").read_text())["idempotency_key"] == ikey
    handed = db.execute("select count(*) from documents where status='handed_off'").fetchone()[0]
    assert handed == len(files)
