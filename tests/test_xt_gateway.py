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
* the position's ``frozen`` includes shares bought today.

Connection and market data are in test_xt_market.py, the fake's fidelity to the installed xtquant in
test_xt_fake_fidelity.py; the shared harness (``xt`` fixture, ``Events``, ``settle`` ...) is
tests/fakes/xt_harness.py.
"""

from __future__ import annotations

import threading

import pytest
from fakes import xt_harness
from fakes.fake_xttrader import C, wait_until
from fakes.xt_harness import ACCOUNT, TIMEOUT, cancel, connect, remark, send, settle

fake_xt_trading = xt_harness.fake_xt_trading  # the fixtures, visible to this module's tests
xt = xt_harness.xt


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
