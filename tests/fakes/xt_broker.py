"""The simulated broker behind the fake ``xttrader``: ``FakeBroker`` (MiniQMT plus the broker's counter).

``FakeBroker`` keeps the account (cash, frozen cash, positions), validates and numbers orders, moves
them through the ``xtconstant`` status sequence when the test says so (``report``, ``fill``,
``cancel``, ``junk`` ...), records every request and delivered push, and sends answers and pushes to
its :class:`~fakes.xt_client.FakeXtQuantTrader` clients on their callback threads (``_Outbox``
collects what one operation sends). The test-facing API is documented in :mod:`fakes.fake_xttrader`.
"""

from __future__ import annotations

import copy
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .fake_xtquant import FakeXt
from .xt_types import (
    CANCEL_PENDING,
    FINAL_STATUSES,
    MARKET_PRICE_TYPE_REPORTED,
    ORDER_ERROR_ID,
    REPORTED_PRICE_TYPES,
    TIMEOUT,
    BrokerOrder,
    BrokerPosition,
    BrokerTrade,
    C,
    Push,
    Request,
    StockAccount,
    XtAsset,
    XtCancelError,
    XtCancelOrderResponse,
    XtOrder,
    XtOrderError,
    XtOrderResponse,
    XtPosition,
    XtTrade,
)

if TYPE_CHECKING:
    from .xt_client import FakeXtQuantTrader


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
