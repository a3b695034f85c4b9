"""When each session phase runs live, in the exchange's time zone (Asia/Shanghai).

SSE/SZSE: opening call auction 09:15-09:25, continuous trading 09:30-11:30 and 13:00-14:57, closing call
auction 14:57-15:00 (SSE 上海证券交易所交易规则 2023 §3.1; SZSE 深圳证券交易所交易规则 2023 §3.1). The plan
goes out a minute after the open, unfilled parts are resubmitted during the session, working orders
are cancelled before the closing auction, and the after-close cycle runs when the day's bars exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ..market.calendar import TradingCalendar

SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class SessionTimes:
    open: time = time(9, 31)
    retries: tuple[time, ...] = (time(10, 0), time(10, 30), time(13, 30))
    deadline: time = time(14, 50)
    close: time = time(15, 30)

    def phases(self) -> list[tuple[str, time, time]]:
        """(phase, when, latest start): a phase missed by more than its window is skipped."""
        rows = [("open", self.open, self.deadline)]
        rows += [("retry", t, self.deadline) for t in self.retries]
        rows += [("deadline", self.deadline, self.close), ("close", self.close, time(23, 59, 59))]
        return rows


@dataclass(frozen=True)
class Due:
    phase: str
    day: date
    at: datetime  # when it is due (already past: run it now)
    index: int  # position in the day's phases


def next_phase(now: datetime, calendar: TradingCalendar, times: SessionTimes,
               done: tuple[date, int] | None) -> Due:
    """The next phase to run after ``done`` (the last (day, index) run), never one whose window has
    passed; a non-trading day has no phases. ``now`` must be timezone-aware."""
    now = now.astimezone(SHANGHAI)
    day = now.date()
    for _ in range(30):
        if calendar.is_trading_day(day):
            for index, (phase, when, latest) in enumerate(times.phases()):
                if done is not None and (day, index) <= done:
                    continue
                start = datetime.combine(day, when, SHANGHAI)
                if now > datetime.combine(day, latest, SHANGHAI):
                    continue
                return Due(phase, day, start, index)
        day += timedelta(days=1)
    raise RuntimeError("no trading day within 30 days")
