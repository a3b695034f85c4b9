"""One stock of the VQM selection as a vnpy CTA strategy (a "sleeve" of :class:`VqmStrategy`).

The CTA engine feeds the daily bars of one stock. At the close of each decision day t (the last
trading day of a month on the exchange calendar, as ``rebalance_days(market, "month_end")`` picks
them) the sleeve brings its point-in-time view of the universe up to t -- bars read with ``end = t``
and the fundamentals, index membership and listing ages :meth:`VqmStrategy.prepare_market` attaches,
nothing dated after t -- runs the portfolio strategy's own :meth:`VqmStrategy.targets` on it and
holds ``floor(fixed_capital / close / 100) × 100`` shares exactly while that decision selects its
stock (sized once, at the entry decision's close: the sleeve does not follow the portfolio's monthly
re-weighting of a name it keeps holding).

The view is built incrementally (:class:`PointInTimeUniverse`): each decision reads only the sessions
since the previous one, with queries bounded by t, and forms what ``load_panels`` and
``prepare_market`` would give for them (same calendar axis, flags and adjustment products; the same
``fundamental_panels``, ``listed_sessions`` and ``rebuild_membership`` on the piece's days); the rule
arrays are rebuilt over the joined bars by ``build_market_data``. Every input of a decision row is a
function of that row's day and the rows before it, so the joined view equals
``market_for(VqmStrategy(settings), data_start, t)`` row for row (tests/test_vqm_sleeve.py checks every
array) at a tenth of the cost of reading the whole history for each of the ~12 decisions a year. If
``load_panels`` or ``prepare_market`` change, that check says so. (Index membership is rebuilt
backwards from the latest stored member list, exactly as the portfolio backtest does: see
:mod:`vnpy_rotation.fundamentals.universe` for what that cannot know.)

Risk: only the single-stock stop belongs to one stock. At every close, when
``close <= entry × (1 − stock_stop)`` the whole position is sold at the next open and the decision
taken on that close does not buy it back; the next decision may. ``entry`` is the average fill price
of the current position (from ``on_trade``), following the price on ex-dates like the portfolio
backtest's: ``(entry − dividend per share) / split``. The portfolio stop and the drawdown halving
are rules of the whole book (its equity, its peak): a sleeve sees one stock and cannot apply them --
the portfolio strategy (``run.py backtest --strategy vqm``) does.

Orders are limit orders at the stock's price-limit band around the close (±10 % on the main boards,
the ST band for a stock that was ST at the last decision): accepted live and, in vnpy's backtester
(fill price ``min(limit, open)`` for a buy, ``max(limit, open)`` for a sell), filled at the next bar's
open, like the portfolio backtest fills. vnpy's CTA position does not follow splits or bonus shares.

A month end on which the stock has no bar (suspended) is decided at its first bar back; VQM excludes a
stock without a bar, so a held position is sold at the open after that bar -- one bar after the
portfolio backtest, whose refused sell is sent again every day and fills at the first open back.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import date, datetime, time, timedelta
from typing import Any

import numpy as np
import pandas as pd
from peewee import fn
from vnpy.trader.constant import Direction, Interval
from vnpy.trader.database import DB_TZ
from vnpy.trader.object import BarData, OrderData, TradeData
from vnpy_ctastrategy import CtaTemplate

from ..backtest.loader import ensure_bundled
from ..data.market_data import MarketData, build_market_data, round_to_tick
from ..data.panels import FIELDS, Panels
from ..data.store import SHANGHAI, AdjustmentRow, BarStore, DayFlagRow, to_dates
from ..fundamentals.dividends import DividendRow, DividendStore, stored_distributions, stored_records
from ..fundamentals.share_changes import STOCK_TICK, split_step
from ..fundamentals.store import (
    BalanceRow,
    ExpressRow,
    FundamentalRow,
    FundamentalStore,
    IndexChangeRow,
    IndexSnapshotRow,
)
from ..fundamentals.universe import rebuild_membership
from ..fundamentals.valuation import ReportInputs
from ..market.calendar import default_calendar
from ..market.instruments import lookup
from ..risk.stops import stock_stop_hit
from ..strategies.vqm import (
    VqmSettings,
    VqmStrategy,
    listed_sessions,
    read_report_inputs,
    report_extras,
    share_basis_extras,
)

EPS = 1e-9  # float noise in share counts
DEFAULT_BAND = 0.10


class PointInTimeUniverse:
    """The universe's market data from the portfolio's first day up to the last decision, extended piece
    by piece: :meth:`up_to` reads only the sessions after the previous call. Bars and day flags are read
    with the piece's bounds in the query; reports, first bar days, membership lists and adjustment events
    are read as tables (again only when they changed), and only reports known strictly before the day
    and ex-dates up to it are used.

    A piece is what ``load_panels(symbols, previous + 1, t)`` gives (the same bars on the same calendar
    axis, the same flags, adjustment factors continued from the previous piece) plus the point-in-time
    inputs :meth:`VqmStrategy.prepare_market` attaches, computed by the same functions for the piece's
    days: ``fundamental_panels`` on the reports known strictly before t (a name without a new report
    since the previous piece keeps its value), ``listed_sessions``, ``rebuild_membership`` (from the
    latest stored member list backwards, as the portfolio does). The rule arrays are rebuilt over the
    joined bars with ``build_market_data``. Every one of these is a function of a row's day and the rows
    before it, so the joined view equals ``market_for(VqmStrategy, data_start, t)`` row for row (checked by
    the tests) at a fraction of the cost of reading the whole history again for each decision.
    """

    def __init__(self, strategy: VqmStrategy, store: BarStore, start: date | None) -> None:
        self.strategy = strategy
        self.store = store
        self.fundamentals = FundamentalStore(store.database)
        self.dividends = DividendStore(store.database)  # binds (and creates) its table before any signature
        self.symbols = list(strategy.symbols)
        self.position = {s: j for j, s in enumerate(self.symbols)}
        self.codes = sorted({s.partition(".")[0] for s in self.symbols})
        self.by_exchange: dict[str, list[str]] = {}
        for symbol in self.symbols:
            code, _, exchange = symbol.partition(".")
            self.by_exchange.setdefault(exchange, []).append(code)
        # The portfolio backtest's first day: ``load_market``'s warm-up before ``start``.
        self.first = None if start is None else start - timedelta(days=int(strategy.warmup_days * 7 / 5) + 15)
        self.panels: Panels | None = None
        self.extras: dict[str, np.ndarray] = {}
        self.end: date | None = None
        self.market: MarketData | None = None
        self.warnings: list[str] = []
        self.first_days: dict[str, date] | None = None
        self._tables: dict[str, tuple[str, Any]] = {}  # name → (table signature, what was read)

    def up_to(self, day: date) -> MarketData:
        """Every row up to ``day`` (and none after it)."""
        if self.end is None or day > self.end:
            piece = self._bars(self.first if self.end is None else self.end + timedelta(days=1), day)
            if len(piece.days):
                extras = self._extras(piece, day)
                if self.panels is None:
                    self.panels, self.extras = piece, extras
                else:
                    self.panels = Panels(**{f.name: pd.concat([getattr(self.panels, f.name), getattr(piece, f.name)])
                                            for f in dataclasses.fields(Panels)})
                    self.extras = {k: np.concatenate([self.extras[k], extras[k]]) for k in self.extras}
                records = self._table("dividends", _signature(DividendRow), lambda: self.dividends.records(self.symbols))
                self.market = dataclasses.replace(build_market_data(self.panels, records=records),
                                                  extras=dict(self.extras))
            self.end = day
        if self.market is None:
            raise RuntimeError(f"no market data up to {day}")
        return self.market if self.market.days[-1].date() <= day else self.market.window(None, day)

    # -- the bars: load_panels for one piece ----------------------------------------------------------
    def _bars(self, start: date | None, day: date) -> Panels:
        m = self.store.bar_model
        where = (m.interval == Interval.DAILY.value) & (m.datetime < _stored_time(day + timedelta(days=1)))
        if start is not None:
            where &= m.datetime >= _stored_time(start)
        rows = []
        for exchange, codes in self.by_exchange.items():  # symbol, exchange, interval, datetime: vnpy's index
            query = m.select(m.symbol, m.exchange, m.datetime, m.open_price, m.high_price, m.low_price,
                             m.close_price, m.volume, m.turnover).where(where & m.symbol.in_(codes)
                                                                         & (m.exchange == exchange))
            rows += self.store.db.execute_sql(*query.sql()).fetchall()
        bars = pd.DataFrame(rows, columns=["symbol", "exchange", "datetime", *FIELDS])
        column = (bars["symbol"] + "." + bars["exchange"]).map(self.position)
        bars, column = bars[column.notna()], column[column.notna()].to_numpy(dtype=np.int64)
        days = to_dates(bars["datetime"]).values.astype("datetime64[D]")
        if len(days) and (days.max() > np.datetime64(day, "D") or (start and days.min() < np.datetime64(start, "D"))):
            raise RuntimeError(f"bars outside {start} … {day} were read")
        if start is None:  # load_panels without a start: from the first bar on
            if not len(days):
                return _panels(np.array([], dtype="datetime64[D]"), self.symbols, {})
            start = days.min().astype(object)
        # The calendar's sessions plus any bar on a day it lacks, as load_panels places them.
        axis = np.union1d(default_calendar().between(start, day).values.astype("datetime64[D]"), days)
        rows = np.searchsorted(axis, days)
        arrays = {}
        for f in FIELDS:
            arrays[f] = np.full((len(axis), len(self.symbols)), np.nan)
            arrays[f][rows, column] = bars[f].to_numpy(dtype=float)
        suspended, is_st = np.isnan(arrays["close"]), np.zeros(arrays["close"].shape, dtype=bool)
        for j, k, flag_suspended, flag_st in self._flags(axis, day):
            suspended[k, j] |= flag_suspended
            is_st[k, j] |= flag_st
        arrays.update(suspended=suspended, is_st=is_st, factor=self._factors(axis, day))
        return _panels(axis, self.symbols, arrays)

    def _flags(self, axis: np.ndarray, day: date):
        """(column, row, suspended, ST) of the stored day flags on ``axis``."""
        f = DayFlagRow
        query = (f.select(f.symbol, f.exchange, f.day, f.suspended, f.is_st)
                 .where(f.symbol.in_(self.codes) & (f.day >= axis[0].astype(object)) & (f.day <= day)))
        for code, exchange, when, suspended, st in self.store.db.execute_sql(*query.sql()).fetchall():
            j = self.position.get(f"{code}.{exchange}")
            k = np.searchsorted(axis, np.datetime64(str(when)[:10], "D"))
            if j is not None and k < len(axis) and axis[k] == np.datetime64(str(when)[:10], "D"):
                yield j, k, bool(suspended), bool(st)

    def _factors(self, axis: np.ndarray, day: date) -> np.ndarray:
        """Cumulative adjustment factors on ``axis``, continuing the previous piece's products in the order
        load_panels multiplies them (the same query, row by row), so the floats are the same."""
        events = self.store.all_events(set(self.codes))
        steps = np.ones((len(axis), len(self.symbols)))
        column = (events["symbol"] + "." + events["exchange"]).map(self.position)
        ex = pd.to_datetime(events["ex_date"].astype(str).str.slice(0, 10)).to_numpy().astype("datetime64[D]")
        keep = column.notna().to_numpy() & (ex <= np.datetime64(day, "D"))  # none after the piece is used
        if self.panels is not None:  # those up to the previous piece's last day are in its factors
            keep &= ex > self.panels.days[-1].to_datetime64().astype("datetime64[D]")
        # In the query's order, one at a time (ufunc.at): the same products as load_panels forms.
        np.multiply.at(steps, (np.searchsorted(axis, ex[keep]), column[keep].to_numpy(dtype=np.int64)),
                       events["factor"].to_numpy(dtype=float)[keep])
        if self.panels is None:
            return np.cumprod(steps, axis=0)
        return np.cumprod(np.vstack([self.panels.factor.to_numpy()[-1:], steps]), axis=0)[1:]

    # -- the point-in-time inputs: what VqmStrategy.prepare_market attaches ----------------------------
    def _extras(self, piece: Panels, day: date) -> dict[str, np.ndarray]:
        settings = self.strategy.settings
        days = piece.days
        signature = "|".join(_signature(m) for m in (FundamentalRow, BalanceRow, ExpressRow))
        usable = self._table("reports", signature, self._read_reports).usable(pd.Timestamp(day))  # known before t
        if self.panels is None:
            extras = report_extras(usable, days, self.symbols, settings)
        else:  # a name without a report known since the last row keeps that row's values
            changed = sorted(usable.known_since(self.panels.days[-1]), key=self.position.__getitem__)
            extras = {key: np.repeat(values[-1:], len(days), axis=0) for key, values in self.extras.items()
                      if key not in ("listed_days", "member")}
            if changed:
                panels = report_extras(usable.usable(pd.Timestamp(day), changed), days, changed, settings)
                columns = [self.position[s] for s in changed]
                for key, values in panels.items():
                    extras[key][:, columns] = values
        # Every name's share basis on the piece's days: an ex-date moves it without a new report. Only
        # ex-dates up to each day are used, so reading every stored one looks nothing ahead.
        distributions = self._table("distributions", f"{_signature(AdjustmentRow)}|{_signature(DividendRow)}",
                                    lambda: stored_distributions(self.store, self.symbols))
        extras.update(share_basis_extras(distributions, extras, days, self.symbols))
        extras["listed_days"] = listed_sessions(self._first_days(piece, day), days, self.symbols)
        if settings.index:
            snapshot = self._table("membership", f"{_signature(IndexSnapshotRow)}|{_signature(IndexChangeRow)}",
                                   self._read_membership)
            if snapshot is None:
                extras["member"] = np.ones((len(days), len(self.symbols)), dtype=bool)
            else:
                membership = rebuild_membership(*snapshot, days, self.symbols)
                extras["member"] = membership.member
                if self.panels is None:
                    self.warnings.extend(membership.warnings)
        return extras

    def _first_days(self, piece: Panels, day: date) -> dict[str, date]:
        """Each symbol's first bar day (read again when a symbol without one has bars now)."""
        with_bars = piece.close.columns[piece.close.notna().any().to_numpy()]
        if self.first_days is None or any(s not in self.first_days for s in with_bars):
            self.first_days = self.store.first_days(set(self.codes))
        return {s: d for s, d in self.first_days.items() if d <= day}

    def _table(self, name: str, signature: str, read) -> Any:
        """``read()``, again only when the table's signature changed since the last read."""
        cached = self._tables.get(name)
        if cached is None or cached[0] != signature:
            self._tables[name] = cached = (signature, read())
        return cached[1]

    def _read_reports(self) -> ReportInputs:
        return read_report_inputs(self.fundamentals, self.symbols, self.strategy.settings)

    def _read_membership(self) -> tuple | None:
        index = self.strategy.settings.index
        snapshots = self.fundamentals.index_snapshots(index)
        if snapshots.empty:
            self.warnings.append(f"no membership data for {index}: every symbol counts as a member on every day")
            return None
        day = snapshots["day"].max()
        listed = snapshots.loc[snapshots["day"] == day, "vt_symbol"].tolist()
        return day, listed, self.fundamentals.index_changes(index)


