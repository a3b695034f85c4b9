"""vnpy_xt 1.4.6's real ``XtGateway`` in a real vnpy ``MainEngine``, over the fake xtquant.

The fake (tests/fakes/fake_xttrader.py, fake_xtquant.py) stands in for MiniQMT and the broker;
callbacks arrive on the client's own thread, as with the real client. Besides the happy paths, some
tests pin down how vnpy_xt really behaves where it is surprising, so a change is noticed:

* status 51 已报待撤 / 52 部成待撤 (cancel requested, not confirmed) is reported as CANCELLED, a final
  vnpy status; a fill or a refused cancel can follow it;
* a push that overtakes ``send_order``'s own SUBMITTING update is overwritten by it;
* after a lost MiniQMT link vnpy_xt reconnects once, from the callback thread, and never again;
  on a successful reconnect every trade of the day is published again;
* any order of the account with an ``order_remark`` is adopted as a vnpy order;
* product type by code prefix: ChiNext stocks (300xxx), 588xxx ETFs and convertible bonds come
  out as INDEX; contracts have min_volume 1 (no board lot);
* times are read in the machine's local zone and labelled Asia/Shanghai;
* tick volume is in lots (XT's ``volume``), the position's ``frozen`` includes shares bought today;
* a subscribe failure still leaves the gateway marked connected.
"""

from __future__ import annotations

import ast
import copy
import inspect
import os
import sys
import threading
import time
from collections import defaultdict
from datetime import datetime, timedelta
from importlib.machinery import PathFinder
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from fakes import fake_xttrader
from fakes.fake_xttrader import C, wait_until

fake_xt_trading = fake_xttrader.fake_xt_trading  # the fixture, visible to this module's tests

CN = ZoneInfo("Asia/Shanghai")
ACCOUNT = "8880001234"
TIMEOUT = 3.0
EVENT_FLUSH = "eTestFlush"
STOCK_SECTORS = ["沪深A股", "沪深转债", "沪深ETF", "沪深指数", "京市A股"]


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------
class Events:
    """Every vnpy event of interest, as copies taken when the EventEngine handled them."""

    def __init__(self, event_engine) -> None:
        from vnpy.trader.event import (EVENT_ACCOUNT, EVENT_CONTRACT, EVENT_LOG, EVENT_ORDER, EVENT_POSITION,
                                       EVENT_TICK, EVENT_TRADE)

        self.event_engine = event_engine
        self._lock = threading.Lock()
        self._items: dict[str, list] = defaultdict(list)
        for event_type in (EVENT_ACCOUNT, EVENT_CONTRACT, EVENT_LOG, EVENT_ORDER, EVENT_POSITION, EVENT_TICK,
                           EVENT_TRADE):
            event_engine.register(event_type, self._record)
        event_engine.register(EVENT_FLUSH, lambda event: event.data.set())

    def _record(self, event) -> None:
        with self._lock:
            self._items[event.type].append(copy.copy(event.data))

    def of(self, event_type: str) -> list:
        with self._lock:
            return list(self._items[event_type])

    def flush(self) -> None:
        """Return once every event put so far has been handled."""
        from vnpy.event import Event

        done = threading.Event()
        self.event_engine.put(Event(EVENT_FLUSH, done))
        assert done.wait(TIMEOUT), "the event engine did not get through its queue"

    def orders(self, vt_orderid: str) -> list:
        from vnpy.trader.event import EVENT_ORDER

        return [o for o in self.of(EVENT_ORDER) if o.vt_orderid == vt_orderid]

    def path(self, vt_orderid: str) -> list:
        """The order's vnpy statuses, repeats collapsed."""
        path: list = []
        for order in self.orders(vt_orderid):
            if not path or path[-1] != order.status:
                path.append(order.status)
        return path

    def trades(self, vt_orderid: str | None = None) -> list:
        from vnpy.trader.event import EVENT_TRADE

        return [t for t in self.of(EVENT_TRADE) if vt_orderid is None or t.vt_orderid == vt_orderid]

    def last(self, event_type: str):
        items = self.of(event_type)
        assert items, f"no {event_type} event"
        return items[-1]


def settle(xt) -> None:
    """Every callback queued in the fake has run and vnpy handled every event it caused."""
    xt.broker.wait_delivered()
    xt.events.flush()


def connect(xt, **overrides: str) -> None:
    """MainEngine.connect, then wait for the gateway's connect thread and what it asked for."""
    xt.main_engine.connect(xt.broker.gateway_setting(**overrides), "XT")
    xt.gateway.thread.join(TIMEOUT)
    assert not xt.gateway.thread.is_alive()
    settle(xt)


def send(xt, symbol: str = "510300", exchange=None, direction=None, volume: float = 1000, price: float = 4.0,
         order_type=None, offset=None, reference: str = "test") -> str:
    from vnpy.trader.constant import Direction, Exchange, Offset, OrderType
    from vnpy.trader.object import OrderRequest

    req = OrderRequest(symbol=symbol, exchange=exchange or Exchange.SSE, direction=direction or Direction.LONG,
                       type=order_type or OrderType.LIMIT, volume=volume, price=price, offset=offset or Offset.NONE,
                       reference=reference)
    return xt.main_engine.send_order(req, "XT")


