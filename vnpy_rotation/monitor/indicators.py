"""Per-symbol live indicators, updated in O(1) per quote.

Definitions (fractions, not percent):

- change = last / pre_close − 1; the feed's pre_close is the exchange's reference price (already
  ex-rights on an ex-date).
- limit prices: the project's own rule — the board's/date's/ST band from the instrument table
  (:meth:`vnpy_rotation.market.instruments.Instrument.price_limit`) and the exchanges' rounding
  (:func:`vnpy_rotation.data.market_data.round_to_tick`), the same the backtester uses; compared with the
  feed's ``limit_up``/``limit_down``, a difference beyond one tick sets ``limit_mismatch``; a price beyond our limits
  (a day without limits, a wrong band) makes ours unknown (NaN, the feed's used if the price is within them)
  and sets ``limit_mismatch`` too: nothing is called sealed at a limit the price has passed.
- VWAP = cumulative turnover / cumulative volume.
- 量比 (volume ratio) = (volume so far / trading minutes elapsed) / (5-day average daily volume / 240),
  the standard definition, e.g. https://baike.baidu.com/item/量比 ("现成交总手数 / 现累计开市时间(分) /
  过去5日平均每分钟成交量"). Minutes elapsed: :func:`vnpy_rotation.monitor.session.minutes_elapsed`.
- turnover rate (换手率) = volume / float shares.
- 1- and 5-minute returns: last / the close of the minute 1 (5) minutes before the current one − 1, from
  the session's minute closes (a minute without a trade carries the previous close).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime

from ..data.market_data import round_to_tick
from ..market.instruments import Instrument
from .bars import MinuteBars
from .records import Indicators, Quote
from .session import MINUTES, has_closing_auction, minutes_elapsed, sod

NAN = math.nan


def tick_decimals(tick: float) -> int:
    """Decimals a price on ``tick`` is shown and rounded to (drops float noise: 3.553000000004 -> 3.553)."""
    return max(0, round(-math.log10(tick)))


def limit_prices(instrument: Instrument, day: date, pre_close: float, is_st: bool = False) -> tuple[float, float]:
    """(limit-up, limit-down) on ``day`` for a reference price, by the project's rule; NaN when unlimited."""
    pct = instrument.price_limit(day, is_st)
    if pct is None or not pre_close > 0:
        return NAN, NAN
    tick = instrument.rules.tick
    decimals = tick_decimals(tick)
    up = round(float(round_to_tick(pre_close * (1 + pct), tick)), decimals)
    down = round(float(round_to_tick(pre_close * (1 - pct), tick)), decimals)
    return up, down


def volume_ratio(volume: float, seconds: float, avg_volume_5d: float | None) -> float | None:
    """量比 at ``seconds`` since midnight; None without a positive 5-day average."""
    if not avg_volume_5d or avg_volume_5d <= 0:
        return None
    return (volume / minutes_elapsed(seconds)) / (avg_volume_5d / MINUTES)


@dataclass(frozen=True, slots=True)
class Reference:
    """What the monitor knows about a symbol before the day starts (from the database and the pools)."""

    vt_symbol: str
    avg_volume_5d: float | None = None  # shares a day over the last 5 trading days
    float_shares: float | None = None
    is_st: bool = False
    name: str = ""


class MarketClock:
    """The wall time of the latest quote of any symbol, shared by every :class:`SymbolState` of a core."""

    __slots__ = ("last",)

    def __init__(self) -> None:
        self.last: datetime | None = None


