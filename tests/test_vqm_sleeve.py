"""The VQM CTA sleeve trades its stock on exactly the days, and at the prices, the portfolio backtest does.

(a) The portfolio: ``run_backtest`` of ``vqm`` (what ``python run.py backtest --strategy vqm`` runs) on
the bundled CSI 300 stocks, 2015-01 … 2019-12, under the A-share rules, fills at the next open;
(b) vnpy_ctastrategy's own ``BacktestingEngine`` with :class:`VqmSleeveStrategy` on one stock, same
span, daily bars from the same database. The sleeve reads the whole universe itself, point-in-time, on
each month end.

Which risk rules: all off on both sides for the comparison with the VQM backtest. That comparison is
exact by construction: both sides trade only on the same decisions. With the stock stop on, the
portfolio's entry price is the average of all its buys of the name -- the entry plus the monthly
re-weighting top-ups (every held name gets some) -- while the sleeve buys once; the same 8 % rule then
fires on other days for some stocks (e.g. 002027.SZSE in 2018). The sleeve's stop is compared instead with
the portfolio engine's own stop on the same decisions held as a constant share count (no top-ups, so the
same entry price): exact by construction too.
"""

from __future__ import annotations

import sys
from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest
from conftest import empty_database

pytest.importorskip("vnpy_ctastrategy")

from vnpy.trader.constant import Direction, Interval  # noqa: E402
from vnpy_ctastrategy import backtesting  # noqa: E402
from vnpy_ctastrategy.backtesting import BacktestingEngine  # noqa: E402

from vnpy_rotation.backtest.config import BacktestConfig  # noqa: E402
from vnpy_rotation.backtest.engine import TargetPlan, simulate  # noqa: E402
from vnpy_rotation.backtest.loader import market_for  # noqa: E402
from vnpy_rotation.backtest.runner import RunSpec, run_backtest  # noqa: E402
from vnpy_rotation.bundled import bundled_stock_files  # noqa: E402
from vnpy_rotation.cta.vqm_sleeve import VqmSleeveStrategy  # noqa: E402
from vnpy_rotation.data.importer import import_paths  # noqa: E402
from vnpy_rotation.market.calendar import default_calendar  # noqa: E402
from vnpy_rotation.risk.stops import RiskRules  # noqa: E402

START, END = date(2015, 1, 1), date(2019, 12, 31)  # 60 month ends
SYMBOL = "600585.SSE"  # selected six times in the span, never at a limit or suspended when it enters or exits
STOP_SYMBOL = "002027.SZSE"  # six stock stops in the span, each bought back at a later decision
SUSPENDED_SYMBOL = "000651.SZSE"  # held, then suspended over month ends in 2016
RULES_OFF = {"stock_stop": None, "portfolio_stop": None, "drawdown_halve": None}


@pytest.fixture(scope="module")
def stock_db(runtime_home):
    """The bundled stocks (bars, reports, CSI 300 membership) alone in a freshly emptied database; vnpy's
    per-process bar cache cleared before and after (it caches by symbol and dates)."""
    from vnpy_rotation.data.store import BarStore

    store = BarStore()
    empty_database(store)
    result = import_paths(bundled_stock_files(), store, progress=False)
    assert result.ok, result.failures
    backtesting.load_bar_data.cache_clear()
    yield store
    backtesting.load_bar_data.cache_clear()


@pytest.fixture(scope="module")
def portfolio(stock_db):
    """The VQM backtest with every risk rule off: the full market it decided on (warm-up included), the
    simulated window, the plan and the result."""
    spec = RunSpec("vqm", RULES_OFF, BacktestConfig(), benchmark=(), start=START, end=END)
    run = run_backtest(spec, store=stock_db, lookahead_cuts=0)
    full = market_for(run.strategy, START, END, stock_db, benchmark=())
    return full, run.market, run.plan, run.result


