"""Daily bars from XT (xtquant / MiniQMT) through vnpy's datafeed layer into vnpy's bar table.

What vnpy_xt 1.4.6's ``Datafeed.query_bar_history`` returns, and how it is stored:

- Prices are **forward-adjusted** (``get_local_data(..., dividend_type="front_ratio")`` is
  hard-coded there), so XT series are stored exactly like an imported ``qfq`` file: the closes go to
  the qfq table (where they let :func:`refresh_adjustments` derive factors against unadjusted bars),
  and the bars go to vnpy's table with basis ``qfq`` only when no unadjusted series is stored.
- ``volume`` is xtquant's, in lots of 100 shares; it is stored in shares.
- Bar times are built with ``datetime.fromtimestamp`` (the machine's zone) and then labelled
  Asia/Shanghai; :func:`bar_date` recovers the Shanghai trading day on machines in any zone.

Every series is validated with :func:`check_bars` and written whole or not at all.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import platform
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path

import numpy as np
import pandas as pd
from vnpy.trader.constant import Exchange, Interval
from vnpy.trader.datafeed import BaseDatafeed
from vnpy.trader.object import BarData, HistoryRequest

from ..errors import InputRejected, PlatformUnsupported, Problem, RotationError, UnknownInstrument
from ..market.calendar import TradingCalendar, default_calendar
from ..market.instruments import Instrument, default_registry
from ..market.xt_check import XtMismatch, check_instrument_detail, xt_code
from .corporate_actions import AdjustmentEvent, Jump
from .formats import parse_symbol
from .importer import store_series
from .store import SHANGHAI, BarStore
from .validate import check_bars

XT_BASIS = "qfq"  # vnpy_xt asks xtquant for "front_ratio" prices
XT_VOLUME_LOT = 100.0  # xtquant reports A-share volume in lots of 100 shares
COLUMNS = ["date", "open", "high", "low", "close", "volume", "turnover"]

PLATFORM_EXPLANATION = (
    "XT data is not available on this machine: xtquant, the library behind vnpy_xt and MiniQMT, "
    "ships its native modules (datacenter, xtpythonclient) only as Windows .pyd files, so "
    "`from xtquant import xtdata` cannot work here. Run this script on Windows with MiniQMT "
    "running (--client) or an XT data token (--token), or export daily bars to CSV files "
    "(TDX, AKShare, Baostock or date,open,high,low,close,volume,turnover) and load them with "
    "`python run.py import PATH`."
)


class DatafeedFailed(RotationError):
    """The XT datafeed could not be loaded or did not start (token, client, connection)."""


@dataclass
class FetchReport:
    """What happened to one symbol; nothing was written for it when ``problems`` is not empty."""

    vt_symbol: str
    basis: str = XT_BASIS
    rows: int = 0
    first: date | None = None
    last: date | None = None
    suspended: int = 0
    events: list[AdjustmentEvent] = field(default_factory=list)
    jumps: list[Jump] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    xt_mismatches: list[XtMismatch] = field(default_factory=list)  # XT's detail vs the instrument table

    @property
    def ok(self) -> bool:
        return not self.problems


def resolve(symbols: Iterable[str | Instrument]) -> list[Instrument]:
    """Instruments for ``CODE.EXCHANGE`` texts; raise :class:`UnknownInstrument` naming every unknown code."""
    registry = default_registry()
    found: list[Instrument] = []
    unknown: list[str] = []
    for symbol in symbols:
        if isinstance(symbol, Instrument):
            found.append(symbol)
            continue
        code, exchange = parse_symbol(symbol)
        try:
            found.append(registry.lookup(code, exchange))
        except UnknownInstrument as exc:
            unknown.append(str(exc))
    if unknown:
        raise UnknownInstrument("\n".join(unknown))
    return found


def xtquant_native_problem() -> str | None:
    """Why xtquant's native modules cannot load here, or None. Does not import xtquant.

    (Importing the real ``xtquant`` package queries PyPI for updates, so it is only imported once
    its native ``datacenter`` module is known to exist for this Python.)
    """
    if "xtquant.xtdata" in sys.modules:
        return None
    try:
        spec = importlib.util.find_spec("xtquant")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return f"{PLATFORM_EXPLANATION} (xtquant is not installed.)"
    folders = [Path(p) for p in spec.submodule_search_locations]
    suffixes = importlib.machinery.EXTENSION_SUFFIXES
    if any((folder / f"datacenter{suffix}").is_file() for folder in folders for suffix in suffixes):
        return None
    shipped = sorted({p.suffix for folder in folders for p in folder.glob("datacenter.*")})
    return (f"{PLATFORM_EXPLANATION} (This is {platform.system()} with Python "
            f"{platform.python_version()}; xtquant's datacenter module exists only as {', '.join(shipped) or 'nothing'}.)")


def load_datafeed(token: str | None = None, client: bool = False) -> BaseDatafeed:
    """vnpy's datafeed set to ``xt``: ``token`` selects XT's data service, ``client`` a running MiniQMT.

    Without either, ``datafeed.username`` / ``datafeed.password`` from ``vt_setting.json`` are used
    (username ``client`` = MiniQMT, otherwise the password is the token). Nothing is saved.
    """
    problem = xtquant_native_problem()
    if problem:
        raise PlatformUnsupported(problem)
    from vnpy.trader import datafeed as layer
    from vnpy.trader.setting import SETTINGS

    SETTINGS["datafeed.name"] = "xt"
    if token:
        SETTINGS["datafeed.username"], SETTINGS["datafeed.password"] = "token", token
    if client:
        SETTINGS["datafeed.username"] = "client"
    if SETTINGS["datafeed.username"] != "client" and not SETTINGS["datafeed.password"]:
        raise DatafeedFailed("no XT credentials: pass --token TOKEN (XT data service) or --client (a running "
                             "MiniQMT), or set datafeed.username / datafeed.password in vt_setting.json")
    try:
        feed = layer.get_datafeed()
    except ImportError as exc:
        raise PlatformUnsupported(f"{PLATFORM_EXPLANATION} (Import failed: {exc}.)") from None
    if type(feed).__module__.split(".")[0] != "vnpy_xt":
        raise DatafeedFailed(f"vnpy's datafeed is {type(feed).__name__}, not vnpy_xt's: install vnpy_xt "
                             "(pip install vnpy_xt) and start a new process")
    return feed


def bar_date(stamp: datetime) -> date:
    """The Shanghai trading day of a daily bar from vnpy_xt, whatever the machine's time zone.

    XT stamps daily bars at Beijing midnight. vnpy_xt turns the epoch into machine-local wall time
    and labels it Asia/Shanghai, which is off by the zone difference outside China: such a label is
    re-read as local time to recover the instant.
    """
    local = stamp.astimezone(SHANGHAI) if stamp.tzinfo else stamp
    if local.time() == time(0):
        return local.date()
    return stamp.replace(tzinfo=None).astimezone().astimezone(SHANGHAI).date()


def bars_to_frame(bars: list[BarData]) -> pd.DataFrame:
    """vnpy_xt daily bars in the layout :meth:`BarStore.save_bars` takes (volume in shares)."""
    return pd.DataFrame({
        "date": pd.to_datetime([bar_date(b.datetime) for b in bars]).astype("datetime64[ns]"),
        "open": np.array([b.open_price for b in bars], dtype=float),
        "high": np.array([b.high_price for b in bars], dtype=float),
        "low": np.array([b.low_price for b in bars], dtype=float),
        "close": np.array([b.close_price for b in bars], dtype=float),
        "volume": np.array([b.volume for b in bars], dtype=float) * XT_VOLUME_LOT,
        "turnover": np.array([b.turnover for b in bars], dtype=float),
    }, columns=COLUMNS)


def fetch_into_database(symbols: Iterable[str | Instrument], start: date, end: date, store: BarStore,
                        datafeed: BaseDatafeed, calendar: TradingCalendar | None = None,
                        output: Callable[[str], None] | None = None) -> list[FetchReport]:
    """Query ``datafeed`` for each symbol's daily bars in ``[start, end]`` and store each series whole.

    Every symbol is resolved before anything is queried (:class:`UnknownInstrument`); a datafeed that
    does not start raises :class:`DatafeedFailed`. A series that fails validation is reported in its
    :class:`FetchReport` and not written; the others are.
    """
    if start > end:
        raise InputRejected(Problem("--start/--end", None, f"start {start} is after end {end}"))
    instruments = resolve(symbols)
    calendar = calendar or default_calendar()
    messages: list[str] = []

    def collect(message: str) -> None:
        messages.append(str(message))
        if output:
            output(str(message))

    if not datafeed.init(collect):
        raise DatafeedFailed("the XT datafeed did not start: " + ("; ".join(messages) or "no reason given"))

    reports: list[FetchReport] = []
    for instrument in instruments:
        messages.clear()
        request = HistoryRequest(symbol=instrument.code, exchange=Exchange(instrument.exchange),
                                 start=datetime.combine(start, time(), SHANGHAI),
                                 end=datetime.combine(end, time(), SHANGHAI), interval=Interval.DAILY)
        frame = bars_to_frame(datafeed.query_bar_history(request, collect) or [])
        frame = frame[(frame["date"] >= pd.Timestamp(start)) & (frame["date"] <= pd.Timestamp(end))]
        report = _store_series(store, instrument, frame.reset_index(drop=True), calendar,
                               f"no daily bars from XT for {start} … {end}" +
                               (f" ({'; '.join(messages)})" if messages else ""))
        report.xt_mismatches, note = xt_table_check(instrument)
        report.warnings += [str(m) for m in report.xt_mismatches] + ([note] if note else [])
        reports.append(report)
    return reports


def xt_table_check(instrument: Instrument) -> tuple[list[XtMismatch], str | None]:
    """XT's instrument detail and type for ``instrument`` compared with the instrument table.

    Called once the datafeed has started (vnpy_xt has then imported ``xtquant.xtdata``). Returns the
    disagreements, and a note instead when XT cannot answer.
    """
    xtdata = sys.modules.get("xtquant.xtdata")
    if xtdata is None:
        return [], None
    code = xt_code(instrument)
    try:
        detail = xtdata.get_instrument_detail(code)
        get_type = getattr(xtdata, "get_instrument_type", None)
        flags = get_type(code) if get_type is not None else None
    except Exception as exc:  # xtquant raises bare Exceptions for connection problems
        return [], f"{instrument.vt_symbol}: XT instrument detail unavailable, table not checked ({exc})"
    return check_instrument_detail(instrument, detail, flags), None


def _store_series(store: BarStore, instrument: Instrument, frame: pd.DataFrame, calendar: TradingCalendar,
                  empty_reason: str) -> FetchReport:
    """Validate one series, then write it in one transaction (the importer's qfq path)."""
    source = f"xt:{instrument.vt_symbol}"  # problem lines are positions in the returned series
    report = FetchReport(instrument.vt_symbol)
    if frame.empty:
        report.problems = [Problem(source, None, empty_reason)]
        return report
    frame.insert(0, "line", np.arange(1, len(frame) + 1))
    report.problems = check_bars(frame, source, calendar)
    if report.problems:
        return report

    suspended = frame["volume"].to_numpy() == 0
    report.rows, report.suspended = len(frame), int(suspended.sum())
    report.first, report.last = frame["date"].iloc[0].date(), frame["date"].iloc[-1].date()
    frame["suspended"], frame["is_st"] = suspended, False
    frame["preclose"] = np.nan
    with store.transaction():
        report.warnings, report.events, report.jumps = store_series(store, instrument, frame, XT_BASIS)
    return report
