"""xtquant's trading side (``xttrader``, ``xttype``, ``xtconstant``) over a simulated broker.

vnpy_xt's ``XtGateway`` talks to MiniQMT through ``xtquant.xttrader.XtQuantTrader``. The real client
is a Windows DLL; this module is a faithful pure-Python stand-in for xtquant 250807, to run the
real gateway on Linux. Nothing here opens a socket or touches the disk.

The code is split by responsibility: :mod:`fakes.xt_types` (``xtconstant`` values, ``xttype`` classes,
the broker's records), :mod:`fakes.xt_client` (``XtQuantTraderCallback``, ``FakeXtQuantTrader``) and
:mod:`fakes.xt_broker` (``FakeBroker``); this module installs them and re-exports their names.

Quick start (the tests folder is on ``sys.path``)::

    from fakes import fake_xttrader
    fake_xt_trading = fake_xttrader.fake_xt_trading    # the pytest fixture, made visible here

    def test_something(fake_xt_trading):
        broker = fake_xt_trading                         # a FakeBroker
        broker.market.add_instrument("510300.SH", "沪深300ETF", sector="沪深ETF", pre_close=4.0)
        broker.set_position("510300.SH", 10_000, open_price=3.9)
        from vnpy_xt import XtGateway                    # import after the fixture: binds to the fake
        main_engine.add_gateway(XtGateway)
        main_engine.connect(broker.gateway_setting(), "XT")
        vt_orderid = main_engine.send_order(req, "XT")
        broker.report(vt_orderid)                        # 未报 -> 已报
        broker.fill(vt_orderid, 400, 4.0)                # partial fill at 4.0
        broker.fill(vt_orderid)                          # the rest, at the order price

The fixture ``fake_xt_trading`` (or :func:`install_fake_xt` with your own ``monkeypatch``) removes
any loaded ``xtquant``/``vnpy_xt`` modules, installs the fake package (data side:
:class:`fakes.fake_xtquant.FakeXt`, reachable as ``broker.market``) and returns the broker. At
teardown it stops every client thread, drops the ``vnpy_xt`` modules imported during the test, and
fails the test if a callback raised (the real client swallows callback exceptions silently; the
fake records them in ``broker.callback_errors`` / ``broker.market.callback_errors``).

The client, as xtquant 250807's ``XtQuantTrader``
--------------------------------------------------
* ``XtQuantTrader(path, session)``, ``register_callback``, ``start`` (creates the callback thread),
  ``connect()`` (0 = ok, -1 = MiniQMT unreachable, wrong ``userdata_path`` or a session id already
  connected), ``subscribe(account)`` (0 / -1 for an account the broker does not hold), ``stop``.
* ``order_stock_async`` / ``order_stock``, ``cancel_order_stock_sysid_async`` /
  ``cancel_order_stock_sysid`` / ``cancel_order_stock_async`` / ``cancel_order_stock``,
  ``query_stock_asset(_async)``, ``query_stock_orders(_async)``, ``query_stock_order``,
  ``query_stock_trades(_async)``, ``query_stock_positions(_async)``, ``query_stock_position``.
* Every callback runs on the client's own single callback thread (``ThreadPoolExecutor`` with one
  worker, as the real ``start()`` creates; thread names start with ``xttrader-<session>``), in the
  order the broker produced them; query answers queue behind earlier pushes. Answers and pushes
  caused by a request wait ``broker.latency`` seconds (a MiniQMT round trip, default 10 ms) before
  they are delivered. The real wrappers' bookkeeping is kept: an ``XtOrderError`` is delivered only
  after the ``XtOrderResponse`` of its request, likewise cancel errors.
* Synchronous calls (``subscribe``, ``order_stock``, ``query_stock_asset`` ...) wait for their answer
  on the callback thread, as the real ones do; made from inside a callback they would hang the real
  client, so the fake raises ``RuntimeError`` instead.
* While a client is not connected, requests do not reach the broker (recorded with
  ``dropped=True``): async answers never come, sync calls return -1 / ``None`` / ``[]``.
* ``on_connected`` is never called (xtquant 250807 binds no native callback to it).

Pushed objects are fresh ``xttype`` objects with the real attributes. ``XtOrder.price_type`` is the
broker's own code, not the ``xtconstant`` code that was sent: 50 for ``FIX_PRICE`` /
``LATEST_PRICE``, 88 for market types (what vnpy_xt observed: xt_gateway.py maps only 50 to LIMIT).
Stock orders carry ``direction`` 48 and ``offset_flag`` 48 (buy) / 49 (sell).

The broker (test side)
----------------------
``FakeBroker(market=None, *, account_id="8880001234", cash=1_000_000.0, account_type="STOCK",
qmt_path="C:\\\\QMT", latency=0.01)``. Orders are named by ``ref``: the broker's ``order_id`` (int),
the ``order_remark`` (vnpy_xt's orderid) or a ``vt_orderid`` ("XT.<remark>").

* Account: ``cash`` (available), ``frozen_cash``, ``positions`` {code: BrokerPosition},
  ``set_position(code, volume, can_use=None, open_price=0.0)``, ``asset()`` (an XtAsset).
  Buys freeze ``price * volume`` (+ commission at ``commission_rate``); a fill moves the frozen
  cash into the position; cancel/junk release the rest. Sells freeze shares (``can_use_volume`` ->
  ``frozen_volume``). Bought shares are not sellable today (T+1: ``can_use_volume`` unchanged).
  Positions sold out stay listed with volume 0, as MiniQMT lists them for the day.
* Submission checks (a failure makes a 废单 at once: ``on_stock_order`` with ``ORDER_JUNK`` and
  ``on_order_error`` with error_id -61): account, unknown code (when the market lists instruments),
  stock buy/sell only, volume > 0, buys in board lots of ``board_lot`` (100), odd-lot sells only for
  the whole remainder, FIX_PRICE price > 0 and inside the day's limits, cash for buys, sellable
  shares for sells.
* Status sequence (``xtconstant``): 48 未报 at acceptance (``auto_report=True`` goes on to 50) ->
  ``report(ref)`` 50 已报 (assigns ``order_sysid``) -> ``fill(ref, volume=None, price=None)`` 55 部成 /
  56 已成 (pushes ``on_stock_order`` then ``on_stock_trade``, then ``on_stock_asset`` and
  ``on_stock_position``). A client cancel request is answered (``XtCancelOrderResponse``) and
  moves the order to 51 已报待撤 / 52 部成待撤; with ``auto_cancel=True`` (default) the exchange then
  confirms at once: 54 已撤 / 53 部撤. With ``auto_cancel=False`` the test decides:
  ``cancel(ref)`` (confirm, also usable without a request) or ``reject_cancel(ref, msg)`` (back to
  50/55 plus ``on_cancel_error``); a fill while 51/52 is pending is allowed (a full fill ends the
  order at 56 and the cancel fails). ``junk(ref, msg)`` is the exchange rejecting a live order: 57.
  An unreported order (48/49) is cancelled directly to 54.
* ``place_external(stock_code, order_type, volume, price, remark="", strategy_name="")``: an order
  from another session or the QMT window; pushed to every subscribed client like any order.
* ``disconnect(restore=False, meanwhile=None)``: the MiniQMT link drops. Connected clients stop
  hearing pushes; ``meanwhile()`` then runs (exchange events nobody hears, e.g. fills); with
  ``restore=True`` MiniQMT is reachable again before the clients are told; then every dropped
  client gets ``on_disconnected`` on its callback thread and ``disconnect`` waits until those
  callbacks returned (so a client reconnecting from ``on_disconnected`` has done so). Without
  ``restore`` every ``connect()`` fails until ``restore()``.
* ``deliver_before_return=True``: pushes caused by a request are delivered before the request call
  returns (an instant MiniQMT; exposes ordering assumptions of the caller).
* ``push_tick(code, last_price, ...)``: market data, see ``FakeXt.push_tick``.
* Records: ``requests`` (``Request(kind, session, args, thread, dropped)``; kinds ``connect``,
  ``subscribe``, ``order_stock``, ``cancel_order_stock``, ``query_stock_asset``,
  ``query_stock_orders``, ``query_stock_trades``, ``query_stock_positions``), ``requests_of(kind)``,
  ``pushes`` (``Push(session, name, thread, payload)`` as delivered), ``pushes_of(name)``,
  ``orders`` {order_id: BrokerOrder}, ``order(ref)``, ``trades``, ``clients``.
* ``wait_delivered(timeout=3)``: returns once every callback queued so far (trading and market
  data) has run. ``gateway_setting(**overrides)``: the ``XtGateway`` setting dict for this broker
  (stock market only, trading on, ``QMT路径`` = ``qmt_path``, ``资金账号`` = ``account_id``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from types import ModuleType

import pytest

# The fake is split by responsibility (xt_types, xt_client, xt_broker); importers of this module keep
# finding every name here.
from .xt_broker import FakeBroker, _Outbox
from .xt_client import FakeXtQuantTrader, XtQuantTraderCallback, _market_enum
from .xt_types import (
    CANCEL_PENDING,
    FINAL_STATUSES,
    MARKET_PRICE_TYPE_REPORTED,
    ORDER_ERROR_ID,
    REPORTED_PRICE_TYPES,
    TIMEOUT,
    XTCONSTANT,
    XTTYPE_CLASSES,
    BrokerOrder,
    BrokerPosition,
    BrokerTrade,
    C,
    Push,
    Request,
    StockAccount,
    XtAccountStatus,
    XtAsset,
    XtCancelError,
    XtCancelOrderResponse,
    XtOrder,
    XtOrderError,
    XtOrderResponse,
    XtPosition,
    XtTrade,
    _XtConstant,
)

__all__ = [
    "CANCEL_PENDING", "FINAL_STATUSES", "MARKET_PRICE_TYPE_REPORTED", "ORDER_ERROR_ID", "REPORTED_PRICE_TYPES",
    "TIMEOUT", "XTCONSTANT", "XTTYPE_CLASSES", "BrokerOrder", "BrokerPosition", "BrokerTrade", "C", "Push",
    "Request", "StockAccount", "XtAccountStatus", "XtAsset", "XtCancelError", "XtCancelOrderResponse",
    "XtOrder", "XtOrderError", "XtOrderResponse", "XtPosition", "XtTrade", "_XtConstant",
    "FakeXtQuantTrader", "XtQuantTraderCallback", "_market_enum", "FakeBroker", "_Outbox",
    "trading_modules", "install_fake_xt", "fake_xt_trading", "wait_until",
]


# --------------------------------------------------------------------------------------------------
# Installation
# --------------------------------------------------------------------------------------------------
def trading_modules(broker: FakeBroker) -> dict[str, ModuleType]:
    """``xtquant.xtconstant``, ``xtquant.xttype`` and ``xtquant.xttrader`` bound to ``broker``."""
    constant = ModuleType("xtquant.xtconstant")
    constant.__dict__.update(XTCONSTANT)
    types = ModuleType("xtquant.xttype")
    for cls in XTTYPE_CLASSES:
        setattr(types, cls.__name__, cls)
    trader = ModuleType("xtquant.xttrader")
    trader.XtQuantTraderCallback = XtQuantTraderCallback
    trader.XtQuantTrader = type("XtQuantTrader", (FakeXtQuantTrader,),
                                {"broker": broker, "__module__": "xtquant.xttrader"})
    return {"xtquant.xtconstant": constant, "xtquant.xttype": types, "xtquant.xttrader": trader}


def install_fake_xt(monkeypatch: pytest.MonkeyPatch, broker: FakeBroker | None = None) -> FakeBroker:
    """Unload ``xtquant``/``vnpy_xt``, put the fake package into ``sys.modules``; returns the broker.

    Import ``vnpy_xt`` afterwards so it binds to the fake. The caller undoes it with ``monkeypatch``
    (and should call ``broker.shutdown()`` and drop the ``vnpy_xt`` modules it imported).
    """
    broker = broker if broker is not None else FakeBroker()
    for name in [n for n in sys.modules if n.split(".")[0] in ("xtquant", "vnpy_xt")]:
        monkeypatch.delitem(sys.modules, name)
    broker.market.broker = broker
    broker.market.install(monkeypatch)
    return broker


@pytest.fixture
def fake_xt_trading(monkeypatch: pytest.MonkeyPatch, runtime_home) -> Iterator[FakeBroker]:
    """A :class:`FakeBroker` (market data at ``.market``) behind a fake ``xtquant`` in ``sys.modules``."""
    broker = install_fake_xt(monkeypatch)
    yield broker
    broker.shutdown()
    for name in [n for n in sys.modules if n.split(".")[0] == "vnpy_xt"]:
        del sys.modules[name]
    errors = broker.callback_errors + broker.market.callback_errors
    if errors:
        pytest.fail("callbacks raised inside the fake xtquant:\n" + "\n".join(trace for _, _, trace in errors))


def wait_until(predicate, what: str, timeout: float = 5.0):
    """Poll ``predicate`` until it returns something truthy (returned), failing the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)