def cancel(xt, vt_orderid: str) -> None:
    order = xt.main_engine.get_order(vt_orderid)
    xt.main_engine.cancel_order(order.create_cancel_request(), "XT")


def remark(vt_orderid: str) -> str:
    return vt_orderid.split(".", 1)[1]


# ------------------------------------------------------------------------------------------------
# fixtures
# ------------------------------------------------------------------------------------------------
@pytest.fixture
def xt(fake_xt_trading, monkeypatch, tmp_path):
    """A MainEngine with vnpy_xt's XtGateway added (not connected) over a broker holding 10,000 510300."""
    broker = fake_xt_trading
    market = broker.market
    market.add_instrument("510300.SH", "沪深300ETF", sector="沪深ETF", pre_close=4.0)
    market.add_instrument("159915.SZ", "创业板ETF", sector="沪深ETF", pre_close=2.0)
    market.add_instrument("600000.SH", "浦发银行", sector="沪深A股", pre_close=10.0)
    market.add_instrument("000001.SZ", "平安银行", sector="沪深A股", pre_close=11.0)
    broker.set_position("510300.SH", 10_000, open_price=3.9)

    from vnpy.event import EventEngine
    from vnpy.trader.engine import MainEngine
    from vnpy_xt import XtGateway  # imported after the fake is installed: binds to it

    # vnpy_xt takes its xtdc file lock in the connect thread and never releases it; filelock's locks
    # are thread-local, so nobody else can: give each test its own lock file.
    monkeypatch.setattr(sys.modules["vnpy_xt.xt_gateway"].XtMdApi, "lock_filepath", tmp_path / "xt_lock")
    cwd = os.getcwd()
    event_engine = EventEngine()
    events = Events(event_engine)
    main_engine = MainEngine(event_engine)  # chdirs into the (temporary) runtime folder
    gateway = main_engine.add_gateway(XtGateway)
    try:
        yield SimpleNamespace(broker=broker, market=market, main_engine=main_engine, gateway=gateway, events=events,
                              module=sys.modules["vnpy_xt.xt_gateway"])
    finally:
        try:
            if gateway.thread is not None:
                gateway.thread.join(TIMEOUT)
            main_engine.close()
        finally:
            os.chdir(cwd)


@pytest.fixture(params=["Asia/Shanghai", "UTC"])
def machine_zone(request):
    before = os.environ.get("TZ")
    os.environ["TZ"] = request.param
    time.tzset()
    yield request.param
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


# ------------------------------------------------------------------------------------------------
# connection
# ------------------------------------------------------------------------------------------------
def test_connect_starts_xtdc_and_logs_into_miniqmt(xt):
    from vnpy.trader.constant import Direction, Exchange
    from vnpy.trader.event import EVENT_ACCOUNT, EVENT_POSITION

    connect(xt)

    market, broker = xt.market, xt.broker
    assert market.called("set_token") == [{"token": "test-token"}]
    assert market.called("init") == [{"start_local_service": False}]
    assert [c["port"] for c in market.called("listen")] == [58620]
    [client] = broker.clients
    assert client.connected and client.path == "C:\\QMT\\userdata" and isinstance(client.session, int)
    assert client.subscribed_accounts == {ACCOUNT}
    assert [r.args for r in broker.requests_of("subscribe")] == [{"account_id": ACCOUNT,
                                                                  "account_type": C.SECURITY_ACCOUNT}]
    queries = [r.kind for r in broker.requests if r.kind.startswith("query")]
    assert queries[:4] == ["query_stock_asset", "query_stock_positions", "query_stock_orders", "query_stock_trades"]
    assert xt.gateway.td_api.connected

    account = xt.events.of(EVENT_ACCOUNT)[0]
    assert (account.accountid, account.balance, account.available, account.frozen) == \
        (ACCOUNT, 1_040_000.0, 1_000_000.0, 0.0)  # cash + 10,000 x 4.0 (pre-close, no tick yet)
    position = xt.events.of(EVENT_POSITION)[0]
    assert (position.vt_symbol, position.direction, position.volume, position.yd_volume, position.frozen,
            position.price) == ("510300.SSE", Direction.NET, 10_000, 10_000, 0, 3.9)
    assert position.exchange == Exchange.SSE


def test_connect_fails_when_miniqmt_is_unreachable_and_is_not_retried(xt):
    from vnpy.trader.constant import Status
    from vnpy.trader.event import EVENT_ACCOUNT, EVENT_CONTRACT, EVENT_POSITION

    xt.broker.online = False
    connect(xt)

    [client] = xt.broker.clients
    assert not client.connected and not xt.gateway.td_api.connected
    assert [r.kind for r in xt.broker.requests] == ["connect"]
    assert xt.events.of(EVENT_CONTRACT)  # market data (xtdc) connected all the same
    assert not xt.events.of(EVENT_ACCOUNT) and not xt.events.of(EVENT_POSITION)

    # MiniQMT comes back: vnpy_xt does not retry, and a second connect is ignored (its thread exists).
    xt.broker.restore()
    xt.main_engine.connect(xt.broker.gateway_setting(), "XT")
    settle(xt)
    assert len(xt.broker.clients) == 1 and not xt.gateway.td_api.connected

    # An order still goes out through the dead client: it never reaches the broker, and stays SUBMITTING.
    vt_orderid = send(xt)
    settle(xt)
    assert vt_orderid and xt.broker.orders == {}
    assert xt.broker.requests_of("order_stock")[-1].dropped
    assert xt.events.path(vt_orderid) == [Status.SUBMITTING]


