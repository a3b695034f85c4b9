"""MonitorEngine: the market monitor on vnpy's event engine.

It subscribes the watchlist through the gateway (``MainEngine.subscribe``; XT: vnpy_xt → xtdata
``subscribe_quote``), turns every ``TickData`` into a monitor :class:`~vnpy_rotation.monitor.records.Quote`,
drives :class:`~vnpy_rotation.monitor.core.MonitorCore` per tick and once a second (``EVENT_TIMER``), publishes
alerts (``EVENT_MONITOR_ALERT``, and through the project's notifier) and the screen record
(``EVENT_MONITOR_VIEW``: a :class:`~vnpy_rotation.monitor.view.MonitorView`), and saves closed 1-minute bars in
vnpy's database (``Interval.MINUTE``: CtaBacktester and DataManager see them). At :meth:`MonitorEngine.close_day`
the day's bars built from ticks go in as provisional daily bars, which the official daily import replaces.

The engine is also a :class:`~vnpy_rotation.monitor.view.MonitorFeed`: the terminal monitor can render it.
"""

from __future__ import annotations

import threading
from collections import deque
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Iterable

import pandas as pd
from vnpy.event import Event, EventEngine
from vnpy.trader.constant import Exchange, Interval
from vnpy.trader.engine import BaseEngine, MainEngine
from vnpy.trader.event import EVENT_CONTRACT, EVENT_POSITION, EVENT_TICK, EVENT_TIMER
from vnpy.trader.object import BarData, ContractData, PositionData, SubscribeRequest, TickData

from ...errors import InputRejected, Problem, RotationError
from ...monitor.config import MonitorConfig
from ...monitor.core import Holding, MonitorCore
from ...monitor.indicators import Reference
from ...monitor.records import Alert, DailyBar, MinuteBar, Quote, StrategyScores
from ...monitor.session import CHINA
from ...monitor.view import MonitorView

APP_NAME = "RotationMonitor"
EVENT_MONITOR_ALERT = "eMonitorAlert"  # data: one Alert
EVENT_MONITOR_VIEW = "eMonitorView"  # data: a MonitorView, once a second
PROVISIONAL_SOURCE = "monitor"  # the source recorded with the provisional daily bars
MAX_ALERTS = 200  # the newest alerts kept for the view
REFERENCE_DAYS = 5  # 量比's denominator: the 5-day average daily volume

# XT sends ``volume`` (and the book volumes) in lots (手) for stocks and funds — "volume: 成交总量(手)",
# https://dict.thinktrader.net/innerApi/data_structure.html — and vnpy_xt passes them on unchanged.
# The monitor counts shares. Other A-share gateways report shares already. A tick is XT's when it carries
# vnpy_xt's raw payload (``extra["raw"]``), whatever the gateway instance is named (one per account: XT_A, XT_B).
XT_LOT = 100.0


def tick_lot(tick: TickData) -> float:
    """Shares per unit of the tick's volumes: 100 for XT's (lots), 1 otherwise."""
    raw = tick.extra.get("raw") if isinstance(tick.extra, dict) else None
    return XT_LOT if isinstance(raw, dict) else 1.0


# How XT says a stock is suspended. get_instrument_detail's InstrumentStatus is "合约已停牌日期(停牌第一天值为0,
# 第二天为1,以此类推。注意,正常交易的股票该值也是0)" (xtdata 合约基础信息 get_instrument_detail; quoted in
# https://blog.csdn.net/liuyukuan/article/details/128752572): a positive value is a suspension from its second day
# on, while 0 cannot tell a first day from normal trading. The same page points to the tick's ``openInt`` for the
# state but no public xtdata page lists its codes, so a 0 leaves ``Quote.suspended`` None (unknown), never False.
XT_MARKETS = {"SSE": "SH", "SZSE": "SZ", "BSE": "BJ"}


def xt_suspended(vt_symbols: Iterable[str]) -> set[str]:
    """The symbols XT's instrument detail reports suspended for a second day or more (empty without xtquant)."""
    try:
        from xtquant import xtdata
    except ImportError:
        return set()
    out = set()
    for vt_symbol in vt_symbols:
        code, _, exchange = vt_symbol.partition(".")
        market = XT_MARKETS.get(exchange)
        detail = xtdata.get_instrument_detail(f"{code}.{market}") if market else None
        status = detail.get("InstrumentStatus") if isinstance(detail, dict) else None
        if isinstance(status, (int, float)) and status > 0:
            out.add(vt_symbol)
    return out


def china_now() -> datetime:
    """The current China wall time (naive), whatever the machine's zone."""
    return datetime.now(CHINA).replace(tzinfo=None)


