"""vnpy_xt's real ``XtGateway`` over the fake xtquant: connecting, contracts and ticks.

Pinned down where vnpy_xt is surprising, so a change is noticed:

* product type by code prefix: ChiNext stocks (300xxx), 588xxx ETFs and convertible bonds come
  out as INDEX; contracts have min_volume 1 (no board lot);
* times are read in the machine's local zone and labelled Asia/Shanghai;
* tick volume is in lots (XT's ``volume``);
* a subscribe failure still leaves the gateway marked connected.

The harness (``xt`` fixture, ``Events``, ``settle`` ...) is tests/fakes/xt_harness.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from fakes import xt_harness
from fakes.fake_xttrader import C
from fakes.xt_harness import ACCOUNT, CN, STOCK_SECTORS, connect, send, settle

fake_xt_trading = xt_harness.fake_xt_trading  # the fixtures, visible to this module's tests
xt = xt_harness.xt
machine_zone = xt_harness.machine_zone


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
