"""The strategies' own factor values and ranks as the monitor's live indicators: on a bundled-data decision
day, the rank the monitor shows (market cut at that close, through the monitor app's loader) is the one the
strategy selected on that day in a full backtest run."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
from conftest import fresh_bundled_store

from vnpy_rotation.monitor import MonitorView, StrategyScores


def test_rank_text_is_compact_and_blank_without_scores():
    day = pd.Timestamp("2024-01-31").date()
    view = MonitorView(pd.Timestamp("2024-02-01 10:00").to_pydatetime(), (("510300.SSE", None),), (),
                       scores={"510300.SSE": (StrategyScores("etf_rotation/A_SHARE", day, (("score", 0.9),), 2, 7),
                                              StrategyScores("vqm", day, (), None, 40))})
    assert view.rank_text("510300.SSE") == "A_SHARE 2/7 vqm -/40"
    assert view.rank_text("600000.SSE") == ""


def _monitor_engine():
    from vnpy.event import EventEngine
    from vnpy.trader.engine import MainEngine

    from vnpy_rotation.apps.monitor import APP_NAME, MonitorApp

    main_engine = MainEngine(EventEngine())
    main_engine.add_app(MonitorApp)
    return main_engine, main_engine.get_engine(APP_NAME)


def test_etf_rotation_rank_on_a_decision_day_is_the_strategys_own(runtime_home):
    from vnpy_rotation.backtest.loader import market_for
    from vnpy_rotation.strategies import create_strategy

    store = fresh_bundled_store()
    strategy = create_strategy("etf_rotation")
    full = market_for(strategy, store=store)
    pool = "A_SHARE"
    decided = strategy.decide_pool(full, pool)
    first = int(np.nonzero(decided.selected.any(axis=1))[0][0])  # no holdings before it: no hysteresis
    day = full.days[decided.rows[first]].date()
    members = decided.columns[:decided.selected.shape[1]]
    chosen = {m for m, on in zip(members, decided.selected[first]) if on}

    main_engine, engine = _monitor_engine()
    try:
        engine.start(members, "NONE", references=[])
        scores = engine.load_scores([create_strategy("etf_rotation")], today=day + timedelta(days=1))
        view = engine.view()
    finally:
        main_engine.close()
    ours = {s: next(x for x in scores[s] if x.strategy == f"etf_rotation/{pool}") for s in members}
    assert {x.as_of for x in ours.values()} == {day}
    top = {s for s, x in ours.items() if x.rank is not None and x.rank <= strategy.settings.top_n}
    assert top == chosen and chosen
    ranked = sorted(x.rank for x in ours.values() if x.rank is not None)
    assert ranked == list(range(1, ours[members[0]].of + 1))
    assert [k for k, _ in ours[members[0]].factors] == [*strategy.settings.factors, "score"]
    assert view.rank_text(next(iter(chosen))).startswith(f"{pool} ")


def test_vqm_rank_on_a_month_end_is_the_strategys_own(bundled_stock_market):
    from vnpy_rotation.backtest.loader import market_for
    from vnpy_rotation.backtest.strategy import rebalance_days
    from vnpy_rotation.strategies import create_strategy
    from vnpy_rotation.strategies.scores import latest_scores

    strategy = create_strategy("vqm")
    plan = strategy.targets(bundled_stock_market)
    row = rebalance_days(bundled_stock_market, "month_end")[-2]
    day = bundled_stock_market.days[row]
    chosen = {s for s, w in plan.frame.loc[day].items() if w > 0}
    store = fresh_bundled_store(stocks=True)  # the fixture's database may have been replaced since
    cut = market_for(create_strategy("vqm"), None, day.date(), store)  # what the monitor loads the next morning
    assert cut.days[-1] == day
    scores = latest_scores(create_strategy("vqm"), cut)
    top = {s for s, (x,) in scores.items() if x.rank is not None and x.rank <= strategy.settings.top_n}
    assert top == chosen and len(chosen) == strategy.settings.top_n
    some = next(iter(chosen))
    assert dict(scores[some][0].factors)["pe"] > 0


def test_no_bar_of_the_monitors_day_enters(runtime_home):
    """Point in time: the scores on day D+1 are those of the close of D, even with D+1's bar stored."""
    from vnpy_rotation.strategies import create_strategy

    fresh_bundled_store()
    main_engine, engine = _monitor_engine()
    try:
        engine.start(["510300.SSE"], "NONE", references=[])
        day = pd.Timestamp("2024-06-28").date()  # a Friday with bundled bars on it and after it
        (score,) = [x for x in engine.load_scores([create_strategy("etf_rotation")], today=day)["510300.SSE"]
                    if x.strategy.endswith("A_SHARE")]
    finally:
        main_engine.close()
    assert score.as_of < day


def test_the_rank_column_in_both_screens():
    from vnpy_rotation.apps.monitor.ui.widget import watch_row
    from vnpy_rotation.tui.render import table_cells

    day = pd.Timestamp("2024-01-31").date()
    at = pd.Timestamp("2024-02-01 10:00").to_pydatetime()
    rows = (("510300.SSE", None), ("600000.SSE", None))
    plain = MonitorView(at, rows, ())
    assert [len(c) for c in table_cells(plain)] == [11, 11]  # no scores: the 80-column table is unchanged
    ranked = MonitorView(at, rows, (), scores={"510300.SSE": (StrategyScores("etf_rotation/A_SHARE", day, (), 2, 7),)})
    assert [c[-1] for c in table_cells(ranked)] == ["A_SHARE 2/7", ""]
    assert watch_row("510300.SSE", None, ranked.rank_text("510300.SSE"))[-1] == "A_SHARE 2/7"
