"""The paper exchange and broker behind the replay gateway: one account trading the stored bars day by day.

Orders are matched on arrival by the backtester's own matcher (:func:`~vnpy_rotation.backtest.matching.match`
on :func:`~vnpy_rotation.backtest.matching.bar_at` / :func:`~vnpy_rotation.backtest.matching.terms_at`), at
the day's open, and whatever does not fill then is cancelled: the stored daily bar has no other price, so
the book acts like an immediate-or-cancel market, exactly as the backtest does. With a
:class:`~vnpy_rotation.live.trouble.Trouble` the matcher's fill is then worsened on purpose (a canary drill);
an order it leaves partly unfilled keeps working until cancelled (or expires at the next session's start).
Corporate actions are
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
from ..backtest.matching import Bar, bar_at, fees, match, terms_at
from ..data.market_data import MarketData
from .ports import ACTIVE, CANCELLED, FILLED, REJECTED, BrokerOrder, BrokerTrade
from .state_file import read_json, write_atomic
from .trouble import REJECTED_BY_TROUBLE, Trouble, disturb


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
    trouble_orders: int = 0  # orders the trouble covered so far (a resumed drill rejects the same ones)


class ReplayBook:
    def __init__(self, config: BacktestConfig, path: Path | None = None, trouble: Trouble | None = None) -> None:
        self.config = config
        self.path = path
        self.trouble = trouble
        saved = read_json(path) if path is not None else None
        self.state = BookState(**saved) if saved else BookState(cash=float(config.capital))
        self.market: MarketData | None = None

    def save(self) -> None:
        if self.path is not None:
            write_atomic(self.path, asdict(self.state))

    # -- the day ------------------------------------------------------------------------------------
    def begin_day(self, day: pd.Timestamp) -> list[BrokerOrder]:
        """Start ``day``'s session: ex-date adjustments first (once, even when called again after a
        restart), then fresh T+1 locks and volume caps. Orders still working from an earlier session are
        day orders: they expire (cancelled), and are returned so the gateway can report them."""
        if self.state.day >= day.date().isoformat():
            return []
        expired = [self._cancel(order_id) for order_id, data in self.state.orders.items() if data["status"] == ACTIVE]
        self._corporate_actions(self._row(day))
        self.state.day = day.date().isoformat()
        self.state.bought, self.state.used, self.state.exhausted = {}, {}, []
        self.save()
        return expired

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
        """Match an order at today's open; the unfilled rest is cancelled (refused orders are rejected).
        Trouble, where it covers the order, then rejects it or worsens its fill (see :mod:`.trouble`)."""
        order_id = str(self.state.next_id)
        self.state.next_id += 1
        trouble = self.trouble if self.trouble is not None and self.trouble.covers(self.state.day, symbol) else None
        if trouble is not None:
            self.state.trouble_orders += 1
            if trouble.rejects(self.state.trouble_orders):
                return self._book(BrokerOrder(order_id, reference, symbol, buy, float(volume), float(price), 0.0,
                                              REJECTED), (REJECTED_BY_TROUBLE,), None)
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
        reasons = tuple(fill.reasons)
        fill_price, value, cost = float(fill.price), fill.value, fill.commission + fill.stamp_duty + fill.transfer_fee
        if fill.submitted + 1e-9 < volume:  # T+1 lock, lots or cash: a broker refuses the whole order
            status, filled = REJECTED, 0.0
        elif fill.volume > 0 and not (fill.price <= price + 1e-9 if buy else fill.price >= price - 1e-9):
            status, filled = CANCELLED, 0.0  # the limit does not reach today's price
        else:
            filled = float(fill.volume)
            status = FILLED if filled >= volume - 1e-9 else CANCELLED
        if trouble is not None and filled > 0:
            hit = disturb(trouble, buy, filled, fill_price, price, terms, bar.limit_up, bar.limit_down, held,
                          self.config.rules.lots)
            reasons += hit.reasons
            filled, fill_price = hit.volume, hit.price
            if hit.resting:
                status = ACTIVE
            value, cost = 0.0, 0.0
            if filled > 0:  # the fees of the value actually filled, by the rule the matcher applies
                round_costs = self.config.rules.round_costs
                value = kernel.cents(filled * fill_price) if round_costs else filled * fill_price
                cost = sum(fees(value, not buy, terms, round_costs))
            if buy and filled > 0 and self.config.rules.cash_check and value + cost > self.state.cash + 1e-9:
                status, filled, reasons = REJECTED, 0.0, (*reasons, "insufficient_cash")  # as the matcher refuses
        if "participation_cap" in fill.reasons:
            self.state.exhausted.append(symbol)
        trade = None
        if filled > 0:
            self.state.cash += (-value if buy else value) - cost
            self.state.positions[symbol] = held + (filled if buy else -filled)
            if buy:
                self.state.bought[symbol] = self.state.bought.get(symbol, 0.0) + filled
            self.state.used[symbol] = self.state.used.get(symbol, 0.0) + filled
            trade = BrokerTrade(str(len(self.state.trades) + 1), order_id, symbol, buy, fill_price, filled,
                                f"{self.state.day}T09:30:00")
        order = BrokerOrder(order_id, reference, symbol, buy, float(volume), float(price), filled, status)
        return self._book(order, reasons, trade)

    def _book(self, order: BrokerOrder, reasons: tuple[str, ...], trade: BrokerTrade | None
              ) -> tuple[BrokerOrder, BrokerTrade | None]:
        """Write the order (and its trade) down and save the book."""
        if trade is not None:
            self.state.trades.append(asdict(trade))
        self.state.orders[order.order_id] = asdict(order) | {"reasons": list(reasons), "day": self.state.day}
        self.save()
        return order, trade

    def cancel(self, order_id: str) -> BrokerOrder | None:
        """Cancel a working order (only trouble leaves one working); a final one is returned unchanged."""
        data = self.state.orders.get(order_id)
        if data is None or data["status"] != ACTIVE:
            return self.order(order_id)
        order = self._cancel(order_id)
        self.save()
        return order

    def _cancel(self, order_id: str) -> BrokerOrder:
        self.state.orders[order_id]["status"] = CANCELLED
        order = self.order(order_id)
        assert order is not None
        return order

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