def tick_time(tick: TickData) -> datetime:
    """The tick's China wall time. vnpy_xt converts XT's epoch in the machine's zone and labels it Shanghai
    (wrong on a machine in another zone): its raw epoch is used when the tick carries it."""
    raw = (tick.extra or {}).get("raw") if isinstance(tick.extra, dict) else None
    if isinstance(raw, dict) and isinstance(raw.get("time"), (int, float)) and raw["time"] > 0:
        return datetime.fromtimestamp(raw["time"] / 1000, CHINA).replace(tzinfo=None)
    moment = tick.datetime
    return moment.astimezone(CHINA).replace(tzinfo=None) if moment.tzinfo else moment


def tick_to_quote(tick: TickData, suspended: bool | None = None) -> Quote:
    """vnpy's TickData as the monitor's Quote (volumes in shares, China wall time, the feed's limits);
    ``suspended``: what the gateway knows of the symbol's suspension (None: unknown)."""
    lot = tick_lot(tick)
    return Quote(tick.vt_symbol, tick_time(tick), last=tick.last_price, pre_close=tick.pre_close,
                 volume=tick.volume * lot, turnover=tick.turnover, open=tick.open_price, high=tick.high_price,
                 low=tick.low_price, limit_up=tick.limit_up or 0.0, limit_down=tick.limit_down or 0.0,
                 bid1=tick.bid_price_1, ask1=tick.ask_price_1, bid1_volume=tick.bid_volume_1 * lot,
                 ask1_volume=tick.ask_volume_1 * lot, suspended=suspended)


def minute_bar_data(bar: MinuteBar, gateway_name: str = "DB") -> BarData:
    """A closed monitor bar as vnpy's 1-minute BarData (stamped by its start minute, Asia/Shanghai)."""
    code, _, exchange = bar.vt_symbol.partition(".")
    return BarData(gateway_name=gateway_name, symbol=code, exchange=Exchange(exchange), interval=Interval.MINUTE,
                   datetime=bar.datetime.replace(tzinfo=CHINA), open_price=bar.open, high_price=bar.high,
                   low_price=bar.low, close_price=bar.close, volume=bar.volume, turnover=bar.turnover)


def _daily_frame(bar: DailyBar) -> pd.DataFrame:
    return pd.DataFrame({"date": pd.to_datetime([bar.date]), "open": [bar.open], "high": [bar.high],
                         "low": [bar.low], "close": [bar.close], "volume": [bar.volume],
                         "turnover": [bar.turnover]})


