"""Walk-forward windows: train spans, the test spans after them, and the final holdout (pure dates).

With 3 train years and 1 test year: ``2018-2020 train → 2021 test, 2019-2021 → 2022, ...``. Windows start at
``start`` and step by the test length; only whole test spans that end before the holdout are used (the days
between the last test end and the holdout, if any, are in no window). Starting on 1 January gives
calendar-year windows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

Mode = Literal["rolling", "expanding"]
DAY = timedelta(days=1)


@dataclass(frozen=True, order=True)
class Span:
    """Calendar days ``start`` … ``end``, both included."""

    start: date
    end: date

    def __str__(self) -> str:
        return f"{self.start} … {self.end}"

    def as_tuple(self) -> tuple[date, date]:
        return self.start, self.end


@dataclass(frozen=True)
class Window:
    number: int  # 1, 2, ... in time order
    train: Span
    test: Span


def add_years(day: date, years: int) -> date:
    """``day`` moved by whole calendar years (29 February becomes 28 February in a non-leap year)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def make_windows(start: date, end: date, train_years: int, test_years: int, holdout_years: int = 1,
                 mode: Mode = "rolling") -> tuple[list[Window], Span | None]:
    """Windows over ``start … end − holdout`` and the holdout (the last ``holdout_years`` up to ``end``).

    ``rolling`` trains on the ``train_years`` before each test span; ``expanding`` trains from ``start``.
    ``holdout_years == 0`` gives no holdout (``None``). Raises ``ValueError`` on impossible arguments.
    """
    if train_years < 1 or test_years < 1 or holdout_years < 0:
        raise ValueError("train_years and test_years must be >= 1, holdout_years >= 0")
    if mode not in ("rolling", "expanding"):
        raise ValueError(f"mode must be rolling or expanding, not {mode!r}")
    if start > end:
        raise ValueError(f"start {start} is after end {end}")
    holdout = Span(add_years(end, -holdout_years) + DAY, end) if holdout_years else None
    last = holdout.start - DAY if holdout else end
    windows: list[Window] = []
    while True:  # every boundary is counted from start, so the spans stay contiguous from 29 February too
        k = len(windows)
        train_start = add_years(start, k * test_years) if mode == "rolling" else start
        test_start = add_years(start, k * test_years + train_years)
        test = Span(test_start, add_years(start, (k + 1) * test_years + train_years) - DAY)
        if test.end > last:
            return windows, holdout
        windows.append(Window(k + 1, Span(train_start, test_start - DAY), test))