def run_sleeve(symbol: str, stock_stop: float, end: date = END) -> BacktestingEngine:
    engine = BacktestingEngine()
    engine.set_parameters(vt_symbol=symbol, interval=Interval.DAILY, start=datetime(START.year, START.month, START.day),
                          end=datetime(end.year, end.month, end.day), rate=0.0, slippage=0.0, size=1, pricetick=0.01,
                          capital=1_000_000)
    engine.add_strategy(VqmSleeveStrategy, {"fixed_capital": 50_000, "data_start": START.isoformat(),
                                            "stock_stop": stock_stop})
    engine.load_data()
    engine.run_backtesting()
    failures = [line for line in engine.logs if "失败" in line]
    assert not failures, failures
    assert engine.strategy.last_day == engine.history_data[-1].datetime.date()  # no exception ended the replay
    return engine


def transitions(held: pd.Series) -> tuple[list[date], list[date]]:
    """Days on which a holding goes from 0 to > 0 (entries) and from > 0 to 0 (exits)."""
    on = held.to_numpy() > 0
    before = np.concatenate([[False], on[:-1]])
    days = [d.date() for d in held.index]
    return ([d for d, a, b in zip(days, on, before) if a and not b],
            [d for d, a, b in zip(days, on, before) if b and not a])


def sleeve_days(engine: BacktestingEngine) -> tuple[list[date], list[date]]:
    trades = engine.get_all_trades()
    return ([t.datetime.date() for t in trades if t.direction == Direction.LONG],
            [t.datetime.date() for t in trades if t.direction == Direction.SHORT])


def next_session(day: pd.Timestamp) -> date:
    return default_calendar().next(day.date())


def test_sleeve_trades_on_the_portfolio_days(portfolio):
    full, market, plan, result = portfolio
    positions = result.positions
    held = (positions[positions["vt_symbol"] == SYMBOL].set_index("date")["volume"]
            .reindex(market.days, fill_value=0.0))
    entries, exits = transitions(held)
    # What the decisions ask for: in at the open after a month end that selects it, out after one that drops it.
    selected = plan.frame[SYMBOL] > 0
    flips = selected != selected.shift(fill_value=False)
    asked_in = [next_session(d) for d in selected.index[flips & selected]]
    asked_out = [next_session(d) for d in selected.index[flips & ~selected]]
    # A refused or partly filled exit, or a refused entry, would move the portfolio's day (the sleeve's vnpy
    # fill ignores cash, limit-locked opens and suspensions): the chosen stock has none.
    orders = result.orders[result.orders["vt_symbol"] == SYMBOL]
    on_flip = orders[orders["date"].dt.date.isin(asked_in + asked_out)]
    moved = on_flip[(on_flip["status"] == "refused") | ((on_flip["status"] == "partial")
                                                         & (on_flip["direction"] == "sell"))]
    assert moved.empty, f"choose another span or symbol:\n{moved}"
    assert (entries, exits) == (asked_in, asked_out)
    assert len(entries) >= 4 and len(exits) >= 4, (entries, exits)

    engine = run_sleeve(SYMBOL, stock_stop=0.0)
    assert sleeve_days(engine) == (entries, exits)
    # Each fill at the next bar's open, the price the portfolio filled at (no slippage on either side).
    fills = result.trades[result.trades["vt_symbol"] == SYMBOL].set_index("datetime")["price"]
    trades = engine.get_all_trades()
    assert len(trades) == len(entries) + len(exits)
    for t in trades:
        assert t.price == pytest.approx(fills.loc[pd.Timestamp(t.datetime.date())], abs=1e-9)
        assert t.volume > 0 and t.volume % 100 == 0

    # What the sleeve decided on: every row it read equals the portfolio's data for that day.
    view = engine.strategy.data.market
    assert view.days[-1].date() == date.fromisoformat(engine.strategy.last_decision) <= END
    reference = full.window(None, view.days[-1].date())
    assert view.days.equals(reference.days) and view.symbols == reference.symbols
    for name in view.__dataclass_fields__:
        if name in ("days", "symbols", "benchmark", "extras"):
            continue
        np.testing.assert_array_equal(getattr(view, name), getattr(reference, name), err_msg=name)
    assert view.extras.keys() == reference.extras.keys()
    for name, values in view.extras.items():
        np.testing.assert_array_equal(values, reference.extras[name], err_msg=name)


