"""Semantic checks on a parsed bar file (pure): every problem as ``file:line: reason``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import Problem
from ..market.calendar import TradingCalendar
from .formats import PRICE_FIELDS

# Prices are quoted to 0.001 at most; allow float noise when comparing high/low with open/close.
PRICE_EPS = 1e-9


def check_bars(frame: pd.DataFrame, source: str, calendar: TradingCalendar) -> list[Problem]:
    """All problems in ``frame`` (rows with unparseable dates or values are skipped here)."""
    problems: list[Problem] = []
    lines = frame["line"].to_numpy()

    def flag(mask: np.ndarray, reason) -> None:
        for i in np.flatnonzero(mask):
            problems.append(Problem(source, int(lines[i]), reason(i) if callable(reason) else reason))

    if frame.empty:
        return [Problem(source, None, "no data rows")]
    dates = frame["date"]
    valid = np.flatnonzero(dates.notna().to_numpy())
    day = dates.iloc[valid].to_numpy().astype("datetime64[D]")

    # Order: each date must be later than every valid date before it; repeats are duplicates.
    running_max = np.maximum.accumulate(day) if len(day) else day
    for k in np.flatnonzero(np.r_[False, day[1:] <= running_max[:-1]]):
        d = day[k]
        if d in day[:k]:
            earlier = lines[valid[np.flatnonzero(day[:k] == d)[0]]]
            problems.append(Problem(source, int(lines[valid[k]]), f"duplicate date {d} (first on line {earlier})"))
        else:
            problems.append(Problem(source, int(lines[valid[k]]), f"date {d} is out of order (after {running_max[k - 1]})"))

    off = ~calendar.trading_mask(day)
    for k in np.flatnonzero(off):
        problems.append(Problem(source, int(lines[valid[k]]), f"{day[k]} is not a trading day"))

    o, h, low, c = (frame[k].to_numpy(dtype=float) for k in ("open", "high", "low", "close"))
    with np.errstate(invalid="ignore"):
        for name, values in (("open", o), ("high", h), ("low", low), ("close", c)):
            flag(values <= 0, lambda i, n=name, v=values: f"non-positive {n} price {v[i]:g}")
        flag(h + PRICE_EPS < np.maximum(o, c), lambda i: f"high {h[i]:g} is below max(open, close) {max(o[i], c[i]):g}")
        flag(low - PRICE_EPS > np.minimum(o, c), lambda i: f"low {low[i]:g} is above min(open, close) {min(o[i], c[i]):g}")
        flag(frame["volume"].to_numpy(dtype=float) < 0, lambda i: f"negative volume {frame['volume'].iloc[i]:g}")
        turnover = frame["turnover"].to_numpy(dtype=float)
        flag(turnover < 0, lambda i: f"negative turnover {turnover[i]:g}")
    return problems


# -- comparing a file's bars with the stored ones --------------------------------------------------
# Two sources of the same day rarely agree to the last bit, and must not be called a conflict for it:
# - prices: both are quotes on the instrument's tick grid, so equal within half a tick (a real
#   disagreement is at least one tick);
# - volume: AKShare / Eastmoney give lots of 100 shares (a shares count rounded to lots differs by
#   < 100), and TDX exports carry float32 values (24-bit mantissa: the three 510300 days where TDX and
#   Eastmoney differ by exactly one lot are the Eastmoney lot count rounded to float32);
# - turnover: whole-CNY rounding (Eastmoney) and float32 (TDX amounts); a side without turnover is
#   not compared.
LOT_SHARES = 100
FLOAT32_RELATIVE = 2.0 ** -23  # one float32 step relative to the value (half a step is the rounding error)
TURNOVER_ROUNDING = 1.0  # CNY
BAR_FIELDS = ("open", "high", "low", "close", "volume")


def same_prices(a: np.ndarray, b: np.ndarray, tick: float) -> np.ndarray:
    """Element-wise: the prices are equal at the instrument's tick resolution."""
    return np.abs(np.asarray(a, float) - np.asarray(b, float)) <= 0.5 * tick + PRICE_EPS


def same_bars(file: pd.DataFrame, stored: pd.DataFrame, tick: float) -> np.ndarray:
    """Row-wise over aligned frames (open, high, low, close, volume, turnover): the same bar."""
    same = np.ones(len(file), dtype=bool)
    for name in PRICE_FIELDS:
        same &= same_prices(file[name].to_numpy(float), stored[name].to_numpy(float), tick)
    fv, sv = file["volume"].to_numpy(float), stored["volume"].to_numpy(float)
    dv = np.abs(fv - sv)
    same &= (dv < LOT_SHARES) | (dv <= FLOAT32_RELATIVE * np.maximum(np.abs(fv), np.abs(sv)))
    ft, st = file["turnover"].to_numpy(float), stored["turnover"].to_numpy(float)
    with np.errstate(invalid="ignore"):
        known = np.isfinite(ft) & np.isfinite(st) & (ft > 0) & (st > 0)
        dt = np.abs(ft - st)
        same &= ~known | (dt <= TURNOVER_ROUNDING + FLOAT32_RELATIVE * np.maximum(ft, st))
    return same



def bar_text(row) -> str:
    """``O/H/L/C/V`` of one bar, as written in conflict messages."""
    return "/".join(f"{float(row[name]):.12g}" for name in BAR_FIELDS)


def missing_days(present: np.ndarray, lo: np.datetime64, hi: np.datetime64, calendar: TradingCalendar) -> list:
    """Trading days strictly between ``lo`` and ``hi`` that are not in ``present`` (datetime64[D])."""
    inside = calendar.between(pd.Timestamp(lo), pd.Timestamp(hi)).values.astype("datetime64[D]")
    inside = inside[(inside > lo) & (inside < hi)]
    return [pd.Timestamp(d).date() for d in inside[~np.isin(inside, present)]]
