"""The interface every source connector implements, and the errors they raise."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import pandas as pd

from billing.periods import Period


class ConnectorError(RuntimeError):
    """A source could not deliver a dataset. `transient` says whether a retry may help."""

    transient = False


class TransientSourceError(ConnectorError):
    """Timeouts, 5xx, rate limits, dropped connections: retrying may help."""

    transient = True


class PermanentSourceError(ConnectorError):
    """Bad credentials, malformed query, missing object or file: retrying cannot help."""

    transient = False


@runtime_checkable
class SourceConnector(Protocol):
    """A system that delivers some of the close's datasets in the canonical schema (billing.columns).

    `datasets` names what it delivers; `read(name, period)` returns that dataset as of the period's
    end: reference data (customers, contracts...) current, activity (expenditure items, milestones,
    tracker additions) dated on or before the period end, prior invoice lines of earlier periods.
    """

    name: str
    datasets: tuple[str, ...]

    def read(self, dataset: str, period: Period) -> pd.DataFrame: ...


def is_transient(exc: BaseException) -> bool:
    """Retry condition shared by extract tasks: retry transient source faults only."""
    if isinstance(exc, ConnectorError):
        return exc.transient
    return isinstance(exc, (TimeoutError, ConnectionError))
