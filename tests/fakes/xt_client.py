"""The client side of the fake ``xtquant.xttrader``: ``XtQuantTraderCallback`` and ``FakeXtQuantTrader``.

``FakeXtQuantTrader`` reproduces xtquant 250807's ``XtQuantTrader``: its constructor, its
connect/subscribe/order/cancel/query methods (sync and async), its single callback thread and the
bookkeeping that orders order/cancel errors behind their async responses. It holds no account state:
every request goes to the :class:`~fakes.xt_broker.FakeBroker` bound as the class attribute
``broker`` (``fakes.fake_xttrader.trading_modules`` makes one subclass per broker), which answers on
the client's callback thread. See :mod:`fakes.fake_xttrader` for the documented behaviour.
"""

from __future__ import annotations

import itertools
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from .xt_types import TIMEOUT, C, Push, XtCancelError, XtOrderError

if TYPE_CHECKING:
    from .xt_broker import FakeBroker


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
