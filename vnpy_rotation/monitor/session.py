"""The A-share trading session as a table: call auctions, continuous trading, lunch; 240 bar minutes.

Sources (the exchanges' trading rules; the times are the same in their 2023 revisions):

- SZSE 《深圳证券交易所交易规则》 (the 2006 revision, effective 2006-07-01, and later ones, chapter 3 on
  trading times): 09:15–09:25 opening call auction, 09:30–11:30 and 13:00–14:57 continuous auction,
  14:57–15:00 closing call auction, for every security traded by auction (stocks and funds alike).
  https://www.szse.cn/lawrules/rule/stock/trade/
- BSE 《北京证券交易所交易规则（试行）》 (2021): the same times, closing call auction included.
- SSE 《上海证券交易所交易规则》 (2018 revision, effective 2018-08-20): stocks close with a 14:57–15:00
  call auction; "the methods for forming the closing prices of bonds, bonds repo, funds and other
  products are unchanged", so SSE funds (ETFs) trade continuously until 15:00.
  http://english.sse.com.cn/news/newsrelease/c/4947833.shtml
  Before 2018-08-20 SSE stocks also traded continuously until 15:00.
- Trading days come from the project's calendar (:mod:`vnpy_rotation.market.calendar`).

Times are China wall-clock times; a timestamp is reduced to seconds since midnight (``sod``) once.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import date, datetime, time
from enum import Enum
from functools import lru_cache
from zoneinfo import ZoneInfo

from ..market.calendar import default_calendar

CHINA = ZoneInfo("Asia/Shanghai")
SSE_CLOSING_AUCTION_FROM = date(2018, 8, 20)
SZSE_CLOSING_AUCTION_FROM = date(2006, 7, 1)
MINUTES = 240  # bar minutes a day: 120 in the morning, 120 in the afternoon


class Phase(str, Enum):
    CLOSED = "closed"  # before 09:15 and from 15:00
    OPENING_AUCTION = "opening_auction"  # 09:15–09:25: orders collected, one price at 09:25
    OPENING_PAUSE = "opening_pause"  # 09:25–09:30: matched, orders queue for 09:30
    CONTINUOUS = "continuous"
    LUNCH = "lunch"
    CLOSING_AUCTION = "closing_auction"  # 14:57–15:00 where the exchange runs one


def _s(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 3600 + int(m) * 60


# (start, phase) rows in seconds since midnight; a phase lasts until the next row's start.
SESSION: tuple[tuple[int, Phase], ...] = (
    (0, Phase.CLOSED),
    (_s("09:15"), Phase.OPENING_AUCTION),
    (_s("09:25"), Phase.OPENING_PAUSE),
    (_s("09:30"), Phase.CONTINUOUS),
    (_s("11:30"), Phase.LUNCH),
    (_s("13:00"), Phase.CONTINUOUS),
    (_s("14:57"), Phase.CLOSING_AUCTION),
    (_s("15:00"), Phase.CLOSED),
)
# The same day without a closing auction (SSE funds; SSE stocks before 2018-08-20).
SESSION_NO_CLOSING_AUCTION = tuple(row for row in SESSION if row[1] is not Phase.CLOSING_AUCTION)

MORNING = (_s("09:30"), _s("11:30"))
AFTERNOON = (_s("13:00"), _s("15:00"))
OPEN, CLOSE = MORNING[0], AFTERNOON[1]
_STARTS = [row[0] for row in SESSION]
_STARTS_NCA = [row[0] for row in SESSION_NO_CLOSING_AUCTION]


def has_closing_auction(exchange: str, is_fund: bool, day: date) -> bool:
    """Whether the exchange runs a 14:57–15:00 closing call auction for this kind of security on ``day``."""
    if exchange == "SZSE":
        return day >= SZSE_CLOSING_AUCTION_FROM
    if exchange == "BSE":
        return True
    return not is_fund and day >= SSE_CLOSING_AUCTION_FROM


def wall(moment: datetime) -> datetime:
    """China wall time: aware times are converted, naive ones are taken as China time already."""
    return moment if moment.tzinfo is None else moment.astimezone(CHINA).replace(tzinfo=None)


def sod(moment: datetime) -> float:
    """Seconds since midnight of a wall time."""
    return moment.hour * 3600 + moment.minute * 60 + moment.second + moment.microsecond / 1e6


def phase(seconds: float, closing_auction: bool = True) -> Phase:
    """The session phase at ``seconds`` since midnight (a trading day assumed)."""
    if closing_auction:
        return SESSION[bisect_right(_STARTS, seconds) - 1][1]
    return SESSION_NO_CLOSING_AUCTION[bisect_right(_STARTS_NCA, seconds) - 1][1]


def phase_at(moment: datetime, closing_auction: bool = True) -> Phase:
    """The phase at a timestamp; CLOSED on a day the calendar says is not a trading day."""
    local = wall(moment)
    if not is_trading_day(local.date()):
        return Phase.CLOSED
    return phase(sod(local), closing_auction)


@lru_cache(maxsize=64)
def is_trading_day(day: date) -> bool:
    """The project calendar's answer, cached per date (asked for every symbol on every timer tick)."""
    return default_calendar().is_trading_day(day)


