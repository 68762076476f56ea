"""When the month-end close runs: the Nth working day of the month, in the company's calendar.

How the schedule is expressed (see docs/ORCHESTRATION.md): an RRule can say "the 2nd weekday of the
month" (``BYDAY=MO,TU,WE,TH,FR;BYSETPOS=2``) but not "skipping public holidays", and holidays move
every year (Orthodox Easter, observed days, government bridge days). So the deployment fires by cron
on every day that can be the Nth working day (days 1 to N+10 of the month, 07:00 Europe/Sofia), and
the flow's first step is a working-day guard that lets only the right day through. The guard uses the
``holidays`` library, so the calendar is data a team can check, and a test pins a whole year of dates.

Pure: the date being checked is an argument, never the clock.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import holidays

from billing.periods import Period

MAX_WORKING_DAY = 15


class ScheduleError(ValueError):
    """A schedule setting that cannot work (unknown country, N out of range)."""


@lru_cache(maxsize=64)
def _calendar(country: str, subdivision: str | None, year: int) -> holidays.HolidayBase:
    try:
        return holidays.country_holidays(country, subdiv=subdivision, years=[year])
    except NotImplementedError as exc:
        raise ScheduleError(f"holiday calendar: unknown country {country!r} ({exc})") from None


def is_working_day(day: dt.date, country: str = "BG", subdivision: str | None = None) -> bool:
    """Monday to Friday and not a public holiday (observed days and declared bridge days included)."""
    return day.weekday() < 5 and day not in _calendar(country, subdivision, day.year)


def nth_working_day(year: int, month: int, n: int = 2, country: str = "BG",
                    subdivision: str | None = None) -> dt.date:
    """The Nth working day of a month (N counts from 1)."""
    if not 1 <= n <= MAX_WORKING_DAY:
        raise ScheduleError(f"working day must be between 1 and {MAX_WORKING_DAY}, got {n}")
    day = dt.date(year, month, 1)
    seen = 0
    while True:
        if is_working_day(day, country, subdivision):
            seen += 1
            if seen == n:
                return day
        day += dt.timedelta(days=1)


def close_run_dates(year: int, n: int = 2, country: str = "BG", subdivision: str | None = None) -> list[dt.date]:
    """The twelve close dates of a year."""
    return [nth_working_day(year, m, n, country, subdivision) for m in range(1, 13)]


def period_to_close(run_day: dt.date) -> Period:
    """A close that runs in a month closes the month before."""
    first = run_day.replace(day=1)
    prev = first - dt.timedelta(days=1)
    return Period(prev.year, prev.month)


def cron_for(n: int = 2, hour: int = 7, minute: int = 0) -> str:
    """The cron expression that fires on every day that can be the Nth working day.

    N working days plus ten spare days covers the longest run of weekend and holidays at a month's
    start that any supported calendar has (Bulgaria's Easter and 1-6 May: five days off in a row).
    """
    if not 1 <= n <= MAX_WORKING_DAY:
        raise ScheduleError(f"working day must be between 1 and {MAX_WORKING_DAY}, got {n}")
    return f"{minute} {hour} 1-{min(n + 10, 28)} * *"


def guard(run_day: dt.date, n: int = 2, country: str = "BG", subdivision: str | None = None) -> tuple[bool, str]:
    """Should a scheduled close run on ``run_day``? Returns (run, reason)."""
    target = nth_working_day(run_day.year, run_day.month, n, country, subdivision)
    if run_day == target:
        return True, f"{run_day} is working day {n} of the month ({country})"
    return False, f"{run_day} is not working day {n} of the month ({country}); that is {target}"
