"""What a target strategy is: a pure function from point-in-time market data to target rows.

Both the backtester and (later) the live engine call :meth:`TargetStrategy.targets` on the data they
have; a row decided at the close of day t may only depend on rows up to t (checked by
:mod:`~vnpy_rotation.backtest.lookahead` for every strategy).
"""

from __future__ import annotations

from functools import lru_cache
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from ..market.calendar import default_calendar
from .engine import TargetPlan
from .market_data import MarketData


class StrategySettings(BaseModel):
    """Base of every strategy's typed settings (frozen, unknown fields rejected)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


@runtime_checkable
class TargetStrategy(Protocol):
    name: ClassVar[str]
    settings: StrategySettings

    @property
    def symbols(self) -> list[str]: ...

    @property
    def warmup_days(self) -> int: ...

    def targets(self, market: MarketData) -> TargetPlan: ...


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


def weights_frame(market: MarketData, rows: np.ndarray, weights: np.ndarray) -> pd.DataFrame:
    """Decision rows (positions into ``market.days``) × symbols as a target frame."""
    return pd.DataFrame(weights, index=market.days[rows], columns=list(market.symbols))
