"""Failpoints: named places where a test can kill the process for real (SIGKILL, no clean-up).

Set ``BILLING_CYCLE_FAILPOINTS=after_deliver`` (comma-separated names) in a subprocess's environment
to kill it at that point. Used by the exactly-once tests to crash between a delivery and its record,
the one window an idempotency key exists for. Unset, a failpoint costs one dictionary look-up.
"""

from __future__ import annotations

import os
import signal


def failpoint(name: str) -> None:
    active = os.environ.get("BILLING_CYCLE_FAILPOINTS", "")
    if active and name in {n.strip() for n in active.split(",")}:
        os.kill(os.getpid(), signal.SIGKILL)
