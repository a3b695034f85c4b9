"""One ETF of a rotation pool as a vnpy CTA strategy (a "sleeve" of :class:`EtfRotationStrategy`).

The CTA engine feeds the bars of one ETF. At the close of each decision day t the sleeve reads the
pool's members (and the defensive asset and the benchmark) from the vnpy database with ``end = t``
(nothing after t can enter), runs the portfolio strategy's own :meth:`EtfRotationStrategy.decide_pool`
on them and holds ``fixed_size`` shares exactly when the pool's decision gives its ETF a weight.

Orders are limit orders at the exchange's 10 % limit band around the close: they are accepted live
and, in vnpy's backtester (fill price ``min(limit, open)`` for a buy, ``max(limit, open)`` for a sell),
they fill at the next bar's open, like the portfolio backtest does.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np
from vnpy.trader.object import BarData, OrderData, TradeData
from vnpy_ctastrategy import CtaTemplate

from ..backtest.loader import with_benchmark
from ..data.market_data import MarketData, build_market_data, round_to_tick
from ..data.panels import load_panels
from ..data.store import BarStore
from ..factors.library import FACTORS
from ..fundamentals.dividends import stored_records
from ..market.calendar import default_calendar
from ..strategies.etf_rotation import EtfRotationSettings, EtfRotationStrategy

LIMIT_BAND = 0.10  # A-share ETFs: ±10 % around the previous close


class EtfRotationSleeveStrategy(CtaTemplate):
    """Hold ``fixed_size`` shares of the CTA symbol while the pool's rotation selects it."""

    author = "vnpy_rotation"

    pool: str = "A_SHARE"
    pools_file: str = ""  # "" = configs/etf_pools.yaml
    fixed_size: int = 1000  # shares, a multiple of 100
    data_start: str = ""  # ISO date: first day of history the portfolio run read ("" = all history)
    top_n: int = 2
    buffer: int = 1
    schedule: str = "week_end"  # week_end / month_end / every_k
    every_k: int = 5
    min_history: int = 120
    min_adv: float = 5_000_000.0
    defensive: str = "511010.SSE"  # "" = empty slots stay in cash

    target_weight: float = 0.0  # the pool's last decided weight of this ETF (of the pool's capital)
    selected: bool = False
    last_decision: str = ""

    parameters = ["pool", "pools_file", "fixed_size", "data_start", "top_n", "buffer", "schedule", "every_k",
                  "min_history", "min_adv", "defensive"]
    variables = ["target_weight", "selected", "last_decision"]

    def __init__(self, cta_engine: Any, strategy_name: str, vt_symbol: str, setting: dict) -> None:
        super().__init__(cta_engine, strategy_name, vt_symbol, setting)
        self.rotation: EtfRotationStrategy | None = None
        self.store: BarStore | None = None
        self.start: date | None = None
        self.column: int = -1
        self.wanted: bool | None = None  # None until the first decision seen while running
        self.pending_end: date | None = None  # a period end whose decision has not been read yet
        self.period_ends: np.ndarray = np.array([], dtype=object)  # calendar period ends (dates)
        self.needs_benchmark: bool = True
        self.last_day: date | None = None
        self.active_orders: set[str] = set()

    # -- vnpy callbacks --------------------------------------------------------------------------
    def on_init(self) -> None:
        try:
            self._setup()
        except Exception as exc:  # a bad parameter: say which, trade nothing
            self.rotation = None
            self.write_log(f"初始化失败，策略不会交易：{exc}")
            return
        self.write_log(f"初始化完成：{self.vt_symbol} 属于轮动池 {self.pool}，每次 {self.fixed_size} 份，"
                       f"数据起点 {self.start or '数据库最早'}")
        self.put_event()

    def on_start(self) -> None:
        self.write_log("策略启动")

    def on_stop(self) -> None:
        self.write_log("策略停止")

    def on_bar(self, bar: BarData) -> None:
        """The close of day t: decide if t is a decision day, then bring the position to the target."""
        self.cancel_all()  # an order the last bar did not fill is sent again at today's price
        day = bar.datetime.date()
        if self.rotation is None:
            return
        try:
            if self._decision_due(day):
                self._decide(day)
            self._reconcile(bar)
        except Exception as exc:
            self.write_log(f"{day} 轮动决策失败（本日不下单）：{type(exc).__name__}: {exc}")
        finally:
            self.last_day = day
        self.put_event()

    def on_order(self, order: OrderData) -> None:
        if not order.is_active():
            self.active_orders.discard(order.vt_orderid)

    def on_trade(self, trade: TradeData) -> None:
        self.put_event()

    # -- the steps -------------------------------------------------------------------------------
    def _setup(self) -> None:
        if self.fixed_size <= 0 or self.fixed_size % 100:
            raise ValueError(f"fixed_size {self.fixed_size} 必须是 100 的正整数倍")
        self.start = date.fromisoformat(self.data_start) if self.data_start else None
        settings = EtfRotationSettings(pools_file=self.pools_file or None, pools=[self.pool], top_n=self.top_n,
                                       buffer=self.buffer, schedule=self.schedule, every_k=self.every_k,
                                       min_history=self.min_history, min_adv=self.min_adv,
                                       defensive=self.defensive or None)
        rotation = EtfRotationStrategy(settings)
        columns = rotation.pool_columns(self.pool)
        if self.vt_symbol not in columns:
            raise ValueError(f"{self.vt_symbol} 不在轮动池 {self.pool} 中（成员：{', '.join(columns)}）")
        self.column = columns.index(self.vt_symbol)  # decide_pool's column order: members, then defensive
        calendar = default_calendar()  # period ends are published in advance: computed once
        ends = calendar.month_ends() if self.schedule == "month_end" else calendar.week_ends()
        self.period_ends = np.array([d.date() for d in ends], dtype=object)
        used = [*settings.factors, settings.absolute_factor]
        self.needs_benchmark = any(FACTORS[name].needs_benchmark for name in used)
        self.store = BarStore()
        self.rotation = rotation

    def _decision_due(self, day: date) -> bool:
        """Whether the pool may decide on ``day``: a calendar period end since the last bar is unread.

        The pool decides on its first own session on or after each period end (known in advance from
        the exchange calendar), so only those days need the database; ``every_k`` counts the pool's
        sessions from ``data_start`` and is checked on every bar.
        """
        schedule = self.rotation.settings.schedule
        if schedule == "every_k":
            return True
        if self.pending_end is None:
            first = day if self.last_day is None else self.last_day + timedelta(days=1)
            ends = self.period_ends[(self.period_ends >= first) & (self.period_ends <= day)]
            if len(ends):
                self.pending_end = ends[-1]
        return self.pending_end is not None

    def _market(self, day: date) -> MarketData:
        """The pool's data from ``data_start`` to ``day``, benchmark attached as the backtest runner does.

        ``load_panels`` builds its day axis from the calendar up to ``day`` and places only bars, flags
        and adjustment events dated on that axis: nothing after ``day`` enters the decision.
        """
        panels = load_panels(self.rotation.symbols, self.start, day, store=self.store)
        market = build_market_data(panels, records=stored_records(self.store.database, self.rotation.symbols))
        if len(market.days) and market.days[-1].date() > day:  # cannot happen: load_panels ends at day
            raise RuntimeError(f"data after {day} was read")
        if not self.needs_benchmark:  # only relative-strength factors read it: the decision is the same
            return market
        return with_benchmark(market, self.store)[0]

    def _decide(self, day: date) -> None:
        market = self._market(day)
        decision = self.rotation.decide_pool(market, self.pool)
        if not len(decision.rows):
            return
        decided = market.days[decision.rows[-1]].date()
        if self.pending_end is not None:
            if decided < self.pending_end:
                return  # the pool has not traded since the period end: it decides on a later session
            self.pending_end = None  # decided before today only if this ETF had no bar that day: act now
        elif decided != day:
            return  # every_k: not a decision day
        weight = float(decision.weights[-1, self.column])
        self.target_weight = weight
        self.selected = bool(decision.selected[-1, self.column]) if self.column < decision.selected.shape[1] \
            else weight > 0
        self.last_decision = decided.isoformat()
        self.wanted = weight > 0
        self.write_log(f"{decided} 轮动决策：{self.vt_symbol} 目标权重 {weight:.2%}")

    def _reconcile(self, bar: BarData) -> None:
        """Buy ``fixed_size`` when wanted and flat, sell everything when not wanted; one order at a time."""
        if self.wanted is None or self.active_orders or not self.trading:
            return
        tick = self.get_pricetick() or 0.001
        if self.wanted and self.pos == 0:
            price = float(round_to_tick(bar.close_price * (1 + LIMIT_BAND), tick))
            self.active_orders.update(self.buy(price, self.fixed_size))
        elif not self.wanted and self.pos > 0:
            price = float(round_to_tick(bar.close_price * (1 - LIMIT_BAND), tick))
            self.active_orders.update(self.sell(price, abs(self.pos)))
