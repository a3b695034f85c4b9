"""xtquant's trading side (``xttrader``, ``xttype``, ``xtconstant``) over a simulated broker.

vnpy_xt's ``XtGateway`` talks to MiniQMT through ``xtquant.xttrader.XtQuantTrader``. The real client
is a Windows DLL; this module is a faithful pure-Python stand-in for xtquant 250807, to run the
real gateway on Linux. Nothing here opens a socket or touches the disk.

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

import copy
import itertools
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pytest

from .fake_xtquant import FakeXt

TIMEOUT = 5.0  # no wait on a callback thread lasts longer than this


# --------------------------------------------------------------------------------------------------
# xtconstant: the values of xtquant 250807's xtconstant.py (the parts a stock/option client uses)
# --------------------------------------------------------------------------------------------------
class _XtConstant:
    # 账号类型
    FUTURE_ACCOUNT = 1
    SECURITY_ACCOUNT = 2
    CREDIT_ACCOUNT = 3
    FUTURE_OPTION_ACCOUNT = 5
    STOCK_OPTION_ACCOUNT = 6
    HUGANGTONG_ACCOUNT = 7
    INCOME_SWAP_ACCOUNT = 8
    NEW3BOARD_ACCOUNT = 10
    SHENGANGTONG_ACCOUNT = 11
    AT_OFFSITEBANKING = 13
    AT_OUTTER_FUTURE = 1001
    AT_IB = 1002
    AT_NS_TRUSTBANK = 15001
    AT_INTERBANK = 15002
    AT_BANK = 15003
    AT_OTC = 15005
    ACCOUNT_TYPE_DICT = {
        FUTURE_ACCOUNT: 'FUTURE', SECURITY_ACCOUNT: 'STOCK', CREDIT_ACCOUNT: 'CREDIT',
        FUTURE_OPTION_ACCOUNT: 'FUTURE_OPTION', STOCK_OPTION_ACCOUNT: 'STOCK_OPTION',
        HUGANGTONG_ACCOUNT: 'HUGANGTONG', SHENGANGTONG_ACCOUNT: 'SHENGANGTONG', NEW3BOARD_ACCOUNT: 'NEW3BOARD',
        INCOME_SWAP_ACCOUNT: 'INCOME_SWAP', AT_OFFSITEBANKING: 'OFFSITEBANKING', AT_OUTTER_FUTURE: 'OUTTER_FUTURE',
        AT_IB: 'IB', AT_NS_TRUSTBANK: 'NS_TRUSTBANK', AT_INTERBANK: 'INTERBANK', AT_BANK: 'BANK', AT_OTC: 'OTC',
    }

    # 委托类型: futures
    FUTURE_OPEN_LONG = 0
    FUTURE_CLOSE_LONG_HISTORY = 1
    FUTURE_CLOSE_LONG_TODAY = 2
    FUTURE_OPEN_SHORT = 3
    FUTURE_CLOSE_SHORT_HISTORY = 4
    FUTURE_CLOSE_SHORT_TODAY = 5
    FUTURE_CLOSE_LONG_TODAY_FIRST = 6
    FUTURE_CLOSE_LONG_HISTORY_FIRST = 7
    FUTURE_CLOSE_SHORT_TODAY_FIRST = 8
    FUTURE_CLOSE_SHORT_HISTORY_FIRST = 9
    FUTURE_CLOSE_LONG_TODAY_HISTORY_THEN_OPEN_SHORT = 10
    FUTURE_CLOSE_LONG_HISTORY_TODAY_THEN_OPEN_SHORT = 11
    FUTURE_CLOSE_SHORT_TODAY_HISTORY_THEN_OPEN_LONG = 12
    FUTURE_CLOSE_SHORT_HISTORY_TODAY_THEN_OPEN_LONG = 13
    FUTURE_OPEN = 14
    FUTURE_CLOSE = 15
    # 股票期权
    STOCK_OPTION_BUY_OPEN = 48
    STOCK_OPTION_SELL_CLOSE = 49
    STOCK_OPTION_SELL_OPEN = 50
    STOCK_OPTION_BUY_CLOSE = 51
    STOCK_OPTION_COVERED_OPEN = 52
    STOCK_OPTION_COVERED_CLOSE = 53
    STOCK_OPTION_CALL_EXERCISE = 54
    STOCK_OPTION_PUT_EXERCISE = 55
    STOCK_OPTION_SECU_LOCK = 56
    STOCK_OPTION_SECU_UNLOCK = 57
    # ETF申赎
    ETF_PURCHASE = 134
    ETF_REDEMPTION = 135
    # 股票 / 信用
    STOCK_BUY = 23
    STOCK_SELL = 24
    CREDIT_BUY = 23
    CREDIT_SELL = 24
    CREDIT_FIN_BUY = 27
    CREDIT_SLO_SELL = 28
    CREDIT_BUY_SECU_REPAY = 29
    CREDIT_DIRECT_SECU_REPAY = 30
    CREDIT_SELL_SECU_REPAY = 31
    CREDIT_DIRECT_CASH_REPAY = 32
    CREDIT_FIN_BUY_SPECIAL = 40
    CREDIT_SLO_SELL_SPECIAL = 41
    CREDIT_BUY_SECU_REPAY_SPECIAL = 42
    CREDIT_DIRECT_SECU_REPAY_SPECIAL = 43
    CREDIT_SELL_SECU_REPAY_SPECIAL = 44
    CREDIT_DIRECT_CASH_REPAY_SPECIAL = 45

    # 报价类型
    LATEST_PRICE = 5
    FIX_PRICE = 11
    MARKET_BEST = 18
    MARKET_CANCEL = 19
    MARKET_CANCEL_ALL = 20
    MARKET_CANCEL_1 = 21
    MARKET_CANCEL_5 = 22
    MARKET_CONVERT_1 = 23
    MARKET_CONVERT_5 = 24
    MARKET_SH_CONVERT_5_CANCEL = 42
    MARKET_SH_CONVERT_5_LIMIT = 43
    MARKET_PEER_PRICE_FIRST = 44
    MARKET_MINE_PRICE_FIRST = 45
    MARKET_SZ_INSTBUSI_RESTCANCEL = 46
    MARKET_SZ_CONVERT_5_CANCEL = 47
    MARKET_SZ_FULL_OR_CANCEL = 48

    # 市场类型
    SH_MARKET = 0
    SZ_MARKET = 1
    MARKET_ENUM_BEIJING = 70
    MARKET_ENUM_SHANGHAI_FUTURE = 3
    MARKET_ENUM_DALIANG_FUTURE = 4
    MARKET_ENUM_ZHENGZHOU_FUTURE = 5
    MARKET_ENUM_INDEX_FUTURE = 2
    MARKET_ENUM_INTL_ENERGY_FUTURE = 6
    MARKET_ENUM_GUANGZHOU_FUTURE = 75
    MARKET_ENUM_SHANGHAI_STOCK_OPTION = 7
    MARKET_ENUM_SHENZHEN_STOCK_OPTION = 67
    MARKET_SHANGHAI = 'SH'
    MARKET_SHENZHEN = 'SZ'
    MARKET_BEIJING = 'BJ'
    MARKET_SHANGHAI_FUTURE = 'SF'
    MARKET_DALIANG_FUTURE = 'DF'
    MARKET_ZHENGZHOU_FUTURE = 'ZF'
    MARKET_INDEX_FUTURE = 'IF'
    MARKET_INTL_ENERGY_FUTURE = 'INE'
    MARKET_GUANGZHOU_FUTURE = 'GF'
    MARKET_SHANGHAI_STOCK_OPTION = 'SHO'
    MARKET_SHENZHEN_STOCK_OPTION = 'SZO'
    MARKET_STR_TO_ENUM_MAPPING = {
        MARKET_SHANGHAI: SH_MARKET, MARKET_SHENZHEN: SZ_MARKET, MARKET_BEIJING: MARKET_ENUM_BEIJING,
        MARKET_SHANGHAI_FUTURE: MARKET_ENUM_SHANGHAI_FUTURE, MARKET_DALIANG_FUTURE: MARKET_ENUM_DALIANG_FUTURE,
        MARKET_ZHENGZHOU_FUTURE: MARKET_ENUM_ZHENGZHOU_FUTURE, MARKET_INDEX_FUTURE: MARKET_ENUM_INDEX_FUTURE,
        MARKET_INTL_ENERGY_FUTURE: MARKET_ENUM_INTL_ENERGY_FUTURE, MARKET_GUANGZHOU_FUTURE: MARKET_ENUM_GUANGZHOU_FUTURE,
        MARKET_SHANGHAI_STOCK_OPTION: MARKET_ENUM_SHANGHAI_STOCK_OPTION,
        MARKET_SHENZHEN_STOCK_OPTION: MARKET_ENUM_SHENZHEN_STOCK_OPTION,
    }

    # 委托状态
    ORDER_UNREPORTED = 48
    ORDER_WAIT_REPORTING = 49
    ORDER_REPORTED = 50
    ORDER_REPORTED_CANCEL = 51
    ORDER_PARTSUCC_CANCEL = 52
    ORDER_PART_CANCEL = 53
    ORDER_CANCELED = 54
    ORDER_PART_SUCC = 55
    ORDER_SUCCEEDED = 56
    ORDER_JUNK = 57
    ORDER_UNKNOWN = 255

    # 账号状态
    ACCOUNT_STATUS_INVALID = -1
    ACCOUNT_STATUS_OK = 0
    ACCOUNT_STATUS_WAITING_LOGIN = 1
    ACCOUNT_STATUSING = 2
    ACCOUNT_STATUS_FAIL = 3
    ACCOUNT_STATUS_INITING = 4
    ACCOUNT_STATUS_CORRECTING = 5
    ACCOUNT_STATUS_CLOSED = 6
    ACCOUNT_STATUS_ASSIS_FAIL = 7
    ACCOUNT_STATUS_DISABLEBYSYS = 8
    ACCOUNT_STATUS_DISABLEBYUSER = 9

    # 多空 / 交易操作
    DIRECTION_FLAG_BUY = 48
    DIRECTION_FLAG_SELL = 49
    DIRECTION_FLAG_LONG = 48
    DIRECTION_FLAG_SHORT = 49
    OFFSET_FLAG_OPEN = 48
    OFFSET_FLAG_CLOSE = 49
    OFFSET_FLAG_FORCECLOSE = 50
    OFFSET_FLAG_CLOSETODAY = 51
    OFFSET_FLAG_ClOSEYESTERDAY = 52
    OFFSET_FLAG_FORCEOFF = 53
    OFFSET_FLAG_LOCALFORCECLOSE = 54


XTCONSTANT: dict[str, Any] = {k: v for k, v in vars(_XtConstant).items() if not k.startswith("_")}
C = _XtConstant
FINAL_STATUSES = {C.ORDER_PART_CANCEL, C.ORDER_CANCELED, C.ORDER_SUCCEEDED, C.ORDER_JUNK}
CANCEL_PENDING = {C.ORDER_REPORTED_CANCEL, C.ORDER_PARTSUCC_CANCEL}
# What MiniQMT reports in XtOrder.price_type for what was sent. vnpy_xt observed 50 for limit and 88
# for market orders ("限价返回50，市价返回88"); LATEST_PRICE -> 50 is the fake's assumption.
REPORTED_PRICE_TYPES = {C.FIX_PRICE: 50, C.LATEST_PRICE: 50}
MARKET_PRICE_TYPE_REPORTED = 88
ORDER_ERROR_ID = -61  # error_id of counter rejections as seen in MiniQMT reports (vnpy_xt only logs it)


# --------------------------------------------------------------------------------------------------
# xttype: xtquant 250807's xttype.py classes (same constructors, same attributes)
# --------------------------------------------------------------------------------------------------
class StockAccount(object):
    """定义证券账号类, 用于证券账号的报撤单等"""

    def __new__(cls, account_id, account_type='STOCK'):
        if not isinstance(account_id, str):
            return u"资金账号必须为字符串类型"
        return super(StockAccount, cls).__new__(cls)

    def __init__(self, account_id, account_type='STOCK'):
        account_type = account_type.upper()
        for int_type, str_type in C.ACCOUNT_TYPE_DICT.items():
            if account_type == str_type:
                self.account_type = int_type
                self.account_id = account_id
                return
        raise Exception("不支持的账号类型：{}！".format(account_type))


class XtAsset(object):
    def __init__(self, account_id, cash, frozen_cash, market_value, total_asset, fetch_balance):
        self.account_type = C.SECURITY_ACCOUNT
        self.account_id = account_id
        self.cash = cash
        self.frozen_cash = frozen_cash
        self.market_value = market_value
        self.total_asset = total_asset
        self.fetch_balance = fetch_balance


class XtOrder(object):
    def __init__(self, account_id, stock_code,
                 order_id, order_sysid, order_time, order_type, order_volume,
                 price_type, price, traded_volume, traded_price,
                 order_status, status_msg, strategy_name, order_remark, direction, offset_flag,
                 secu_account, instrument_name):
        self.account_type = C.SECURITY_ACCOUNT
        self.account_id = account_id
        self.stock_code = stock_code
        self.order_id = order_id
        self.order_sysid = order_sysid
        self.order_time = order_time
        self.order_type = order_type
        self.order_volume = order_volume
        self.price_type = price_type
        self.price = price
        self.traded_volume = traded_volume
        self.traded_price = traded_price
        self.order_status = order_status
        self.status_msg = status_msg
        self.strategy_name = strategy_name
        self.order_remark = order_remark
        self.direction = direction
        self.offset_flag = offset_flag
        self.secu_account = secu_account
        self.instrument_name = instrument_name


class XtTrade(object):
    def __init__(self, account_id, stock_code,
                 order_type, traded_id, traded_time, traded_price, traded_volume, traded_amount,
                 order_id, order_sysid, strategy_name, order_remark, direction, offset_flag,
                 commission, secu_account, instrument_name):
        self.account_type = C.SECURITY_ACCOUNT
        self.account_id = account_id
        self.order_type = order_type
        self.stock_code = stock_code
        self.traded_id = traded_id
        self.traded_time = traded_time
        self.traded_price = traded_price
        self.traded_volume = traded_volume
        self.traded_amount = traded_amount
        self.order_id = order_id
        self.order_sysid = order_sysid
        self.strategy_name = strategy_name
        self.order_remark = order_remark
        self.direction = direction
        self.offset_flag = offset_flag
        self.commission = commission
        self.secu_account = secu_account
        self.instrument_name = instrument_name


class XtPosition(object):
    def __init__(self, account_id, stock_code,
                 volume, can_use_volume, open_price, market_value,
                 frozen_volume, on_road_volume, yesterday_volume, avg_price, direction,
                 last_price, profit_rate, secu_account, instrument_name):
        self.account_type = C.SECURITY_ACCOUNT
        self.account_id = account_id
        self.stock_code = stock_code
        self.volume = volume
        self.can_use_volume = can_use_volume
        self.open_price = open_price
        self.market_value = market_value
        self.frozen_volume = frozen_volume
        self.on_road_volume = on_road_volume
        self.yesterday_volume = yesterday_volume
        self.avg_price = avg_price
        self.direction = direction
        self.last_price = last_price
        self.profit_rate = profit_rate
        self.secu_account = secu_account
        self.instrument_name = instrument_name


class XtOrderError(object):
    """The native object also carries ``seq`` (the request's sequence number); the fake sets it too."""

    def __init__(self, account_id, order_id,
                 error_id=None, error_msg=None,
                 strategy_name=None, order_remark=None):
        self.account_type = C.SECURITY_ACCOUNT
        self.account_id = account_id
        self.order_id = order_id
        self.error_id = error_id
        self.error_msg = error_msg
        self.strategy_name = strategy_name
        self.order_remark = order_remark


class XtCancelError(object):
    def __init__(self, account_id, order_id, market, order_sysid,
                 error_id=None, error_msg=None):
        self.account_type = C.SECURITY_ACCOUNT
        self.account_id = account_id
        self.order_id = order_id
        self.market = market
        self.order_sysid = order_sysid
        self.error_id = error_id
        self.error_msg = error_msg


class XtOrderResponse(object):
    def __init__(self, account_id, order_id, strategy_name, order_remark, error_msg, seq):
        self.account_type = C.SECURITY_ACCOUNT
        self.account_id = account_id
        self.order_id = order_id
        self.strategy_name = strategy_name
        self.order_remark = order_remark
        self.error_msg = error_msg
        self.seq = seq


class XtCancelOrderResponse(object):
    def __init__(self, account_id, cancel_result, order_id, order_sysid, seq, error_msg):
        self.account_type = C.SECURITY_ACCOUNT
        self.account_id = account_id
        self.cancel_result = cancel_result
        self.order_id = order_id
        self.order_sysid = order_sysid
        self.seq = seq
        self.error_msg = error_msg


class XtAccountStatus(object):
    def __init__(self, account_id, account_type, status):
        self.account_type = account_type
        self.account_id = account_id
        self.status = status


XTTYPE_CLASSES = (StockAccount, XtAsset, XtOrder, XtTrade, XtPosition, XtOrderError, XtCancelError,
                  XtOrderResponse, XtCancelOrderResponse, XtAccountStatus)


# --------------------------------------------------------------------------------------------------
# xttrader
# --------------------------------------------------------------------------------------------------
class XtQuantTraderCallback(object):
    """xtquant 250807's callback base class: every method a no-op."""

    def on_connected(self):
        pass

    def on_disconnected(self):
        pass

    def on_account_status(self, status):
        pass

    def on_stock_asset(self, asset):
        pass

    def on_stock_order(self, order):
        pass

    def on_stock_trade(self, trade):
        pass

    def on_stock_position(self, position):
        pass

    def on_order_error(self, order_error):
        pass

    def on_cancel_error(self, cancel_error):
        pass

    def on_order_stock_async_response(self, response):
        pass

    def on_cancel_order_stock_async_response(self, response):
        pass

    def on_smt_appointment_async_response(self, response):
        pass

    def on_bank_transfer_async_response(self, response):
        pass

    def on_ctp_internal_transfer_async_response(self, response):
        pass

    def on_smart_algo_order_async_response(self, response):
        pass

    def on_operate_smart_task_async_response(self, response):
        pass


class FakeXtQuantTrader(object):
    """``XtQuantTrader`` over a :class:`FakeBroker` (``trading_modules`` binds ``broker`` per install)."""

    broker: FakeBroker

    def __init__(self, path, session, callback=None):
        path.encode('gb18030')  # the real client encodes the path for the DLL: a str is required
        self.path = path
        self.session = session
        self.callback = callback
        self.connected = False
        self.cbs: dict[int, Callable] = {}
        self.executor: ThreadPoolExecutor | None = None
        self.resp_executor: ThreadPoolExecutor | None = None
        self.relaxed_resp_order_enabled = False
        self.relaxed_resp_executor: ThreadPoolExecutor | None = None
        self.queuing_order_seq: set[int] = set()
        self.handled_async_order_stock_order_id: set[int] = set()
        self.queuing_order_errors_byseq: dict[int, XtOrderError] = {}
        self.queuing_order_errors_byid: dict[int, XtOrderError] = {}
        self.handled_async_cancel_order_stock_order_id: set[int] = set()
        self.handled_async_cancel_order_stock_order_sys_id: set[str] = set()
        self.queuing_cancel_errors_by_order_id: dict[int, XtCancelError] = {}
        self.queuing_cancel_errors_by_order_sys_id: dict[str, XtCancelError] = {}
        # fake-only state
        self.subscribed_accounts: set[str] = set()
        self.stopped = False
        self.callback_thread_ids: set[int] = set()
        self._seq = itertools.count(1)
        self.broker._register(self)

    def __repr__(self) -> str:
        return f"<XtQuantTrader session={self.session} connected={self.connected}>"

    # -- lifecycle -----------------------------------------------------------------------------
    def register_callback(self, callback):
        self.callback = callback

    def start(self):
        prefix = f"xttrader-{self.session}"
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{prefix}-callback",
                                           initializer=self._mark_callback_thread)
        self.relaxed_resp_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{prefix}-relaxed",
                                                        initializer=self._mark_callback_thread)
        self.resp_executor = self.relaxed_resp_executor if self.relaxed_resp_order_enabled else self.executor

    def stop(self):
        self.connected = False
        self.stopped = True
        self.executor.shutdown(wait=True)
        self.relaxed_resp_executor.shutdown(wait=True)

    def connect(self):
        if self.executor is None:
            raise RuntimeError("the fake needs start() before connect(), as vnpy_xt calls them")
        result = self.broker._connect(self)
        self.connected = result == 0
        return result

    def set_relaxed_response_order_enabled(self, enabled):
        self.relaxed_resp_order_enabled = enabled
        self.resp_executor = self.relaxed_resp_executor if self.relaxed_resp_order_enabled else self.executor

    def set_timeout(self, timeout=0):
        pass

    # -- account subscription ------------------------------------------------------------------
    def subscribe(self, account):
        args = {"account_id": account.account_id, "account_type": account.account_type}
        if self.broker._record(self, "subscribe", args).dropped:
            return -1
        result = self.broker._subscribe(self, account)
        return self._sync_answer(result)

    def unsubscribe(self, account):
        self.subscribed_accounts.discard(account.account_id)
        return 0 if self.connected else -1

    # -- orders --------------------------------------------------------------------------------
    def order_stock_async(self, account, stock_code, order_type, order_volume, price_type, price, strategy_name='',
                          order_remark=''):
        seq = next(self._seq)
        self.queuing_order_seq.add(seq)
        self.cbs[seq] = self.callback.on_order_stock_async_response
        self.broker._order(self, seq, account, stock_code, order_type, int(order_volume), price_type, price,
                           strategy_name, order_remark)
        return seq

    def order_stock(self, account, stock_code, order_type, order_volume, price_type, price, strategy_name='',
                    order_remark=''):
        seq = next(self._seq)
        self.queuing_order_seq.add(seq)
        future: Future = Future()
        self.cbs[seq] = future.set_result
        if not self.broker._order(self, seq, account, stock_code, order_type, int(order_volume), price_type, price,
                                  strategy_name, order_remark):
            return -1
        return self._wait(future).order_id

    def cancel_order_stock_async(self, account, order_id):
        seq = next(self._seq)
        self.cbs[seq] = self.callback.on_cancel_order_stock_async_response
        self.broker._cancel(self, seq, account, order_id=order_id)
        return seq

    def cancel_order_stock(self, account, order_id):
        seq = next(self._seq)
        future: Future = Future()
        self.cbs[seq] = future.set_result
        if not self.broker._cancel(self, seq, account, order_id=order_id):
            return -1
        return self._wait(future).cancel_result

    def cancel_order_stock_sysid_async(self, account, market, sysid):
        seq = next(self._seq)
        self.cbs[seq] = self.callback.on_cancel_order_stock_async_response
        self.broker._cancel(self, seq, account, market=_market_enum(market), sysid=sysid)
        return seq

    def cancel_order_stock_sysid(self, account, market, sysid):
        seq = next(self._seq)
        future: Future = Future()
        self.cbs[seq] = future.set_result
        if not self.broker._cancel(self, seq, account, market=_market_enum(market), sysid=sysid):
            return -1
        return self._wait(future).cancel_result

    # -- queries -------------------------------------------------------------------------------
    def query_stock_asset(self, account):
        resp = self._query_sync("query_stock_asset", account)
        if resp and len(resp):
            return resp[0]
        return None

    def query_stock_asset_async(self, account, callback):
        def _cb(resp):
            callback(resp[0] if resp else None)
        self._query_async("query_stock_asset", account, _cb)
        return

    def query_stock_order(self, account, order_id):
        resp = self._query_sync("query_stock_orders", account, order_id=order_id)
        if resp and len(resp):
            return resp[0]
        return None

    def query_stock_orders(self, account, cancelable_only=False):
        return self._query_sync("query_stock_orders", account, cancelable_only=cancelable_only)

    def query_stock_orders_async(self, account, callback, cancelable_only=False):
        return self._query_async("query_stock_orders", account, callback, cancelable_only=cancelable_only)

    def query_stock_trades(self, account):
        return self._query_sync("query_stock_trades", account)

    def query_stock_trades_async(self, account, callback):
        return self._query_async("query_stock_trades", account, callback)

    def query_stock_position(self, account, stock_code):
        resp = self._query_sync("query_stock_positions", account, stock_code=stock_code)
        if resp and len(resp):
            return resp[0]
        return None

    def query_stock_positions(self, account):
        return self._query_sync("query_stock_positions", account)

    def query_stock_positions_async(self, account, callback):
        return self._query_async("query_stock_positions", account, callback)

    # -- the fake's plumbing -------------------------------------------------------------------
    def _mark_callback_thread(self) -> None:
        self.callback_thread_ids.add(threading.get_ident())

    def _on_callback_thread(self) -> bool:
        return threading.get_ident() in self.callback_thread_ids

    def _query_async(self, kind: str, account, callback, **filters) -> int:
        seq = next(self._seq)
        self.cbs[seq] = callback
        args = {"account_id": account.account_id, "account_type": account.account_type, **filters}
        if not self.broker._record(self, kind, args).dropped:
            result = self.broker._query(kind, account, **filters)
            self.broker._answer(self, [(self._on_resp, (seq, result), kind)])
        return seq

    def _query_sync(self, kind: str, account, **filters) -> list:
        args = {"account_id": account.account_id, "account_type": account.account_type, **filters}
        if self.broker._record(self, kind, args).dropped:
            return []
        return self._sync_answer(self.broker._query(kind, account, **filters))

    def _sync_answer(self, result: Any) -> Any:
        """Deliver ``result`` through the response thread and wait for it, as common_op_sync_with_seq."""
        seq = next(self._seq)
        future: Future = Future()
        self.cbs[seq] = future.set_result
        self.broker._answer(self, [(self._on_resp, (seq, result), "sync response")])
        return self._wait(future)

    def _wait(self, future: Future) -> Any:
        if self._on_callback_thread():
            raise RuntimeError("a synchronous xttrader call from inside one of its callbacks: the real client hangs")
        return future.result(timeout=TIMEOUT)

    def _schedule(self, items: list[tuple[Callable, tuple, str]], delay: float) -> Future | None:
        if self.executor is None or self.stopped or not items:
            return None
        try:
            return self.executor.submit(self._run, items, delay)
        except RuntimeError:  # shut down meanwhile
            return None

    def _run(self, items: list[tuple[Callable, tuple, str]], delay: float) -> None:
        if delay:
            time.sleep(delay)
        thread = threading.current_thread().name
        for func, args, name in items:
            if not name.startswith("_"):  # "_sentinel": wait_delivered's marker
                self.broker.pushes.append(Push(self.session, name, thread, args[-1] if args else None))
            try:
                func(*args)
            except BaseException as exc:  # the real executor keeps it in a Future nobody reads
                self.broker.callback_errors.append((name, exc, traceback.format_exc()))

    # The real client's native-callback wrappers (xttrader.py, XtQuantTrader.__init__).
    def _on_resp(self, seq, resp):
        callback = self.cbs.pop(seq, None)
        if callback:
            callback(resp)

    def _on_push(self, name, data):
        getattr(self.callback, name)(data)

    def _on_disconnected(self):
        if self.callback:
            self.callback.on_disconnected()

    def _on_order_response(self, seq, resp):
        callback = self.cbs.pop(seq, None)
        if callback:
            callback(resp)
            self.queuing_order_seq.discard(seq)
            e = self.queuing_order_errors_byseq.pop(seq, None)
            if not e:
                e = self.queuing_order_errors_byid.pop(resp.order_id, None)
            if e is not None:
                self.callback.on_order_error(e)
            else:
                self.handled_async_order_stock_order_id.add(resp.order_id)

    def _on_order_error(self, data):
        if data.seq not in self.queuing_order_seq or data.order_id in self.handled_async_order_stock_order_id:
            self.handled_async_order_stock_order_id.discard(data.order_id)
            self.callback.on_order_error(data)
        else:
            self.queuing_order_errors_byseq[data.seq] = data
            self.queuing_order_errors_byid[data.order_id] = data

    def _on_cancel_response(self, seq, resp):
        callback = self.cbs.pop(seq, None)
        if callback:
            callback(resp)
            if not resp.order_sysid:
                e = self.queuing_cancel_errors_by_order_id.pop(resp.order_id, None)
                if e is not None:
                    self.handled_async_cancel_order_stock_order_id.discard(resp.order_id)
                    self.callback.on_cancel_error(e)
                else:
                    self.handled_async_cancel_order_stock_order_id.add(resp.order_id)
            else:
                e = self.queuing_cancel_errors_by_order_sys_id.pop(resp.order_sysid, None)
                if e is not None:
                    self.handled_async_cancel_order_stock_order_sys_id.discard(resp.order_sysid)
                    self.callback.on_cancel_error(e)
                else:
                    self.handled_async_cancel_order_stock_order_sys_id.add(resp.order_sysid)

    def _on_cancel_error(self, data):
        if data.order_id in self.handled_async_cancel_order_stock_order_id:
            self.handled_async_cancel_order_stock_order_id.discard(data.order_id)
            self.callback.on_cancel_error(data)
        elif data.order_sysid in self.handled_async_cancel_order_stock_order_sys_id:
            self.handled_async_cancel_order_stock_order_sys_id.discard(data.order_sysid)
            self.callback.on_cancel_error(data)
        else:
            self.queuing_cancel_errors_by_order_id[data.order_id] = data
            self.queuing_cancel_errors_by_order_sys_id[data.order_sysid] = data


