"""The live cycle's :class:`~vnpy_rotation.live.ports.BrokerPort` over vnpy's MainEngine and one gateway."""

from __future__ import annotations

from typing import Callable, Iterable

from vnpy.trader.constant import Direction, Exchange, Offset, OrderType, Status
from vnpy.trader.engine import MainEngine
from vnpy.trader.object import OrderData, OrderRequest, TradeData

from ...live.ports import ACTIVE, CANCELLED, FILLED, REJECTED, SUBMITTING, BrokerOrder, BrokerTrade

STATES = {Status.SUBMITTING: SUBMITTING, Status.NOTTRADED: ACTIVE, Status.PARTTRADED: ACTIVE,
          Status.ALLTRADED: FILLED, Status.CANCELLED: CANCELLED, Status.REJECTED: REJECTED}


def broker_order(order: OrderData) -> BrokerOrder:
    return BrokerOrder(order.vt_orderid, order.reference, order.vt_symbol, order.direction == Direction.LONG,
                       float(order.volume), float(order.price), float(order.traded), STATES[order.status])


def broker_trade(trade: TradeData) -> BrokerTrade:
    stamp = trade.datetime.isoformat() if trade.datetime else ""
    return BrokerTrade(trade.vt_tradeid, trade.vt_orderid, trade.vt_symbol, trade.direction == Direction.LONG,
                       float(trade.price), float(trade.volume), stamp)


class VnpyBroker:
    """Orders go through ``MainEngine.send_order`` (so vnpy_riskmanager checks each one); the book is
    read from the OMS engine's caches, which the gateway's pushes keep current."""

    def __init__(self, main_engine: MainEngine, gateway_name: str,
                 on_refused: Callable[[OrderRequest], None] = lambda req: None,
                 symbols: Callable[[], Iterable[str] | None] = lambda: None) -> None:
        self.main_engine = main_engine
        self.gateway_name = gateway_name
        self.on_refused = on_refused  # an order refused before reaching the gateway (vnpy_riskmanager)
        # several strategies in one account: each sees only the holdings of its own symbols (None: all of them)
        self.symbols = symbols

    def send(self, symbol: str, buy: bool, volume: float, price: float, reference: str) -> str:
        code, exchange = symbol.split(".")
        req = OrderRequest(symbol=code, exchange=Exchange(exchange), direction=Direction.LONG if buy else Direction.SHORT,
                           type=OrderType.LIMIT, volume=volume, price=price, offset=Offset.NONE, reference=reference)
        order_id = self.main_engine.send_order(req, self.gateway_name)
        if not order_id:
            self.on_refused(req)
        return order_id

    def cancel(self, order_id: str) -> None:
        order = self.main_engine.get_order(order_id)
        if order is not None and order.is_active():
            self.main_engine.cancel_order(order.create_cancel_request(), order.gateway_name)

    def orders(self) -> list[BrokerOrder]:
        return [broker_order(o) for o in self.main_engine.get_all_orders() if o.gateway_name == self.gateway_name]

    def trades_of(self, order_id: str) -> list[BrokerTrade]:
        return [broker_trade(t) for t in self.main_engine.get_all_trades() if t.vt_orderid == order_id]

    def holdings(self) -> dict[str, float]:
        held: dict[str, float] = {}
        for p in self.main_engine.get_all_positions():
            if p.gateway_name == self.gateway_name and p.direction in (Direction.NET, Direction.LONG):
                held[p.vt_symbol] = held.get(p.vt_symbol, 0.0) + float(p.volume)
        mine = self.symbols()
        if mine is not None:
            own = set(mine)
            held = {s: v for s, v in held.items() if s in own}
        return held

    def cash(self) -> float:
        accounts = [a for a in self.main_engine.get_all_accounts() if a.gateway_name == self.gateway_name]
        return float(accounts[0].available) if accounts else 0.0
