import pytest

from billing.periods import Period, PeriodError


def test_period_bounds_and_navigation():
    p = Period.parse("2024-02")
    assert (str(p.start), str(p.end), p.days) == ("2024-02-01", "2024-02-29", 29)
    assert str(Period.parse("2026-12").next()) == "2027-01"
    assert str(Period.parse("2026-01").previous()) == "2025-12"
    assert Period.parse("2026-09").is_quarter_end and not Period.parse("2026-10").is_quarter_end


@pytest.mark.parametrize("bad", ["2026-13", "2026-1", "26-10", "october", "2026-00", ""])
def test_bad_period_is_refused_with_the_expected_form(bad):
    with pytest.raises(PeriodError, match="YYYY-MM"):
        Period.parse(bad)
