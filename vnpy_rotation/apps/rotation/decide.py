"""After the close: update the bars, then the strategy's own ``targets`` on data cut at today (the function
the backtester calls) give today's row, if today is a decision day, as an :class:`OrderPlan`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Callable

import pandas as pd
from vnpy.trader.engine import MainEngine
from vnpy.trader.object import BarData, HistoryRequest

from ...backtest.drift_response import apply_drift_response, response_days
from ...backtest.drift_response import skipped as drift_skipped
from ...backtest.limits import apply_limits, skipped
from ...backtest.loader import market_for
from ...backtest.sweep import plan_within
from ...data.store import BarStore
from ...live.cycle import RiskInputs
from ...live.plan import OrderPlan
from ...risk.stops import RiskRules
from .settings import InstanceSetting

UPDATE_DAYS = 10  # calendar days of bars fetched after each close (covers holidays and a missed day)


@dataclass
class Decided:
    plan: OrderPlan | None
    warnings: list[str] = field(default_factory=list)
    risk_inputs: RiskInputs | None = None  # today's closes and ex-date steps (None: no bar for today)
    rules: RiskRules | None = None  # the strategy's own risk rules (TargetPlan.risk)
    symbols: list[str] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)  # the drift monitors that breached today (none: empty)
    fresh: bool = True  # the plan is today's decision (False: the latest earlier row, asked for by ``latest``)


class GatewayHistory:
    """vnpy's datafeed interface over a gateway's ``query_history`` (for the bar update)."""

    def __init__(self, main_engine: MainEngine, gateway_name: str) -> None:
        self.main_engine, self.gateway_name = main_engine, gateway_name

    def init(self, output: Callable[[str], Any] = print) -> bool:
        return self.main_engine.get_gateway(self.gateway_name) is not None

    def query_bar_history(self, req: HistoryRequest, output: Callable[[str], Any] = print) -> list[BarData]:
        return self.main_engine.query_history(req, self.gateway_name) or []


def update_bars(symbols: list[str], day: date, setting: InstanceSetting, main_engine: MainEngine,
                store: BarStore) -> list[str]:
    """Bring the database up to ``day`` from the configured source; returns problems found."""
    if setting.bars == "database":
        return []
    from ...data.xt_fetch import fetch_into_database, load_datafeed

    feed = load_datafeed() if setting.bars == "xt" else GatewayHistory(main_engine, setting.gateway)
    reports = fetch_into_database(symbols, day - timedelta(days=UPDATE_DAYS), day, store, feed)
    return [f"{r.vt_symbol}: {p}" for r in reports for p in r.problems]


def decide_plan(name: str, strategy: Any, setting: InstanceSetting, day: date, main_engine: MainEngine,
                store: BarStore | None = None, since: date | None = None, latest: bool = False) -> Decided:
    """Today's row of the strategy's plan (``latest``: else the last row before today, with ``fresh`` False:
    the target the strategy holds now, for a canary version given capital between its decisions), with the
    configured limits and drift response
    (``setting.backtest.risk.limits`` / ``.drift``) applied as the backtest applies them: to the rows decided
    from ``since`` (the instance's first session; None: every row), the first moving from cash, the drift
    response stepped from ``since`` on the bars the strategy decides on. Today's drift events are logged."""
    store = store or BarStore()
    warnings = update_bars(list(strategy.symbols), day, setting, main_engine, store)
    market = market_for(strategy, setting.history_start, day, store)
    if market.days[-1].date() != day:
        warnings.append(f"没有{day}的K线(最新{market.days[-1].date()}), 今日不做决策")
        return Decided(None, warnings)
    plan = strategy.targets(market)
    warnings.extend(strategy.data_warnings)
    symbols = list(market.symbols)
    inputs = RiskInputs(dict(zip(symbols, map(float, market.last_close[-1]))),
                        dict(zip(symbols, map(float, market.split[-1]))),
                        dict(zip(symbols, map(float, market.dividend[-1]))))
    risk = setting.backtest.risk
    stamp = pd.Timestamp(day)
    drift: list[str] = []
    if risk.limits.active or risk.drift.enabled:
        if since is not None:
            plan = plan_within(plan, market.days[market.days >= pd.Timestamp(since)])
        config = setting.backtest
        why = skipped(plan, config)
        plan = apply_limits(plan, config, market) if why is None else plan
        why_drift = drift_skipped(plan, config)
        if why_drift is None and risk.drift.enabled:
            first = None if since is None else pd.Timestamp(since)
            response = response_days(config, market, first)
            plan = apply_drift_response(plan, config, market, first, response)
            # every session a monitor breached (not only those that moved the ladder): the risk app counts them
            breached = str(response.breached[-1])  # today: the market ends on ``day`` (checked above)
            drift = [f"drift monitors breached: {breached}"] if breached else []
        warnings.extend(w for w in (why, why_drift) if w is not None)
    if plan.drift_events is not None:
        today = plan.drift_events[plan.drift_events["date"] == stamp]
        warnings.extend(f"drift {e.kind} {e.stage if e.kind == 'stage_changed' else e.flag}: {e.reason}"
                        for e in today.itertuples())
    fresh = stamp in plan.frame.index
    if not fresh:
        earlier = plan.frame.index[plan.frame.index < stamp]
        if not latest or not len(earlier):
            return Decided(None, warnings, inputs, plan.risk, symbols, drift)
        stamp = earlier[-1]
    row = plan.frame.loc[stamp].reindex(symbols, fill_value=0.0)
    if row.isna().all():
        return Decided(None, warnings, inputs, plan.risk, symbols, drift, fresh)
    notes = {}
    if plan.notes is not None:
        given = plan.notes.loc[stamp]
        notes = {s: str(n) for s, n in given.items() if isinstance(n, str) and n}
    return Decided(OrderPlan(name, stamp.date().isoformat(), symbols, [float(v) for v in row.to_numpy()],
                             plan.kind == "weight", plan.reason, notes), warnings, inputs, plan.risk, symbols, drift,
                   fresh)

