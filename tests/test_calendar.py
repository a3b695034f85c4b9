"""Trading calendar and schedule helpers."""

from datetime import date, timedelta

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from vnpy_rotation.market.calendar import default_calendar

CAL = default_calendar()


def test_known_days():
    assert CAL.is_trading_day(date(2024, 9, 30))
    assert not CAL.is_trading_day(date(2024, 10, 1))  # National Day
    assert not CAL.is_trading_day(date(2018, 6, 18))  # the bad h00300 row is not in the calendar
    assert not CAL.is_trading_day(date(2024, 9, 28))  # Saturday
    assert CAL.next(date(2024, 9, 30)) == date(2024, 10, 8)
    assert CAL.previous(date(2024, 10, 8)) == date(2024, 9, 30)


def test_month_and_week_ends():
    ends = CAL.month_ends(date(2023, 8, 1), date(2023, 10, 31))
    # September 2023 ends on the 28th: the 29th was Mid-Autumn Festival, then the weekend.
    assert [d.date() for d in ends] == [date(2023, 8, 31), date(2023, 9, 28), date(2023, 10, 31)]
    assert date(2024, 9, 30) in set(CAL.week_ends(date(2024, 9, 1), date(2024, 10, 31)).date)
    # A range ending mid-month does not invent a month end.
    assert CAL.month_ends(date(2024, 5, 1), date(2024, 5, 15)).empty


@settings(max_examples=60, deadline=None)
@given(st.dates(min_value=date(2005, 2, 1), max_value=date(2026, 6, 30)))
def test_month_end_is_last_trading_day_of_month(day):
    ends = CAL.month_ends(day.replace(day=1), day.replace(day=28) + timedelta(days=4))
    month_days = CAL.between(day.replace(day=1), (pd.Timestamp(day) + pd.offsets.MonthEnd(0)).date())
    assert ends[0] == month_days[-1]
    assert CAL.is_trading_day(ends[0].date())


@settings(max_examples=60, deadline=None)
@given(st.dates(min_value=date(2005, 1, 5), max_value=date(2026, 7, 30)))
def test_next_previous_are_adjacent_trading_days(day):
    nxt = CAL.next(day)
    assert CAL.is_trading_day(nxt) and nxt > day
    assert all(not CAL.is_trading_day(day + timedelta(days=k)) for k in range(1, (nxt - day).days))
    assert CAL.previous(nxt) == (day if CAL.is_trading_day(day) else CAL.previous(day))