def test_subscribe_failure_still_leaves_the_gateway_marked_connected(xt):
    from vnpy.trader.event import EVENT_ACCOUNT

    connect(xt, 资金账号="9999999")  # an account this MiniQMT does not hold

    assert [r.args["account_id"] for r in xt.broker.requests_of("subscribe")] == ["9999999"]
    assert xt.broker.clients[0].subscribed_accounts == set()
    assert xt.gateway.td_api.connected  # set before subscribe, not reset when it fails
    assert not [r for r in xt.broker.requests if r.kind.startswith("query")]  # connect stopped there
    assert not xt.events.of(EVENT_ACCOUNT)


def test_rejected_token_leaves_no_contracts_but_trading_connects(xt):
    from vnpy.trader.event import EVENT_ACCOUNT, EVENT_CONTRACT

    xt.market.tokens.clear()
    connect(xt)

    assert xt.market.called("init") and not xt.market.called("get_stock_list_in_sector")
    assert not xt.events.of(EVENT_CONTRACT)
    assert xt.gateway.td_api.connected and xt.events.of(EVENT_ACCOUNT)  # vnpy_xt goes on to trading
    assert send(xt) == ""  # no contract: the gateway refuses the order itself
    assert xt.broker.orders == {} and not xt.broker.requests_of("order_stock")


# ------------------------------------------------------------------------------------------------
# market data
# ------------------------------------------------------------------------------------------------
def test_contracts_for_stocks_funds_and_indices(xt):
    from vnpy.trader.constant import Exchange, Product
    from vnpy.trader.event import EVENT_CONTRACT

    market = xt.market
    market.add_instrument("688981.SH", "中芯国际", sector="沪深A股", pre_close=50.0)
    market.add_instrument("300750.SZ", "宁德时代", sector="沪深A股", pre_close=200.0)
    market.add_instrument("588000.SH", "科创50ETF", sector="沪深ETF", pre_close=1.0)
    market.add_instrument("000300.SH", "沪深300", sector="沪深指数", pre_close=3500.0)
    market.add_instrument("399006.SZ", "创业板指", sector="沪深指数", pre_close=2000.0)
    market.add_instrument("113050.SH", "南银转债", sector="沪深转债", pre_close=120.0, price_tick=0.001)
    market.add_instrument("430047.BJ", "诺思兰德", sector="京市A股", pre_close=10.0)
    market.sectors["沪深A股"].append("600999.SH")  # listed, but xtdata has no detail for it

    connect(xt)

    assert [c["sector_name"] for c in market.called("get_stock_list_in_sector")] == STOCK_SECTORS
    contracts = {c.vt_symbol: c for c in xt.events.of(EVENT_CONTRACT)}
    expected = {
        "510300.SSE": (Exchange.SSE, Product.FUND, 0.001, "沪深300ETF"),
        "159915.SZSE": (Exchange.SZSE, Product.FUND, 0.001, "创业板ETF"),
        "600000.SSE": (Exchange.SSE, Product.EQUITY, 0.01, "浦发银行"),
        "000001.SZSE": (Exchange.SZSE, Product.EQUITY, 0.01, "平安银行"),
        "688981.SSE": (Exchange.SSE, Product.EQUITY, 0.01, "中芯国际"),
        "430047.BSE": (Exchange.BSE, Product.EQUITY, 0.01, "诺思兰德"),
        "000300.SSE": (Exchange.SSE, Product.INDEX, 0.01, "沪深300"),
        "399006.SZSE": (Exchange.SZSE, Product.INDEX, 0.01, "创业板指"),
        # vnpy_xt decides the product by code prefix only:
        "300750.SZSE": (Exchange.SZSE, Product.INDEX, 0.01, "宁德时代"),  # a ChiNext stock
        "588000.SSE": (Exchange.SSE, Product.INDEX, 0.001, "科创50ETF"),  # an ETF
        "113050.SSE": (Exchange.SSE, Product.INDEX, 0.001, "南银转债"),   # a convertible bond
    }
    assert set(contracts) == set(expected)  # 600999.SH skipped
    for vt_symbol, (exchange, product, pricetick, name) in expected.items():
        contract = contracts[vt_symbol]
        assert (contract.exchange, contract.product, contract.pricetick, contract.name) == \
            (exchange, product, pricetick, name), vt_symbol
        assert (contract.size, contract.min_volume, contract.history_data, contract.gateway_name) == \
            (1, 1, False, "XT"), vt_symbol  # min_volume 1: no board lot
    assert xt.module.symbol_limit_map["510300.SSE"] == (4.4, 3.6)
    assert xt.module.symbol_limit_map["300750.SZSE"] == (240.0, 160.0)