def trading_seconds(start: float, end: float) -> float:
    """Seconds of [start, end) inside 09:30–11:30 and 13:00–15:00 (lunch and auctions before 09:30 excluded)."""
    total = 0.0
    for lo, hi in (MORNING, AFTERNOON):
        total += max(0.0, min(end, hi) - max(start, lo))
    return total


def continuous_seconds(start: float, end: float, closing_auction: bool = True) -> float:
    """Seconds of [start, end) in continuous trading: 09:30–11:30 and 13:00–14:57 (15:00 without a closing
    auction)."""
    afternoon_end = _s("14:57") if closing_auction else AFTERNOON[1]
    total = 0.0
    for lo, hi in (MORNING, (AFTERNOON[0], afternoon_end)):
        total += max(0.0, min(end, hi) - max(start, lo))
    return total


def minutes_elapsed(seconds: float) -> int:
    """Trading minutes begun by ``seconds`` since midnight: 1 until 09:31, 120 over lunch, 240 from 14:59.

    The 14:57–15:00 closing auction counts as trading time so a full day is 240 minutes, the divisor of the
    standard 量比 definition.
    """
    elapsed = trading_seconds(OPEN, seconds)
    return min(MINUTES, max(1, -int(-elapsed // 60)))


def minute_index(seconds: float) -> int | None:
    """The bar (0..239) a quote at ``seconds`` belongs to; None before 09:15.

    09:15–09:30:59 → 0 (the opening auction joins the first bar); 11:30–12:59 → 119 (the exchange's
    11:30 snapshot closes the morning); 14:59 and everything from 15:00 → 239 (the closing auction print).
    """
    if seconds < _s("09:15"):
        return None
    if seconds < MORNING[1]:
        return max(0, int(seconds - OPEN) // 60)
    if seconds < AFTERNOON[0]:
        return 119
    if seconds < AFTERNOON[1]:
        return 120 + int(seconds - AFTERNOON[0]) // 60
    return MINUTES - 1


def minute_start(index: int) -> time:
    """The start-minute stamp of bar ``index``: 0 → 09:30, 119 → 11:29, 120 → 13:00, 239 → 14:59."""
    if not 0 <= index < MINUTES:
        raise ValueError(f"bar index {index} outside 0..{MINUTES - 1}")
    base = OPEN if index < 120 else AFTERNOON[0] - 120 * 60
    seconds = base + index * 60
    return time(seconds // 3600, seconds % 3600 // 60)


def minute_end(index: int) -> float:
    """Seconds since midnight at which bar ``index``'s minute is over (the next minute's start)."""
    start = minute_start(index)
    return start.hour * 3600 + start.minute * 60 + 60
