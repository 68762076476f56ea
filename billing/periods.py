"""Billing periods: a calendar month named YYYY-MM."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd

_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


class PeriodError(ValueError):
    pass


@dataclass(frozen=True, order=True)
class Period:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Period:
        m = _PERIOD.match(str(text).strip())
        if not m:
            raise PeriodError(f"period {text!r} is not a month in the form YYYY-MM (e.g. 2026-10)")
        return cls(int(m.group(1)), int(m.group(2)))

    @property
    def start(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def end(self) -> date:
        return self.next().start - timedelta(days=1)

    @property
    def days(self) -> int:
        return self.end.day

    def next(self) -> Period:
        return Period(self.year + (self.month == 12), self.month % 12 + 1)

    def previous(self) -> Period:
        return Period(self.year - (self.month == 1), 12 if self.month == 1 else self.month - 1)

    def index(self) -> int:
        """Months since year 0: differences give month counts."""
        return self.year * 12 + self.month - 1

    @property
    def is_quarter_end(self) -> bool:
        return self.month in (3, 6, 9, 12)

    @property
    def start_ts(self) -> pd.Timestamp:
        return pd.Timestamp(self.start)

    @property
    def end_ts(self) -> pd.Timestamp:
        return pd.Timestamp(self.end)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def month_index(dates: pd.Series) -> pd.Series:
    """Months since year 0 for a datetime Series (same scale as Period.index)."""
    return dates.dt.year.astype("int64") * 12 + dates.dt.month.astype("int64") - 1
