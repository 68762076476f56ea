"""The project's own store: runs, documents and their hand-off, approvals, holds, snapshots."""

from store import cash as _cash  # noqa: F401  (registers the cash, provision and inquiry tables)
from store import receivables as _receivables  # noqa: F401  (registers the collections tables)
from store.db import Store

__all__ = ["Store"]
