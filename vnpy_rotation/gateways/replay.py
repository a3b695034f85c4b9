"""ReplayGateway: a real vnpy ``BaseGateway`` that trades the database's daily bars as a paper account.

It serves contracts and ticks for the subscribed symbols day by day (:meth:`ReplayGateway.begin_day` at
the open, :meth:`ReplayGateway.end_day` at the close) and fills orders through :class:`ReplayBook`, i.e.
with the backtester's matcher and rules. A clock drives the days: ``run.py trade --gateway replay`` or
the replay buttons of the GUI. Trouble for a canary drill (:class:`~vnpy_rotation.live.trouble.Trouble`:
extra slippage, rejections, partial fills) comes from the ``trouble`` attribute or the "故障注入" setting.
"""

from __future__ import annotations

import math
import os
import signal
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
from vnpy.event import EventEngine
from vnpy.trader.constant import Direction, Exchange, Offset, OrderType, Product, Status
from vnpy.trader.gateway import BaseGateway
from vnpy.trader.object import (
    AccountData,
    CancelRequest,
    ContractData,
    OrderData,
    OrderRequest,
    PositionData,
    SubscribeRequest,
    TickData,
    TradeData,
)

from ..backtest.config import BacktestConfig
from ..backtest.loader import load_market
from ..live.ports import ACTIVE, CANCELLED, FILLED, REJECTED, BrokerOrder, BrokerTrade
from ..live.replay_book import ReplayBook
from ..live.trouble import SETTING, Trouble, trouble_from_setting
from ..market.instruments import default_registry

SHANGHAI = ZoneInfo("Asia/Shanghai")
STATUS = {FILLED: Status.ALLTRADED, CANCELLED: Status.CANCELLED, REJECTED: Status.REJECTED}
OPEN_TIME, CLOSE_TIME = time(9, 30), time(15, 0)