def test_subscribe_and_tick(xt):
    from vnpy.trader.constant import Exchange
    from vnpy.trader.event import EVENT_TICK
    from vnpy.trader.object import SubscribeRequest

    connect(xt)
    xt.main_engine.subscribe(SubscribeRequest("510300", Exchange.SSE), "XT")
    xt.main_engine.subscribe(SubscribeRequest("510300", Exchange.SSE), "XT")
    xt.main_engine.subscribe(SubscribeRequest("999999", Exchange.SSE), "XT")  # no such contract: ignored
    assert xt.market.subscriptions() == [("510300.SH", "tick")]

    xt.broker.push_tick("510300.SH", 4.0123, open=3.98, high=4.05, low=3.97, pre_close=4.0, volume=12_345,
                        amount=4.95e6, bid_prices=[4.012, 4.011, 4.010, 4.009, 4.008],
                        ask_prices=[4.013, 4.014, 4.015, 4.016, 4.017], bid_volumes=[10, 20, 30, 40, 50],
                        ask_volumes=[15, 25, 35, 45, 55])
    xt.broker.push_tick("600000.SH", 10.1)  # not subscribed
    settle(xt)

    [tick] = xt.events.of(EVENT_TICK)
    assert (tick.vt_symbol, tick.name, tick.gateway_name) == ("510300.SSE", "沪深300ETF", "XT")
    assert (tick.last_price, tick.open_price, tick.high_price, tick.low_price, tick.pre_close) == \
        (4.012, 3.98, 4.05, 3.97, 4.0)  # rounded to the 0.001 tick
    assert (tick.volume, tick.turnover) == (12_345, 4.95e6)  # volume in lots, as XT sends it
    assert [getattr(tick, f"bid_price_{i}") for i in range(1, 6)] == [4.012, 4.011, 4.010, 4.009, 4.008]
    assert [getattr(tick, f"ask_price_{i}") for i in range(1, 6)] == [4.013, 4.014, 4.015, 4.016, 4.017]
    assert [getattr(tick, f"bid_volume_{i}") for i in range(1, 6)] == [10, 20, 30, 40, 50]
    assert [getattr(tick, f"ask_volume_{i}") for i in range(1, 6)] == [15, 25, 35, 45, 55]
    assert (tick.limit_up, tick.limit_down) == (4.4, 3.6)
    assert tick.extra["market_closed"] is False

    xt.broker.push_tick("510300.SH", 4.02, open_int=15)  # XT's "closed" status for stocks and funds
    settle(xt)
    assert xt.events.last(EVENT_TICK).extra["market_closed"] is True


def test_times_are_read_in_the_machine_zone(xt, machine_zone):
    from vnpy.trader.constant import Exchange
    from vnpy.trader.event import EVENT_TICK
    from vnpy.trader.object import SubscribeRequest

    beijing = datetime(2025, 1, 2, 10, 0, tzinfo=CN)
    xt.broker.clock = beijing.timestamp
    connect(xt)
    xt.main_engine.subscribe(SubscribeRequest("510300", Exchange.SSE), "XT")
    xt.broker.push_tick("510300.SH", 4.0, time_ms=int(beijing.timestamp() * 1000))
    vt_orderid = send(xt)
    settle(xt)

    # vnpy_xt converts XT's epochs to local wall time and labels it Asia/Shanghai: right only on a
    # machine set to Beijing time; elsewhere off by the zone difference.
    shift = timedelta(0) if machine_zone == "Asia/Shanghai" else timedelta(hours=8)
    assert xt.events.last(EVENT_TICK).datetime == beijing - shift
    assert xt.events.orders(vt_orderid)[-1].datetime == beijing - shift


# ------------------------------------------------------------------------------------------------
# orders
# ------------------------------------------------------------------------------------------------
def test_limit_orders_reach_the_broker_as_sent(xt):
    from vnpy.trader.constant import Direction, Offset, OrderType, Status

    connect(xt)
    vt_buy = send(xt, volume=1000, price=4.012, reference="rotation:buy")
    vt_sell = send(xt, direction=Direction.SHORT, volume=2000, price=4.02, offset=Offset.CLOSE,
                   reference="rotation:sell")
    assert send(xt, order_type=OrderType.MARKET) == ""  # vnpy_xt sends limit orders only
    settle(xt)

    assert vt_buy.startswith("XT.") and vt_sell.startswith("XT.")
    buy, sell = [r.args for r in xt.broker.requests_of("order_stock")]
    assert buy == {"account_id": ACCOUNT, "account_type": C.SECURITY_ACCOUNT, "stock_code": "510300.SH",
                   "order_type": C.STOCK_BUY, "order_volume": 1000, "price_type": C.FIX_PRICE, "price": 4.012,
                   "strategy_name": "rotation:buy", "order_remark": remark(vt_buy)}
    assert sell == {**buy, "order_type": C.STOCK_SELL, "order_volume": 2000, "price": 4.02,
                    "strategy_name": "rotation:sell", "order_remark": remark(vt_sell)}
    assert [xt.broker.order(v).status for v in (vt_buy, vt_sell)] == [C.ORDER_UNREPORTED] * 2

    updates = xt.events.orders(vt_buy)
    assert [o.status for o in updates] == [Status.SUBMITTING, Status.SUBMITTING]
    # Only send_order's own update carries the reference; updates built from XT's pushes do not.
    assert [o.reference for o in updates] == ["rotation:buy", ""]
    assert (updates[-1].direction, updates[-1].offset, updates[-1].type, updates[-1].price,
            updates[-1].volume) == (Direction.LONG, Offset.NONE, OrderType.LIMIT, 4.012, 1000)
    assert xt.events.orders(vt_sell)[-1].direction == Direction.SHORT