def _panels(axis: np.ndarray, symbols: list[str], arrays: dict[str, np.ndarray]) -> Panels:
    days = pd.DatetimeIndex(axis.astype("datetime64[ns]"))
    shape = (len(days), len(symbols))
    defaults = {f: np.full(shape, np.nan) for f in (*FIELDS, "factor")}
    defaults.update(suspended=np.zeros(shape, dtype=bool), is_st=np.zeros(shape, dtype=bool))
    return Panels(**{name: pd.DataFrame(arrays.get(name, value), index=days, columns=symbols)
                     for name, value in defaults.items()})


def _stored_time(day: date) -> datetime:
    """Midnight of ``day`` in Shanghai as vnpy stores it (naive, in the database's zone)."""
    return datetime.combine(day, time(), SHANGHAI).astimezone(DB_TZ).replace(tzinfo=None)


def _signature(model) -> str:
    """Row count and highest id of a table: any insert, upsert or delete changes it."""
    query = model.select(fn.COUNT(model.id), fn.MAX(model.id))
    count, top = model._meta.database.execute_sql(*query.sql()).fetchone()
    return f"{count}/{top}"


class VqmSleeveStrategy(CtaTemplate):
    """Hold ``floor(fixed_capital / close / 100) × 100`` shares of the CTA symbol while VQM selects it."""

    author = "vnpy_rotation"

    fixed_capital: float = 50_000.0  # CNY for this one slot (the portfolio: its capital / top_n)
    top_n: int = 20
    w_pe: float = 0.6  # the ROE weight is 1 − w_pe − w_pb − w_dy
    w_pb: float = 0.0  # rank(−PB)
    w_dy: float = 0.0  # rank(trailing dividend yield)
    express_stand_in: bool = False  # an express report (业绩快报) stands in until its periodic report
    roe: str = "annualised"  # annualised / full_year
    min_listed_days: int = 250
    index: str = "000300.SSE"  # point-in-time membership filter; "" = every symbol of the universe
    universe: str = "bundled"  # bundled / database
    data_start: str = ""  # ISO date: the start the portfolio backtest was run with ("" = all history)
    stock_stop: float = 0.08  # 0 = off

    target_volume: int = 0  # shares the last decision (or the stop) asks for
    selected: bool = False
    rank: int = 0  # VQM rank at the last decision (0: not ranked, i.e. excluded)
    last_decision: str = ""
    entry_price: float = 0.0  # average fill price of the position, following ex-dates (0: flat)

    parameters = ["fixed_capital", "top_n", "w_pe", "w_pb", "w_dy", "express_stand_in", "roe", "min_listed_days",
                  "index", "universe", "data_start", "stock_stop"]
    variables = ["target_volume", "selected", "rank", "last_decision", "entry_price"]

    def __init__(self, cta_engine: Any, strategy_name: str, vt_symbol: str, setting: dict) -> None:
        super().__init__(cta_engine, strategy_name, vt_symbol, setting)
        self.vqm: VqmStrategy | None = None
        self.store: BarStore | None = None
        self.data: PointInTimeUniverse | None = None
        self.wanted: bool | None = None  # None until the first decision
        self.pending_end: date | None = None  # a month end whose decision has not been read yet
        self.month_ends: np.ndarray = np.array([], dtype=object)
        self.last_day: date | None = None
        self.last_close: float = math.nan
        self.was_st: bool = False
        self.bought_on: date | None = None
        self.active_orders: set[str] = set()

    # -- vnpy callbacks --------------------------------------------------------------------------
    def on_init(self) -> None:
        try:
            self._setup()
        except Exception as exc:  # a bad parameter or no data: say which, trade nothing
            self.vqm = None
            self.write_log(f"初始化失败，策略不会交易：{exc}")
            return
        self.write_log(f"初始化完成：{self.vt_symbol}，VQM 前 {self.top_n} 名时持有约 {self.fixed_capital:,.0f} 元，"
                       f"股票池 {self.universe}（{len(self.data.symbols)} 只），数据起点 {self.data_start or '数据库最早'}")
        self.put_event()

    def on_start(self) -> None:
        """After a restart vnpy has restored the variables: the last decision (or stop) holds until the next."""
        if self.wanted is None and self.last_decision:
            self.wanted = self.target_volume > 0
        self.write_log("策略启动")

    def on_stop(self) -> None:
        self.write_log("策略停止")

    def on_bar(self, bar: BarData) -> None:
        """The close of day t: follow ex-dates, decide on a month end, apply the stop, trade."""
        self.cancel_all()  # an order the last bar did not fill is sent again at today's price
        day = bar.datetime.date()
        if self.vqm is None:
            return
        try:
            self._follow_actions(day)
            if self._decision_due(day):
                self._decide(bar)
            self._check_stop(bar)
            self._reconcile(bar)
        except Exception as exc:
            self.write_log(f"{day} VQM 决策失败（本日不下单）：{type(exc).__name__}: {exc}")
        finally:
            self.last_day = day
            self.last_close = bar.close_price
        self.put_event()

    def on_order(self, order: OrderData) -> None:
        if not order.is_active():
            self.active_orders.discard(order.vt_orderid)

    def on_trade(self, trade: TradeData) -> None:
        """The entry price: average fill price of the position; reset when it is closed."""
        if trade.direction == Direction.LONG:
            self.bought_on = trade.datetime.date() if trade.datetime else None
            held = self.pos - trade.volume  # vnpy has already added the fill to pos
            self.entry_price = trade.price if held <= 0 or self.entry_price <= 0 else \
                (self.entry_price * held + trade.price * trade.volume) / (held + trade.volume)
        elif self.pos <= 0:
            self.entry_price = 0.0
        self.put_event()

    # -- the steps -------------------------------------------------------------------------------
    def _setup(self) -> None:
        if not self.fixed_capital > 0:
            raise ValueError(f"fixed_capital {self.fixed_capital} 必须为正")
        if not 0 <= self.stock_stop < 1:
            raise ValueError(f"stock_stop {self.stock_stop} 必须在 [0, 1) 内（0 = 不止损）")
        if self.universe not in ("bundled", "database"):
            raise ValueError(f"universe {self.universe!r} 必须是 bundled 或 database")
        start = date.fromisoformat(self.data_start) if self.data_start else None
        settings = VqmSettings(symbols=self.universe, index=self.index or None, w_pe=self.w_pe, w_pb=self.w_pb,
                               w_dy=self.w_dy, express_stand_in=bool(self.express_stand_in), top_n=self.top_n,
                               roe=self.roe, min_listed_days=self.min_listed_days,
                               stock_stop=self.stock_stop or None, portfolio_stop=None, drawdown_halve=None)
        vqm = VqmStrategy(settings)
        symbols = vqm.symbols
        if self.vt_symbol not in symbols:
            raise ValueError(f"{self.vt_symbol} 不在股票池 {self.universe} 中")
        store = BarStore()
        if self.universe == "bundled":
            ensure_bundled(symbols, store)  # first use: import the shipped stocks, as market_for does
        data = PointInTimeUniverse(vqm, store, start)
        self.month_ends = np.array([d.date() for d in default_calendar().month_ends()], dtype=object)
        self.store, self.data, self.vqm = store, data, vqm

    def _decision_due(self, day: date) -> bool:
        """Whether a month end since the last bar is unread (this stock may have had no bar on it)."""
        if self.pending_end is None:
            first = day if self.last_day is None else self.last_day + timedelta(days=1)
            ends = self.month_ends[(self.month_ends >= first) & (self.month_ends <= day)]
            if len(ends):
                self.pending_end = ends[-1]
        return self.pending_end is not None

    def _decide(self, bar: BarData) -> None:
        """VQM's decision of the pending month end, from the data up to that day."""
        end = self.pending_end
        market = self.data.up_to(end)
        if market.days[-1].date() != end:
            raise RuntimeError(f"the calendar's month end {end} is not in the data")
        if self.data.warnings and not self.last_decision:
            for warning in self.data.warnings:
                self.write_log(f"数据提示：{warning}")
        plan = self.vqm.targets(market)
        stamp = pd.Timestamp(end)
        if stamp not in plan.frame.index:
            raise RuntimeError(f"VQM made no decision on {end}")
        weight = float(plan.frame.at[stamp, self.vt_symbol])
        self.pending_end = None
        j = market.symbols.index(self.vt_symbol)
        self.rank = self._rank(market, j)
        self.was_st = bool(market.is_st[-1, j])
        self.selected = weight > 0
        self.last_decision = end.isoformat()
        self.wanted = self.selected
        if self.selected and self.pos == 0:
            self.target_volume = int(math.floor(self.fixed_capital / bar.close_price / 100 + EPS)) * 100
            if self.target_volume == 0:
                self.write_log(f"{end} 选中 {self.vt_symbol}，但 {self.fixed_capital:,.0f} 元不够买一手"
                               f"（收盘价 {bar.close_price}）")
        elif not self.selected:
            self.target_volume = 0
        else:
            self.target_volume = int(self.pos)
        self.write_log(f"{end} VQM 决策：{self.vt_symbol} 排名 {self.rank or '—'}，"
                       f"{'入选' if self.selected else '未入选'}，目标 {self.target_volume} 股")

    def _rank(self, market: MarketData, j: int) -> int:
        """The stock's VQM rank on the last row (``VqmStrategy.rank_rows``, as ``targets`` ranks); 0 if excluded."""
        rank = self.vqm.rank_rows(market, np.array([len(market.days) - 1])).rank[0, j]
        return int(rank) if np.isfinite(rank) else 0

    def _follow_actions(self, day: date) -> None:
        """On an ex-date the entry price follows the price: ``(entry − dividend) / split``.

        Only a position held overnight follows it (the sleeve buys from flat only: one bought at today's
        open was bought at the ex-date price), as in the portfolio backtest, which applies the day's
        actions before its fills.
        """
        if self.pos <= 0 or self.entry_price <= 0 or self.last_day is None or not math.isfinite(self.last_close) \
                or self.bought_on == day:
            return
        code, exchange = self.vt_symbol.split(".")
        a = AdjustmentRow
        query = (a.select(a.factor).where((a.symbol == code) & (a.exchange == exchange) & (a.ex_date > self.last_day)
                                          & (a.ex_date <= day)).order_by(a.ex_date))
        step = 1.0
        for (factor,) in self.store.db.execute_sql(*query.sql()).fetchall():
            step *= factor
        if abs(step - 1.0) < 1e-12:
            return
        records = [d for d in stored_records(self.store.database, [self.vt_symbol]).get(self.vt_symbol, ())
                   if self.last_day < d.ex_date <= day]
        if records:  # an imported dividend record is exact (as build_market_data takes it)
            ratio, cash = records[-1].share_ratio, records[-1].cash
        else:  # the step split into shares and cash as build_market_data splits it
            ratio, cash = split_step(step, self.last_close, per_ten=lookup(self.vt_symbol).is_stock,
                                     tick=self.get_pricetick() or STOCK_TICK)
        self.entry_price = (self.entry_price - cash) / ratio

    def _check_stop(self, bar: BarData) -> None:
        """The single-stock stop at this close: sell everything next morning, and do not buy it back
        before the next decision."""
        if not self.stock_stop or self.pos <= 0 or self.entry_price <= 0:
            return
        if stock_stop_hit(bar.close_price, self.entry_price, self.stock_stop):
            loss = bar.close_price / self.entry_price - 1.0
            self.wanted = False
            self.target_volume = 0
            self.write_log(f"{bar.datetime.date()} 个股止损：收盘 {bar.close_price} 较成本 "
                           f"{self.entry_price:.3f} {loss:.1%}，次日开盘卖出")

    def _reconcile(self, bar: BarData) -> None:
        """Buy the target when wanted and flat, sell everything when not wanted; one order at a time."""
        if self.wanted is None or self.active_orders or not self.trading:
            return
        day = bar.datetime.date()
        tick = self.get_pricetick() or 0.01
        band = lookup(self.vt_symbol).price_limit(day, self.was_st) or DEFAULT_BAND
        if self.wanted and self.pos == 0 and self.target_volume > 0:
            price = float(round_to_tick(bar.close_price * (1 + band), tick))
            self.active_orders.update(self.buy(price, self.target_volume))
        elif not self.wanted and self.pos > 0:
            price = float(round_to_tick(bar.close_price * (1 - band), tick))
            self.active_orders.update(self.sell(price, abs(self.pos)))
