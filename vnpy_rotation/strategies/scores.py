"""The strategies' own factor values and ranks at one close, per symbol, for the market monitor.

Nothing is recomputed here: ETF rotation's :meth:`~.etf_rotation.EtfRotationStrategy.pool_ranking` and VQM's
:meth:`~.vqm.VqmStrategy.rank_rows` are the functions their ``targets`` select on, called on the market's last
row. The caller cuts the market at the close it wants (the monitor: the last close before today), so nothing
after that close enters.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..data.market_data import MarketData
from ..monitor.records import StrategyScores
from .etf_rotation import EtfRotationStrategy
from .vqm import VqmStrategy


def _finite(value: float) -> float:
    return float(value) if math.isfinite(value) else math.nan


def latest_scores(strategy: Any, market: MarketData) -> dict[str, list[StrategyScores]]:
    """vt_symbol → the strategy's scores on ``market``'s last row (a strategy without a ranking: empty)."""
    last = np.array([len(market.days) - 1])
    as_of = market.days[-1].date()
    out: dict[str, list[StrategyScores]] = {}
    if isinstance(strategy, EtfRotationStrategy):
        for pool in strategy.pool_names:
            ranking = strategy.pool_ranking(market, pool, last)
            of = int((ranking.rank[0] > 0).sum())
            for j, member in enumerate(ranking.members):
                factors = tuple((k, _finite(v[0, j])) for k, v in ranking.factors.items())
                rank = int(ranking.rank[0, j])
                out.setdefault(member, []).append(StrategyScores(
                    f"{strategy.name}/{pool}", as_of, factors + (("score", _finite(ranking.score[0, j])),),
                    rank or None, of))
    elif isinstance(strategy, VqmStrategy):
        ranking = strategy.rank_rows(market, last)
        ranked = np.isfinite(ranking.rank[0])
        of = int(ranked.sum())
        named = [("pe", ranking.pe), ("roe", ranking.roe), ("pb", ranking.pb), ("dividend_yield", ranking.dividend_yield),
                 ("score", ranking.score)]
        for j, symbol in enumerate(market.symbols):
            factors = tuple((k, _finite(v[0, j])) for k, v in named if v is not None)
            out.setdefault(symbol, []).append(StrategyScores(
                strategy.name, as_of, factors, int(ranking.rank[0, j]) if ranked[j] else None, of))
    return out
