"""A deterministic synthetic A-share market for whole-market scale tests (seeded numpy, one pass over the days).

:func:`generate` draws ``stocks`` × the exchange sessions between two dates: main-board (SSE 600/601/603/605,
SZSE 000/001/002/003), ChiNext (300/301) and STAR (688/689) codes, so the instrument table classifies them and
gives their lot, tick and price-limit schedules; ChiNext stocks list from 2009-10-30 and STAR stocks from
2019-07-22 (the boards' opening days). Per stock-day:

- about ``suspended_share`` of the listed stock-days suspended, in spells (no bar: NaN prices and volume, as
  the panels hold a day without a bar);
- about ``limit_share`` closing at a price limit (up or down); a share of those are one-price bars (open = high
  = low = close = the limit), on which the matcher refuses buys at the limit-up or sells at the limit-down. The
  limit prices are the loader's: :func:`~vnpy_rotation.data.market_data.round_to_tick` of the reference price
  times ``1 ± pct``, ``pct`` from the instrument's dated schedule (ST schedule on ST days), the reference being
  the previous close divided by the day's adjustment-factor step. Every other close stays strictly inside;
- one corporate action per stock and calendar year (an ex-date in the dividend season, 15 May … 31 July): cash,
  bonus shares per 10 (送转) or both, with the exchange's ex-rights reference price
  ``(close − cash) / ratio`` rounded to the tick, the factor step ``close / reference`` and a dividend record
  (:class:`~vnpy_rotation.fundamentals.share_changes.Distribution`) that the market's ``split`` / ``dividend``
  arrays are built from, as imported Baostock records are;
- ST spells for a few stocks (their schedule: ±5 % on the main board until 2025-07-07, then ±10 %).

The days are drawn in one pass (each close depends on the previous one through the limits), every stock of a
day at once. :func:`build` then turns the panels into :class:`MarketData` with the loader's own
:func:`~vnpy_rotation.data.market_data.build_market_data`. Quarterly reports, index membership and VQM's inputs
are in :mod:`.synthetic_fundamentals`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from ..data.market_data import MarketData, _schedule, build_market_data, round_to_tick
from ..data.panels import Panels
from ..fundamentals.share_changes import BAOSTOCK, Distribution
from ..market.calendar import default_calendar
from ..market.instruments import InstrumentRegistry, default_registry

CHINEXT_OPEN = date(2009, 10, 30)  # first ChiNext listings (instruments.yaml: chinext rule set)
STAR_OPEN = date(2019, 7, 22)  # first STAR listings (instruments.yaml: star rule set)
# Board → (share of the stocks, code prefixes with their exchange); 1 000 codes per prefix.
BOARDS = {
    "main": (0.60, (("600", "SSE"), ("000", "SZSE"), ("601", "SSE"), ("002", "SZSE"), ("603", "SSE"),
                    ("001", "SZSE"), ("605", "SSE"), ("003", "SZSE"))),
    "chinext": (0.25, (("300", "SZSE"), ("301", "SZSE"))),
    "star": (0.15, (("688", "SSE"), ("689", "SSE"))),
}
BOARD_OPEN = {"main": None, "chinext": CHINEXT_OPEN, "star": STAR_OPEN}
SEASON = ((5, 15), (7, 31))  # ex-dates fall in the dividend season (month, day) … (month, day)


@dataclass(frozen=True)
class SyntheticSpec:
    """What to draw; the same spec and seed give the same market, byte for byte."""

    stocks: int = 500
    start: date = date(2021, 1, 1)
    end: date = date(2025, 12, 31)
    seed: int = 0
    suspended_share: float = 0.01  # of listed stock-days
    limit_share: float = 0.02  # of traded stock-days (first listing days excepted)
    one_price_share: float = 0.3  # of limit days: one-price bars (一字板)
    listed_before_share: float = 0.8  # main-board stocks listed before ``start``
    st_share: float = 0.04  # stocks with an ST spell
    suspension_spell: float = 5.0  # mean length of a suspension spell, sessions
    cash_share: float = 0.85  # of corporate actions paying cash (the rest bonus shares only)
    bonus_share: float = 0.35  # of corporate actions issuing bonus shares (with or without cash)


@dataclass(frozen=True)
class SyntheticMarket:
    """The drawn panels and what the data sources would hold beside them."""

    spec: SyntheticSpec
    panels: Panels
    records: dict[str, list[Distribution]]  # vt_symbol → its ex-dates (dividend records)
    first_days: dict[str, date]  # vt_symbol → first bar
    board: np.ndarray  # per symbol: "main" | "chinext" | "star"
    limit_event: np.ndarray  # day × symbol int8: 1 closed at the limit-up, -1 at the limit-down, 0 neither
    shares: np.ndarray  # per symbol: shares outstanding at the start (before bonus issues)
    anchor: np.ndarray  # per symbol: the price level the path reverts to
    extras: dict[str, object] = field(default_factory=dict)

    @property
    def days(self) -> pd.DatetimeIndex:
        return self.panels.days

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self.panels.close.columns)


def symbols_for(stocks: int, rng: np.random.Generator) -> tuple[list[str], np.ndarray]:
    """``stocks`` distinct codes spread over the boards by :data:`BOARDS` shares, and each one's board."""
    names, boards = [], []
    counts = {b: int(round(share * stocks)) for b, (share, _) in BOARDS.items()}
    counts["main"] += stocks - sum(counts.values())
    for board, (_, prefixes) in BOARDS.items():
        n = counts[board]
        slots = rng.choice(len(prefixes) * 1000, size=n, replace=False)
        for slot in np.sort(slots):
            prefix, exchange = prefixes[slot // 1000]
            names.append(f"{prefix}{slot % 1000:03d}.{exchange}")
            boards.append(board)
    return names, np.array(boards)


def _listing_rows(days: pd.DatetimeIndex, board: np.ndarray, spec: SyntheticSpec,
                  rng: np.random.Generator) -> np.ndarray:
    """Row of each symbol's first bar (0: listed before the data starts)."""
    n = len(days)
    rows = np.zeros(len(board), dtype=np.int64)
    for name, opened in BOARD_OPEN.items():
        mine = np.flatnonzero(board == name)
        first = 0 if opened is None else int(days.searchsorted(pd.Timestamp(opened)))
        last = max(first, n - 120)  # listed at least half a year before the end
        before = rng.random(len(mine)) < (spec.listed_before_share if opened is None else 0.0)
        if opened is not None and first == 0:  # the board was open before the data: some listed before
            before = rng.random(len(mine)) < 0.5
        drawn = rng.integers(first, last + 1, size=len(mine)) if last >= first else np.full(len(mine), n)
        rows[mine] = np.where(before, 0, np.maximum(drawn, 1 if not before.all() else 0))
    return np.minimum(rows, n - 1)


def _spells(n: int, m: int, first_row: np.ndarray, share: float, mean_length: float,
            rng: np.random.Generator) -> np.ndarray:
    """Day × symbol bool: spells of geometric length covering about ``share`` of the listed cells."""
    listed = np.maximum(n - first_row, 0)
    count = int(round(share * listed.sum() / mean_length))
    if count == 0:
        return np.zeros((n, m), dtype=bool)
    cols = rng.choice(m, size=count, p=listed / listed.sum())
    starts = first_row[cols] + (rng.random(count) * listed[cols]).astype(np.int64)
    ends = np.minimum(starts + rng.geometric(1.0 / mean_length, size=count), n)
    marks = np.zeros((n + 1, m), dtype=np.int16)
    np.add.at(marks, (starts, cols), 1)
    np.add.at(marks, (ends, cols), -1)
    return np.cumsum(marks[:-1], axis=0, dtype=np.int16) > 0


def _ex_dates(days: pd.DatetimeIndex, first_row: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Day × symbol bool: one ex-date per symbol and calendar year, in the dividend season, after listing."""
    n, m = len(days), len(first_row)
    out = np.zeros((n, m), dtype=bool)
    (m0, d0), (m1, d1) = SEASON
    for year in range(days[0].year, days[-1].year + 1):
        lo = int(days.searchsorted(pd.Timestamp(year, m0, d0)))
        hi = int(days.searchsorted(pd.Timestamp(year, m1, d1), side="right"))
        if hi <= lo:
            continue
        rows = rng.integers(lo, hi, size=m)
        keep = rows > first_row  # a bar before the ex-date gives the reference price
        out[rows[keep], np.flatnonzero(keep)] = True
    return out


def limit_pct(days: pd.DatetimeIndex, symbols: list[str], is_st: np.ndarray,
              registry: InstrumentRegistry) -> tuple[np.ndarray, np.ndarray]:
    """Per rule set: (the rule-set index of each symbol, rule set × {normal, ST} × day limit fractions), from
    the instrument table's dated schedules as :func:`build_market_data` evaluates them."""
    day_np = days.values.astype("datetime64[D]")
    rules = [registry.by_vt_symbol(s).rules for s in symbols]
    distinct: list = []
    index = np.empty(len(symbols), dtype=np.int64)
    for j, r in enumerate(rules):
        for k, seen in enumerate(distinct):
            if seen is r:
                index[j] = k
                break
        else:
            index[j] = len(distinct)
            distinct.append(r)
    table = np.empty((len(distinct), 2, len(days)))
    for k, r in enumerate(distinct):
        table[k, 0] = _schedule(day_np, r.price_limits)
        table[k, 1] = _schedule(day_np, r.st_price_limits) if r.st_price_limits else table[k, 0]
    return index, table


def generate(spec: SyntheticSpec, registry: InstrumentRegistry | None = None) -> SyntheticMarket:
    """Draw the market of ``spec`` (see the module docstring)."""
    registry = registry or default_registry()
    rng = np.random.default_rng(spec.seed)
    days = default_calendar().between(spec.start, spec.end)
    n = len(days)
    symbols, board = symbols_for(spec.stocks, rng)
    m = len(symbols)
    tick = np.array([registry.by_vt_symbol(s).rules.tick for s in symbols])
    first_row = _listing_rows(days, board, spec, rng)
    listed = np.arange(n)[:, None] >= first_row[None, :]

    st_stocks = rng.random(m) < spec.st_share
    st_start = first_row + (rng.random(m) * (n - first_row)).astype(np.int64)
    st_end = st_start + rng.integers(250, 500, size=m)
    rows = np.arange(n)[:, None]
    is_st = st_stocks[None, :] & (rows >= st_start[None, :]) & (rows < st_end[None, :])
    rule_index, pct_table = limit_pct(days, symbols, is_st, registry)

    ex = _ex_dates(days, first_row, rng)
    suspended = _spells(n, m, first_row, spec.suspended_share, spec.suspension_spell, rng) & listed
    suspended[ex] = False  # a bar on each ex-date
    suspended[first_row, np.arange(m)] = False  # and on the listing day

    # Per-stock parameters: volatility, market beta, a price level the path reverts to, share count.
    sigma = rng.uniform(0.012, 0.028, m)
    beta = rng.uniform(0.6, 1.4, m)
    anchor = np.exp(rng.uniform(np.log(4.0), np.log(60.0), m))
    shares = np.round(np.exp(rng.uniform(np.log(2e8), np.log(5e9), m)), -4)
    market_move = rng.normal(0.0002, 0.012, n)
    cash_yield = rng.uniform(0.003, 0.04, m)
    per_ten = rng.choice(np.array([1, 2, 3, 4, 5, 10]), size=m)

    prices = {f: np.empty((n, m)) for f in ("open", "high", "low", "close", "volume", "turnover")}
    no_bar = np.empty((n, m), dtype=bool)
    factor = np.ones((n, m))
    limit_event = np.zeros((n, m), dtype=np.int8)
    records: dict[str, list[Distribution]] = {}
    last = np.full(m, np.nan)  # the last close (carried over suspensions)
    level = np.ones(m)  # the factor on the previous day
    for i in range(n):
        trading = listed[i] & ~suspended[i]
        first = first_row == i
        step = np.ones(m)
        acted = np.flatnonzero(ex[i])
        if len(acted):
            p = last[acted]
            draw = rng.random((2, len(acted)))
            cash = np.where(draw[0] < spec.cash_share, np.round(p * cash_yield[acted], 3), 0.0)
            ratio = np.where((draw[1] < spec.bonus_share) | (cash == 0), 1.0 + per_ten[acted] / 10.0, 1.0)
            reference = round_to_tick((p - cash) / ratio, tick[acted])  # 除权(息)参考价, to the tick
            new_level = level[acted] * (p / reference)
            ratio_step = new_level / level[acted]  # as build_market_data reads the step back
            ratio_step[np.abs(ratio_step - 1.0) < 1e-12] = 1.0
            step[acted] = ratio_step
            level[acted] = new_level
            day = days[i].date()
            for j, r, c in zip(acted, ratio, cash):
                records.setdefault(symbols[j], []).append(Distribution(day, float(r), float(c), BAOSTOCK))
        factor[i] = level
        ref = last / step
        pct = pct_table[rule_index, is_st[i].astype(np.int64), i]
        up = round_to_tick(ref * (1 + pct), tick)
        down = round_to_tick(ref * (1 - pct), tick)
        # A close strictly inside the limits, pulled slowly towards the stock's level.
        move = beta * market_move[i] + sigma * rng.standard_normal(m) - 0.002 * np.log(ref / anchor)
        inside = round_to_tick(ref * np.exp(move), tick)
        inside = np.fmax(np.fmin(inside, up - tick), down + tick)
        draw = rng.random((3, m))
        at_limit = trading & ~first & (draw[0] < spec.limit_share) & np.isfinite(ref)
        limit_up = draw[1] < 0.6
        close = np.where(at_limit, np.where(limit_up, up, down), inside)
        ipo = round_to_tick(anchor * rng.uniform(0.7, 1.3, m), tick)
        close = np.where(first, ipo, close)
        gap = round_to_tick(ref * np.exp(0.4 * sigma * rng.standard_normal(m)), tick)
        open_ = np.where(first, round_to_tick(ipo * 0.9, tick), np.fmax(np.fmin(gap, up), down))
        one_price = at_limit & (draw[2] < spec.one_price_share)
        open_ = np.where(one_price, close, open_)
        wick = np.abs(rng.standard_normal((2, m))) * 0.5 * sigma
        high = np.fmin(round_to_tick(np.maximum(open_, close) * (1 + wick[0]), tick), up)
        low = np.fmax(round_to_tick(np.minimum(open_, close) * (1 - wick[1]), tick), np.fmax(down, tick))
        high = np.where(one_price, close, np.maximum(high, np.maximum(open_, close)))
        low = np.where(one_price, close, np.minimum(low, np.minimum(open_, close)))
        rate = np.exp(rng.normal(np.log(0.012), 0.6, m)) * np.where(one_price, 0.1, 1.0)
        volume = np.maximum(np.round(shares * rate / 100.0), 1.0) * 100.0
        vwap = (open_ + high + low + close) / 4.0
        for name, values in (("open", open_), ("high", high), ("low", low), ("close", close),
                             ("volume", volume), ("turnover", np.round(volume * vwap, 2))):
            prices[name][i] = values  # whole rows; days without a bar become NaN after the loop
        limit_event[i, at_limit] = np.where(limit_up[at_limit], 1, -1)
        last = np.where(trading, close, last)
        no_bar[i] = ~trading
    for values in prices.values():
        values[no_bar] = np.nan

    frame = lambda values: pd.DataFrame(values, index=days, columns=symbols, copy=False)  # noqa: E731
    panels = Panels(**{f: frame(v) for f, v in prices.items()}, factor=frame(factor),
                    suspended=frame(suspended), is_st=frame(is_st))
    first_days = {s: days[first_row[j]].date() for j, s in enumerate(symbols)}
    return SyntheticMarket(spec, panels, records, first_days, board, limit_event, shares, anchor)


def build(synthetic: SyntheticMarket, registry: InstrumentRegistry | None = None) -> MarketData:
    """The drawn panels as the loader builds a market from stored bars and dividend records."""
    return build_market_data(synthetic.panels, registry, synthetic.records)
