"""The CTA sleeve enters and exits its ETF on exactly the days the portfolio backtest does.

(a) ``run_backtest`` of ``etf_rotation`` on the A_SHARE pool alone (fills at the next open under the
A-share rules); (b) vnpy_ctastrategy's own ``BacktestingEngine`` with
:class:`EtfRotationSleeveStrategy` on one member, same span, daily bars from the same database.
The sleeve reads the other members itself, point-in-time, on each decision day.
"""

from __future__ import annotations

import sys
from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import bundled_store_for

pytest.importorskip("vnpy_ctastrategy")

from vnpy.trader.constant import Direction, Interval  # noqa: E402
from vnpy_ctastrategy import backtesting  # noqa: E402
from vnpy_ctastrategy.backtesting import BacktestingEngine  # noqa: E402

from vnpy_rotation.backtest.config import BacktestConfig  # noqa: E402
from vnpy_rotation.backtest.loader import load_market  # noqa: E402
from vnpy_rotation.backtest.runner import RunSpec, run_backtest  # noqa: E402
from vnpy_rotation.bundled import manifest  # noqa: E402
from vnpy_rotation.cta.etf_rotation_sleeve import EtfRotationSleeveStrategy  # noqa: E402

START, END = date(2017, 8, 1), date(2024, 9, 30)  # ~7 years; the warm-up reaches back to the data's start
SYMBOL = "510300.SSE"
POOL = "A_SHARE"
CAPITAL = 7_000_000.0


@pytest.fixture(scope="module")
def bundled_db(runtime_home):
    """The bundled real bars in a freshly emptied database (the temporary runtime folder)."""
    with bundled_store_for(backtesting) as store:
        yield store


@pytest.fixture
def pools_file(tmp_path):
    """The A_SHARE pool alone, with a capacity cap that never binds.

    With the shipped max_adv_pct a capped order would move the portfolio's weight in steps (an exit
    spread over two decisions), which a fixed-size sleeve cannot mirror; with 100 % of the average
    turnover the portfolio's holding goes 0 → >0 and >0 → 0 in one fill, like the sleeve's.
    """
    path = tmp_path / "pools.yaml"
    path.write_text(yaml.safe_dump({
        "pools": {POOL: manifest()["pools"][POOL]},
        "capital_constraints": {POOL: {"target_capital": CAPITAL, "max_single_weight": 0.5, "max_adv_pct": 1.0}},
    }), encoding="utf-8")
    return path


def transitions(held: pd.Series) -> tuple[list[date], list[date]]:
    """Days on which a holding goes from 0 to > 0 (entries) and from > 0 to 0 (exits)."""
    on = held.to_numpy() > 0
    before = np.concatenate([[False], on[:-1]])
    days = [d.date() for d in held.index]
    return ([d for d, a, b in zip(days, on, before) if a and not b],
            [d for d, a, b in zip(days, on, before) if b and not a])


def test_sleeve_trades_on_the_portfolio_days(bundled_db, pools_file):
    settings = {"pools": [POOL], "pools_file": str(pools_file)}
    portfolio = run_backtest(RunSpec("etf_rotation", settings, BacktestConfig(capital=CAPITAL),
                                     start=START, end=END), store=bundled_db, lookahead_cuts=1)
    positions = portfolio.result.positions
    held = (positions[positions["vt_symbol"] == SYMBOL].set_index("date")["volume"]
            .reindex(portfolio.market.days, fill_value=0.0))
    entries, exits = transitions(held)
    # A refused order or a partly filled sell would legitimately move an entry or exit by a day (the
    # sleeve's vnpy fill ignores limit-up opens and cash); partly filled top-up buys (cash left after
    # the same day's sells) do not change whether the fund is held.
    orders = portfolio.result.orders
    orders = orders[orders["vt_symbol"] == SYMBOL]
    moved = orders[(orders["status"] == "refused") | ((orders["status"] == "partial") & (orders["direction"] == "sell"))]
    assert moved.empty, f"choose another span or symbol:\n{moved}"

    # The first day of history the portfolio read (warm-up before START), so both decide on the same axis.
    data_start = load_market(portfolio.strategy.symbols, START, END, portfolio.strategy.warmup_days,
                             bundled_db).days[0].date()
    engine = BacktestingEngine()
    engine.set_parameters(vt_symbol=SYMBOL, interval=Interval.DAILY, start=datetime(START.year, START.month,
                          START.day), end=datetime(END.year, END.month, END.day), rate=0.0, slippage=0.0,
                          size=1, pricetick=0.001, capital=1_000_000)
    engine.add_strategy(EtfRotationSleeveStrategy, {"pool": POOL, "pools_file": str(pools_file),
                                                    "fixed_size": 10_000, "data_start": data_start.isoformat()})
    engine.load_data()
    engine.run_backtesting()
    failures = [line for line in engine.logs if "失败" in line]
    assert not failures, failures
    assert engine.strategy.last_day == engine.history_data[-1].datetime.date()  # no exception ended the replay

    trades = engine.get_all_trades()
    sleeve_entries = [t.datetime.date() for t in trades if t.direction == Direction.LONG]
    sleeve_exits = [t.datetime.date() for t in trades if t.direction == Direction.SHORT]
    assert len(entries) >= 3 and len(exits) >= 3, (entries, exits)
    assert sleeve_entries == entries
    assert sleeve_exits == exits
    # Each fill at the next bar's open, the price the portfolio filled at (no slippage on either side).
    fills = portfolio.result.trades
    fills = fills[fills["vt_symbol"] == SYMBOL].set_index("datetime")["price"]
    for t in trades:
        assert t.price == pytest.approx(fills.loc[pd.Timestamp(t.datetime.date())], abs=1e-9)


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
    assert loader.classes.get("EtfRotationSleeveStrategy") is EtfRotationSleeveStrategy
