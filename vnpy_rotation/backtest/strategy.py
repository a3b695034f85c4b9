"""Helpers target strategies share: decision days from the exchange calendar, target frames.

What a strategy is (the protocol every caller uses) is :mod:`vnpy_rotation.protocol`.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from ..data.market_data import MarketData, MarketMemo, derived
from ..market.calendar import default_calendar
from .engine import symbol_columns


def rebalance_days(market: MarketData, every: str) -> np.ndarray:
    """Row positions of decision days: ``month_end``, ``week_end`` or ``daily``.

    Period ends come from the exchange calendar (published in advance), not from the data, so a
    data gap cannot move a decision day and the last day of the data is not a month end by accident.
    """
    days = market.days.values.astype("datetime64[D]")
    if every == "daily":
        return np.arange(len(days))
    return _period_end_rows(days.tobytes(), every).copy()


@lru_cache(maxsize=64)
def _period_end_rows(day_bytes: bytes, every: str) -> np.ndarray:
    """Cached per day axis: a parameter sweep asks the same question hundreds of times."""
    days = pd.DatetimeIndex(np.frombuffer(day_bytes, dtype="datetime64[D]"))
    calendar = default_calendar()
    start, end = days[0].date(), days[-1].date()
    ends = calendar.month_ends(start, end) if every == "month_end" else calendar.week_ends(start, end)
    return np.nonzero(days.isin(ends))[0]


def weights_frame(market: MarketData, rows: np.ndarray, weights: np.ndarray,
                  memo: MarketMemo | None = None) -> pd.DataFrame:
    """Decision rows (positions into ``market.days``) × symbols as a target frame (``weights`` is not copied).

    ``memo`` (a sweep chunk's): the index and the columns are built once per market and rows."""
    index = derived(memo, market, ("frame_index", rows.tobytes()), lambda: market.days[rows])
    columns = derived(memo, market, "columns", lambda: symbol_columns(market.symbols))
    return pd.DataFrame(weights, index=index, columns=columns, copy=False)