class MonitorEngine(BaseEngine):
    """The watchlist, the core and its outputs on the event engine; see the module docstring."""

    def __init__(self, main_engine: MainEngine, event_engine: EventEngine) -> None:
        super().__init__(main_engine, event_engine, APP_NAME)
        self.core = MonitorCore()
        self.watchlist: tuple[str, ...] = ()
        self.gateway_name = ""
        self.clock: Callable[[], datetime] = china_now  # tests replace it with a scripted clock
        self.alerts: deque[Alert] = deque(maxlen=MAX_ALERTS)
        self.notify: Callable[[str, str, str], object] = lambda kind, subject, content: None
        self.notifier: Any = None
        self.save_bars_enabled = True
        self.saved_minute_bars = 0
        self._pending: set[str] = set()  # watched symbols whose contract has not arrived yet
        self._subscribed: set[str] = set()
        self._lock = threading.RLock()  # the terminal monitor polls from its own thread
        self._store: Any = None
        self.scores: dict[str, tuple[StrategyScores, ...]] = {}
        self.holdings_from_rotation = False  # True: holdings follow the rotation app's state and positions
        self.state_folder: Path | None = None  # the rotation state files (None: the runtime folder's)
        self.closed_day: date | None = None  # the day the after-close hook last ran close_day (close_hook)
        self.suspended: set[str] = set()  # watched symbols the gateway reports suspended today (XT: xt_suspended)
        self._positions: dict[str, tuple[str, float, float]] = {}  # vt_positionid → (vt_symbol, volume, price)
        event_engine.register(EVENT_POSITION, self._process_position)
        event_engine.register(EVENT_TICK, self._process_tick)
        event_engine.register(EVENT_TIMER, self._process_timer)
        event_engine.register(EVENT_CONTRACT, self._process_contract)

    # -- set-up -----------------------------------------------------------------------------------------
    def init_engine(self, config: MonitorConfig | None = None, notifications: bool = True,
                    save_bars: bool = True) -> None:
        """A new core with ``config``; ``notifications``: alerts also go to the project's notifier;
        ``save_bars``: closed minute bars are written to vnpy's database."""
        from ..rotation.notifications import build_notifier

        with self._lock:
            self.core = MonitorCore(config)
        self.save_bars_enabled = save_bars
        if notifications and self.notifier is None:
            self.notifier = build_notifier(self.main_engine, self.write_log)
            self.notify = self.notifier.notify

    def start(self, watchlist: Iterable[str], gateway_name: str = "XT", *,
              references: Iterable[Reference] | None = None, holdings: Iterable[Holding] | None = None,
              pool: Iterable[str] = ()) -> None:
        """Watch and subscribe ``watchlist`` (vt_symbols) on ``gateway_name``. ``references`` default to what the
        database holds (5-day average volume, ST flag); ``holdings`` are guarded by their stops (None: the
        rotation app's holdings and stop levels, followed on every position event); a ``pool`` member's
        suspension alerts."""
        symbols = tuple(dict.fromkeys(watchlist))
        now = self.clock()
        refs = list(references) if references is not None else self.load_references(symbols, now.date())
        with self._lock:
            self.watchlist = tuple(dict.fromkeys(self.watchlist + symbols))
            self.gateway_name = gateway_name
            for reference in refs:
                self.core.set_reference(reference)
            self.holdings_from_rotation = holdings is None
            self.core.set_holdings(self.rotation_holdings() if holdings is None else holdings)
            self.core.set_pool(pool)
            self.core.watch(symbols, now)
        for vt_symbol in symbols:
            self._subscribe(vt_symbol)
        self._close_after_rotation()
        self.write_log(f"行情监控启动: {len(symbols)} 个合约, 接口 {gateway_name}")

    def start_watchlists(self, gateway_name: str = "XT", names: Iterable[str] | None = None,
                         path: Path | None = None) -> tuple[str, ...]:
        """Start on the runtime folder's watchlist file (``rotation_watchlists.yaml``; see
        :mod:`vnpy_rotation.monitor.watchlist`): the named lists (None: all), resolved on today's date; the members
        of the strategies' pools named there form the pool whose suspensions alert. Returns the symbols.
        A bad file raises InputRejected naming ``file:line`` before anything is subscribed."""
        from .watchlists import load_watchlists

        lists = load_watchlists(self.clock().date(), path)
        wanted = list(lists) if names is None else list(names)
        unknown = [n for n in wanted if n not in lists]
        if unknown:
            raise InputRejected(Problem(str(path or "rotation_watchlists.yaml"), None,
                                        f"lists: {unknown[0]!r} is not defined; known: {', '.join(lists) or '-'}"))
        symbols = tuple(dict.fromkeys(s for n in wanted for s in lists[n].symbols))
        pool = {s for n in wanted for s in lists[n].pool_members}
        self.start(symbols, gateway_name, pool=pool)
        return symbols

    def _close_after_rotation(self) -> None:
        """Next to the rotation app (the GUI): run :meth:`close_day` after its close, once a day."""
        from .close_hook import MonitorCloseDay

        rotation = getattr(self.main_engine, "engines", {}).get("RotationStrategy")
        callbacks = getattr(rotation, "day_closed", None)
        if callbacks is not None and not any(isinstance(c, MonitorCloseDay) for c in callbacks):
            callbacks.append(MonitorCloseDay(self.main_engine, rotation.notify, self.write_log))

    def _subscribe(self, vt_symbol: str) -> None:
        if vt_symbol in self._subscribed:
            return
        contract: ContractData | None = self.main_engine.get_contract(vt_symbol)
        if contract is None:  # the gateway's contracts arrive after connect: subscribe then
            self._pending.add(vt_symbol)
            return
        self._pending.discard(vt_symbol)
        if self.gateway_name == "XT":  # the contract arrived: xtdata answers now
            try:
                self.suspended |= xt_suspended([vt_symbol])
            except Exception as exc:  # noqa: BLE001  (xtdata raises its own types) the quote stays "unknown"
                self.write_log(f"{vt_symbol} 停牌状态查询失败: {exc}")
        self._subscribed.add(vt_symbol)
        self.main_engine.subscribe(SubscribeRequest(contract.symbol, contract.exchange), self.gateway_name)

    def load_references(self, symbols: Iterable[str], today: date) -> list[Reference]:
        """From the database's daily bars before ``today``: the 5-day average volume and the ST flag."""
        store = self.store
        out = []
        for vt_symbol in symbols:
            code, _, exchange = vt_symbol.partition(".")
            bars = store.stored_bars(code, exchange)
            bars = bars[bars.index < pd.Timestamp(today)].tail(REFERENCE_DAYS)
            flags = store.flags(code, exchange)
            flags = flags[flags.index < pd.Timestamp(today)]
            # ST status is flagged per day by the import; the last flagged day before today decides.
            is_st = bool(len(flags) and flags["is_st"].iloc[-1]
                         and (len(bars) == 0 or flags.index[-1] >= bars.index[-1]))
            avg = float(bars["volume"].mean()) if len(bars) == REFERENCE_DAYS else None
            out.append(Reference(vt_symbol, avg_volume_5d=avg, is_st=is_st))
        return out

    def load_scores_logged(self) -> None:
        """:meth:`load_scores` for a background thread (the window's Start): a failure is logged, not raised."""
        try:
            scores = self.load_scores()
        except Exception as exc:  # noqa: BLE001  the scores are a display: the monitor runs without them
            self.write_log(f"策略排名加载失败: {type(exc).__name__}: {exc}")
            return
        self.write_log(f"策略排名: {len(scores)} 个合约")

    def rotation_holdings(self) -> list[Holding]:
        """The rotation app's holdings with their stop levels (:mod:`.holdings`), positions seen applied."""
        from .holdings import holdings_from, rotation_books

        positions: dict[str, tuple[float, float]] | None = None
        if self._positions:
            positions = {}
            for vt_symbol, volume, price in self._positions.values():
                held, cost = positions.get(vt_symbol, (0.0, 0.0))
                total = held + volume
                positions[vt_symbol] = (total, (held * cost + volume * price) / total if total > 0 else price)
        return holdings_from(rotation_books(self.main_engine, self.state_folder), positions)

    def load_scores(self, strategies: Iterable[Any] | None = None,
                    today: date | None = None) -> dict[str, tuple[StrategyScores, ...]]:
        """The strategies' own factor values and ranks at the last close before ``today`` (default: the
        clock's day) for the watched symbols, from the database through the backtester's loader — point in
        time: no bar of today or later enters. Not updated intraday. Shown in the view's ``scores``.
        ``strategies`` default to the rotation app's initialised instances (none without the app)."""
        from ...backtest.loader import market_for
        from ...strategies.scores import latest_scores

        if strategies is None:
            rotation = getattr(self.main_engine, "engines", {}).get("RotationStrategy")
            instances = getattr(rotation, "instances", {}) or {}
            strategies = [i.strategy for i in instances.values() if i.strategy is not None]
        today = today or self.clock().date()
        found: dict[str, list[StrategyScores]] = {}
        for strategy in strategies:
            market = market_for(strategy, None, today - timedelta(days=1), self.store)  # all stored history, as a backtest
            for vt_symbol, scores in latest_scores(strategy, market).items():
                found.setdefault(vt_symbol, []).extend(scores)
        watched = set(self.watchlist)
        with self._lock:
            self.scores = {s: tuple(v) for s, v in found.items() if not watched or s in watched}
        return self.scores

    @property
    def store(self) -> Any:
        if self._store is None:
            from ...data.store import BarStore

            self._store = BarStore()
        return self._store

    # -- event handlers ---------------------------------------------------------------------------------
    def _process_contract(self, event: Event) -> None:
        contract: ContractData = event.data
        if contract.vt_symbol in self._pending:
            self._subscribe(contract.vt_symbol)

    def _process_tick(self, event: Event) -> None:
        tick: TickData = event.data
        if tick.vt_symbol not in self._subscribed:
            return
        with self._lock:
            suspended = True if tick.vt_symbol in self.suspended else None
            alerts = self.core.on_quote(tick_to_quote(tick, suspended), self.clock())
        self._publish(alerts)

    def _process_position(self, event: Event) -> None:
        """A position changed: the guarded holdings follow (when they come from the rotation app)."""
        position: PositionData = event.data
        self._positions[position.vt_positionid] = (position.vt_symbol, float(position.volume), float(position.price))
        if self.holdings_from_rotation:
            try:
                holdings = self.rotation_holdings()
            except RotationError as exc:  # a damaged state file: keep the last holdings, say why
                self.write_log(f"持仓止损位更新失败: {exc}")
                return
            with self._lock:
                self.core.set_holdings(holdings)

    def _process_timer(self, event: Event) -> None:
        self.on_timer()

    def on_timer(self, now: datetime | None = None) -> MonitorView:
        """The once-a-second work: bars whose minute is over, stale checks, saving bars, the view event."""
        now = now or self.clock()
        with self._lock:
            alerts = self.core.on_timer(now)
        self._publish(alerts)
        self.save_minute_bars()
        view = self.view(now)
        self.event_engine.put(Event(EVENT_MONITOR_VIEW, view))
        return view

    def _publish(self, alerts: list[Alert]) -> None:
        with self._lock:  # view() copies the deque from other threads
            self.alerts.extend(alerts)
        for alert in alerts:
            self.event_engine.put(Event(EVENT_MONITOR_ALERT, alert))
            self.notify("market_alert", f"[{alert.severity.value}] {alert.rule} {alert.vt_symbol}",
                        f"{alert.time:%H:%M:%S} {alert.reason}")

    # -- outputs ----------------------------------------------------------------------------------------
    def connected(self) -> bool:
        """The gateway's own connection state. vnpy_xt reports only its MiniQMT trading link (``td_api``,
        when 仿真交易 is on) and whether market data started (``md_api.inited``); a silent quote outage shows
        as stale-quote alerts, not here."""
        gateway = self.main_engine.get_gateway(self.gateway_name) if self.gateway_name else None
        if gateway is None:
            return False
        md_api = getattr(gateway, "md_api", None)
        if md_api is not None and not getattr(md_api, "inited", True):
            return False
        td_api = getattr(gateway, "td_api", None)
        if getattr(gateway, "trading", False) and td_api is not None and not getattr(td_api, "connected", True):
            return False
        return True

    def view(self, now: datetime | None = None) -> MonitorView:
        """What a screen shows now: the watchlist's indicators in order and the recent alerts."""
        with self._lock:
            snapshot = self.core.snapshot()
            rows = tuple((s, snapshot.get(s)) for s in self.watchlist)
            alerts = tuple(self.alerts)
            scores = {s: self.scores[s] for s in self.watchlist if s in self.scores}
        return MonitorView(now or self.clock(), rows, alerts, self.connected(), scores)

    def poll(self, now: datetime) -> MonitorView:
        """MonitorFeed: the event engine advances the core; polling only reads the view."""
        return self.view(now)

    def write_log(self, msg: str) -> None:
        self.main_engine.write_log(msg, APP_NAME)

    # -- the database -----------------------------------------------------------------------------------
    def save_minute_bars(self) -> list[MinuteBar]:
        """Write the bars closed since the last call to vnpy's database (1-minute interval); returns them."""
        with self._lock:
            bars = self.core.bars_closed()
        if bars and self.save_bars_enabled:
            from vnpy.trader.database import get_database

            get_database().save_bar_data([minute_bar_data(b) for b in bars])
            self.saved_minute_bars += len(bars)
        return bars

    def close_day(self) -> dict[str, list[date]]:
        """End of day: close the open bars, save them, and store each symbol's daily bar built from ticks as
        provisional (a day that already has an official bar is left alone). vt_symbol → days written."""
        with self._lock:
            self.core.close_day()
            daily = self.core.daily_bars()
        self.save_minute_bars()
        written: dict[str, list[date]] = {}
        if not self.save_bars_enabled:
            return written
        store = self.store
        with store.transaction():
            for vt_symbol, bar in daily.items():
                code, _, exchange = vt_symbol.partition(".")
                written[vt_symbol] = store.save_provisional_bars(code, exchange, _daily_frame(bar),
                                                                 PROVISIONAL_SOURCE)
        return written

    def close(self) -> None:
        """Save the bars whose minute is over (an open bar of the current minute is left unsaved), stop notifying."""
        try:
            with self._lock:
                self.core.close_ended(self.clock())
            self.save_minute_bars()
        finally:
            if self.notifier is not None:
                self.notifier.close()
                self.notifier = None


def minute_bars_in_database(vt_symbol: str, start: datetime, end: datetime) -> list[BarData]:
    """The stored 1-minute bars of ``vt_symbol`` from ``start`` to ``end`` (China wall times), as DataManager
    reads them, with their stored wall time labelled in the database zone. (vnpy_sqlite stores naive times in
    ``database.timezone`` but reads them back through the machine's zone: off on a machine set to another.)"""
    from vnpy.trader.database import DB_TZ, get_database

    code, _, exchange = vt_symbol.partition(".")
    database = get_database()
    bars = database.load_bar_data(code, Exchange(exchange), Interval.MINUTE, start.replace(tzinfo=CHINA),
                                  (end + timedelta(seconds=59)).replace(tzinfo=CHINA))
    if type(database).__module__.startswith("vnpy_sqlite"):
        for bar in bars:
            bar.datetime = datetime.fromtimestamp(bar.datetime.timestamp()).replace(tzinfo=DB_TZ)
    return bars


__all__ = ["APP_NAME", "EVENT_MONITOR_ALERT", "EVENT_MONITOR_VIEW", "MonitorEngine", "china_now",
           "minute_bar_data", "minute_bars_in_database", "tick_to_quote"]