def test_status_sequence_to_all_traded_with_trades(xt):
    from vnpy.trader.constant import Direction, Offset, Status

    connect(xt)
    vt_orderid = send(xt, volume=1000, price=4.0)
    settle(xt)
    xt.broker.report(vt_orderid)
    settle(xt)
    assert xt.main_engine.get_order(vt_orderid).status == Status.NOTTRADED
    first = xt.broker.fill(vt_orderid, 400, 3.998)
    settle(xt)
    order = xt.main_engine.get_order(vt_orderid)
    assert (order.status, order.traded) == (Status.PARTTRADED, 400)
    second = xt.broker.fill(vt_orderid, price=3.999)
    settle(xt)

    order = xt.main_engine.get_order(vt_orderid)
    assert (order.status, order.traded, order.volume) == (Status.ALLTRADED, 1000, 1000)
    assert xt.events.path(vt_orderid) == [Status.SUBMITTING, Status.NOTTRADED, Status.PARTTRADED, Status.ALLTRADED]
    assert xt.broker.order(vt_orderid).statuses == [C.ORDER_UNREPORTED, C.ORDER_REPORTED, C.ORDER_PART_SUCC,
                                                    C.ORDER_SUCCEEDED]
    assert [(t.tradeid, t.orderid, t.vt_symbol, t.direction, t.offset, t.price, t.volume)
            for t in xt.events.trades(vt_orderid)] == [
        (first.traded_id, remark(vt_orderid), "510300.SSE", Direction.LONG, Offset.NONE, 3.998, 400),
        (second.traded_id, remark(vt_orderid), "510300.SSE", Direction.LONG, Offset.NONE, 3.999, 600)]
    assert xt.main_engine.get_all_active_orders() == []
    assert xt.broker.cash == pytest.approx(1_000_000 - 400 * 3.998 - 600 * 3.999)


@pytest.mark.parametrize(("symbol", "exchange_name", "price", "xt_market"),
                         [("510300", "SSE", 4.0, C.SH_MARKET), ("159915", "SZSE", 2.0, C.SZ_MARKET)])
def test_cancel_a_reported_order(xt, symbol, exchange_name, price, xt_market):
    from vnpy.trader.constant import Exchange, Status

    connect(xt)
    vt_orderid = send(xt, symbol=symbol, exchange=Exchange[exchange_name], volume=1000, price=price)
    settle(xt)
    xt.broker.report(vt_orderid)
    settle(xt)
    cancel(xt, vt_orderid)
    settle(xt)

    [request] = xt.broker.requests_of("cancel_order_stock")
    assert request.args == {"account_id": ACCOUNT, "account_type": C.SECURITY_ACCOUNT, "order_id": None,
                            "market": xt_market, "sysid": xt.broker.order(vt_orderid).order_sysid}
    assert xt.broker.order(vt_orderid).statuses == [C.ORDER_UNREPORTED, C.ORDER_REPORTED, C.ORDER_REPORTED_CANCEL,
                                                    C.ORDER_CANCELED]
    assert xt.events.path(vt_orderid) == [Status.SUBMITTING, Status.NOTTRADED, Status.CANCELLED]
    assert (xt.broker.cash, xt.broker.frozen_cash) == (1_000_000.0, 0.0)


def test_cancel_a_partly_filled_order(xt):
    from vnpy.trader.constant import Status

    connect(xt)
    vt_orderid = send(xt, volume=1000, price=4.0)
    xt.broker.report(vt_orderid)
    xt.broker.fill(vt_orderid, 300)
    settle(xt)
    cancel(xt, vt_orderid)
    settle(xt)

    assert xt.broker.order(vt_orderid).statuses[-3:] == [C.ORDER_PART_SUCC, C.ORDER_PARTSUCC_CANCEL,
                                                         C.ORDER_PART_CANCEL]
    assert xt.events.path(vt_orderid) == [Status.SUBMITTING, Status.NOTTRADED, Status.PARTTRADED, Status.CANCELLED]
    order = xt.main_engine.get_order(vt_orderid)
    assert (order.status, order.traded) == (Status.CANCELLED, 300)
    assert (xt.broker.cash, xt.broker.frozen_cash) == (1_000_000.0 - 1200.0, 0.0)


