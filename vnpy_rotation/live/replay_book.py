"""The paper exchange and broker behind the replay gateway: one account trading the stored bars day by day.

Orders are matched on arrival by the backtester's own matcher (:func:`~vnpy_rotation.backtest.matching.match`
on :func:`~vnpy_rotation.backtest.matching.bar_at` / :func:`~vnpy_rotation.backtest.matching.terms_at`), at
the day's open, and whatever does not fill then is cancelled: the stored daily bar has no other price, so
the book acts like an immediate-or-cancel market, exactly as the backtest does. Corporate actions are
applied to the account on ex-dates as the backtest's day loop applies them. The book is saved atomically
after every change so that it survives the trading process being killed, as a real broker's book would.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from ..backtest import kernel
from ..backtest.config import BacktestConfig
from ..backtest.matching import Bar, bar_at, match, terms_at
from ..data.market_data import MarketData
from .ports import CANCELLED, FILLED, REJECTED, BrokerOrder, BrokerTrade
from .state_file import read_json, write_atomic


@dataclass
class BookState:
    cash: float
    day: str = ""  # the session in progress (ISO), "" before the first
    positions: dict[str, float] = field(default_factory=dict)
    bought: dict[str, float] = field(default_factory=dict)  # today's buys (T+1 lock)
    used: dict[str, float] = field(default_factory=dict)  # today's traded volume per symbol
    exhausted: list[str] = field(default_factory=list)  # symbols whose day's volume cap was reached
    orders: dict[str, dict] = field(default_factory=dict)
    trades: list[dict] = field(default_factory=list)
    next_id: int = 1
    actions: list[dict] = field(default_factory=list)  # corporate actions applied to the account


class ReplayBook:
    def __init__(self, config: BacktestConfig, path: Path | None = None) -> None:
        self.config = config
        self.path = path
        saved = read_json(path) if path is not None else None
        self.state = BookState(**saved) if saved else BookState(cash=float(config.capital))
        self.market: MarketData | None = None

    def save(self) -> None:
        if self.path is not None:
            write_atomic(self.path, asdict(self.state))

    # -- the day ------------------------------------------------------------------------------------
    def begin_day(self, day: pd.Timestamp) -> None:
        """Start ``day``'s session: ex-date adjustments first (once, even when called again after a
        restart), then fresh T+1 locks and volume caps."""
        if self.state.day >= day.date().isoformat():
            return
        self._corporate_actions(self._row(day))
        self.state.day = day.date().isoformat()
        self.state.bought, self.state.used, self.state.exhausted = {}, {}, []
        self.save()

    def _corporate_actions(self, i: int) -> None:
        md = self.market
        if not self.config.rules.corporate_actions:
            return
        for j, symbol in enumerate(md.symbols):
            before = self.state.positions.get(symbol, 0.0)
            if before == 0:
                continue
            split, dividend = md.split[i, j], md.dividend[i, j]
            if split != 1.0:
                self.state.positions[symbol] = math.floor(before * split + 1e-9)
                self.state.actions.append({"day": str(md.days[i].date()), "symbol": symbol, "kind": "split",
                                           "before": before, "after": self.state.positions[symbol]})
            if dividend != 0.0:
                amount = before * round(float(dividend), 4)
                amount = kernel.cents(amount) if self.config.rules.round_costs else amount
                self.state.cash += amount
                self.state.actions.append({"day": str(md.days[i].date()), "symbol": symbol, "kind": "dividend",
                                           "before": before, "cash": amount})

    def _row(self, day: pd.Timestamp) -> int:
        return int(self.market.days.get_loc(pd.Timestamp(day)))

    def today(self) -> int:
        return self._row(pd.Timestamp(self.state.day))

    # -- orders -------------------------------------------------------------------------------------
    def submit(self, symbol: str, buy: bool, volume: float, price: float, reference: str
               ) -> tuple[BrokerOrder, BrokerTrade | None]:
        """Match an order at today's open; the unfilled rest is cancelled (refused orders are rejected)."""
        order_id = str(self.state.next_id)
        self.state.next_id += 1
        i, j = self.today(), self.market.symbols.index(symbol)
        terms = terms_at(self.market, i, j, self.config)
        bar = bar_at(self.market, i, j)
        if symbol in self.state.exhausted:
            bar = bar._replace(volume=0.0)
        elif self.config.participation_cap < 1 and bar.volume == bar.volume:
            # what earlier orders today took from the day's volume is no longer there
            bar = bar._replace(volume=bar.volume - self.state.used.get(symbol, 0.0) / self.config.participation_cap)
        held = self.state.positions.get(symbol, 0.0)
        fill = match(buy, volume, Bar(*bar), terms, self.config, held=held,
                     locked=self.state.bought.get(symbol, 0.0), cash=self.state.cash)
        if fill.submitted + 1e-9 < volume:  # T+1 lock, lots or cash: a broker refuses the whole order
            status, filled = REJECTED, 0.0
        elif fill.volume > 0 and not (fill.price <= price + 1e-9 if buy else fill.price >= price - 1e-9):
            status, filled = CANCELLED, 0.0  # the limit does not reach today's price
        else:
            filled = float(fill.volume)
            status = FILLED if filled >= volume - 1e-9 else CANCELLED
        if "participation_cap" in fill.reasons:
            self.state.exhausted.append(symbol)
        trade = None
        if filled > 0:
            cost = fill.commission + fill.stamp_duty + fill.transfer_fee
            self.state.cash += (-fill.value if buy else fill.value) - cost
            self.state.positions[symbol] = held + (filled if buy else -filled)
            if buy:
                self.state.bought[symbol] = self.state.bought.get(symbol, 0.0) + filled
            self.state.used[symbol] = self.state.used.get(symbol, 0.0) + filled
            trade = BrokerTrade(str(len(self.state.trades) + 1), order_id, symbol, buy, float(fill.price), filled,
                                f"{self.state.day}T09:30:00")
            self.state.trades.append(asdict(trade))
        order = BrokerOrder(order_id, reference, symbol, buy, float(volume), float(price), filled, status)
        self.state.orders[order_id] = asdict(order) | {"reasons": list(fill.reasons), "day": self.state.day}
        self.save()
        return order, trade

    def order(self, order_id: str) -> BrokerOrder | None:
        data = self.state.orders.get(order_id)
        if data is None:
            return None
        return BrokerOrder(**{k: data[k] for k in BrokerOrder.__dataclass_fields__})

    def trades(self) -> list[BrokerTrade]:
        return [BrokerTrade(**t) for t in self.state.trades]

    def equity(self, i: int) -> float:
        md = self.market
        value = sum(v * md.last_close[i, md.symbols.index(s)] for s, v in self.state.positions.items()
                    if v and s in md.symbols)
        return self.state.cash + value
