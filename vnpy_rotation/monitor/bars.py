"""Quotes (cumulative volume/turnover snapshots) → 1-minute bars on the A-share session, and a provisional
daily bar.

Conventions, chosen to match vnpy 4.5's ``BarGenerator.update_tick`` and its database:

- a bar is stamped by its START minute (09:30 … 11:29, 13:00 … 14:59): 240 bars a day;
- a bar's volume/turnover is the sum of the increases of the cumulative fields between consecutive quotes
  (a decrease, a feed glitch, adds nothing — vnpy's ``max(change, 0)`` — and is counted);
- a minute without a quote gets no bar (vnpy emits no flat bars either); a full day with quotes in
  every minute gives exactly 240;
- the 09:15–09:25 opening call auction and the 09:25–09:30 pause join bar 0 (09:30); the 11:30 snapshot
  joins bar 119 (11:29); the 14:57–15:00 closing call auction and its 15:00 print join bar 239 (14:59);
  lunch makes no bar;
- a quote older than the previous one is dropped and counted (vnpy drops it too); a quote on a new date
  starts a new day;
- the first quote of a day counts its whole cumulative volume when it falls in bar 0; a monitor started
  later takes its first quote as the baseline (bars hold what was seen; the daily bar holds everything);
- the volume of quotes stamped before 09:30 or from 15:00 (the call auctions' prints) is also kept apart
  per bar (:attr:`MinuteBars.auction`), so the volume-surge rule can leave it out.

Differences from vnpy: vnpy makes a separate 09:25 bar from the auction print and a 15:00 bar from the
closing print (241–242 bars); here they are merged so the day has 240 bars, the count every A-share
minute-data vendor uses.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from .records import DailyBar, MinuteBar, Quote
from .session import CLOSE, OPEN, minute_end, minute_index, minute_start, sod, wall

SESSION_LAST_BARS = (119, 239)  # 11:29 and 14:59: the 11:30 and 15:00 snapshots arrive after the bell


class MinuteBars:
    """One symbol's bar builder. :meth:`update` returns the bars a quote closed; :meth:`due` the bars whose
    minute is over by a clock time; :meth:`flush` the open bar."""

    __slots__ = ("vt_symbol", "day", "last_time", "last_volume", "last_turnover", "bar", "dropped",
                 "decreases", "late_volume", "closed_index", "_day_bar", "_carry", "auction")

    def __init__(self, vt_symbol: str) -> None:
        self.vt_symbol: Final = vt_symbol
        self.day: datetime | None = None  # the current day's midnight (wall time)
        self.last_time: datetime | None = None
        self.last_volume = 0.0
        self.last_turnover = 0.0
        self.bar: list[float] | None = None  # index, open, high, low, close, volume, turnover, ticks
        self.dropped = 0  # quotes older than the previous one
        self.decreases = 0  # quotes whose cumulative volume or turnover went down
        self.late_volume = 0.0  # volume that arrived after the last bar of the day was closed
        self.closed_index = -1  # the last bar index emitted today
        self._day_bar: list[float] | None = None  # open, high, low, close, volume, turnover
        self._carry = (0.0, 0.0)  # volume/turnover of quotes that made no bar, for the next bar
        self.auction: dict[int, float] = {}  # bar index -> the call-auction volume inside it (bars 0 and 239)

    def update(self, quote: Quote) -> list[MinuteBar]:
        """Add one quote; the bars it closes (zero or one, or one from the previous day)."""
        moment = wall(quote.datetime)
        if self.last_time is not None and moment < self.last_time:
            self.dropped += 1
            return []
        closed: list[MinuteBar] = []
        midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        if self.day != midnight:
            closed += self.flush()
            self.day, self.closed_index, self.late_volume = midnight, -1, 0.0
            self.last_volume = self.last_turnover = 0.0
            self._day_bar = None
            self._carry = (0.0, 0.0)
            self.auction = {}
            first = True
        else:
            first = False
        self.last_time = moment
        index = minute_index(sod(moment))
        if first and index != 0:
            # Started mid-day (or a pre-09:15 snapshot): this quote is the baseline, not a bar's volume.
            self.last_volume, self.last_turnover = quote.volume, quote.turnover
        dv = quote.volume - self.last_volume
        dt = quote.turnover - self.last_turnover
        if dv < 0 or dt < 0:
            self.decreases += 1
        dv, dt = max(dv, 0.0), max(dt, 0.0)
        self.last_volume = max(self.last_volume, quote.volume)
        self.last_turnover = max(self.last_turnover, quote.turnover)
        self._update_daily(quote)
        if index is None or quote.last <= 0:
            # before 09:15, or no price (auction snapshots before the 09:25 print): the next bar gets it
            if dv or dt:
                self._carry = (self._carry[0] + dv, self._carry[1] + dt)
            return closed
        if self._carry != (0.0, 0.0):
            dv, dt = dv + self._carry[0], dt + self._carry[1]
            self._carry = (0.0, 0.0)
        index = max(index, self.closed_index + 1)  # a minute already closed by the clock: into the next
        if index >= 240:
            self.late_volume += dv
            return closed
        seconds = sod(moment)
        if dv and (seconds < OPEN or seconds >= CLOSE):  # the opening / closing call auction's print
            self.auction[index] = self.auction.get(index, 0.0) + dv
        bar = self.bar
        if bar is not None and bar[0] != index:
            closed.append(self._emit())
            bar = None
        price = quote.last
        if bar is None:
            self.bar = [index, price, price, price, price, dv, dt, 1]
        else:
            if price > bar[2]:
                bar[2] = price
            if price < bar[3]:
                bar[3] = price
            bar[4] = price
            bar[5] += dv
            bar[6] += dt
            bar[7] += 1
        return closed

    def due(self, now: datetime, grace: float, end_grace: float = 60.0) -> list[MinuteBar]:
        """The open bar, if its minute ended at least ``grace`` seconds before ``now`` (same day); the last
        bar of the morning and of the day wait ``end_grace`` instead, for the 11:30 and 15:00 snapshots
        (the closing auction's print) that feeds deliver a few seconds after the bell."""
        local = wall(now)
        return self.due_at(local.replace(hour=0, minute=0, second=0, microsecond=0), sod(local), grace, end_grace)

    def due_at(self, midnight: datetime, seconds: float, grace: float, end_grace: float = 60.0) -> list[MinuteBar]:
        """:meth:`due` with the clock already split into its day and seconds since midnight."""
        bar = self.bar
        if bar is None or self.day is None:
            return []
        if midnight != self.day:
            return self.flush()
        index = int(bar[0])
        wait = max(grace, end_grace) if index in SESSION_LAST_BARS else grace
        if seconds >= minute_end(index) + wait:
            return [self._emit()]
        return []

    def flush(self) -> list[MinuteBar]:
        """The open bar, closed now (end of day, shutdown)."""
        return [self._emit()] if self.bar is not None else []

    def _emit(self) -> MinuteBar:
        assert self.bar is not None and self.day is not None
        index, o, h, low, c, v, t, n = self.bar
        self.bar = None
        self.closed_index = int(index)
        stamp = datetime.combine(self.day.date(), minute_start(int(index)))
        return MinuteBar(self.vt_symbol, stamp, int(index), o, h, low, c, v, t, int(n))

    def _update_daily(self, quote: Quote) -> None:
        price = quote.last
        if price <= 0:
            return
        day = self._day_bar
        high = max(quote.high, price)
        low = min(quote.low, price) if quote.low > 0 else price
        # the cumulative fields' running maxima: a glitch that lowers them does not lower the day
        if day is None:
            self._day_bar = [quote.open if quote.open > 0 else price, high, low, price, self.last_volume,
                             self.last_turnover]
            return
        if high > day[1]:
            day[1] = high
        if low < day[2]:
            day[2] = low
        day[3], day[4], day[5] = price, self.last_volume, self.last_turnover

    @property
    def daily(self) -> DailyBar | None:
        """The provisional daily bar of the current day (None before its first trade)."""
        if self._day_bar is None or self.day is None:
            return None
        o, h, low, c, v, t = self._day_bar
        return DailyBar(self.vt_symbol, self.day.date(), o, h, low, c, v, t)