def test_cancel_before_the_order_is_reported_does_not_reach_the_broker(xt):
    from vnpy.trader.constant import Status

    connect(xt)
    vt_orderid = send(xt)
    settle(xt)
    cancel(xt, vt_orderid)  # vnpy_xt cancels by counter id (order_sysid), which 未报 orders lack
    settle(xt)

    assert xt.broker.requests_of("cancel_order_stock") == []
    assert xt.broker.order(vt_orderid).status == C.ORDER_UNREPORTED
    assert xt.main_engine.get_order(vt_orderid).status == Status.SUBMITTING


@pytest.mark.parametrize("outcome", ["filled", "cancel refused"])
def test_a_pending_cancel_is_reported_as_cancelled(xt, outcome):
    from vnpy.trader.constant import Status

    xt.broker.auto_cancel = False  # the exchange has not confirmed the cancel yet
    connect(xt)
    vt_orderid = send(xt, volume=1000, price=4.0)
    xt.broker.report(vt_orderid)
    settle(xt)
    cancel(xt, vt_orderid)
    settle(xt)

    assert xt.broker.order(vt_orderid).status == C.ORDER_REPORTED_CANCEL  # 已报待撤: still live
    order = xt.main_engine.get_order(vt_orderid)
    assert order.status == Status.CANCELLED and not order.is_active()  # vnpy_xt: final already

    if outcome == "filled":
        xt.broker.fill(vt_orderid)
        final = Status.ALLTRADED
    else:
        xt.broker.reject_cancel(vt_orderid)
        final = Status.NOTTRADED
    settle(xt)

    assert xt.events.path(vt_orderid) == [Status.SUBMITTING, Status.NOTTRADED, Status.CANCELLED, final]
    assert len(xt.broker.pushes_of("on_cancel_error")) == 1
    assert len(xt.events.trades(vt_orderid)) == (1 if outcome == "filled" else 0)


def test_junk_order_is_rejected(xt):
    from vnpy.trader.constant import Status

    connect(xt)
    vt_orderid = send(xt, volume=1000, price=4.0)
    xt.broker.report(vt_orderid)
    settle(xt)
    xt.broker.junk(vt_orderid, "价格超出涨跌停")
    settle(xt)

    assert xt.broker.order(vt_orderid).statuses == [C.ORDER_UNREPORTED, C.ORDER_REPORTED, C.ORDER_JUNK]
    assert xt.events.path(vt_orderid) == [Status.SUBMITTING, Status.NOTTRADED, Status.REJECTED]
    assert xt.main_engine.get_all_active_orders() == []
    assert (xt.broker.cash, xt.broker.frozen_cash) == (1_000_000.0, 0.0)


@pytest.mark.parametrize(("direction_name", "volume", "price"),
                         [("LONG", 300_000, 4.0),     # 1.2 million: more than the cash
                          ("LONG", 150, 4.0),         # not a board lot
                          ("SHORT", 20_000, 4.0),     # more than the 10,000 held
                          ("LONG", 1000, 4.5)])       # above the 4.4 limit
def test_counter_rejection_at_submission(xt, direction_name, volume, price):
    from vnpy.trader.constant import Direction, Status

    connect(xt)
    vt_orderid = send(xt, direction=Direction[direction_name], volume=volume, price=price)
    settle(xt)

    assert xt.broker.order(vt_orderid).statuses == [C.ORDER_UNREPORTED, C.ORDER_JUNK]
    session = xt.broker.clients[0].session
    assert [p.name for p in xt.broker.pushes if p.session == session][-3:] == \
        ["on_order_stock_async_response", "on_stock_order", "on_order_error"]
    assert xt.events.path(vt_orderid) == [Status.SUBMITTING, Status.REJECTED]
    assert xt.main_engine.get_all_active_orders() == []
    assert (xt.broker.cash, xt.broker.positions["510300.SH"].can_use_volume) == (1_000_000.0, 10_000)


@pytest.mark.parametrize("case", ["rejected", "reported"])
def test_pushes_that_overtake_send_order_are_overwritten(xt, case):
    """vnpy_xt publishes its own SUBMITTING update after order_stock_async returns; with a MiniQMT
    fast enough to push first, that update wins and the order stays SUBMITTING in vnpy."""
    from vnpy.trader.constant import Status

    connect(xt)
    xt.broker.deliver_before_return = True
    xt.broker.auto_report = True
    vt_orderid = send(xt, volume=300_000 if case == "rejected" else 1000, price=4.0)
    settle(xt)

    if case == "rejected":  # pushed: 57 废单 (twice: on_stock_order and on_order_error)
        broker_status, pushed = C.ORDER_JUNK, [Status.REJECTED]
    else:                   # pushed: 48 未报, 50 已报
        broker_status, pushed = C.ORDER_REPORTED, [Status.SUBMITTING, Status.NOTTRADED]
    assert xt.broker.order(vt_orderid).status == broker_status
    assert xt.events.path(vt_orderid) == pushed + [Status.SUBMITTING]
    order = xt.main_engine.get_order(vt_orderid)
    assert order.status == Status.SUBMITTING and xt.main_engine.get_all_active_orders() == [order]


