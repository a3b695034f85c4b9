"""The same top-N momentum rotation as ``momentum_topn``, written for vnpy_portfoliostrategy.

Used by ``benchmarks/bench_backtest.py`` (speed, memory) and ``tests/test_vnpy_compat.py`` (the
cross-check): run on the same bars, our engine in ``BacktestConfig.vnpy_compatible`` mode and this
strategy in vnpy's ``BacktestingEngine`` must produce the same fills and the same daily equity.

The strategy is written the way a vnpy user would write it (``on_bars`` → ``set_target`` →
``rebalance_portfolio``) and mirrors our definitions exactly:

- it keeps one close per symbol for every bar slice it receives (NaN when the symbol has no bar in
  the slice), so ``lookback`` counts rows of the shared day axis, as ``momentum_scores`` does;
- score = close[t] / close[t - lookback] - 1, NaN when either is missing or the symbol has no bar at t;
- decision days are the exchange calendar's week/month ends (``default_calendar``), as
  ``rebalance_days`` uses;
- the ``top_n`` best finite scores (ties: symbol order), dropped when not positive if ``absolute``;
- target = int(notional × (invested / top_n) / close[t]) for the chosen, 0 for the other symbols with a
  bar; symbols without a bar get no order (``rebalance_portfolio`` only trades the slice);
- orders are priced ``price_add`` CNY through the close so that they always cross: vnpy then fills
  them at the next bar's open.

vnpy is imported lazily so that the caller can settle vnpy's runtime folder first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Sequence

# A sell is priced at the tick (it crosses any bar), a buy this many CNY above the close: more than any
# A-share move from one bar to the next, unit consolidations included.
PRICE_ADD = 1e5


def decision_days(rebalance: str) -> frozenset[date]:
    """Every week/month end of the exchange calendar (``daily``: an empty set, meaning every bar)."""
    from vnpy_rotation.market.calendar import default_calendar

    calendar = default_calendar()
    if rebalance == "daily":
        return frozenset()
    ends = calendar.month_ends() if rebalance == "month_end" else calendar.week_ends()
    return frozenset(ends.date)


def default_pricetick(vt_symbol: str) -> float:
    """0.001 CNY for exchange funds (SSE 5xxxxx, SZSE 15xxxx/16xxxx), 0.01 CNY for stocks."""
    code = vt_symbol.split(".")[0]
    return 0.001 if code.startswith(("5", "15", "16")) else 0.01


def strategy_class():
    """The vnpy strategy class (built on first use: vnpy must not be imported before the runtime is set)."""
    global _STRATEGY
    if _STRATEGY is None:
        _STRATEGY = _build_strategy_class()
    return _STRATEGY


_STRATEGY = None


def _build_strategy_class():
    from vnpy.trader.constant import Direction
    from vnpy.trader.object import BarData
    from vnpy_portfoliostrategy import StrategyTemplate

    class MomentumTopNPortfolioStrategy(StrategyTemplate):
        """Top-N momentum rotation, rebalanced on calendar week or month ends."""

        author = "vnpy_rotation benchmark"

        lookback: int = 20
        top_n: int = 2
        rebalance: str = "week_end"
        absolute: bool = True
        invested: float = 0.99
        notional: float = 1_000_000.0
        price_add: float = PRICE_ADD

        parameters = ["lookback", "top_n", "rebalance", "absolute", "invested", "notional", "price_add"]
        variables = ["rebalances"]

        def on_init(self) -> None:
            self.closes: dict[str, list[float]] = {s: [] for s in self.vt_symbols}
            self.ends = decision_days(self.rebalance)
            self.rebalances = 0
            # No warm-up: trade from the first bar, like our engine over the same span.
            self.load_bars(0)

        def on_bars(self, bars: dict[str, BarData]) -> None:
            for vt_symbol, history in self.closes.items():
                bar = bars.get(vt_symbol)
                history.append(bar.close_price if bar is not None else math.nan)
            if not bars:
                return
            day = next(iter(bars.values())).datetime.date()
            if self.rebalance != "daily" and day not in self.ends:
                return

            lookback = self.lookback
            scores: list[tuple[float, int, str]] = []
            for position, vt_symbol in enumerate(self.vt_symbols):
                history = self.closes[vt_symbol]
                if vt_symbol not in bars or len(history) <= lookback:
                    continue
                now, then = history[-1], history[-1 - lookback]
                if now != now or then != then:
                    continue
                scores.append((now / then - 1, position, vt_symbol))
            scores.sort(key=lambda item: (-item[0], item[1]))
            chosen = {s for score, _, s in scores[:self.top_n] if score > 0 or not self.absolute}

            weight = self.invested / self.top_n
            for vt_symbol, bar in bars.items():
                target = int(self.notional * weight / bar.close_price) if vt_symbol in chosen else 0
                self.set_target(vt_symbol, target)
            self.rebalance_portfolio(bars)
            self.rebalances += 1
            self.put_event()

        def calculate_price(self, vt_symbol: str, direction: Direction, reference: float) -> float:
            if direction == Direction.LONG:
                return reference + self.price_add
            return self.get_pricetick(vt_symbol)

    return MomentumTopNPortfolioStrategy


@dataclass
class PeerRun:
    """What a vnpy backtest produced, in plain Python."""

    trades: list[tuple]  # (date, vt_symbol, "buy"|"sell", price, volume), in vnpy's fill order
    days: list[date]
    equity: list[float]  # capital + cumulative net_pnl, one per day of calculate_result
    load_seconds: float = 0.0
    run_seconds: float = 0.0  # run_backtesting + calculate_result


class VnpyPeer:
    """One vnpy ``BacktestingEngine`` with its data loaded once and any number of runs on it."""

    def __init__(self, vt_symbols: Sequence[str], start: date, end: date, capital: float, rate: float,
                 priceticks: dict[str, float] | None = None) -> None:
        from vnpy.trader.constant import Interval
        from vnpy_portfoliostrategy.backtesting import BacktestingEngine

        self.vt_symbols = list(vt_symbols)
        self.capital = capital
        engine = BacktestingEngine()
        engine.output = lambda msg: None  # vnpy prints every progress line
        engine.set_parameters(
            vt_symbols=self.vt_symbols,
            interval=Interval.DAILY,
            start=datetime(start.year, start.month, start.day),
            end=datetime(end.year, end.month, end.day),
            rates={s: rate for s in self.vt_symbols},
            slippages={s: 0.0 for s in self.vt_symbols},
            sizes={s: 1.0 for s in self.vt_symbols},
            priceticks={s: (priceticks or {}).get(s, default_pricetick(s)) for s in self.vt_symbols},
            capital=capital,
        )
        self.engine = engine
        self.loaded = False

    def load(self) -> float:
        """``load_data`` (vnpy caches bars per symbol and span in-process: the first call is the real cost)."""
        import time

        started = time.perf_counter()
        self.engine.load_data()
        self.loaded = True
        return time.perf_counter() - started

    def strategy_class(self) -> type:
        """The vnpy strategy this peer runs (subclasses run another on the same engine set-up)."""
        return strategy_class()

    def run(self, settings: dict[str, Any], attach: dict[str, Any] | None = None) -> PeerRun:
        """``run_backtesting`` + ``calculate_result`` for one parameter set, on the loaded data.

        ``attach``: attributes set on the strategy instance before the run (inputs that are not vnpy
        parameters, e.g. pre-loaded fundamentals).
        """
        import time

        if not self.loaded:
            self.load()
        engine = self.engine
        engine.clear_data()
        engine.bars = {}
        engine.days = 0
        engine.add_strategy(self.strategy_class(), dict(settings))
        for name, value in (attach or {}).items():
            setattr(engine.strategy, name, value)
        # run_backtesting counts warm-up days by comparing each bar's day of month with the previous
        # datetime (initially 1970-01-01): a first bar on the 1st of a month would be swallowed by the
        # initialisation pass. Start from the day before the first bar so that with load_bars(0) the
        # first bar is already traded.
        if engine.dts:
            engine.datetime = min(engine.dts) - timedelta(days=1)
        started = time.perf_counter()
        engine.run_backtesting()
        frame = engine.calculate_result()
        seconds = time.perf_counter() - started
        if not engine.strategy.trading:
            raise RuntimeError("vnpy backtest did not start trading:\n" + "\n".join(engine.logs[-5:]))

        from vnpy.trader.constant import Direction

        trades = [(t.datetime.date(), t.vt_symbol, "buy" if t.direction == Direction.LONG else "sell",
                   float(t.price), float(t.volume)) for t in engine.trades.values()]
        if frame is None:  # vnpy returns nothing when there was no trade: equity stays at the capital
            days = sorted(engine.daily_results)
            equity = [float(self.capital)] * len(days)
        else:
            days = list(frame.index)
            equity = (frame["net_pnl"].cumsum() + self.capital).tolist()
        return PeerRun(trades, days, equity, run_seconds=seconds)


def run_vnpy(vt_symbols: Sequence[str], start: date, end: date, settings: dict[str, Any], capital: float,
             rate: float, priceticks: dict[str, float] | None = None) -> PeerRun:
    """Load the bars from vnpy's database and run the strategy once."""
    peer = VnpyPeer(vt_symbols, start, end, capital, rate, priceticks)
    load_seconds = peer.load()
    result = peer.run(settings)
    result.load_seconds = load_seconds
    return result
