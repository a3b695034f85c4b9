"""An in-memory xtquant (250807) data API, faithful to what vnpy_xt's datafeed calls.

``xtquant.xtdatacenter``: ``set_token``, ``set_allow_optmize_address``, ``set_future_realtime_mode``,
``init``, ``listen``, ``shutdown`` -- with xtquant's order rules (``listen`` before ``init`` raises,
a token without market rights makes ``init`` raise ``ConnectionError``).

``xtquant.xtdata``: ``enable_hello``, ``get_instrument_detail``, ``download_history_data``,
``get_local_data``. Every call needs a connection, as ``xtdata.get_client`` does: a running MiniQMT
(``client_running``) or a datacenter that was initialised and is listening. ``get_local_data`` only
sees what ``download_history_data`` fetched, and for K-line periods returns what xtquant 250807
returns (``_get_market_data_ex_ori_221207``): ``{code: DataFrame}``, columns ``time`` (epoch
milliseconds of the bar's Beijing midnight), ``open high low close volume amount settelementPrice
openInterest preClose suspendFlag``, index ``'YYYYMMDD'`` strings, ``[start_time, end_time]``
inclusive; not the ``{field: DataFrame}`` layout of the older docs, which vnpy_xt does not read.
Volume is in lots of 100 shares, as xtquant reports A-shares. Only daily bars are served.

The trading modules vnpy_xt's gateway imports at package import (``xttrader``, ``xttype``,
``xtconstant``) are inert stubs; the real package is never imported (its ``__init__`` calls PyPI).
"""

from __future__ import annotations

import sys
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

    # -- module side -------------------------------------------------------------------------
    def modules(self) -> dict[str, ModuleType]:
        package = ModuleType("xtquant")
        package.__path__ = []  # a package, but nothing real can be imported from it
        package.__version__ = "xtquant_250807"
        data, center = ModuleType("xtquant.xtdata"), ModuleType("xtquant.xtdatacenter")
        data.enable_hello = True
        for func in (self.get_instrument_detail, self.download_history_data, self.get_local_data):
            setattr(data, func.__name__, func)
        for func in (self.set_token, self.set_allow_optmize_address, self.set_future_realtime_mode,
                     self.init, self.listen, self.shutdown):
            setattr(center, func.__name__, func)
        modules = {"xtquant": package, "xtquant.xtdata": data, "xtquant.xtdatacenter": center}
        for short in ("xttrader", "xttype", "xtconstant"):
            modules[f"xtquant.{short}"] = _stub(f"xtquant.{short}")
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
        if not any(code == stock_code for code, _ in self._series):
            return None
        code, market = stock_code.split(".")
        return {"ExchangeID": market, "InstrumentID": code, "InstrumentName": "", "PriceTick": 0.001,
                "VolumeMultiple": 1, "InstrumentStatus": 0, "IsTrading": True}

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


def _stub(name: str) -> ModuleType:
    """A module whose CamelCase names are empty classes and other names their own string."""
    module = ModuleType(name)
    made: dict[str, Any] = {}

    def __getattr__(attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        if attr not in made:
            made[attr] = type(attr, (), {"__module__": name}) if attr[:1].isupper() and not attr.isupper() else attr
        return made[attr]

    module.__getattr__ = __getattr__  # type: ignore[method-assign]
    return module