def test_callbacks_arrive_on_the_client_thread(xt):
    from vnpy.trader.constant import Status

    connect(xt)
    vt_orderid = send(xt, volume=1000, price=4.0)
    settle(xt)

    def exchange() -> None:  # the exchange acts from its own thread
        xt.broker.report(vt_orderid)
        xt.broker.fill(vt_orderid, 500)
        xt.broker.fill(vt_orderid)

    thread = threading.Thread(target=exchange, name="exchange")
    thread.start()
    thread.join(TIMEOUT)
    wait_until(lambda: xt.main_engine.get_order(vt_orderid).status == Status.ALLTRADED, "ALLTRADED")

    session = xt.broker.clients[0].session
    threads = {p.thread for p in xt.broker.pushes}
    assert threads and all(name.startswith(f"xttrader-{session}-callback") for name in threads)
    assert threading.current_thread().name not in threads and "exchange" not in threads
    assert xt.events.path(vt_orderid) == [Status.SUBMITTING, Status.NOTTRADED, Status.PARTTRADED, Status.ALLTRADED]
    assert [t.volume for t in xt.events.trades(vt_orderid)] == [500, 500]


def test_orders_of_other_sessions_with_a_remark_are_adopted(xt):
    connect(xt)
    xt.broker.place_external("600000.SH", C.STOCK_BUY, 100, 10.0, remark="manual-1")
    xt.broker.place_external("600000.SH", C.STOCK_BUY, 100, 10.0)
    settle(xt)

    assert [o.vt_orderid for o in xt.main_engine.get_all_orders()] == ["XT.manual-1"]


# ------------------------------------------------------------------------------------------------
# account and positions
# ------------------------------------------------------------------------------------------------
def test_account_and_positions_follow_the_broker(xt):
    from vnpy.trader.constant import Direction
    from vnpy.trader.event import EVENT_ACCOUNT, EVENT_POSITION

    connect(xt)
    gateway, broker = xt.gateway, xt.broker

    def account() -> tuple:
        gateway.query_account()
        settle(xt)
        data = xt.events.last(EVENT_ACCOUNT)
        return data.balance, data.available, data.frozen

    def position() -> tuple:
        gateway.query_position()
        settle(xt)
        data = xt.events.last(EVENT_POSITION)
        assert (data.vt_symbol, data.direction) == ("510300.SSE", Direction.NET)
        return data.volume, data.yd_volume, data.frozen, data.price

    assert account() == (1_040_000.0, 1_000_000.0, 0.0)
    vt_buy = send(xt, volume=1000, price=4.0)
    assert account() == (1_040_000.0, 996_000.0, 4000.0)  # the buy freezes its cash
    broker.report(vt_buy)
    broker.fill(vt_buy, price=3.9)
    broker.push_tick("510300.SH", 4.1)
    assert account() == pytest.approx((996_100.0 + 11_000 * 4.1, 996_100.0, 0.0))
    # Bought today: held but not sellable (T+1); vnpy_xt reports those shares as frozen.
    assert position() == (11_000, 10_000, 1_000, 3.9)
    send(xt, direction=Direction.SHORT, volume=2000, price=4.1)
    assert position() == (11_000, 8_000, 3_000, 3.9)


# ------------------------------------------------------------------------------------------------
# lost link
# ------------------------------------------------------------------------------------------------
def test_reconnect_after_a_lost_link_recovers_orders(xt):
    from vnpy.trader.constant import Status
    from vnpy.trader.event import EVENT_ACCOUNT

    connect(xt)
    broker = xt.broker
    vt_a = send(xt, volume=1000, price=4.0)
    vt_b = send(xt, volume=2000, price=4.0)
    broker.report(vt_a)
    broker.report(vt_b)
    first_b = broker.fill(vt_b, 500)
    settle(xt)
    old = xt.gateway.td_api.xt_client

    # The link drops; A fills while nobody listens; MiniQMT is back before the client notices.
    outage_fill = []
    broker.disconnect(restore=True, meanwhile=lambda: outage_fill.append(broker.fill(vt_a, price=3.99)))
    settle(xt)

    new = xt.gateway.td_api.xt_client
    assert new is not old and new.session != old.session
    assert new.connected and not old.connected and xt.gateway.td_api.connected
    [_, reconnect] = broker.requests_of("connect")
    assert reconnect.thread.startswith(f"xttrader-{old.session}-callback")  # from on_disconnected
    assert broker.requests_of("subscribe")[-1].session == new.session
    assert not [p for p in broker.pushes_of("on_stock_trade") if p.payload.traded_id == outage_fill[0].traded_id]

    # The reconnect's order and trade queries bring vnpy up to date ...
    order_a, order_b = xt.main_engine.get_order(vt_a), xt.main_engine.get_order(vt_b)
    assert (order_a.status, order_a.traded) == (Status.ALLTRADED, 1000)
    assert (order_b.status, order_b.traded) == (Status.PARTTRADED, 500)
    assert [(t.tradeid, t.price) for t in xt.events.trades(vt_a)] == [(outage_fill[0].traded_id, 3.99)]
    # ... and publish every trade of the day again: B's fill, already seen, comes twice.
    assert [t.tradeid for t in xt.events.trades(vt_b)] == [first_b.traded_id] * 2

    # Queries and orders placed before the outage work on the new session.
    xt.gateway.query_account()
    settle(xt)
    assert xt.events.last(EVENT_ACCOUNT).available == pytest.approx(broker.cash)
    assert broker.requests_of("query_stock_asset")[-1].session == new.session
    cancel(xt, vt_b)
    settle(xt)
    assert broker.requests_of("cancel_order_stock")[-1].session == new.session
    order_b = xt.main_engine.get_order(vt_b)
    assert (order_b.status, order_b.traded) == (Status.CANCELLED, 500)
    assert broker.order(vt_b).status == C.ORDER_PART_CANCEL