def _market_enum(market: int | str) -> int:
    if isinstance(market, str):
        return C.MARKET_STR_TO_ENUM_MAPPING.get(market, -1)
    return market


# --------------------------------------------------------------------------------------------------
# The simulated broker
# --------------------------------------------------------------------------------------------------
@dataclass
class Request:
    kind: str
    session: int
    args: dict[str, Any]
    thread: str
    dropped: bool = False  # the client was not connected: the request never reached the broker


@dataclass
class Push:
    session: int
    name: str       # callback name, e.g. "on_stock_order", or the query kind for query answers
    thread: str     # the thread it was delivered on
    payload: Any


@dataclass
class BrokerOrder:
    order_id: int
    account_id: str
    stock_code: str
    order_type: int
    order_volume: int
    price_type: int
    price: float
    strategy_name: str
    order_remark: str
    session: int | None     # None: placed outside any fake client (place_external)
    order_time: int
    order_sysid: str = ""
    status: int = C.ORDER_UNREPORTED
    status_msg: str = ""
    traded_volume: int = 0
    traded_amount: float = 0.0
    frozen_cash: float = 0.0
    cancel_session: int | None = None
    statuses: list[int] = field(default_factory=list)  # every status it went through

    @property
    def buy(self) -> bool:
        return self.order_type == C.STOCK_BUY

    @property
    def remaining(self) -> int:
        return self.order_volume - self.traded_volume

    @property
    def traded_price(self) -> float:
        return self.traded_amount / self.traded_volume if self.traded_volume else 0.0

    @property
    def market(self) -> int:
        return C.MARKET_STR_TO_ENUM_MAPPING.get(self.stock_code.rsplit(".", 1)[-1], -1)


