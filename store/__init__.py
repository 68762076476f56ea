"""The project's own store: runs, documents and their hand-off, approvals, holds, snapshots."""

from store.db import Store

__all__ = ["Store"]
