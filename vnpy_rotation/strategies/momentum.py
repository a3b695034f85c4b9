"""Top-N momentum rotation: hold the N symbols with the best trailing adjusted return.

A deliberately small strategy (the full ETF rotation template is its own module) used by the speed
benchmarks against vnpy_portfoliostrategy and by the sweep; every input is point-in-time.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from ..backtest.engine import TargetPlan
from ..backtest.strategy import rebalance_days, weights_frame
from ..data.market_data import MarketData
from .equal_weight import EqualWeightSettings, EqualWeightStrategy


class MomentumTopNSettings(EqualWeightSettings):
    lookback: int = Field(default=20, ge=1, le=500)
    top_n: int = Field(default=2, ge=1)
    rebalance: Literal["month_end", "week_end", "daily"] = "week_end"
    absolute: bool = True  # hold cash instead of a symbol whose momentum is not positive
    adjusted: bool = True  # momentum on adjusted prices; False reproduces tools that ignore corporate actions
    # "weight": fractions of equity sized at the fill; "shares": int(notional × weight / close) decided at
    # the close of t, the fixed-capital sizing vnpy strategies use (no portfolio value in their template)
    sizing: Literal["weight", "shares"] = "weight"
    notional: float = Field(default=1_000_000.0, gt=0)


def momentum_scores(market: MarketData, lookback: int, adjusted: bool = True,
                    rows: np.ndarray | None = None) -> np.ndarray:
    """Trailing ``lookback``-day return of the (adjusted) close; NaN without enough history or when suspended.

    On the day ``rows`` only when given (the decision days: each value is the same as on the whole axis,
    without computing the days nothing decides on).
    """
    rows = np.arange(len(market.days)) if rows is None else np.asarray(rows)
    known = rows >= lookback
    now, then = rows[known], rows[known] - lookback
    if adjusted:
        price_now, price_then = market.close[now] * market.factor[now], market.close[then] * market.factor[then]
    else:
        price_now, price_then = market.close[now], market.close[then]
    scores = np.full((len(rows), market.shape[1]), np.nan)
    scores[known] = price_now / price_then - 1
    scores[market.suspended[rows]] = np.nan
    return scores


def top_n_weights(scores: np.ndarray, top_n: int, invested: float, absolute: bool) -> np.ndarray:
    """Equal weights on the ``top_n`` highest scores of each row (ties broken by column order)."""
    ranked = np.where(np.isfinite(scores), scores, -np.inf)
    chosen = np.zeros(scores.shape, dtype=bool)
    if top_n <= 3:
        # A few row-wise argmax passes instead of a full stable sort: ``argmax`` takes the first of equal
        # highs, the column order the stable sort gives ties. A pass that lands on -inf (fewer finite scores
        # than ``top_n``) marks a non-finite score, which the mask below removes, as the sort's pick was.
        rows = np.arange(len(ranked))
        for _ in range(top_n):
            best = ranked.argmax(axis=1)
            chosen[rows, best] = True
            ranked[rows, best] = -np.inf
    else:
        np.put_along_axis(chosen, np.argsort(-ranked, axis=1, kind="stable")[:, :top_n], True, axis=1)
    chosen &= np.isfinite(scores)
    if absolute:
        chosen &= scores > 0
    return np.where(chosen, invested / top_n, 0.0)


class MomentumTopNStrategy(EqualWeightStrategy):
    name: ClassVar[str] = "momentum_topn"
    search_space: ClassVar[dict[str, list]] = {"lookback": [10, 20, 40, 60], "top_n": [1, 2, 3]}
    Settings = MomentumTopNSettings
    settings: MomentumTopNSettings

    @property
    def warmup_days(self) -> int:
        return self.settings.lookback + 1

    def targets(self, market: MarketData) -> TargetPlan:
        rows = rebalance_days(market, self.settings.rebalance)
        s = self.settings
        scores = momentum_scores(market, s.lookback, s.adjusted, rows)
        weights = top_n_weights(scores, s.top_n, s.invested, s.absolute)
        if s.sizing == "weight":
            return TargetPlan(weights_frame(market, rows, weights))
        with np.errstate(invalid="ignore", divide="ignore"):
            close = market.close[rows]
            shares = np.where(weights > 0, np.floor(s.notional * weights / close), 0.0)
            shares[~np.isfinite(close)] = np.nan
        # No bar at the decision: no instruction for that symbol (NaN keeps the holding).
        return TargetPlan(weights_frame(market, rows, shares), kind="shares")
