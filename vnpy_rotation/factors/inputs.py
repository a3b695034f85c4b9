"""From the backtester's :class:`MarketData` to one pool's factor inputs on that pool's own sessions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.market_data import MarketData, forward_fill
from ..rotation.pools import pool_sessions
from .library import FactorInputs, compute_factors, on_rows


@dataclass(frozen=True)
class PoolFactors:
    """Factor values on the full day axis (NaN on days the pool did not trade), members as columns."""

    members: list[str]
    sessions: np.ndarray  # row positions of the pool's own sessions
    values: dict[str, np.ndarray]  # factor name → days × members


def pool_inputs(market: MarketData, members: list[str]) -> tuple[np.ndarray, FactorInputs]:
    """The pool's sessions and its factor inputs on those sessions only."""
    columns = [market.symbols.index(s) for s in members]
    close = market.close[:, columns]
    has_bar = np.isfinite(close) & ~market.suspended[:, columns]
    listed = np.maximum.accumulate(np.isfinite(close), axis=0)  # traded on or before t: known at t
    sessions = pool_sessions(has_bar, listed)
    adjusted = forward_fill(np.where(has_bar, close * market.factor[:, columns], np.nan))[sessions]
    benchmark = None if market.benchmark is None else forward_fill(market.benchmark.reshape(-1, 1))[sessions, 0]
    return sessions, FactorInputs(adj_close=adjusted, has_bar=has_bar[sessions],
                                  volume=market.volume[sessions][:, columns],
                                  turnover=market.turnover[sessions][:, columns], benchmark=benchmark)


def pool_factors(market: MarketData, members: list[str], names: list[str] | None = None) -> PoolFactors:
    """The named factors (default all) for ``members``, point-in-time, spread back onto every day."""
    sessions, inputs = pool_inputs(market, members)
    values = compute_factors(inputs, names)
    return PoolFactors(members, sessions, {k: on_rows(sessions, len(market.days), v) for k, v in values.items()})
