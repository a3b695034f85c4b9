"""Shared harness for the tests of vnpy_xt's real ``XtGateway`` over the fake xtquant.

The ``xt`` fixture builds a vnpy ``MainEngine`` with ``XtGateway`` added (not connected) over a
:class:`~fakes.xt_broker.FakeBroker` holding 10,000 510300; ``Events`` records every vnpy event of
interest; ``settle`` waits until the fake delivered every callback and vnpy handled what it caused;
``connect``/``send``/``cancel``/``remark`` drive the gateway; ``machine_zone`` runs a test under
several machine time zones. A test module makes the fixtures visible with
``xt = xt_harness.xt`` (and ``fake_xt_trading``, ``machine_zone`` likewise).
"""

from __future__ import annotations

import copy
import os
import sys
import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from . import fake_xttrader

fake_xt_trading = fake_xttrader.fake_xt_trading  # the fixture the ``xt`` fixture is built on

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
        from vnpy.trader.event import (
            EVENT_ACCOUNT,
            EVENT_CONTRACT,
            EVENT_LOG,
            EVENT_ORDER,
            EVENT_POSITION,
            EVENT_TICK,
            EVENT_TRADE,
        )

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
@contextmanager
def live_stack(gateway_class, state_folder):
    """The daemon's :class:`~vnpy_rotation.apps.rotation.daemon.Stack` on ``gateway_class``, closed afterwards (after
    the gateway's connect thread) and back in the working directory MainEngine moved away from."""
    from vnpy_rotation.apps.rotation.daemon import Stack

    cwd = os.getcwd()
    built = Stack(gateway_class, state_folder, notifications=False)
    try:
        yield built
    finally:
        if built.gateway.thread is not None:
            built.gateway.thread.join(TIMEOUT)
        built.close()
        os.chdir(cwd)


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
