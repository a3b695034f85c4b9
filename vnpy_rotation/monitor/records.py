"""The monitor's records: what a feed sends (:class:`Quote`), what the core computes (:class:`Indicators`,
:class:`MinuteBar`, :class:`DailyBar`) and what it raises (:class:`Alert`). All frozen."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum


@dataclass(frozen=True, slots=True)
class Quote:
    """One level-1 snapshot as a feed sends it (XT: ``subscribe_quote``, about every 3 seconds).

    ``volume`` and ``turnover`` are cumulative for the day (shares, CNY); ``open``/``high``/``low`` are the
    day's so far. ``limit_up``/``limit_down`` are the feed's own limit prices (0: not sent);
    ``bid1``/``ask1`` 0 means that side of the book is empty. ``suspended`` is None when the feed does not say.
    ``datetime`` is China wall time (naive) or any aware time (converted to Asia/Shanghai).
    """

    vt_symbol: str  # exchange-qualified, vnpy's spelling: 600000.SSE, 159915.SZSE
    datetime: datetime
    last: float
    pre_close: float
    volume: float = 0.0
    turnover: float = 0.0
    open: float = 0.0
    high: float = 0.0
    low: float = 0.0
    limit_up: float = 0.0
    limit_down: float = 0.0
    bid1: float = 0.0
    ask1: float = 0.0
    bid1_volume: float = 0.0
    ask1_volume: float = 0.0
    suspended: bool | None = None

    @property
    def symbol(self) -> str:
        """The bare code: ``600000``."""
        return self.vt_symbol.partition(".")[0]

    @property
    def exchange(self) -> str:
        """vnpy's exchange name: ``SSE``, ``SZSE``, ``BSE``."""
        return self.vt_symbol.partition(".")[2]


@dataclass(frozen=True, slots=True)
class Indicators:
    """One symbol's live indicators after its latest quote (NaN / None: not computable yet).

    Fractions, not percent: ``change`` 0.05 is +5 %. Limit prices are the project's own (board-, date- and
    ST-correct, :func:`vnpy_rotation.monitor.indicators.limit_prices`); the feed's are kept beside them.
    """

    vt_symbol: str
    time: datetime  # the quote's China wall time (naive), whatever zone the feed stamped it in
    last: float
    pre_close: float
    open: float
    change: float  # last / pre_close - 1
    limit_up: float  # ours; NaN: no limit known (falls back to the feed's when ours is unknown)
    limit_down: float
    feed_limit_up: float  # the quote's own, 0 when not sent
    feed_limit_down: float
    limit_mismatch: bool  # ours and the feed's differ by more than one tick
    to_limit_up: float  # (limit_up - last) / last: how far the price may still rise
    to_limit_down: float  # (last - limit_down) / last
    sealed_up: bool  # last at limit-up and bid1 at limit-up or no ask (封涨停)
    sealed_down: bool  # last at limit-down and ask1 at limit-down or no bid (封跌停)
    vwap: float  # turnover / volume
    volume: float  # cumulative shares
    turnover: float  # cumulative CNY
    volume_ratio: float | None  # 量比; None without a 5-day average volume
    turnover_rate: float | None  # volume / float shares; None without float shares
    return_1m: float | None  # last / close one minute earlier - 1
    return_5m: float | None
    minute: int | None  # session minute index 0..239 of this quote (None: outside the session)
    minute_volume: float  # volume so far in the current minute
    suspended: bool


class Severity(str, Enum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"  # never held back by the storm limiter


@dataclass(frozen=True, slots=True)
class Alert:
    """One anomaly: which rule, which symbol (``*`` for a storm summary), when, why, with the numbers."""

    rule: str
    vt_symbol: str
    time: datetime
    severity: Severity
    reason: str
    values: tuple[tuple[str, float], ...] = ()

    def value(self, name: str) -> float:
        return dict(self.values)[name]


@dataclass(frozen=True, slots=True)
class MinuteBar:
    """A 1-minute bar stamped by its START minute, as vnpy's ``BarGenerator`` and database do.

    ``index`` is the session minute 0..239: 0 is stamped 09:30 and also holds the 09:15–09:25 opening call
    auction; 239 is stamped 14:59 and also holds the 14:57–15:00 closing call auction (vendors that stamp by
    the END minute call these the 09:31 and 15:00 bars). ``ticks`` counts the quotes that went into it.
    """

    vt_symbol: str
    datetime: datetime
    index: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    turnover: float
    ticks: int


@dataclass(frozen=True, slots=True)
class DailyBar:
    """The day so far built from quotes; provisional until the official daily import replaces it."""

    vt_symbol: str
    date: date
    open: float
    high: float
    low: float
    close: float
    volume: float
    turnover: float
    provisional: bool = True


@dataclass(frozen=True, slots=True)
class StrategyScores:
    """A strategy's own view of one symbol at a close: its factor values, composite score and rank.

    ``rank`` is 1 for the best of the ``of`` members the strategy could rank that day (None: not ranked —
    excluded or not eligible); ``factors`` are (name, value) in the strategy's order, the composite score last.
    """

    strategy: str  # "vqm", or "etf_rotation/A_SHARE": a rotation ranks each pool on its own
    as_of: date  # the close the values are computed at (never after the monitor's day started)
    factors: tuple[tuple[str, float], ...]
    rank: int | None
    of: int

    def short(self) -> str:
        """Compact cell text: ``3/45`` (``-/45`` when not ranked)."""
        return f"{self.rank if self.rank is not None else '-'}/{self.of}"
