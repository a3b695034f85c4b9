"""An in-memory xtquant (250807) data API, faithful to what vnpy_xt's datafeed calls.

``xtquant.xtdatacenter``: ``set_token``, ``set_allow_optmize_address``, ``set_future_realtime_mode``,
``init``, ``listen``, ``shutdown`` -- with xtquant's order rules (``listen`` before ``init`` raises,
a token without market rights makes ``init`` raise ``ConnectionError``).

``xtquant.xtdata``: ``enable_hello``, ``get_instrument_detail``, ``get_instrument_type``, ``download_history_data``,
``get_local_data``. Every call needs a connection, as ``xtdata.get_client`` does: a running MiniQMT
(``client_running``) or a datacenter that was initialised and is listening. ``get_local_data`` only
sees what ``download_history_data`` fetched, and for K-line periods returns what xtquant 250807
returns (``_get_market_data_ex_ori_221207``): ``{code: DataFrame}``, columns ``time`` (epoch
milliseconds of the bar's Beijing midnight), ``open high low close volume amount settelementPrice
openInterest preClose suspendFlag``, index ``'YYYYMMDD'`` strings, ``[start_time, end_time]``
inclusive; not the ``{field: DataFrame}`` layout of the older docs, which vnpy_xt does not read.
Volume is in lots of 100 shares, as xtquant reports A-shares. Only daily bars are served.

Market data, for vnpy_xt's gateway: ``get_stock_list_in_sector`` (lists set with
:meth:`FakeXt.add_instrument`), ``get_instrument_detail`` (the real non-complete field set, with
``UpStopPrice``/``DownStopPrice``), ``subscribe_quote`` / ``subscribe_whole_quote`` /
``unsubscribe_quote`` and ``get_full_tick``. :meth:`FakeXt.push_tick` delivers a tick to the
subscribers on a separate ``xtdata-push`` thread, as xtquant's native thread does:
``subscribe_quote(period="tick")`` callbacks get ``{code: [tick]}``, whole-quote callbacks
``{code: tick}``. A callback's exception is caught (xtquant prints it) and kept in
``callback_errors``.

The trading modules (``xttrader``, ``xttype``, ``xtconstant``) come from
:mod:`fakes.fake_xttrader`, bound to ``FakeXt.broker`` (a default ``FakeBroker`` if none was
given). The real package is never imported (its ``__init__`` calls PyPI).
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from types import ModuleType
from typing import Any

import pandas as pd
import pytest

DIVIDEND_TYPES = ("none", "front", "back", "front_ratio", "back_ratio")
KLINE_FIELDS = ["time", "open", "high", "low", "close", "volume", "amount", "settelementPrice",
                "openInterest", "preClose", "suspendFlag"]
NO_CONNECTION = "无法连接xtquant服务，请检查QMT-投研版或QMT-极简版是否开启"
BEIJING = "Asia/Shanghai"
INSTRUMENT_FIELDS = ["ExchangeID", "InstrumentID", "InstrumentName", "ProductID", "ProductName", "ProductType",
                     "ExchangeCode", "UniCode", "CreateDate", "OpenDate", "ExpireDate", "TradingDay", "PreClose",
                     "SettlementPrice", "UpStopPrice", "DownStopPrice", "FloatVolume", "TotalVolume",
                     "LongMarginRatio", "ShortMarginRatio", "PriceTick", "VolumeMultiple", "MainContract",
                     "LastVolume", "InstrumentStatus", "IsTrading", "IsRecent", "ProductTradeQuota",
                     "ContractTradeQuota", "ProductOpenInterestQuota", "ContractOpenInterestQuota"]


@dataclass
class FakeXt:
    """Shared state of the fake xtdata / xtdatacenter; ``calls`` records every call in order."""

    tokens: set[str] = field(default_factory=lambda: {"test-token"})
    client_running: bool = False
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _series: dict[tuple[str, str], pd.DataFrame] = field(default_factory=dict)
    _downloaded: set[tuple[str, str]] = field(default_factory=set)
    _token: str = ""
    _initialised: bool = False
    _listening: tuple[str, int] | None = None
    # market data (vnpy_xt's gateway)
    instruments: dict[str, dict[str, Any]] = field(default_factory=dict)
    instrument_types: dict[str, dict[str, bool]] = field(default_factory=dict)  # get_instrument_type answers
    sectors: dict[str, list[str]] = field(default_factory=dict)
    callback_errors: list[tuple[str, BaseException, str]] = field(default_factory=list)
    broker: Any = None  # the fakes.fake_xttrader.FakeBroker behind xttrader
    _subscriptions: dict[int, tuple[list[str], str, Callable | None]] = field(default_factory=dict)
    _ticks: dict[str, dict[str, Any]] = field(default_factory=dict)
    _sub_seq: int = 0
    _pusher: ThreadPoolExecutor | None = None

    # -- test side ---------------------------------------------------------------------------
    def serve(self, xt_code: str, bars: pd.DataFrame, dividend_type: str = "none") -> None:
        """Serve daily ``bars`` (date, open, high, low, close, volume in shares, turnover in CNY).

        A code served only with ``none`` has no corporate actions: every dividend type returns it.
        """
        assert dividend_type in DIVIDEND_TYPES
        frame = bars[["date", "open", "high", "low", "close", "volume", "turnover"]].sort_values("date")
        self._series[(xt_code, dividend_type)] = frame.reset_index(drop=True)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Put the fake ``xtquant`` package and its modules into ``sys.modules``."""
        for name, module in self.modules().items():
            monkeypatch.setitem(sys.modules, name, module)

    def called(self, name: str) -> list[dict[str, Any]]:
        return [args for call, args in self.calls if call == name]

    def add_instrument(self, stock_code: str, name: str = "", *, sector: str | None = None,
                       price_tick: float | None = None, pre_close: float = 10.0, up_stop: float | None = None,
                       down_stop: float | None = None, volume_multiple: int = 1, open_date: str = "20100104",
                       **extra: Any) -> dict[str, Any]:
        """List an instrument for ``get_instrument_detail`` (and in ``sector`` for ``get_stock_list_in_sector``).

        Defaults: price tick 0.001 for funds (5xxxxx.SH, 1xxxxx.SZ), else 0.01; limits +-10% of
        ``pre_close`` (+-20% for 300/301/688, +-30% for .BJ), rounded to the tick.
        """
        code, market = stock_code.split(".")
        if price_tick is None:
            fund = (market == "SH" and code.startswith("5")) or (market == "SZ" and code.startswith("1"))
            price_tick = 0.001 if fund else 0.01
        band = 0.3 if market == "BJ" else 0.2 if code.startswith(("300", "301", "688")) else 0.1
        digits = max(0, len(f"{price_tick:.6f}".rstrip("0").split(".")[1]))
        detail: dict[str, Any] = dict.fromkeys(INSTRUMENT_FIELDS)
        detail.update({
            "ExchangeID": market, "InstrumentID": code, "InstrumentName": name, "ProductID": "", "ProductName": "",
            "ExchangeCode": code, "UniCode": code, "CreateDate": "0", "OpenDate": open_date, "ExpireDate": "99999999",
            "TradingDay": datetime.now().strftime("%Y%m%d"), "PreClose": pre_close, "SettlementPrice": 0.0,
            "UpStopPrice": up_stop if up_stop is not None else round(pre_close * (1 + band), digits),
            "DownStopPrice": down_stop if down_stop is not None else round(pre_close * (1 - band), digits),
            "PriceTick": price_tick, "VolumeMultiple": volume_multiple, "MainContract": 0, "LastVolume": 0,
            "InstrumentStatus": 0, "IsTrading": True, "IsRecent": False,
        })
        detail.update(extra)
        self.instruments[stock_code] = detail
        if sector is not None:
            self.sectors.setdefault(sector, []).append(stock_code)
        return detail

    def push_tick(self, stock_code: str, last_price: float, *, open: float | None = None,  # noqa: A002
                  high: float | None = None, low: float | None = None, pre_close: float | None = None,
                  volume: int = 0, amount: float = 0.0, bid_prices: list[float] | None = None,
                  ask_prices: list[float] | None = None, bid_volumes: list[int] | None = None,
                  ask_volumes: list[int] | None = None, open_int: int = 13, stock_status: int = 3,
                  settlement_price: float = 0.0, time_ms: int | None = None) -> dict[str, Any]:
        """Publish a tick of ``stock_code`` to its subscribers (on the push thread); returns the tick.

        ``volume`` is in lots (手) as XT reports stocks and funds; ``pvolume`` is ``volume * 100``.
        ``open_int`` is the security status for stocks (13 trading, 15 closed: vnpy_xt reads it so).
        Default books: five levels one tick apart around ``last_price``, 100 lots each.
        """
        detail = self.instruments.get(stock_code, {})
        tick_size = detail.get("PriceTick") or 0.01
        tick = {
            "time": int(time.time() * 1000) if time_ms is None else int(time_ms),
            "lastPrice": last_price,
            "open": last_price if open is None else open,
            "high": last_price if high is None else high,
            "low": last_price if low is None else low,
            "lastClose": (detail.get("PreClose") or last_price) if pre_close is None else pre_close,
            "amount": float(amount), "volume": int(volume), "pvolume": int(volume) * 100, "stockStatus": stock_status,
            "openInt": open_int, "transactionNum": 0, "lastSettlementPrice": 0.0, "settlementPrice": settlement_price,
            "pe": 0.0,
            "askPrice": list(ask_prices) if ask_prices is not None else
            [round(last_price + i * tick_size, 6) for i in range(1, 6)],
            "bidPrice": list(bid_prices) if bid_prices is not None else
            [round(last_price - i * tick_size, 6) for i in range(0, 5)],
            "askVol": list(ask_volumes) if ask_volumes is not None else [100] * 5,
            "bidVol": list(bid_volumes) if bid_volumes is not None else [100] * 5,
            "volRatio": 0.0, "speed1Min": 0.0, "speed5Min": 0.0,
        }
        self._ticks[stock_code] = tick
        market = stock_code.split(".")[1]
        for codes, period, callback in list(self._subscriptions.values()):
            if callback is None:
                continue
            if period == "whole" and (stock_code in codes or market in codes):
                self._push(callback, {stock_code: dict(tick)})
            elif period == "tick" and stock_code in codes:
                self._push(callback, {stock_code: [dict(tick)]})
        return tick

    def last_price(self, stock_code: str) -> float | None:
        tick = self._ticks.get(stock_code)
        return None if tick is None else tick["lastPrice"]

    def subscriptions(self) -> list[tuple[str, str]]:
        """The live ``(code, period)`` subscriptions (whole-quote ones as ``(code or market, "whole")``)."""
        return [(code, period) for codes, period, _ in self._subscriptions.values() for code in codes]

    def wait_pushed(self, timeout: float = 3.0) -> None:
        """Return once every tick published so far has been delivered."""
        if self._pusher is not None:
            self._pusher.submit(lambda: None).result(timeout=timeout)

    def close(self) -> None:
        """Stop the push thread."""
        if self._pusher is not None:
            self._pusher.shutdown(wait=True)
            self._pusher = None

    def _push(self, callback: Callable, data: dict) -> None:
        if self._pusher is None:
            self._pusher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="xtdata-push")
        self._pusher.submit(self._deliver, callback, data)

    def _deliver(self, callback: Callable, data: dict) -> None:
        try:  # xtquant's subscribe_callback_wrapper prints the traceback and carries on
            callback(data)
        except Exception as exc:
            self.callback_errors.append((getattr(callback, "__name__", repr(callback)), exc, traceback.format_exc()))

    # -- module side -------------------------------------------------------------------------
    def modules(self) -> dict[str, ModuleType]:
        package = ModuleType("xtquant")
        package.__path__ = []  # a package, but nothing real can be imported from it
        package.__version__ = "xtquant_250807"
        data, center = ModuleType("xtquant.xtdata"), ModuleType("xtquant.xtdatacenter")
        data.enable_hello = True
        for func in (self.get_instrument_detail, self.get_instrument_type, self.download_history_data,
                     self.get_local_data,
                     self.get_stock_list_in_sector, self.subscribe_quote, self.subscribe_whole_quote,
                     self.unsubscribe_quote, self.get_full_tick):
            setattr(data, func.__name__, func)
        for func in (self.set_token, self.set_allow_optmize_address, self.set_future_realtime_mode,
                     self.init, self.listen, self.shutdown):
            setattr(center, func.__name__, func)
        modules = {"xtquant": package, "xtquant.xtdata": data, "xtquant.xtdatacenter": center}
        from .fake_xttrader import FakeBroker, trading_modules  # that module imports this one

        if self.broker is None:
            self.broker = FakeBroker(self)
        modules.update(trading_modules(self.broker))
        for name, module in modules.items():
            if name != "xtquant":
                setattr(package, name.split(".")[1], module)
        return modules

    def _record(self, name: str, **args: Any) -> None:
        self.calls.append((name, args))

    def _client(self) -> None:
        if not (self.client_running or self._listening):
            raise Exception(NO_CONNECTION)

    # xtdatacenter
    def set_token(self, token: str = "") -> None:
        self._record("set_token", token=token)
        self._token = token

    def set_allow_optmize_address(self, allow_list: list[str] = []) -> None:  # noqa: B006 (xtquant's signature)
        self._record("set_allow_optmize_address", allow_list=list(allow_list))

    def set_future_realtime_mode(self, enable: bool) -> None:
        self._record("set_future_realtime_mode", enable=enable)

    def init(self, start_local_service: bool = True) -> None:
        self._record("init", start_local_service=start_local_service)
        if self._token not in self.tokens:
            raise ConnectionError("行情连接初始化异常, 未获取到市场权限, 当前连接状态:{}")
        self._initialised = True
        if start_local_service:
            self.listen("127.0.0.1", 58609)

    def listen(self, ip: str = "0.0.0.0", port: int | tuple[int, int] = 58610) -> tuple[str, int]:
        self._record("listen", ip=ip, port=port)
        if not self._initialised:
            raise Exception("尚未初始化, 请优先调用init进行初始化")
        self._listening = (ip, port[0] if isinstance(port, tuple) else port)
        return self._listening

    def shutdown(self) -> None:
        self._record("shutdown")
        self._initialised, self._listening = False, None

    # xtdata
    def get_instrument_detail(self, stock_code: str, iscomplete: bool = False) -> dict | None:
        self._record("get_instrument_detail", stock_code=stock_code)
        self._client()
        if stock_code in self.instruments:
            return dict(self.instruments[stock_code])
        if not any(code == stock_code for code, _ in self._series):
            return None
        code, market = stock_code.split(".")
        return {"ExchangeID": market, "InstrumentID": code, "InstrumentName": "", "PriceTick": 0.001,
                "VolumeMultiple": 1, "InstrumentStatus": 0, "IsTrading": True}

    def get_instrument_type(self, stock_code: str, variety_list: list[str] | None = None) -> dict:
        """xtquant's varieties of a code that are true (``{"fund": True, "etf": True}``); ``{}`` when unknown."""
        self._record("get_instrument_type", stock_code=stock_code)
        self._client()
        flags = {k: v for k, v in self.instrument_types.get(stock_code, {}).items() if v}
        return {k: flags[k] for k in variety_list if k in flags} if variety_list else flags

    def get_stock_list_in_sector(self, sector_name: str, real_timetag: int | str = -1) -> list[str]:
        self._record("get_stock_list_in_sector", sector_name=sector_name)
        self._client()
        for illegal in ['\\', '/', ':', '*', '?', '"', '<', '>', '|']:
            sector_name = sector_name.replace(illegal, '')
        return list(self.sectors.get(sector_name, []))

    def subscribe_quote(self, stock_code: str, period: str = "1d", start_time: str = "", end_time: str = "",
                        count: int = 0, callback: Callable | None = None) -> int:
        self._record("subscribe_quote", stock_code=stock_code, period=period, count=count)
        self._client()
        if period != "tick":
            raise NotImplementedError(f"the fake pushes ticks only, not {period!r}")
        return self._subscribe([stock_code], period, callback)

    def subscribe_whole_quote(self, code_list: list[str], callback: Callable | None = None) -> int:
        self._record("subscribe_whole_quote", code_list=list(code_list))
        self._client()
        return self._subscribe(list(code_list), "whole", callback)

    def unsubscribe_quote(self, seq: int) -> None:
        self._record("unsubscribe_quote", seq=seq)
        self._client()
        self._subscriptions.pop(seq, None)

    def get_full_tick(self, code_list: list[str]) -> dict[str, dict]:
        self._record("get_full_tick", code_list=list(code_list))
        self._client()
        return {code: dict(tick) for code, tick in self._ticks.items()
                if code in code_list or code.split(".")[1] in code_list}

    def _subscribe(self, codes: list[str], period: str, callback: Callable | None) -> int:
        self._sub_seq += 1
        self._subscriptions[self._sub_seq] = (codes, period, callback)
        return self._sub_seq

    def download_history_data(self, stock_code: str, period: str, start_time: str = "", end_time: str = "",
                              incrementally: bool | None = None) -> None:
        self._record("download_history_data", stock_code=stock_code, period=period, start_time=start_time,
                     end_time=end_time)
        self._client()
        if period != "1d":
            raise NotImplementedError(f"the fake serves daily bars only, not {period!r}")
        self._downloaded.add((stock_code, period))

    def get_local_data(self, field_list: list[str] = [], stock_list: list[str] = [], period: str = "1d",  # noqa: B006
                       start_time: str = "", end_time: str = "", count: int = -1, dividend_type: str = "none",
                       fill_data: bool = True, data_dir: str | None = None) -> dict[str, pd.DataFrame]:
        self._record("get_local_data", field_list=list(field_list), stock_list=list(stock_list), period=period,
                     start_time=start_time, end_time=end_time, count=count, dividend_type=dividend_type,
                     fill_data=fill_data)
        self._client()
        if period != "1d":
            raise NotImplementedError(f"the fake serves daily bars only, not {period!r}")
        if dividend_type not in DIVIDEND_TYPES:
            raise ValueError(f"unknown dividend_type {dividend_type!r}")
        fields = list(field_list) or KLINE_FIELDS
        return {code: self._kline(code, start_time, end_time, count, dividend_type)[fields] for code in stock_list}

    def _kline(self, code: str, start_time: str, end_time: str, count: int, dividend_type: str) -> pd.DataFrame:
        series = self._series.get((code, dividend_type), self._series.get((code, "none")))
        if series is None or (code, "1d") not in self._downloaded:
            return pd.DataFrame({name: pd.Series(dtype="int64" if name == "time" else "float64")
                                 for name in KLINE_FIELDS})
        days = pd.DatetimeIndex(series["date"])
        keep = (days >= _timetag(start_time, days.min())) & (days <= _timetag(end_time, days.max()))
        unadjusted = self._series.get((code, "none"), series)
        pre_close = unadjusted.set_index("date")["close"].shift(1).reindex(days[keep]).fillna(0.0).to_numpy()
        rows = series[keep]
        if count > 0:
            rows, pre_close = rows.iloc[-count:], pre_close[-count:]
        stamps = pd.DatetimeIndex(rows["date"]).tz_localize(BEIJING)
        frame = pd.DataFrame({
            "time": stamps.as_unit("ms").asi8.astype("int64"),
            "open": rows["open"].to_numpy(float), "high": rows["high"].to_numpy(float),
            "low": rows["low"].to_numpy(float), "close": rows["close"].to_numpy(float),
            "volume": (rows["volume"].to_numpy(float) / 100).round().astype("int64"),
            "amount": rows["turnover"].to_numpy(float),
            "settelementPrice": 0.0, "openInterest": 15, "preClose": pre_close, "suspendFlag": 0,
        }, columns=KLINE_FIELDS)
        frame.index = pd.Index(stamps.strftime("%Y%m%d"))
        return frame


def _timetag(text: str, default: pd.Timestamp) -> pd.Timestamp:
    """xtquant's 'YYYYMMDD' / 'YYYYMMDDhhmmss' (Beijing time) as a naive timestamp; '' = unbounded."""
    if not text:
        return default
    return pd.Timestamp(datetime.strptime(text, "%Y%m%d%H%M%S" if len(text) == 14 else "%Y%m%d"))