class ReplayGateway(BaseGateway):
    """Paper trading on stored bars with the backtester's A-share rules."""

    default_name = "REPLAY"
    default_setting: dict[str, str | int | float | bool] = {
        "初始资金": 1_000_000.0,
        "开始日期": "",
        "结束日期": "",
        "账本文件": "",  # where the paper account is kept ("": memory only)
        SETTING: "",  # trouble to inject, a Trouble as a JSON object, e.g. {"reject_every": 2} ("": none)
    }
    exchanges = [Exchange.SSE, Exchange.SZSE]

    def __init__(self, event_engine: EventEngine, gateway_name: str) -> None:
        super().__init__(event_engine, gateway_name)
        self.config = BacktestConfig()  # the daemon sets the strategy's own before connecting
        self.trouble: Trouble | None = None  # a canary drill sets it before connecting (or the setting does)
        self.book: ReplayBook | None = None
        self.symbols: list[str] = []
        self.start: date | None = None
        self.end: date | None = None
        self._loaded: tuple[str, ...] = ()

    # -- BaseGateway --------------------------------------------------------------------------------
    def connect(self, setting: dict) -> None:
        self.trouble = trouble_from_setting(setting.get(SETTING)) or self.trouble  # a bad one: nothing opened
        capital = float(setting.get("初始资金", self.config.capital))
        self.config = self.config.model_copy(update={"capital": capital})
        self.start = _date(setting.get("开始日期"))
        self.end = _date(setting.get("结束日期"))
        path = str(setting.get("账本文件") or "")
        self.book = ReplayBook(self.config, Path(path) if path else None, self.trouble)
        self.write_log(f"回放账户已连接, 资金 {self.book.state.cash:,.2f}")
        for data in self.book.state.orders.values():  # a resumed book reports what it holds, like a broker
            self.on_order(self._order_data(BrokerOrder(**{k: data[k] for k in BrokerOrder.__dataclass_fields__})))
        for trade in self.book.trades():
            self.on_trade(self._trade_data(trade))
        self.query_account()
        self.query_position()

    def close(self) -> None:
        pass

    def subscribe(self, req: SubscribeRequest) -> None:
        vt_symbol = f"{req.symbol}.{req.exchange.value}"
        if vt_symbol in self.symbols:
            return
        instrument = default_registry().by_vt_symbol(vt_symbol)
        self.symbols.append(vt_symbol)
        self.on_contract(ContractData(
            symbol=req.symbol, exchange=req.exchange, name=instrument.name or req.symbol,
            product=Product.EQUITY if instrument.is_stock else Product.FUND, size=1,
            pricetick=instrument.rules.tick, min_volume=instrument.rules.lot, gateway_name=self.gateway_name))

    def send_order(self, req: OrderRequest) -> str:
        vt_symbol = f"{req.symbol}.{req.exchange.value}"
        buy = req.direction == Direction.LONG
        if self.book is None or self.book.market is None or vt_symbol not in self.book.market.symbols:
            order = req.create_order_data(f"x{id(req)}", self.gateway_name)
            order.status = Status.REJECTED
            self.on_order(order)
            return order.vt_orderid
        _fault("before")
        order, trade = self.book.submit(vt_symbol, buy, req.volume, req.price, req.reference)
        _fault("after")
        if trade is not None:  # the fill first, then the final status: a buyer sees its cash spent
            self.on_trade(self._trade_data(trade))
        self.on_order(self._order_data(order))
        self.query_account()
        self.query_position()
        return f"{self.gateway_name}.{order.order_id}"

    def cancel_order(self, req: CancelRequest) -> None:
        order = self.book.cancel(req.orderid) if self.book else None
        if order is not None:  # only trouble leaves an order working; any other is final on arrival
            self.on_order(self._order_data(order))

    def query_account(self) -> None:
        if self.book is None:
            return
        balance = self.book.state.cash
        if self.book.market is not None and self.book.state.day:
            balance = self.book.equity(self.book.today())
        account = AccountData(accountid="REPLAY", balance=balance, frozen=0.0, gateway_name=self.gateway_name)
        account.available = self.book.state.cash  # as vnpy_xt reports it: cash, not total assets
        self.on_account(account)

    def query_position(self) -> None:
        if self.book is None:
            return
        for vt_symbol, volume in self.book.state.positions.items():
            symbol, exchange = vt_symbol.split(".")
            bought = self.book.state.bought.get(vt_symbol, 0.0)
            self.on_position(PositionData(symbol=symbol, exchange=Exchange(exchange), direction=Direction.NET,
                                          volume=volume, yd_volume=max(volume - bought, 0.0),
                                          gateway_name=self.gateway_name))

    # -- the replay clock ---------------------------------------------------------------------------
    def sessions(self) -> list[pd.Timestamp]:
        """The trading days to replay (the subscribed symbols' days within the connect setting's span)."""
        self._load()
        days = self.book.market.days
        keep = (days >= pd.Timestamp(self.start or days[0])) & (days <= pd.Timestamp(self.end or days[-1]))
        return list(days[keep])

    def begin_day(self, day: pd.Timestamp) -> None:
        """Open ``day``: corporate actions on the account, then every subscribed symbol's opening tick."""
        self._load()
        for order in self.book.begin_day(day):  # yesterday's working orders expired overnight
            self.on_order(self._order_data(order))
        i = self.book.today()
        self._push_ticks(i, opening=True)
        self.query_account()
        self.query_position()

    def end_day(self, day: pd.Timestamp) -> None:
        """Close ``day``: closing ticks, the account and positions at the close."""
        self._push_ticks(self.book.today(), opening=False)
        self.query_account()
        self.query_position()

    def market_clock(self) -> datetime:
        """The replay's simulated time, which the rotation engine stamps its orders with: the open of the book's
        day (the book fills at the open and stamps its fills so); the wall clock before a day has begun."""
        if self.book is None or not self.book.state.day:
            return datetime.now(SHANGHAI)
        return datetime.combine(date.fromisoformat(self.book.state.day), OPEN_TIME, SHANGHAI)

    def _load(self) -> None:
        if self.book.market is not None and tuple(self.symbols) == self._loaded:
            return
        if not self.symbols:
            raise RuntimeError("replay: subscribe to the symbols to trade first")
        start = self.start - pd.Timedelta(days=20) if self.start else None  # the first day's limits need a close
        self.book.market = load_market(list(self.symbols), start, self.end)
        self._loaded = tuple(self.symbols)

    def _push_ticks(self, i: int, opening: bool) -> None:
        md = self.book.market
        day = md.days[i].date()
        stamp = datetime.combine(day, OPEN_TIME if opening else CLOSE_TIME, SHANGHAI)
        previous = md.last_close[i - 1] if i > 0 else [math.nan] * len(md.symbols)
        for j, vt_symbol in enumerate(md.symbols):
            symbol, exchange = vt_symbol.split(".")
            trading = bool(~md.suspended[i, j]) and math.isfinite(md.open[i, j])
            open_price = float(md.open[i, j]) if trading else 0.0
            last = open_price if opening else float(md.last_close[i, j])
            self.on_tick(TickData(
                symbol=symbol, exchange=Exchange(exchange), datetime=stamp, gateway_name=self.gateway_name,
                open_price=open_price, last_price=last if math.isfinite(last) else 0.0,
                high_price=float(md.high[i, j]) if trading and not opening else open_price,
                low_price=float(md.low[i, j]) if trading and not opening else open_price,
                volume=float(md.volume[i, j]) if trading and not opening else 0.0,
                turnover=_finite(md.turnover[i, j]) if trading and not opening else 0.0,
                limit_up=_finite(md.limit_up[i, j]), limit_down=_finite(md.limit_down[i, j]),
                pre_close=_finite(previous[j])))

    def _order_data(self, order: BrokerOrder) -> OrderData:
        symbol, exchange = order.symbol.split(".")
        return OrderData(symbol=symbol, exchange=Exchange(exchange), orderid=order.order_id,
                         type=OrderType.LIMIT, direction=Direction.LONG if order.buy else Direction.SHORT,
                         offset=Offset.NONE, price=order.price, volume=order.volume, traded=order.traded,
                         status=_status(order), reference=order.reference, gateway_name=self.gateway_name)

    def _trade_data(self, trade: BrokerTrade) -> TradeData:
        symbol, exchange = trade.symbol.split(".")
        return TradeData(symbol=symbol, exchange=Exchange(exchange), orderid=trade.order_id, tradeid=trade.trade_id,
                         direction=Direction.LONG if trade.buy else Direction.SHORT, offset=Offset.NONE,
                         price=trade.price, volume=trade.volume,
                         datetime=datetime.fromisoformat(trade.time).replace(tzinfo=SHANGHAI),
                         gateway_name=self.gateway_name)


# Fault injection for crash tests: ROTATION_REPLAY_KILL="before:N" / "after:N" kills this process with SIGKILL
# when the N-th order of the process is about to reach the paper book / has just been booked, i.e. in the
# two windows where a trading process can die with an order in flight.
_KILL = os.environ.get("ROTATION_REPLAY_KILL", "")
_sent = {"before": 0, "after": 0}


def _fault(point: str) -> None:
    if not _KILL:
        return
    where, _, count = _KILL.partition(":")
    _sent[point] += 1
    if where == point and _sent[point] == int(count):
        os.kill(os.getpid(), signal.SIGKILL)


def _status(order: BrokerOrder) -> Status:
    if order.status == ACTIVE:  # left working by trouble
        return Status.PARTTRADED if order.traded > 0 else Status.NOTTRADED
    return STATUS[order.status]


def _date(text: object) -> date | None:
    return date.fromisoformat(str(text)) if text else None


def _finite(value: float) -> float:
    return float(value) if math.isfinite(value) else 0.0
