"""The close's calendar: the Nth working day in Bulgaria, weekends and public holidays skipped."""

import datetime as dt

import pytest

from billing.periods import Period
from billing.schedule import (
    ScheduleError,
    close_run_dates,
    cron_for,
    guard,
    is_working_day,
    nth_working_day,
    period_to_close,
)

D = dt.date


def test_second_working_day_of_every_month_of_2027_in_bulgaria():
    # Worked out by hand from the 2027 Bulgarian calendar:
    # Jan: 1 Fri New Year, 2-3 weekend -> 4 Mon (1st), 5 Tue (2nd).
    # May: 1-2 weekend, 3 Mon Easter Monday, 4 Tue Labour Day observed, 5 Wed (1st),
    #      6 Thu St George's Day, 7 Fri (2nd).
    # Aug: 1 Sun -> 2 Mon, 3 Tue.  Oct: 1 Fri, then the weekend -> 4 Mon.
    assert close_run_dates(2027, n=2, country="BG") == [
        D(2027, 1, 5), D(2027, 2, 2), D(2027, 3, 2), D(2027, 4, 2), D(2027, 5, 7), D(2027, 6, 2),
        D(2027, 7, 2), D(2027, 8, 3), D(2027, 9, 2), D(2027, 10, 4), D(2027, 11, 2), D(2027, 12, 2),
    ]


def test_declared_bridge_day_is_not_a_working_day():
    # 2 January 2026 (Friday) was declared a non-working day: the 2nd working day is Tue 6 Jan.
    assert not is_working_day(D(2026, 1, 2))
    assert nth_working_day(2026, 1, 1) == D(2026, 1, 5)
    assert nth_working_day(2026, 1, 2) == D(2026, 1, 6)


def test_first_working_day_follows_country_calendar():
    # Mon 3 May 2027 is Easter Monday in Bulgaria but a working day in Germany (Berlin).
    assert nth_working_day(2027, 5, 1, country="BG") == D(2027, 5, 5)
    assert nth_working_day(2027, 5, 1, country="DE", subdivision="BE") == D(2027, 5, 3)


def test_guard_lets_only_the_close_day_through():
    run, why = guard(D(2027, 5, 7), n=2)
    assert run and "working day 2" in why
    run, why = guard(D(2027, 5, 5), n=2)
    assert not run and "2027-05-07" in why


def test_cron_covers_days_one_to_n_plus_ten():
    assert cron_for(2) == "0 7 1-12 * *"
    assert cron_for(5, hour=6, minute=30) == "30 6 1-15 * *"


def test_a_close_run_closes_the_month_before():
    assert period_to_close(D(2027, 1, 5)) == Period(2026, 12)
    assert period_to_close(D(2026, 11, 3)) == Period(2026, 10)


@pytest.mark.parametrize("n", [0, 16])
def test_working_day_out_of_range_is_refused(n):
    with pytest.raises(ScheduleError, match="between 1 and 15"):
        nth_working_day(2027, 1, n)


def test_unknown_country_is_refused_with_its_code():
    with pytest.raises(ScheduleError, match="'XX'"):
        nth_working_day(2027, 1, 2, country="XX")
