"""The SSE/SZSE trading calendar and schedule helpers (pure).

The bundled calendar (``trading_days.csv``) is the list of CSI 300 index trading days
2005-01-04 … 2026-07-31, built by ``scripts/build_calendar.py``. Outside that span only weekends
are known to be closed; :meth:`TradingCalendar.covers` says whether a date is inside it.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

CALENDAR_PATH = Path(__file__).with_name("trading_days.csv")


class TradingCalendar:
    """Sorted trading days with lookups and period-end schedules."""

    def __init__(self, days: Iterable[date] | pd.DatetimeIndex) -> None:
        index = pd.DatetimeIndex(pd.to_datetime(list(days) if not isinstance(days, pd.DatetimeIndex) else days))
        self.days: pd.DatetimeIndex = index.normalize().unique().sort_values()
        if len(self.days) == 0:
            raise ValueError("a trading calendar needs at least one day")
        self._set = set(self.days.date)

    @property
    def first(self) -> date:
        first: date = self.days[0].date()
        return first

    @property
    def last(self) -> date:
        last: date = self.days[-1].date()
        return last

    def covers(self, day: date) -> bool:
        return self.first <= day <= self.last

    def is_trading_day(self, day: date) -> bool:
        """True on listed days; outside the covered span, every weekday counts as open."""
        if self.covers(day):
            return day in self._set
        return day.weekday() < 5

    def trading_mask(self, days: np.ndarray) -> np.ndarray:
        """Vectorised :meth:`is_trading_day` over an array of ``datetime64[D]``."""
        days = np.asarray(days, dtype="datetime64[D]")
        listed = np.isin(days, self.days.values.astype("datetime64[D]"))
        lo, hi = np.datetime64(self.first, "D"), np.datetime64(self.last, "D")
        inside = (days >= lo) & (days <= hi)
        weekday = (days.astype("int64") + 3) % 7 < 5  # 1970-01-01 was a Thursday
        return np.where(inside, listed, weekday)

    def between(self, start: date | None = None, end: date | None = None) -> pd.DatetimeIndex:
        lo = pd.Timestamp(start) if start else self.days[0]
        hi = pd.Timestamp(end) if end else self.days[-1]
        return self.days[(self.days >= lo) & (self.days <= hi)]

    def previous(self, day: date) -> date | None:
        """The last trading day strictly before ``day``."""
        pos = self.days.searchsorted(pd.Timestamp(day), side="left") - 1
        return self.days[pos].date() if pos >= 0 else None

    def next(self, day: date) -> date | None:
        """The first trading day strictly after ``day``."""
        pos = self.days.searchsorted(pd.Timestamp(day), side="right")
        return self.days[pos].date() if pos < len(self.days) else None

    def _period_ends(self, freq: str, start: date | None, end: date | None) -> pd.DatetimeIndex:
        # Computed on the whole calendar so a range ending mid-period does not invent an end;
        # the calendar's own final period is incomplete and has no known end.
        periods = self.days.to_period(freq)
        ends = self.days[np.r_[periods[1:] != periods[:-1], False]]
        window = self.between(start, end)
        return ends[(ends >= window[0]) & (ends <= window[-1])] if len(window) else ends[:0]

    def week_ends(self, start: date | None = None, end: date | None = None) -> pd.DatetimeIndex:
        """Last trading day of each (complete) week in the range."""
        return self._period_ends("W", start, end)

    def month_ends(self, start: date | None = None, end: date | None = None) -> pd.DatetimeIndex:
        """Last trading day of each (complete) month in the range."""
        return self._period_ends("M", start, end)

    def every_k(self, k: int, start: date | None = None, end: date | None = None) -> pd.DatetimeIndex:
        """Every k-th trading day in the range, starting with the first."""
        if k < 1:
            raise ValueError("k must be at least 1")
        return self.between(start, end)[::k]


@lru_cache(maxsize=1)
def default_calendar() -> TradingCalendar:
    return TradingCalendar(pd.read_csv(CALENDAR_PATH, parse_dates=["date"])["date"])