class SymbolState:
    """One symbol's running state: the bar builder, minute closes and volumes, the last indicators."""

    __slots__ = ("vt_symbol", "instrument", "reference", "bars", "day", "closing_auction", "tick",
                 "_limit_key", "_limits", "closes", "volumes", "index", "current", "previous", "last_seen",
                 "since", "stop", "in_pool", "first_minute", "market")

    def __init__(self, vt_symbol: str, instrument: Instrument | None, reference: Reference | None,
                 since: datetime | None = None, market: MarketClock | None = None) -> None:
        self.vt_symbol = vt_symbol
        self.market = market or MarketClock()
        self.instrument = instrument
        self.reference = reference or Reference(vt_symbol)
        self.bars = MinuteBars(vt_symbol)
        self.day: date | None = None
        self.closing_auction = True
        self.tick = instrument.rules.tick if instrument is not None else 0.01
        self._limit_key: tuple[date, float] | None = None
        self._limits = (NAN, NAN)
        self.closes = [NAN] * MINUTES  # close of each session minute, carried over minutes without trades
        self.volumes = [0.0] * MINUTES  # volume of each closed minute bar, call-auction volume excluded
        self.index = -1  # the current minute index today
        self.current: Indicators | None = None
        self.previous: Indicators | None = None
        self.last_seen: datetime | None = None  # wall time of the last accepted quote
        self.since = since  # wall time the symbol was first watched
        self.stop: float | None = None  # a holding's stop level
        self.in_pool = False
        self.first_minute: int | None = None

    def _new_day(self, day: date) -> None:
        self.day = day
        exchange = self.vt_symbol.partition(".")[2]
        is_fund = self.instrument is not None and self.instrument.kind.is_fund
        self.closing_auction = has_closing_auction(exchange, is_fund, day)
        self.closes = [NAN] * MINUTES
        self.volumes = [0.0] * MINUTES
        self.index = -1
        self.first_minute = None
        self.current = self.previous = None

    def auction_volume(self, index: int) -> float:
        """The call-auction volume inside bar ``index`` today (0 but for bars 0 and 239)."""
        return self.bars.auction.get(index, 0.0)

    @property
    def market_seen(self) -> datetime | None:
        """Wall time of the latest quote of any symbol of the same core."""
        return self.market.last

    def set_reference(self, reference: Reference) -> None:
        self.reference = reference
        self._limit_key = None  # an ST change moves the limits

    def limits(self, day: date, pre_close: float) -> tuple[float, float]:
        key = (day, pre_close)
        if key != self._limit_key:
            self._limit_key = key
            self._limits = (limit_prices(self.instrument, day, pre_close, self.reference.is_st)
                            if self.instrument is not None else (NAN, NAN))
        return self._limits

    def update(self, quote: Quote, moment: datetime) -> Indicators:
        """Indicators after ``quote`` (already accepted by :attr:`bars`; ``moment`` is its wall time)."""
        day = moment.date()
        if day != self.day:
            self._new_day(day)
        seconds = sod(moment)
        last, pre = quote.last, quote.pre_close
        open_bar = self.bars.bar
        index = int(open_bar[0]) if open_bar is not None else None
        minute_volume = open_bar[5] if open_bar is not None else 0.0
        closes = self.closes
        if index is not None and last > 0:
            if self.first_minute is None:
                self.first_minute = index
            if index > self.index:
                carry = closes[self.index] if self.index >= 0 else NAN
                for k in range(self.index + 1, index):  # minutes without a trade keep the last close
                    closes[k] = carry
                self.index = index
            closes[index] = last
        up, down = self.limits(day, pre)
        feed_up, feed_down = quote.limit_up, quote.limit_down
        tick = self.tick
        mismatch = ((feed_up > 0 and up == up and abs(feed_up - up) > tick * 1.000001)
                    or (feed_down > 0 and down == down and abs(feed_down - down) > tick * 1.000001))
        if price_ok := last > 0:
            slack = tick * 1.000001
            if up == up and (last > up + slack or last < down - slack):
                # The price went past our limit: no limit that day (IPO days) or a wrong band. Ours is
                # unknown then; it is reported, and never used to call the price sealed.
                up = down = NAN
                mismatch = True
        if up != up and feed_up > 0 and (not price_ok or feed_down - tick <= last <= feed_up + tick):
            up, down = feed_up, feed_down  # no rule of ours (or ours was exceeded): the feed's, if consistent
        eps = tick / 2
        sealed_up = price_ok and up == up and last >= up - eps and (quote.bid1 >= up - eps or quote.ask1 <= 0)
        sealed_down = (price_ok and down == down and last <= down + eps
                       and (0 < quote.ask1 <= down + eps or quote.bid1 <= 0))
        ref = self.reference
        volume = quote.volume
        self.previous = self.current
        self.current = Indicators(
            vt_symbol=self.vt_symbol, time=moment, last=last, pre_close=pre, open=quote.open,
            change=last / pre - 1 if price_ok and pre > 0 else NAN,
            limit_up=up, limit_down=down, feed_limit_up=feed_up, feed_limit_down=feed_down,
            limit_mismatch=bool(mismatch),
            to_limit_up=(up - last) / last if price_ok else NAN,
            to_limit_down=(last - down) / last if price_ok else NAN,
            sealed_up=bool(sealed_up), sealed_down=bool(sealed_down),
            vwap=quote.turnover / volume if volume > 0 else NAN, volume=volume, turnover=quote.turnover,
            volume_ratio=volume_ratio(volume, seconds, ref.avg_volume_5d),
            turnover_rate=volume / ref.float_shares if ref.float_shares else None,
            return_1m=self.minute_return(index, 1, last), return_5m=self.minute_return(index, 5, last),
            minute=index, minute_volume=minute_volume, suspended=quote.suspended is True)
        self.last_seen = moment
        market = self.market
        if market.last is None or moment > market.last:
            market.last = moment
        return self.current

    def minute_return(self, index: int | None, minutes: int, last: float) -> float | None:
        """last / the close ``minutes`` before the current minute − 1 (None before there is one)."""
        if index is None or index - minutes < 0 or not last > 0:
            return None
        base = self.closes[index - minutes]
        return last / base - 1 if base > 0 else None
