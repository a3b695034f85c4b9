"""Attribution inputs from a book's tables (a backtest's result, or a replay or live run folder) and the
market data it traded on; the segments and benchmark each strategy is measured against.

Segments: ETF rotation → its pools, the benchmark holding each pool at its target capital share
(configs/etf_pools.yaml ``target_capital``), each pool equal-weighted over its members; VQM → the stock
board (main / ChiNext / STAR from the instrument master) against the index members equal-weighted
(point-in-time membership, the strategy's ``member`` panel), or industries when a classification is
given; other strategies → the instrument kind, against their universe equal-weighted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..attribution import AttributionInput, Bars, Benchmark, Fills, Unfilled
from ..data.market_data import MarketData
from ..errors import InputRejected, Problem
from ..market.instruments import lookup
from .config import BacktestConfig
from .engine import fill_basis
from .result import REFUSAL_REASONS

if TYPE_CHECKING:
    from ..protocol import TargetStrategy
    from .runner import BacktestRun

BOARDS = {"main_board_stock": "main", "chinext_stock": "ChiNext", "star_stock": "STAR", "bse_stock": "BSE"}


def _index(md: MarketData, dates: pd.Series, symbols: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    days = md.days.searchsorted(pd.to_datetime(dates).to_numpy())
    where = pd.Index(md.symbols).get_indexer(symbols.to_numpy(dtype=object))
    if (where < 0).any():
        unknown = symbols.to_numpy(dtype=object)[where < 0][0]
        raise InputRejected(Problem("trades/orders", None, f"{unknown} is not in the strategy's universe"))
    return np.asarray(days, dtype=np.int64), np.asarray(where, dtype=np.int64)


def _first_reason(reason: str) -> str:
    """The binding refusal reason: the first in the matcher's order (empty → lot/weight rounding)."""
    given = [r for r in str(reason).split(";") if r]
    for known in REFUSAL_REASONS:
        if known in given:
            return known
    return given[0] if given else "rounding"


def book_input(strategy: str, md: MarketData, config: BacktestConfig, holdings: np.ndarray, equity: np.ndarray,
               start_equity: float, trades: pd.DataFrame, orders: pd.DataFrame, cash_flows: pd.DataFrame,
               benchmark: Benchmark | None, start_holdings: np.ndarray | None = None,
               prev_close: np.ndarray | None = None) -> AttributionInput:
    """``trades``/``orders``/``cash_flows`` in the backtest's column contract (backtest/result.py).

    ``start_holdings`` and ``prev_close``: the book and the closes before ``md``'s first day (default: no
    holdings, and the first day's close: a backtest starts in cash and trades first on its second day).
    """
    n, m = len(md.days), len(md.symbols)
    prev_close = md.last_close[0] if prev_close is None else prev_close
    bars = Bars(md.days, tuple(md.symbols), prev_close, md.last_close, fill_basis(md, config), md.split,
                md.dividend, md.suspended)
    day, sym = _index(md, trades["datetime"], trades["vt_symbol"])
    side = np.where(trades["direction"].to_numpy() == "buy", 1.0, -1.0)
    fills = Fills(day, sym, side * trades["volume"].to_numpy(float), trades["price"].to_numpy(float),
                  trades["commission"].to_numpy(float), trades["stamp_duty"].to_numpy(float),
                  trades["transfer_fee"].to_numpy(float))
    short = orders[orders["requested"] - orders["filled"] > 1e-9]
    o_day, o_sym = _index(md, short["date"], short["vt_symbol"])
    o_side = np.where(short["direction"].to_numpy() == "buy", 1.0, -1.0)
    unfilled = Unfilled(o_day, o_sym, o_side * (short["requested"] - short["filled"]).to_numpy(float),
                        tuple(_first_reason(r) for r in short["reason"].fillna("")))
    dividends = np.zeros((n, m))
    paid = cash_flows[cash_flows["kind"] == "dividend"]
    if len(paid):
        d_day, d_sym = _index(md, paid["date"], paid["vt_symbol"])
        np.add.at(dividends, (d_day, d_sym), paid["cash"].to_numpy(float))
    return AttributionInput(strategy, bars, np.zeros(m) if start_holdings is None else start_holdings,
                            holdings, start_equity, equity, fills, unfilled, dividends, benchmark)


