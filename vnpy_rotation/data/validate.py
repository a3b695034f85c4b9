"""Semantic checks on a parsed bar file (pure): every problem as ``file:line: reason``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import Problem
from ..market.calendar import TradingCalendar

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