def test_a_failed_reconnect_is_never_retried(xt):
    from vnpy.trader.constant import Status

    connect(xt)
    broker = xt.broker
    vt_orderid = send(xt)
    broker.report(vt_orderid)
    settle(xt)

    broker.disconnect()  # MiniQMT stays down: vnpy_xt's one reconnect attempt fails
    settle(xt)
    old, new = broker.clients
    assert xt.gateway.td_api.xt_client is new and not new.connected and not xt.gateway.td_api.connected
    assert len(broker.requests_of("connect")) == 2

    broker.restore()
    broker.fill(vt_orderid)  # filled at the exchange; vnpy never hears of it
    requests = len(broker.requests)
    xt.gateway.query_account()
    xt.gateway.query_position()
    vt_late = send(xt)
    settle(xt)

    assert len(broker.requests_of("connect")) == 2
    assert [(r.kind, r.dropped) for r in broker.requests[requests:]] == [("order_stock", True)]
    assert xt.main_engine.get_order(vt_orderid).status == Status.NOTTRADED
    assert xt.main_engine.get_order(vt_late).status == Status.SUBMITTING


# ------------------------------------------------------------------------------------------------
# the fake against the installed xtquant (read as text, never imported)
# ------------------------------------------------------------------------------------------------
def _real_xtquant() -> Path:
    spec = PathFinder.find_spec("xtquant")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("xtquant is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


_LITERAL_NODES = (ast.Expression, ast.Constant, ast.Name, ast.Load, ast.Dict, ast.Set, ast.List, ast.Tuple,
                  ast.UnaryOp, ast.USub)


def _constants(path: Path) -> dict:
    values: dict = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            expression = ast.Expression(node.value)
            if all(isinstance(n, _LITERAL_NODES) for n in ast.walk(expression)):
                values[node.targets[0].id] = eval(compile(expression, str(path), "eval"),  # literals only
                                                  {"__builtins__": {}}, dict(values))
    return values


def _classes(path: Path) -> dict[str, ast.ClassDef]:
    return {n.name: n for n in ast.parse(path.read_text(encoding="utf-8")).body if isinstance(n, ast.ClassDef)}


def _methods(cls: ast.ClassDef) -> dict[str, list[str]]:
    return {f.name: [a.arg for a in f.args.args] for f in cls.body if isinstance(f, ast.FunctionDef)}


def test_fake_matches_the_installed_xtquant():
    root = _real_xtquant()

    real_constants = _constants(root / "xtconstant.py")
    assert {k: real_constants.get(k, "missing") for k in fake_xttrader.XTCONSTANT} == fake_xttrader.XTCONSTANT

    real_types = _classes(root / "xttype.py")
    for cls in fake_xttrader.XTTYPE_CLASSES:
        init = real_types[cls.__name__].body
        real_init = next(f for f in init if isinstance(f, ast.FunctionDef) and f.name == "__init__")
        params = [a.arg for a in real_init.args.args][1:]
        assert list(inspect.signature(cls.__init__).parameters)[1:] == params, cls.__name__
        attributes = {t.attr for n in ast.walk(real_init) if isinstance(n, ast.Assign) for t in n.targets
                      if isinstance(t, ast.Attribute)}
        instance = cls("8880001234") if cls is fake_xttrader.StockAccount else cls(*[None] * len(params))
        assert set(vars(instance)) == attributes, cls.__name__

    real_trader = _classes(root / "xttrader.py")
    real_callback = _methods(real_trader["XtQuantTraderCallback"])
    fake_callback = {n: list(inspect.signature(f).parameters)
                     for n, f in vars(fake_xttrader.XtQuantTraderCallback).items() if callable(f)}
    assert fake_callback == real_callback
    real_client = _methods(real_trader["XtQuantTrader"])
    for name, func in vars(fake_xttrader.FakeXtQuantTrader).items():
        if callable(func) and not name.startswith("_"):
            assert list(inspect.signature(func).parameters) == real_client[name], name
    assert list(inspect.signature(fake_xttrader.FakeXtQuantTrader.__init__).parameters) == \
        real_client["__init__"]