def test_sleeve_stop_is_the_portfolio_engines_stop(portfolio):
    """The 8 % stop: the sleeve against the portfolio engine's stock stop on the same decisions, held as a
    share count (no top-ups: its entry price is its one fill, like the sleeve's; both follow ex-dates).

    A share-count target does not follow a later split, so the portfolio trims the bonus shares at the next
    decision (a partial sell, the holding stays > 0): entries and exits are compared, as in the first test.
    """
    _, market, plan, _ = portfolio
    selected = plan.frame[STOP_SYMBOL] > 0
    shares = TargetPlan(pd.DataFrame({STOP_SYMBOL: np.where(selected, 1000.0, 0.0)}, index=plan.frame.index),
                        kind="shares", risk=RiskRules(stock_stop=0.08))
    result = simulate(market, shares, BacktestConfig()).to_result()
    orders = result.orders
    assert (orders["status"] == "filled").all(), orders[orders["status"] != "filled"]
    held = result.positions.set_index("date")["volume"].reindex(market.days, fill_value=0.0)
    entries, exits = transitions(held)
    trades = result.trades.set_index("datetime")
    stops = trades[trades["reason"].str.startswith("stock_stop")]
    assert len(stops) >= 4 and {d.date() for d in stops.index} <= set(exits)
    assert any(e > s.date() for s in stops.index for e in entries)  # bought back at a later decision
    assert result.cash_flows["kind"].eq("split").any()  # an ex-date inside a position: the entry follows it

    engine = run_sleeve(STOP_SYMBOL, stock_stop=0.08)
    assert sleeve_days(engine) == (entries, exits)
    for t in engine.get_all_trades():
        assert t.price == pytest.approx(trades.loc[pd.Timestamp(t.datetime.date()), "price"], abs=1e-9)
    assert sum("个股止损" in line for line in engine.logs) == len(stops)


def test_a_month_end_without_a_bar_is_decided_at_the_next_bar(portfolio):
    """VQM excludes a stock without a bar on the decision day. The portfolio's sell is then refused and sent
    again every day until the first open back; the sleeve, which sees no bar meanwhile, reads that month
    end's decision at the close of its first bar back and sells at the next open: one bar later (the one
    place a CTA sleeve cannot follow the portfolio). 000651.SZSE was held into such spells twice in 2016."""
    _, market, _, result = portfolio
    end = date(2016, 12, 31)
    window = market.days[market.days <= pd.Timestamp(end)]
    positions = result.positions[result.positions["vt_symbol"] == SUSPENDED_SYMBOL]
    entries, exits = transitions(positions.set_index("date")["volume"].reindex(window, fill_value=0.0))
    orders = result.orders[result.orders["vt_symbol"] == SUSPENDED_SYMBOL]
    waited = orders[orders["reason"].str.contains("suspended")]
    assert len(exits) == 2 and all(((waited["date"].dt.date < e) & (waited["date"].dt.date > e.replace(day=1)
                                                                      - pd.Timedelta(days=45))).any() for e in exits)

    engine = run_sleeve(SUSPENDED_SYMBOL, stock_stop=0.0, end=end)
    bars = [bar.datetime.date() for bar in engine.history_data]
    next_bar = {a: b for a, b in zip(bars, bars[1:])}
    assert sleeve_days(engine) == (entries, [next_bar[e] for e in exits])
    # Each sale follows a decision read on a later bar than the month end it is of.
    late = {line[:10] for line in engine.logs if "VQM 决策" in line and "未入选" in line
            and line.split("\t")[0][:10] != line.split("\t")[1][:10]}
    assert set(e.isoformat() for e in exits) <= late, late


def test_vnpy_discovers_the_sleeve_in_the_strategies_folder(monkeypatch):
    """vnpy_ctastrategy's own loader, run on the repository's ``strategies/`` folder from its root."""
    from conftest import ROOT
    from vnpy_ctastrategy.engine import CtaEngine

    class Loader:  # what vnpy's two loading methods use of a CtaEngine (no event or main engine needed)
        classes: dict = {}
        logs: list = []
        load_strategy_class_from_folder = CtaEngine.load_strategy_class_from_folder
        load_strategy_class_from_module = CtaEngine.load_strategy_class_from_module

        def write_log(self, msg: str, strategy=None) -> None:
            self.logs.append(msg)

    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # no __pycache__ in the repository's folder
    monkeypatch.chdir(ROOT)
    monkeypatch.syspath_prepend(str(ROOT))
    loader = Loader()
    loader.load_strategy_class_from_folder(ROOT / "strategies", "strategies")
    assert not loader.logs, loader.logs
    assert loader.classes.get("VqmSleeveStrategy") is VqmSleeveStrategy
    # Its parameters are plain values vnpy's UI and JSON settings can hold.
    defaults = VqmSleeveStrategy.get_class_parameters()
    assert set(defaults) == set(VqmSleeveStrategy.parameters)
    assert all(isinstance(v, (int, float, str, bool)) for v in defaults.values())


