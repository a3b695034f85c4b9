"""What an ex-date does to one share: new shares per old share and cash per old share (pure, no vnpy).

A stored adjustment factor step ``F = close[t-1] / reference[t]`` mixes both: with ``r`` new shares per
old share (1 + 送股 + 转增 per share) and cash ``c`` per old share before tax the exchange's ex-rights
reference price is ``(close[t-1] - c) / r`` (除权(息)参考价, 上海证券交易所交易规则 / 深圳证券交易所交易规则,
"除权与除息"; rights issues are not modelled), so ``F = close[t-1] * r / (close[t-1] - c)``.

:func:`split_step` recovers ``(r, c)`` from ``F``; a Baostock dividend record gives them exactly and
wins on its ex-date (:func:`merge`). The same :class:`Distribution` list drives the backtester's and the
replay book's holdings (``MarketData.split`` / ``MarketData.dividend``), the share basis of a report's
per-share values (:func:`eps_share_scale`: EPS for PE, book value for PB) and the trailing cash of the
dividend yield (:func:`trailing_cash`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

# A fund's factor step >= this is a unit split (holdings multiplied), a smaller one a cash distribution.
# Funds split by any ratio (real 1:4 splits show a −74 %…−80 % one-day "drop"), so there is no whole
# ratio to look for; a 10 % cash distribution in one payment is not seen on ETFs.
FUND_SPLIT_MIN_STEP = 1.0999
# Stock 送转 are announced per 10 shares ("每10股送X股转增Y股"): the share ratio is 1 + k/10.
PER_TEN = 10
STOCK_TICK = 0.01
FACTOR, BAOSTOCK = "factor", "baostock dividend"
MARKET = "market data"  # read back from MarketData.split / .dividend (:func:`from_holding_arrays`)


@dataclass(frozen=True)
class Distribution:
    """One ex-date: ``share_ratio`` new shares per old share (1 = no share change; < 1 a consolidation)
    and ``cash`` CNY per old share before tax."""

    ex_date: date
    share_ratio: float
    cash: float
    source: str  # FACTOR (decomposed from the adjustment factor) | BAOSTOCK (an imported dividend record)


def split_step(step: float, prev_close: float, *, per_ten: bool = True, tick: float = STOCK_TICK) -> tuple[float, float]:
    """``(share_ratio, cash)`` of one factor step, given the close before the ex-date.

    ``per_ten`` (stocks): the largest whole 送转 ratio per 10 shares whose cash remainder is not negative
    beyond the reference price's rounding (half a ``tick`` per new share); the remainder is the cash.
    The factor cannot tell a cash yield of 1/11 (9.1 %) or more from a 10送1: such a step is read as
    shares. A step below 1 is a consolidation. Funds (``per_ten=False``): a step of
    :data:`FUND_SPLIT_MIN_STEP` or more, or below 1, is a unit split by the step itself; a smaller one is cash.
    """
    if not (math.isfinite(step) and step > 0) or step == 1.0:
        return 1.0, 0.0
    if step < 1.0:
        return step, 0.0
    if not math.isfinite(prev_close) or prev_close <= 0:
        prev_close, tick = 1.0, 0.0  # no price: the ratio from the step alone, cash as a fraction
    if not per_ten:
        if step >= FUND_SPLIT_MIN_STEP:
            return step, 0.0
        return 1.0, prev_close * (1.0 - 1.0 / step)
    reference = prev_close / step
    # r * (reference - tick / 2) <= prev_close: the cash r * reference - prev_close may be off by the rounding.
    bound = prev_close / max(reference - tick / 2, 1e-12)
    k = max(0, math.floor(PER_TEN * (bound - 1.0) + 1e-9))
    ratio = 1.0 + k / PER_TEN
    return ratio, max(0.0, prev_close - ratio * reference)


def from_steps(days: pd.DatetimeIndex, step: np.ndarray, prev_close: np.ndarray, *, per_ten: bool,
               tick: float = STOCK_TICK) -> list[Distribution]:
    """A distribution for every day whose factor step is not 1."""
    out = []
    for i in np.flatnonzero(np.isfinite(step) & (step != 1.0)):
        ratio, cash = split_step(float(step[i]), float(prev_close[i]), per_ten=per_ten, tick=tick)
        out.append(Distribution(days[i].date(), ratio, cash, FACTOR))
    return out


def merge(derived: Iterable[Distribution], records: Iterable[Distribution]) -> list[Distribution]:
    """Both lists by ex-date; on an ex-date with a record the record replaces what the factor gave."""
    by_day = {d.ex_date: d for d in derived}
    by_day.update({d.ex_date: d for d in records})
    return [by_day[day] for day in sorted(by_day)]


def holding_arrays(days: pd.DatetimeIndex, distributions: Sequence[Distribution]) -> tuple[np.ndarray, np.ndarray]:
    """Per day: the holding multiplier (1 where none) and the cash per share held (0 where none)."""
    split, cash = np.ones(len(days)), np.zeros(len(days))
    if not distributions:
        return split, cash
    axis = days.values.astype("datetime64[D]")
    ex = np.array([np.datetime64(d.ex_date, "D") for d in distributions])
    rows = np.minimum(np.searchsorted(axis, ex), max(len(axis) - 1, 0))
    on_axis = (axis[rows] == ex) if len(axis) else np.zeros(len(ex), dtype=bool)
    split[rows[on_axis]] = [d.share_ratio for d, hit in zip(distributions, on_axis) if hit]
    cash[rows[on_axis]] = [d.cash for d, hit in zip(distributions, on_axis) if hit]
    return split, cash


def from_holding_arrays(days: pd.DatetimeIndex, split: np.ndarray, cash: np.ndarray,
                        symbols: Sequence[str]) -> dict[str, list[Distribution]]:
    """The inverse of :func:`holding_arrays`, day × symbol: the ex-dates on ``days`` (a split other than 1
    or a cash other than 0), for a market that was not given the stored distributions."""
    ratio = np.where(np.isfinite(split) & (split > 0), split, 1.0)
    paid = np.where(np.isfinite(cash), cash, 0.0)
    return {symbol: [Distribution(days[i].date(), float(ratio[i, j]), float(paid[i, j]), MARKET)
                     for i in np.flatnonzero((ratio[:, j] != 1.0) | (paid[:, j] != 0.0))]
            for j, symbol in enumerate(symbols)}


def eps_share_scale(distributions: Mapping[str, Sequence[Distribution]], known: np.ndarray,
                    days: pd.DatetimeIndex, symbols: Sequence[str]) -> np.ndarray:
    """Day × symbol: new shares per share of the report in use — the divisor that puts its per-share
    values (EPS, book value per share) on today's share basis.

    ``known`` (day × symbol, days since 1970-01-01, NaN where no report) is when the report in use became
    public. Every ex-date ``e`` with ``known < e <= day`` multiplies the scale by its share ratio: on the
    ex-date the close is already per new share. Ex-dates up to the announcement are not applied: the
    report's EPS already counts those shares (《企业会计准则第34号——每股收益》第十三条: bonus issues,
    transfers from reserves, splits and consolidations restate EPS of every period presented, also when
    they happen between the balance-sheet date and the date the report is approved for issue).
    """
    scale = np.ones((len(days), len(symbols)))
    day_numbers = days.values.astype("datetime64[D]").astype(np.int64)
    for j, symbol in enumerate(symbols):
        changes = [d for d in distributions.get(symbol, ()) if d.share_ratio != 1.0]
        if not changes:
            continue
        ex = np.array([np.datetime64(d.ex_date, "D").astype(np.int64) for d in changes])
        order = np.argsort(ex, kind="stable")
        ex = ex[order]
        cumulative = np.concatenate([[1.0], np.cumprod(np.array([d.share_ratio for d in changes])[order])])
        # cumulative[n]: product of the first n ratios; those with ex <= x number searchsorted(ex, x, "right").
        at_day = cumulative[np.searchsorted(ex, day_numbers, side="right")]
        column = known[:, j]
        has = np.isfinite(column) & (column < day_numbers)  # (known, day] is empty otherwise
        at_known = np.ones(len(days))
        at_known[has] = cumulative[np.searchsorted(ex, column[has].astype(np.int64), side="right")]
        scale[:, j] = np.where(has, at_day / at_known, 1.0)
    return scale


def trailing_cash(distributions: Mapping[str, Sequence[Distribution]], days: pd.DatetimeIndex,
                  symbols: Sequence[str], window_days: int = 365) -> np.ndarray:
    """Day × symbol: cash per share held on the day from the ex-dates in ``(day − window_days, day]``.

    Each ex-date's cash is per share held before it; on a later day it is divided by the share ratios
    of that ex-date and every later one up to the day (10转10 + 0.10 is 0.05 per share afterwards), so
    it compares with that day's unadjusted close (dividend yield = trailing_cash / close).
    """
    out = np.zeros((len(days), len(symbols)))
    day_numbers = days.values.astype("datetime64[D]").astype(np.int64)
    ordered = bool(np.all(day_numbers[1:] >= day_numbers[:-1]))
    for j, symbol in enumerate(symbols):
        events = sorted(distributions.get(symbol, ()), key=lambda d: d.ex_date)
        if not events:
            continue
        ex = np.array([np.datetime64(d.ex_date, "D").astype(np.int64) for d in events])
        cumulative = np.concatenate([[1.0], np.cumprod([d.share_ratio for d in events])])
        at_day = cumulative[np.searchsorted(ex, day_numbers, side="right")]
        # Ascending days (as loaded): each window is a run of rows, found by two searches, not a full scan.
        starts = np.searchsorted(day_numbers, ex, side="left") if ordered else None
        ends = np.searchsorted(day_numbers, ex + window_days, side="left") if ordered else None
        for k, event in enumerate(events):
            if event.cash == 0.0:
                continue
            if starts is not None and ends is not None:
                inside: slice | np.ndarray = slice(starts[k], ends[k])
            else:
                inside = (day_numbers >= ex[k]) & (day_numbers < ex[k] + window_days)
            out[inside, j] += event.cash * cumulative[k] / at_day[inside]
    return out
