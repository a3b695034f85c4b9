"""Many backtests over one loaded panel, in parallel through any ``concurrent.futures.Executor``.

The grid is cut into chunks; each task receives the market data once and runs its chunk serially, so
process pools pay one pickle per chunk, not per backtest. Any executor with ``submit`` works: a
``ProcessPoolExecutor`` locally, or a Dask / Ray executor for a cluster.

With a ``span`` every backtest is measured on that span only, as ``run.py backtest --start --end`` does:
decisions on the market truncated at the span's end (with the history before it as warm-up), the
simulation on the span's days (see :func:`run_span`). The walk-forward runs each train window so.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from concurrent.futures import Executor
from datetime import date
from functools import partial
from typing import Any, Iterable

import numpy as np
import pandas as pd

from ..data.market_data import MarketData, MarketMemo
from ..errors import InputRejected, Problem
from ..protocol import TargetStrategy
from .config import BacktestConfig
from .engine import RawRun, TargetPlan, simulate
from .metrics import TRADING_DAYS

Span = tuple[date, date]  # first and last calendar day, both included


def grid(**ranges: Iterable[Any]) -> list[dict[str, Any]]:
    """Every combination of the given parameter ranges, as settings dicts."""
    names = list(ranges)
    return [dict(zip(names, values)) for values in itertools.product(*(list(r) for r in ranges.values()))]


def quick_metrics(equity: np.ndarray) -> dict[str, float]:
    """The metrics a parameter search ranks by, straight from the equity array (see metrics.py)."""
    returns = equity[1:] / equity[:-1] - 1
    years = max(len(returns), 1) / TRADING_DAYS
    total = equity[-1] / equity[0] - 1
    annual = (1 + total) ** (1 / years) - 1 if total > -1 else -1.0
    std = returns.std(ddof=1) if len(returns) > 1 else 0.0
    drawdown = float((equity / np.maximum.accumulate(equity) - 1).min())
    return {"total_return": float(total), "annual_return": float(annual),
            "sharpe": float(returns.mean() / std * math.sqrt(TRADING_DAYS)) if std > 1e-12 else math.nan,
            "max_drawdown": drawdown, "calmar": float(annual / -drawdown) if drawdown < 0 else math.nan}


def plan_within(plan: TargetPlan, days: pd.DatetimeIndex) -> TargetPlan:
    """``plan`` with only the rows decided on ``days`` (its notes cut alike)."""
    keep = plan.frame.index.isin(days)
    notes = None if plan.notes is None else plan.notes[keep]
    return dataclasses.replace(plan, frame=plan.frame[keep], notes=notes)


def run_span(market: MarketData, strategy: TargetStrategy, config: BacktestConfig, span: Span | None = None,
             *, memo: MarketMemo | None = None) -> RawRun:
    """Simulate ``strategy`` on ``span`` (the whole market when ``None``).

    The strategy decides on ``market.window(None, span end)``: it never receives a bar after the span, and
    the bars before the span are its warm-up. The simulation starts in cash on the span's first trading day
    and follows the decisions taken on the span's days.

    ``memo`` (a sweep chunk's) hands every run the same window objects, so what the strategies derive from
    them, and the simulation's market inputs, are computed once per chunk (see :func:`run_chunk`).
    """
    if span is None:
        return simulate(market, strategy.targets(market), config, memo=memo)
    start, end = span
    window = market.window if memo is None else partial(memo.window, market)
    traded, decided = window(start, end), window(None, end)
    if len(traded.days) < 2:
        raise InputRejected(Problem("span", None, f"fewer than 2 trading days in {start} … {end}"))
    return simulate(traded, plan_within(strategy.targets(decided), traded.days), config, decided, memo=memo)


def run_chunk(market: MarketData, strategy_name: str, base: dict[str, Any], combos: list[dict[str, Any]],
              config: BacktestConfig, span: Span | None = None) -> list[dict[str, Any]]:
    """Run one chunk of the grid (executed in a worker).

    The chunk's runs share one :class:`MarketMemo`: factor panels, ranks and tradability per factor and
    window are computed once, not once per combination. Each value is keyed by everything it depends on,
    so a run's result is the one a single run of its combination gives. The strategies write no per-trade
    notes (``notes = False``): the rows keep only metrics, and notes change no fill.
    """
    from ..strategies import for_sweep

    rows = []
    memo = MarketMemo()
    for combo in combos:
        strategy = for_sweep(strategy_name, {**base, **combo}, memo)
        run = run_span(market, strategy, config, span, memo=memo)
        rows.append({**combo, **quick_metrics(run.equity()), "trade_count": run.fill_count,
                     "total_cost": float(run.costs[:3].sum())})
    return rows


def sweep(market: MarketData, strategy_name: str, combos: list[dict[str, Any]], config: BacktestConfig,
          base: dict[str, Any] | None = None, executor: Executor | None = None,
          chunks: int | None = None, span: Span | None = None) -> pd.DataFrame:
    """One row per combination with its metrics, in the grid's order (measured on ``span`` when given)."""
    base = base or {}
    if span is not None:  # workers receive only what the span's decisions may read
        market = market.window(None, span[1])
    if executor is None:
        return pd.DataFrame(run_chunk(market, strategy_name, base, combos, config, span))
    count = chunks or max(1, getattr(executor, "_max_workers", 2) * 2)
    size = math.ceil(len(combos) / count) or 1
    futures = [executor.submit(run_chunk, market, strategy_name, base, combos[k:k + size], config, span)
               for k in range(0, len(combos), size)]
    return pd.DataFrame([row for future in futures for row in future.result()])