def test_a_bad_setting_is_logged_and_nothing_trades(runtime_home):
    """A parameter VQM rejects (or a stock outside the universe) ends initialisation with a log line."""
    logs: list[str] = []

    class Engine:  # the few CtaEngine methods a strategy calls while initialising
        def write_log(self, msg, strategy=None) -> None:
            logs.append(msg)

        def put_strategy_event(self, strategy) -> None:
            pass

    for setting, vt_symbol in [({"roe": "quarterly"}, SYMBOL), ({"stock_stop": 1.5}, SYMBOL), ({}, "510300.SSE")]:
        logs.clear()
        strategy = VqmSleeveStrategy(Engine(), "vqm", vt_symbol, setting)
        strategy.on_init()
        assert strategy.vqm is None and any("初始化失败" in line for line in logs), (setting, logs)


def test_sleeve_view_with_pb_dividend_yield_and_express_equals_the_portfolios(stock_db, tmp_path):
    """With every valuation option on, the sleeve's piecewise point-in-time view equals, row for row, what
    the portfolio decides on (``market_for``), and ranks the same on each month end. The express and equity
    rows are synthetic (600036.SSE, in the documented Baostock / equity layouts)."""
    from vnpy_rotation.cta.vqm_sleeve import PointInTimeUniverse
    from vnpy_rotation.fundamentals.store import BalanceRow, ExpressRow
    from vnpy_rotation.strategies.vqm import VqmSettings, VqmStrategy

    express = tmp_path / "express.csv"
    express.write_text("code,performanceExpPubDate,performanceExpStatDate,performanceExpUpdateDate,"
                       "performanceExpressTotalAsset,performanceExpressNetAsset,performanceExpressEPSChgPct,"
                       "performanceExpressROEWa,performanceExpressEPSDiluted,performanceExpressGRYOY,"
                       "performanceExpressOPYOY\n"
                       "sh.600036,2017-01-13,2016-12-31,2017-01-13,5.9e12,4.0e11,0.075,16.27,2.46,0.03,0.05\n")
    equity = tmp_path / "equity.csv"
    equity.write_text("code,pubDate,statDate,totalEquity\nsh.600036,2016-08-19,2016-06-30,3.7e11\n"
                      "sh.600036,2016-10-29,2016-09-30,3.8e11\n")
    try:
        assert import_paths([express, equity], stock_db, progress=False).ok
        settings = VqmSettings(w_pe=0.4, w_pb=0.3, w_dy=0.1, express_stand_in=True, **RULES_OFF)
        start, end = date(2016, 6, 1), date(2017, 4, 30)
        strategy = VqmStrategy(settings)
        full = market_for(strategy, start, end, stock_db, benchmark=())
        sleeve = PointInTimeUniverse(VqmStrategy(settings), stock_db, start)
        j = full.symbols.index("600036.SSE")
        assert (full.extras["bvps_approximate"][:, j] == 0).any()  # the equity rows were used
        feb = full.days.get_loc(pd.Timestamp("2017-02-28"))
        assert full.extras["eps_ttm"][feb, j] == 2.46  # the express report stands in for 2016's annual report
        for month_end in [d.date() for d in default_calendar().month_ends() if start <= d.date() <= end]:
            view = sleeve.up_to(month_end)
            reference = full.window(None, month_end)
            assert view.days.equals(reference.days)
            assert view.extras.keys() == reference.extras.keys()
            for name, values in view.extras.items():
                np.testing.assert_array_equal(values, reference.extras[name], err_msg=f"{name} {month_end}")
            last = np.array([len(view.days) - 1])
            np.testing.assert_array_equal(strategy.rank_rows(view, last).rank, strategy.rank_rows(reference, last).rank)
    finally:
        for model in (ExpressRow, BalanceRow):
            model.delete().execute()