def holdings_matrix(md: MarketData, positions: pd.DataFrame) -> np.ndarray:
    """Shares at each close from the positions table (date, vt_symbol, volume)."""
    out = np.zeros((len(md.days), len(md.symbols)))
    if len(positions):
        day, sym = _index(md, positions["date"], positions["vt_symbol"])
        out[day, sym] = positions["volume"].to_numpy(float)
    return out


def _grouped(name: str, md: MarketData, segment_of: list[str], members: np.ndarray,
             weights: Mapping[str, float] | None) -> Benchmark:
    """Segments with fixed ``weights``, or (None) weighted by their share of the day's members."""
    segments = tuple(dict.fromkeys(s for s, used in zip(segment_of, members.any(axis=0)) if used))
    onehot = np.array([[s == g for g in segments] for s in segment_of], dtype=float).reshape(len(segment_of), -1)
    if weights is None:  # a member without a return that day (not listed yet, no bar) weighs nothing
        with np.errstate(invalid="ignore"):
            prev = np.vstack([md.last_close[:1], md.last_close[:-1]])
            priced = np.isfinite(md.last_close / prev)
        counts = (members & priced).astype(float) @ onehot
        totals = counts.sum(axis=1, keepdims=True)
        w = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    else:
        total = sum(weights.get(s, 0.0) for s in segments)
        w = np.tile([weights.get(s, 0.0) / total for s in segments], (len(md.days), 1))
    return Benchmark(name, tuple(segment_of), segments, w, members)


def _kind(symbol: str) -> str:
    try:
        return lookup(symbol).kind.value
    except Exception:  # an unknown code: its own segment rather than no report
        return "unknown"


def strategy_benchmark(strategy: "TargetStrategy", md: MarketData,
                       industries: Mapping[str, str] | None = None) -> Benchmark:
    """The segments and benchmark ``strategy`` is attributed against (see the module docstring)."""
    symbols = list(md.symbols)
    pools = getattr(strategy, "pools_config", None)
    if pools is not None:
        names = list(getattr(strategy, "pool_names", pools.pools))
        pool_of = {s: p for p in names for s in pools.pools[p]}
        segment_of = [pool_of.get(s, "OTHER_HELD") for s in symbols]
        members = np.tile(np.array([s in pool_of for s in symbols]), (len(md.days), 1))
        weights = {p: pools.capital_constraints[p].target_capital for p in names}
        bench = _grouped("pools at target capital, equal-weighted within", md, segment_of, members, weights)
        defensive = getattr(getattr(strategy, "settings", None), "defensive", None)
        return replace(bench, defensive=(defensive,)) if isinstance(defensive, str) else bench
    kinds = [_kind(s) for s in symbols]
    if "member" in md.extras:
        members = np.asarray(md.extras["member"], dtype=bool)
        if industries:
            if not any(s in industries for s in symbols):
                raise InputRejected(Problem("--industry", None, f"classifies none of the strategy's {len(symbols)} "
                                            f"stocks (e.g. {symbols[0]}): not this universe's file"))
            segment_of = [industries.get(s, "unclassified") for s in symbols]
            return _grouped("index members equal-weighted, by industry", md, segment_of, members, None)
        segment_of = [BOARDS.get(k, k) for k in kinds]
        return _grouped("index members equal-weighted, by board", md, segment_of, members, None)
    members = np.tile(np.ones(len(symbols), dtype=bool), (len(md.days), 1))
    return _grouped("universe equal-weighted, by instrument kind", md, kinds, members, None)


def from_backtest(run: "BacktestRun", industries: Mapping[str, str] | None = None) -> AttributionInput:
    md, result = run.market, run.result
    return book_input(run.strategy.name, md, run.spec.config, holdings_matrix(md, result.positions),
                      result.equity["equity"].to_numpy(float), result.initial_capital, result.trades,
                      result.orders, result.cash_flows, strategy_benchmark(run.strategy, md, industries))
