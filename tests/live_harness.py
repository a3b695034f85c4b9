"""A differential harness for the live risk stage: the rotation engine's steps per session, without vnpy.

:func:`live_run` drives :class:`~vnpy_rotation.live.cycle.ExecutionCycle` and its
:class:`~vnpy_rotation.live.risk_stage.RiskBook` day by day over a hand-written market, with a
:class:`~vnpy_rotation.live.replay_book.ReplayBook` as the broker (the backtest's own matcher at the open),
as :class:`~vnpy_rotation.apps.rotation.engine.RotationEngine` does: the open (twice: a restart repeats
it), a retry, the deadline, then at the close the book is created (first close with today's bar) or
aligned to the day's universe and rules, the session closes with the day's risk inputs, and the plan row
decided on that close is adopted. :func:`backtest_run` runs :func:`~vnpy_rotation.backtest.engine.simulate`
on the same market and plan; both return trades as ``day, symbol, buy, volume, price`` rows, so a test
compares them with ``==``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import partial
from typing import Sequence

import pandas as pd

from vnpy_rotation.backtest.config import BacktestConfig
from vnpy_rotation.backtest.engine import TargetPlan, simulate
from vnpy_rotation.backtest.result import BacktestResult
from vnpy_rotation.data.market_data import MarketData
from vnpy_rotation.live.cycle import ExecutionCycle, ExecutionSettings, RiskInputs
from vnpy_rotation.live.plan import OrderPlan, StrategyState
from vnpy_rotation.live.ports import ACTIVE, CANCELLED, BrokerOrder, BrokerTrade
from vnpy_rotation.live.replay_book import ReplayBook
from vnpy_rotation.live.risk_stage import RiskBook
from vnpy_rotation.live.sizing import Quote
from vnpy_rotation.live.terms import terms_on

TRADE_COLUMNS = ["day", "symbol", "buy", "volume", "price"]


class BookBroker:
    """The cycle's broker port on a :class:`ReplayBook`; order and trade events are delivered after ``send``
    returns (as a gateway's callbacks arrive), by :meth:`drain`.

    ``resting``: an order the book refuses at a price limit without any fill rests in the exchange's queue
    (ACTIVE) until cancelled, as on a real exchange, instead of being cancelled at once."""

    def __init__(self, book: ReplayBook, resting: bool = False) -> None:
        self.book, self.resting = book, resting
        self.events: list[BrokerOrder | BrokerTrade] = []
        self.queued: dict[str, BrokerOrder] = {}  # resting orders, by id

    def send(self, symbol: str, buy: bool, volume: float, price: float, reference: str) -> str:
        order, trade = self.book.submit(symbol, buy, volume, price, reference)
        reasons = self.book.state.orders[order.order_id]["reasons"]
        if self.resting and not order.traded and {"limit_up", "limit_down"} & set(reasons):
            order = BrokerOrder(order.order_id, reference, symbol, buy, volume, price, 0.0, ACTIVE)
            self.queued[order.order_id] = order
        if trade is not None:
            self.events.append(trade)
        self.events.append(order)
        return order.order_id

    def cancel(self, order_id: str) -> None:
        order = self.queued.pop(order_id, None)
        if order is not None:
            self.events.append(BrokerOrder(order.order_id, order.reference, order.symbol, order.buy, order.volume,
                                           order.price, 0.0, CANCELLED))

    def orders(self) -> list[BrokerOrder]:
        return [self.queued.get(k) or self.book.order(k) for k in self.book.state.orders]

    def trades_of(self, order_id: str) -> list[BrokerTrade]:
        return [t for t in self.book.trades() if t.order_id == order_id]

    def holdings(self) -> dict[str, float]:
        return {s: v for s, v in self.book.state.positions.items() if v}

    def cash(self) -> float:
        return self.book.state.cash

    def drain(self, cycle: ExecutionCycle) -> None:
        while self.events:
            item = self.events.pop(0)
            if isinstance(item, BrokerTrade):
                cycle.on_trade(item)
            else:
                cycle.on_order(item)


def quotes(md: MarketData, i: int) -> dict[str, Quote]:
    """Each symbol's quote at day ``i``'s open, as the engine builds it from the gateway's tick."""
    def positive(value: float) -> float:
        return float(value) if math.isfinite(value) and value > 0 else math.nan

    out = {}
    for j, symbol in enumerate(md.symbols):
        trading = not md.suspended[i, j] and math.isfinite(md.open[i, j])
        out[symbol] = Quote(float(md.open[i, j]) if trading else math.nan, positive(md.limit_up[i, j]),
                            positive(md.limit_down[i, j]), positive(md.last_close[i - 1, j]) if i else math.nan)
    return out


@dataclass
class LiveRun:
    trades: pd.DataFrame  # TRADE_COLUMNS, in the order they happened
    state: StrategyState  # the strategy's state after the last close
    summaries: list[dict] = field(default_factory=list)  # each close's summary


def live_run(md: MarketData, plan: TargetPlan, config: BacktestConfig, *, roundtrip: bool = False,
             no_bar_days: Sequence[str] = (), universe: dict[str, list[str]] | None = None,
             resting: bool = False) -> LiveRun:
    """The engine's steps per session over ``md``, executing ``plan``'s rows.

    ``roundtrip``: between every step the state goes through its JSON (as written to disk) and
    :meth:`~ExecutionCycle.recover` (a restart). ``no_bar_days``: closes where the decision found no bar for
    today (no risk inputs, no plan). ``universe``: the strategy's symbols from the close of each named day on
    (default: all of ``md``'s from the start); a plan row names only these. ``resting``: see
    :class:`BookBroker`."""
    book = ReplayBook(config)
    book.market = md
    broker = BookBroker(book, resting)
    settings = ExecutionSettings(config=config, tolerance_bps=0.0)
    cycle = ExecutionCycle("s", settings, broker, lambda s, d: terms_on(s, d, config), StrategyState(),
                           lambda state: None)
    frame = plan.frame.reindex(columns=list(md.symbols))
    symbols = list(md.symbols) if not universe else []

    def restart() -> None:
        if roundtrip:
            cycle.state = StrategyState.from_json(json.loads(json.dumps(cycle.state.to_json())))
            cycle.recover()

    summaries = []
    for i, ts in enumerate(md.days):
        day = ts.date()
        book.begin_day(ts)
        q = quotes(md, i)
        # the open twice (a restart repeats it), a resubmission round, the deadline
        for step in (partial(cycle.open, day, q), partial(cycle.open, day, q), partial(cycle.retry, q),
                     cycle.deadline):
            restart()
            step()
            broker.drain(cycle)
        restart()
        symbols = (universe or {}).get(day.isoformat(), symbols)
        closes = {s: float(md.last_close[i, j]) for j, s in enumerate(md.symbols)}
        if day.isoformat() in no_bar_days:
            summaries.append(cycle.close(day, closes, None))
            continue
        column = [md.symbols.index(s) for s in symbols]
        inputs = RiskInputs({s: float(md.last_close[i, j]) for s, j in zip(symbols, column)},
                            {s: float(md.split[i, j]) for s, j in zip(symbols, column)},
                            {s: float(md.dividend[i, j]) for s, j in zip(symbols, column)})
        risk = cycle.state.risk
        if risk is None:
            cycle.state.risk = RiskBook.create(symbols, plan.risk, config.risk)
        elif hasattr(risk, "align"):
            risk.align(symbols, plan.risk, config.risk)
        elif plan.risk is not None:  # the engine before RiskBook.align: only the rules followed
            risk.rules = plan.risk.kernel_args()
        restart()
        summaries.append(cycle.close(day, closes, inputs))
        if ts in frame.index and not frame.loc[ts].isna().all():
            row = frame.loc[ts, symbols]
            cycle.adopt(OrderPlan("s", day.isoformat(), symbols, [float(v) for v in row.to_numpy()],
                                  plan.kind == "weight", plan.reason, {}))
    trades = pd.DataFrame(book.state.trades, columns=list(BrokerTrade.__dataclass_fields__))
    trades["day"] = trades["time"].str[:10]
    return LiveRun(trades[TRADE_COLUMNS].reset_index(drop=True), cycle.state, summaries)


def backtest_run(md: MarketData, plan: TargetPlan, config: BacktestConfig) -> tuple[pd.DataFrame, BacktestResult]:
    """The backtest's trades (TRADE_COLUMNS and ``reason``) and result."""
    result = simulate(md, plan, config).to_result()
    t = result.trades
    trades = pd.DataFrame({"day": t["datetime"].dt.strftime("%Y-%m-%d"), "symbol": t["vt_symbol"],
                           "buy": t["direction"] == "buy", "volume": t["volume"].astype(float),
                           "price": t["price"].astype(float), "reason": t["reason"]})
    return trades.reset_index(drop=True), result


def rows(trades: pd.DataFrame) -> list[tuple]:
    """Trades as comparable ``(day, symbol, buy, volume, price)`` tuples."""
    return [(d, s, bool(b), float(v), round(float(p), 6)) for d, s, b, v, p in trades[TRADE_COLUMNS].itertuples(
        index=False)]