@dataclass
class BrokerTrade:
    traded_id: str
    order: BrokerOrder
    price: float
    volume: int
    traded_time: int
    commission: float


@dataclass
class BrokerPosition:
    stock_code: str
    volume: int = 0
    can_use_volume: int = 0
    frozen_volume: int = 0
    yesterday_volume: int = 0
    open_price: float = 0.0
    on_road_volume: int = 0


class _Outbox:
    """What one broker operation sends: broadcasts to subscribed clients and calls to one client."""

    def __init__(self) -> None:
        self.items: list[tuple] = []
        self.futures: list[Future] = []

    def push(self, name: str, make: Callable[[], Any]) -> None:
        """Broadcast ``make()`` -- evaluated now, each listener gets its own copy."""
        self.items.append(("push", name, make()))

    def call(self, client: FakeXtQuantTrader, name: str, func: Callable, *args: Any) -> None:
        self.items.append(("call", client, name, func, args))


class FakeBroker:
    """MiniQMT and the broker's counter behind it. See the module docstring for the API."""

    def __init__(self, market: FakeXt | None = None, *, account_id: str = "8880001234", cash: float = 1_000_000.0,
                 account_type: str = "STOCK", qmt_path: str = "C:\\QMT", latency: float = 0.01) -> None:
        self.market = market if market is not None else FakeXt()
        if self.market.broker is None:
            self.market.broker = self
        self.account_id = account_id
        self.account_type = next(k for k, v in C.ACCOUNT_TYPE_DICT.items() if v == account_type)
        self.qmt_path = qmt_path
        self.cash = float(cash)
        self.frozen_cash = 0.0
        self.positions: dict[str, BrokerPosition] = {}
        self.orders: dict[int, BrokerOrder] = {}
        self.trades: list[BrokerTrade] = []
        self.requests: list[Request] = []
        self.pushes: list[Push] = []
        self.callback_errors: list[tuple[str, BaseException, str]] = []
        self.clients: list[FakeXtQuantTrader] = []
        # behaviour switches
        self.online = True
        self.userdata_path: str | None = None   # None: any path connects
        self.latency = latency
        self.auto_report = False
        self.auto_cancel = True
        self.deliver_before_return = False
        self.board_lot = 100
        self.commission_rate = 0.0
        self.reported_price_types = dict(REPORTED_PRICE_TYPES)
        self.clock: Callable[[], float] = time.time
        self._lock = threading.RLock()
        self._order_ids = itertools.count(1_082_130_433)
        self._sysids = itertools.count(10_001)
        self._trade_ids = itertools.count(1)

    # == test side: setup ==========================================================================
    def set_position(self, stock_code: str, volume: int, *, can_use: int | None = None,
                     open_price: float = 0.0) -> BrokerPosition:
        """Shares held since yesterday (``can_use`` of them sellable today, default all)."""
        with self._lock:
            position = BrokerPosition(stock_code, volume=volume, can_use_volume=volume if can_use is None else can_use,
                                      yesterday_volume=volume, open_price=open_price)
            self.positions[stock_code] = position
            return position

    def gateway_setting(self, **overrides: str) -> dict[str, str]:
        """``XtGateway``'s connect setting for this broker; keyword overrides by setting key."""
        token = "test-token" if "test-token" in self.market.tokens else next(iter(sorted(self.market.tokens)), "")
        setting = {"token": token, "股票市场": "是", "期货市场": "否", "期权市场": "否", "仿真交易": "是",
                   "账号类型": "股票" if self.account_type == C.SECURITY_ACCOUNT else "股票期权",
                   "QMT路径": self.qmt_path, "资金账号": self.account_id}
        setting.update(overrides)
        return setting

    def push_tick(self, stock_code: str, last_price: float, **fields: Any) -> dict:
        """Market data: see :meth:`FakeXt.push_tick`."""
        return self.market.push_tick(stock_code, last_price, **fields)

    # == test side: inspection =====================================================================
    def order(self, ref: int | str) -> BrokerOrder:
        """The order with this order_id (int), order_remark or vt_orderid ("XT.<remark>")."""
        with self._lock:
            if isinstance(ref, int):
                return self.orders[ref]
            remark = ref.split(".", 1)[1] if "." in ref else ref
            found = [o for o in self.orders.values() if o.order_remark == remark]
            if len(found) != 1:
                raise KeyError(f"{len(found)} orders with remark {remark!r}")
            return found[0]

    def asset(self) -> XtAsset:
        with self._lock:
            return self._xt_asset()

    def requests_of(self, kind: str) -> list[Request]:
        return [r for r in self.requests if r.kind == kind]

    def pushes_of(self, name: str) -> list[Push]:
        return [p for p in list(self.pushes) if p.name == name]

    def wait_delivered(self, timeout: float = 3.0) -> None:
        """Return once every callback queued so far, trading and market data, has run."""
        if any(c._on_callback_thread() for c in self.clients):
            raise RuntimeError("wait_delivered() from a callback thread would wait for itself")
        for client in list(self.clients):
            future = client._schedule([(lambda: None, (), "_sentinel")], 0.0)
            if future is not None:
                future.result(timeout=timeout)
        self.market.wait_pushed(timeout)

    # == test side: the exchange ===================================================================
    def report(self, ref: int | str) -> BrokerOrder:
        """未报/待报 -> 已报: the counter sent the order to the exchange (assigns order_sysid)."""
        with self._operation() as out:
            order = self.order(ref)
            assert order.status in (C.ORDER_UNREPORTED, C.ORDER_WAIT_REPORTING), order
            self._report(order, out)
            return order

    def fill(self, ref: int | str, volume: int | None = None, price: float | None = None) -> BrokerTrade:
        """A fill of ``volume`` (default: all that remains) at ``price`` (default: the order price)."""
        with self._operation() as out:
            order = self.order(ref)
            assert order.status in {C.ORDER_REPORTED, C.ORDER_PART_SUCC} | CANCEL_PENDING, order
            volume = order.remaining if volume is None else int(volume)
            assert 0 < volume <= order.remaining, (volume, order)
            price = float(order.price if price is None else price)
            if order.price_type == C.FIX_PRICE:
                assert (price <= order.price + 1e-9) if order.buy else (price >= order.price - 1e-9), (price, order)
            amount = price * volume
            commission = round(amount * self.commission_rate, 2)
            trade = BrokerTrade(str(next(self._trade_ids)).rjust(8, "0"), order, price, volume,
                                int(self.clock()), commission)
            self.trades.append(trade)
            order.traded_volume += volume
            order.traded_amount += amount
            position = self.positions.setdefault(order.stock_code, BrokerPosition(order.stock_code))
            if order.buy:
                release = min(order.frozen_cash, order.price * volume * (1 + self.commission_rate))
                order.frozen_cash -= release
                self.frozen_cash -= release
                self.cash += release - amount - commission
                cost = position.open_price * position.volume + amount
                position.volume += volume  # T+1: not sellable today
                position.open_price = cost / position.volume
            else:
                position.volume -= volume
                position.frozen_volume -= volume
                self.cash += amount - commission
            cancel_failed = False
            if order.remaining == 0:
                cancel_failed = order.status in CANCEL_PENDING
                self._set_status(order, C.ORDER_SUCCEEDED)
                self._release(order)
            elif order.status in CANCEL_PENDING:
                self._set_status(order, C.ORDER_PARTSUCC_CANCEL)
            else:
                self._set_status(order, C.ORDER_PART_SUCC)
            self._push_order(order, out)
            out.push("on_stock_trade", lambda: self._xt_trade(trade))
            if cancel_failed:
                self._cancel_error(order, "委托已全部成交，撤单失败", out)
            self._push_account(order, out)
            return trade

    def cancel(self, ref: int | str) -> BrokerOrder:
        """The exchange confirms a cancel: 已撤 (nothing traded) or 部撤."""
        with self._operation() as out:
            order = self.order(ref)
            assert order.status not in FINAL_STATUSES, order
            self._confirm_cancel(order, out)
            return order

    def reject_cancel(self, ref: int | str, msg: str = "撤单失败") -> BrokerOrder:
        """A pending cancel (51/52) fails: back to 已报/部成, ``on_cancel_error`` to the requester."""
        with self._operation() as out:
            order = self.order(ref)
            assert order.status in CANCEL_PENDING, order
            self._set_status(order, C.ORDER_PART_SUCC if order.traded_volume else C.ORDER_REPORTED)
            self._push_order(order, out)
            self._cancel_error(order, msg, out)
            return order

    def junk(self, ref: int | str, msg: str = "废单") -> BrokerOrder:
        """The exchange rejects a live, untraded order: 废单 with ``status_msg``."""
        with self._operation() as out:
            order = self.order(ref)
            assert order.status in (C.ORDER_UNREPORTED, C.ORDER_WAIT_REPORTING, C.ORDER_REPORTED), order
            assert order.traded_volume == 0, order
            order.status_msg = msg
            self._set_status(order, C.ORDER_JUNK)
            self._release(order)
            self._push_order(order, out)
            self._push_account(order, out)
            return order

    def place_external(self, stock_code: str, order_type: int, volume: int, price: float, *,
                       price_type: int = C.FIX_PRICE, remark: str = "", strategy_name: str = "") -> BrokerOrder:
        """An order from another session or the QMT window (pushed to every subscribed client)."""
        with self._operation() as out:
            order = self._new_order(None, self.account_id, stock_code, order_type, volume, price_type, price,
                                    strategy_name, remark)
            reason = self._check(order)
            if reason:
                self._reject(order, reason, out)
            else:
                self._accept(order, out)
            return order

    # == test side: the link =======================================================================
    def disconnect(self, *, restore: bool = False, meanwhile: Callable[[], Any] | None = None,
                   timeout: float = TIMEOUT) -> list[FakeXtQuantTrader]:
        """Drop the MiniQMT link (see the module docstring); returns the clients that were dropped."""
        with self._lock:
            self.online = False
            dropped = [c for c in self.clients if c.connected]
            for client in dropped:
                client.connected = False
        if meanwhile is not None:
            meanwhile()
        if restore:
            self.restore()
        futures = [c._schedule([(c._on_disconnected, (), "on_disconnected")], 0.0) for c in dropped]
        if not any(c._on_callback_thread() for c in self.clients):
            for future in futures:
                if future is not None:
                    future.result(timeout=timeout)
        return dropped

    def restore(self) -> None:
        """MiniQMT is reachable again: new connect() calls succeed. Nobody is told."""
        self.online = True

    def shutdown(self) -> None:
        """Stop every client's threads (vnpy_xt never stops a client it replaced) and market pushes."""
        for client in list(self.clients):
            client.connected = False
            if client.executor is not None and not client.stopped:
                client.stopped = True
                client.executor.shutdown(wait=True)
                client.relaxed_resp_executor.shutdown(wait=True)
        self.market.close()

    # == client side (called by FakeXtQuantTrader) =================================================
    def _register(self, client: FakeXtQuantTrader) -> None:
        with self._lock:
            self.clients.append(client)

    def _record(self, client: FakeXtQuantTrader, kind: str, args: dict[str, Any]) -> Request:
        request = Request(kind, client.session, args, threading.current_thread().name,
                          dropped=not (client.connected or kind == "connect"))
        self.requests.append(request)
        return request

    def _connect(self, client: FakeXtQuantTrader) -> int:
        self._record(client, "connect", {"path": client.path, "session": client.session})
        with self._lock:
            if not self.online:
                return -1
            if self.userdata_path is not None and client.path != self.userdata_path:
                return -1
            if any(c is not client and c.connected and c.session == client.session for c in self.clients):
                return -1
            return 0

    def _subscribe(self, client: FakeXtQuantTrader, account: StockAccount) -> int:
        with self._lock:
            if account.account_id != self.account_id or account.account_type != self.account_type:
                return -1
            client.subscribed_accounts.add(account.account_id)
            return 0

    def _order(self, client: FakeXtQuantTrader, seq: int, account: StockAccount, stock_code: str, order_type: int,
               order_volume: int, price_type: int, price: float, strategy_name: str, order_remark: str) -> bool:
        args = {"account_id": account.account_id, "account_type": account.account_type, "stock_code": stock_code,
                "order_type": order_type, "order_volume": order_volume, "price_type": price_type, "price": price,
                "strategy_name": strategy_name, "order_remark": order_remark}
        if self._record(client, "order_stock", args).dropped:
            return False
        with self._operation(client) as out:
            order = self._new_order(client.session, account.account_id, stock_code, order_type, order_volume,
                                    price_type, price, strategy_name, order_remark)
            response = XtOrderResponse(account.account_id, order.order_id, strategy_name, order_remark, "", seq)
            out.call(client, "on_order_stock_async_response", client._on_order_response, seq, response)
            reason = self._check(order)
            if reason:
                self._reject(order, reason, out, client=client, seq=seq)
            else:
                self._accept(order, out)
        return True

    def _cancel(self, client: FakeXtQuantTrader, seq: int, account: StockAccount, *, order_id: int | None = None,
                market: int | None = None, sysid: str | None = None) -> bool:
        args = {"account_id": account.account_id, "account_type": account.account_type, "order_id": order_id,
                "market": market, "sysid": sysid}
        if self._record(client, "cancel_order_stock", args).dropped:
            return False
        with self._operation(client) as out:
            if sysid is not None:
                found = [o for o in self.orders.values() if o.order_sysid and o.order_sysid == sysid
                         and o.market == market]
            else:
                found = [o for o in self.orders.values() if o.order_id == order_id]
            order = found[0] if found and account.account_id == self.account_id else None
            error = ("委托不存在" if order is None else "委托已结束，不能撤单" if order.status in FINAL_STATUSES
                     else "委托正在撤单" if order.status in CANCEL_PENDING else "")
            resp_id = order.order_id if order else (order_id if order_id is not None else -1)
            resp_sysid = order.order_sysid if order else (sysid or "")
            response = XtCancelOrderResponse(account.account_id, -1 if error else 0, resp_id, resp_sysid, seq, error)
            out.call(client, "on_cancel_order_stock_async_response", client._on_cancel_response, seq, response)
            if error:
                cancel_error = XtCancelError(account.account_id, resp_id, market if market is not None else -1,
                                             resp_sysid, -1, error)
                out.call(client, "on_cancel_error", client._on_cancel_error, cancel_error)
            elif order.status in (C.ORDER_UNREPORTED, C.ORDER_WAIT_REPORTING):
                self._confirm_cancel(order, out)  # the counter withdraws it before the exchange saw it
            else:
                order.cancel_session = client.session
                self._set_status(order, C.ORDER_PARTSUCC_CANCEL if order.traded_volume else C.ORDER_REPORTED_CANCEL)
                self._push_order(order, out)
                if self.auto_cancel:
                    self._confirm_cancel(order, out)
        return True

    def _query(self, kind: str, account: StockAccount, **filters: Any) -> list:
        with self._lock:
            if account.account_id != self.account_id:
                return []
            if kind == "query_stock_asset":
                return [self._xt_asset()]
            if kind == "query_stock_orders":
                orders = sorted(self.orders.values(), key=lambda o: o.order_id)
                if filters.get("order_id") is not None:
                    orders = [o for o in orders if o.order_id == filters["order_id"]]
                if filters.get("cancelable_only"):
                    orders = [o for o in orders if o.status not in FINAL_STATUSES | CANCEL_PENDING]
                return [self._xt_order(o) for o in orders]
            if kind == "query_stock_trades":
                return [self._xt_trade(t) for t in self.trades]
            if kind == "query_stock_positions":
                codes = [filters["stock_code"]] if filters.get("stock_code") else list(self.positions)
                return [self._xt_position(self.positions[c]) for c in codes if c in self.positions]
            raise ValueError(kind)

    def _answer(self, client: FakeXtQuantTrader, items: list[tuple[Callable, tuple, str]]) -> None:
        """Deliver a request's answer to the requester, after the latency."""
        future = client._schedule(items, self.latency)
        if future is not None and self.deliver_before_return and not client._on_callback_thread():
            future.result(timeout=TIMEOUT)

    # == internals =================================================================================
    @contextmanager
    def _operation(self, requester: FakeXtQuantTrader | None = None) -> Iterator[_Outbox]:
        out = _Outbox()
        with self._lock:
            yield out
            self._dispatch(out, requester)
        if requester is not None and self.deliver_before_return and not requester._on_callback_thread():
            for future in out.futures:
                future.result(timeout=TIMEOUT)

    def _dispatch(self, out: _Outbox, requester: FakeXtQuantTrader | None) -> None:
        listeners = [c for c in self.clients
                     if c.connected and not c.stopped and self.account_id in c.subscribed_accounts]
        batches: dict[int, tuple[FakeXtQuantTrader, list]] = {}
        for item in out.items:
            if item[0] == "push":
                _, name, snapshot = item
                for client in listeners:
                    data = copy.copy(snapshot)
                    batches.setdefault(id(client), (client, []))[1].append((client._on_push, (name, data), name))
            else:
                _, client, name, func, args = item
                if client.connected and not client.stopped:
                    batches.setdefault(id(client), (client, []))[1].append((func, args, name))
        for client, items in batches.values():
            future = client._schedule(items, self.latency if requester is not None else 0.0)
            if future is not None:
                out.futures.append(future)

    def _new_order(self, session: int | None, account_id: str, stock_code: str, order_type: int, order_volume: int,
                   price_type: int, price: float, strategy_name: str, order_remark: str) -> BrokerOrder:
        order = BrokerOrder(next(self._order_ids), account_id, stock_code, order_type, int(order_volume), price_type,
                            float(price), strategy_name, order_remark, session, int(self.clock()))
        order.statuses.append(order.status)
        self.orders[order.order_id] = order
        return order

    def _reference_price(self, order: BrokerOrder) -> float:
        if order.price_type == C.FIX_PRICE:
            return order.price
        detail = self.market.instruments.get(order.stock_code, {})
        if order.price_type == C.LATEST_PRICE:
            return self.market.last_price(order.stock_code) or order.price
        return detail.get("UpStopPrice") or order.price

    def _check(self, order: BrokerOrder) -> str:
        """Why the counter rejects ``order`` at submission, or ''."""
        if order.account_id != self.account_id:
            return "资金账号不存在"
        if self.market.instruments and order.stock_code not in self.market.instruments:
            return "证券代码不存在"
        if order.order_type not in (C.STOCK_BUY, C.STOCK_SELL):
            return "不支持的委托类型"
        if order.order_volume <= 0:
            return "委托数量必须大于0"
        detail = self.market.instruments.get(order.stock_code)
        if order.price_type == C.FIX_PRICE:
            if order.price <= 0:
                return "委托价格必须大于0"
            if detail and not (detail["DownStopPrice"] - 1e-9 <= order.price <= detail["UpStopPrice"] + 1e-9):
                return "委托价格超出涨跌停价格范围"
        if order.buy:
            if order.order_volume % self.board_lot:
                return f"买入数量必须是{self.board_lot}的整数倍"
            if self._reference_price(order) * order.order_volume * (1 + self.commission_rate) > self.cash + 1e-9:
                return "可用资金不足"
        else:
            position = self.positions.get(order.stock_code)
            can_use = position.can_use_volume if position else 0
            if order.order_volume > can_use:
                return "可用股份不足"
            if order.order_volume % self.board_lot and order.order_volume != can_use:
                return "零股必须一次性卖出"
        return ""

    def _accept(self, order: BrokerOrder, out: _Outbox) -> None:
        if order.buy:
            order.frozen_cash = self._reference_price(order) * order.order_volume * (1 + self.commission_rate)
            self.cash -= order.frozen_cash
            self.frozen_cash += order.frozen_cash
        else:
            position = self.positions[order.stock_code]
            position.can_use_volume -= order.order_volume
            position.frozen_volume += order.order_volume
        self._push_order(order, out)
        self._push_account(order, out)
        if self.auto_report:
            self._report(order, out)

    def _reject(self, order: BrokerOrder, reason: str, out: _Outbox, client: FakeXtQuantTrader | None = None,
                seq: int | None = None) -> None:
        order.status_msg = reason
        self._set_status(order, C.ORDER_JUNK)
        self._push_order(order, out)
        if client is not None:
            side = "限价买入" if order.buy else "限价卖出"
            code, market = order.stock_code.rsplit(".", 1)
            error = XtOrderError(order.account_id, order.order_id, ORDER_ERROR_ID,
                                 f"{side} [{market}{code}] [COUNTER] [{reason}]", order.strategy_name,
                                 order.order_remark)
            error.seq = seq
            out.call(client, "on_order_error", client._on_order_error, error)

    def _report(self, order: BrokerOrder, out: _Outbox) -> None:
        order.order_sysid = str(next(self._sysids))
        self._set_status(order, C.ORDER_REPORTED)
        self._push_order(order, out)

    def _confirm_cancel(self, order: BrokerOrder, out: _Outbox) -> None:
        self._set_status(order, C.ORDER_PART_CANCEL if order.traded_volume else C.ORDER_CANCELED)
        self._release(order)
        self._push_order(order, out)
        self._push_account(order, out)

    def _release(self, order: BrokerOrder) -> None:
        """Give back what a finished order still holds."""
        if order.buy:
            self.cash += order.frozen_cash
            self.frozen_cash -= order.frozen_cash
            order.frozen_cash = 0.0
        elif order.remaining:
            position = self.positions[order.stock_code]
            position.can_use_volume += order.remaining
            position.frozen_volume -= order.remaining

    def _cancel_error(self, order: BrokerOrder, msg: str, out: _Outbox) -> None:
        client = next((c for c in self.clients if c.session == order.cancel_session and c.connected), None)
        if client is not None:
            error = XtCancelError(order.account_id, order.order_id, order.market, order.order_sysid, -1, msg)
            out.call(client, "on_cancel_error", client._on_cancel_error, error)
        order.cancel_session = None

    def _set_status(self, order: BrokerOrder, status: int) -> None:
        order.status = status
        order.statuses.append(status)

    def _push_order(self, order: BrokerOrder, out: _Outbox) -> None:
        out.push("on_stock_order", lambda: self._xt_order(order))

    def _push_account(self, order: BrokerOrder, out: _Outbox) -> None:
        out.push("on_stock_asset", self._xt_asset)
        if order.stock_code in self.positions:
            position = self.positions[order.stock_code]
            out.push("on_stock_position", lambda: self._xt_position(position))

    # xttype snapshots (taken when the outbox is dispatched, under the lock)
    def _secu_account(self, stock_code: str) -> str:
        return "A123456789" if stock_code.endswith(".SH") else "0123456789"

    def _name(self, stock_code: str) -> str:
        return self.market.instruments.get(stock_code, {}).get("InstrumentName", "")

    def _xt_order(self, o: BrokerOrder) -> XtOrder:
        price_type = self.reported_price_types.get(o.price_type, MARKET_PRICE_TYPE_REPORTED)
        return XtOrder(o.account_id, o.stock_code, o.order_id, o.order_sysid, o.order_time, o.order_type,
                       o.order_volume, price_type, o.price, o.traded_volume, round(o.traded_price, 4), o.status,
                       o.status_msg, o.strategy_name, o.order_remark, C.DIRECTION_FLAG_LONG,
                       C.OFFSET_FLAG_OPEN if o.buy else C.OFFSET_FLAG_CLOSE, self._secu_account(o.stock_code),
                       self._name(o.stock_code))

    def _xt_trade(self, t: BrokerTrade) -> XtTrade:
        o = t.order
        return XtTrade(o.account_id, o.stock_code, o.order_type, t.traded_id, t.traded_time, t.price, t.volume,
                       round(t.price * t.volume, 2), o.order_id, o.order_sysid, o.strategy_name, o.order_remark,
                       C.DIRECTION_FLAG_LONG, C.OFFSET_FLAG_OPEN if o.buy else C.OFFSET_FLAG_CLOSE, t.commission,
                       self._secu_account(o.stock_code), self._name(o.stock_code))

    def _price(self, stock_code: str, fallback: float) -> float:
        price = self.market.last_price(stock_code)
        if price is None:
            price = self.market.instruments.get(stock_code, {}).get("PreClose") or fallback
        return price

    def _xt_position(self, p: BrokerPosition) -> XtPosition:
        last = self._price(p.stock_code, p.open_price)
        profit_rate = (last - p.open_price) / p.open_price if p.open_price else 0.0
        return XtPosition(self.account_id, p.stock_code, p.volume, p.can_use_volume, round(p.open_price, 4),
                          round(p.volume * last, 2), p.frozen_volume, p.on_road_volume, p.yesterday_volume,
                          round(p.open_price, 4), C.DIRECTION_FLAG_LONG, last, profit_rate,
                          self._secu_account(p.stock_code), self._name(p.stock_code))

    def _xt_asset(self) -> XtAsset:
        market_value = sum(p.volume * self._price(p.stock_code, p.open_price) for p in self.positions.values())
        cash, frozen = round(self.cash, 2), round(self.frozen_cash, 2)
        return XtAsset(self.account_id, cash, frozen, round(market_value, 2), round(cash + frozen + market_value, 2),
                       cash)


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
