"""Hand-written markets for backtest scenario tests: a few bars per symbol, no database.

A scenario is written as one row per trading day and symbol::

    bars = {"510300.SSE": [flat(4.0), flat(4.0), bar(4.4, 4.4, 4.4, 4.4), None]}

``None`` is "no bar" (NaN everywhere, as :func:`~vnpy_rotation.data.panels.load_panels` leaves a
suspended day). Factors default to 1.0; pass a per-day list to model an ex-date (the factor is the
cumulative backward multiplier, so a 1→2 unit split is ``[1, 1, 2, 2]``).
"""

from __future__ import annotations

from typing import Iterable, NamedTuple, Sequence

import numpy as np
import pandas as pd
import pytest

from vnpy_rotation.backtest.config import BacktestConfig
from vnpy_rotation.backtest.engine import TargetPlan, simulate
from vnpy_rotation.backtest.matching import Bar, SymbolTerms, bar_at, terms_at
from vnpy_rotation.backtest.result import BacktestResult
from vnpy_rotation.data.market_data import MarketData, build_market_data
from vnpy_rotation.data.panels import Panels


class Row(NamedTuple):
    open: float
    high: float
    low: float
    close: float
    volume: float = 1_000_000.0
    turnover: float | None = None  # default: volume × close


# Symbols and dates shared by the scenario and matcher tests (one of each rule family).
CAPITAL = 100_000.0
AUG = ["2023-08-21", "2023-08-22", "2023-08-23", "2023-08-24", "2023-08-25",
       "2023-08-28", "2023-08-29", "2023-08-30", "2023-08-31", "2023-09-01"]

STOCK = "600000.SSE"
STOCK_B = "600036.SSE"
ETF = "510300.SSE"
ETF_B = "510500.SSE"
CROSS = "513100.SSE"
CHINEXT_ETF = "159915.SZSE"
STAR = "688001.SSE"


def money(amount: float):
    """Cash and equity sums: exact to well below a fen (float sums of fen amounts)."""
    return pytest.approx(amount, abs=1e-6)


def days(first: str, count: int) -> list[str]:
    start = AUG.index(first)
    return AUG[start:start + count]


def bar(open_: float, high: float, low: float, close: float, volume: float = 1_000_000.0,
        turnover: float | None = None) -> Row:
    return Row(open_, high, low, close, volume, turnover)


def flat(price: float, volume: float = 1_000_000.0) -> Row:
    """A one-price bar (open = high = low = close)."""
    return Row(price, price, price, price, volume)


def make_panels(days: Sequence[str], bars: dict[str, Sequence[Row | None]], *,
                factor: dict[str, Sequence[float]] | None = None,
                suspended: dict[str, Sequence[bool]] | None = None,
                is_st: dict[str, Sequence[bool]] | None = None) -> Panels:
    index = pd.DatetimeIndex(pd.to_datetime(list(days)))
    symbols = list(bars)
    for symbol, rows in bars.items():
        assert len(rows) == len(index), f"{symbol}: {len(rows)} bars for {len(index)} days"
    fields = {f: np.full((len(index), len(symbols)), np.nan)
              for f in ("open", "high", "low", "close", "volume", "turnover")}
    for j, symbol in enumerate(symbols):
        for i, row in enumerate(bars[symbol]):
            if row is None:
                continue
            for f in ("open", "high", "low", "close", "volume"):
                fields[f][i, j] = getattr(row, f)
            fields["turnover"][i, j] = row.volume * row.close if row.turnover is None else row.turnover

    def frame(values) -> pd.DataFrame:
        return pd.DataFrame(values, index=index, columns=symbols)

    def per_symbol(given: dict | None, default, dtype) -> pd.DataFrame:
        out = np.full((len(index), len(symbols)), default, dtype=dtype)
        for symbol, values in (given or {}).items():
            out[:, symbols.index(symbol)] = np.asarray(values, dtype=dtype)
        return frame(out)

    no_bar = np.isnan(fields["close"])
    flagged = per_symbol(suspended, False, bool)
    return Panels(**{f: frame(v) for f, v in fields.items()},
                  factor=per_symbol(factor, 1.0, float),
                  suspended=frame(flagged.to_numpy() | no_bar),
                  is_st=per_symbol(is_st, False, bool))


def plan(rows: dict[str, dict[str, float]], symbols: Iterable[str], kind: str = "shares") -> TargetPlan:
    """Decision rows (day → {symbol: target}); symbols missing from a row are targeted at zero."""
    symbols = list(symbols)
    frame = pd.DataFrame([{s: row.get(s, 0.0) for s in symbols} for row in rows.values()],
                         index=pd.DatetimeIndex(pd.to_datetime(list(rows))), columns=symbols, dtype=float)
    return TargetPlan(frame, kind=kind)  # type: ignore[arg-type]


def backtest(panels: Panels, rows: dict[str, dict[str, float]], kind: str = "shares",
             **config) -> tuple[MarketData, BacktestResult]:
    md = build_market_data(panels)
    run = simulate(md, plan(rows, panels.symbols, kind), BacktestConfig(**config))
    return md, run.to_result()


def at(md: MarketData, array: np.ndarray, symbol: str, day: str) -> float:
    """One cell of a day × symbol array of ``md``."""
    return array[md.days.get_loc(pd.Timestamp(day)), md.symbols.index(symbol)]


def terms_on(md: MarketData, symbol: str, day: str, config: BacktestConfig | None = None) -> SymbolTerms:
    """The matcher terms the engine builds for ``symbol`` on ``day`` (default config, all rules on)."""
    return terms_at(md, md.days.get_loc(pd.Timestamp(day)), md.symbols.index(symbol), config or BacktestConfig())


def bar_on(md: MarketData, symbol: str, day: str) -> Bar:
    """The bar the engine would match against with open fills."""
    return bar_at(md, md.days.get_loc(pd.Timestamp(day)), md.symbols.index(symbol))


def trades_of(result: BacktestResult) -> list[tuple]:
    """Trades as (date, symbol, direction, price, volume, value, commission, stamp, transfer)."""
    return [(t.datetime.strftime("%Y-%m-%d"), t.vt_symbol, t.direction, round(t.price, 6), t.volume,
             round(t.value, 6), t.commission, t.stamp_duty, t.transfer_fee)
            for t in result.trades.itertuples()]


def orders_of(result: BacktestResult) -> list[tuple]:
    """Orders as (date, symbol, direction, requested, filled, status, reason)."""
    return [(o.date.strftime("%Y-%m-%d"), o.vt_symbol, o.direction, o.requested, o.filled, o.status, o.reason)
            for o in result.orders.itertuples()]


def equity_on(result: BacktestResult, day: str, column: str = "equity") -> float:
    return float(result.equity.loc[pd.Timestamp(day), column])


def positions_on(result: BacktestResult, day: str) -> list[list]:
    """Positions at ``day``'s close as [vt_symbol, volume, close] rows."""
    rows = result.positions[result.positions["date"] == pd.Timestamp(day)]
    return rows[["vt_symbol", "volume", "close"]].values.tolist()
