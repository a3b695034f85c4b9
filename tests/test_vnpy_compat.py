"""Cross-check against vnpy_portfoliostrategy: same bars, same strategy, same fills, same equity.

Our engine in ``BacktestConfig.vnpy_compatible`` mode runs ``momentum_topn`` (raw closes, share
sizing); vnpy's ``BacktestingEngine`` runs the same rotation written as a ``StrategyTemplate``
(``benchmarks/vnpy_peer.py``). On the bundled A_SHARE + OTHER ETFs every fill must agree (day, symbol,
direction, volume exactly, price to 1e-9) and the daily equity to the cent on every day.
"""

from __future__ import annotations

import sys
from datetime import date

import numpy as np
import pytest
from conftest import ROOT, bundled_store_for

pytest.importorskip("vnpy_portfoliostrategy")
sys.path.insert(0, str(ROOT / "benchmarks"))

import vnpy_peer  # noqa: E402

from vnpy_rotation.backtest.config import BacktestConfig  # noqa: E402
from vnpy_rotation.backtest.engine import simulate  # noqa: E402
from vnpy_rotation.backtest.loader import load_market  # noqa: E402
from vnpy_rotation.bundled import manifest  # noqa: E402
from vnpy_rotation.strategies import create_strategy  # noqa: E402

CAPITAL = 1_000_000.0
RATE = 0.0003


@pytest.fixture(scope="module")
def bundled_db(runtime_home):
    """The bundled bars in a freshly emptied database, imported once for this module."""
    from vnpy_portfoliostrategy import backtesting

    with bundled_store_for(backtesting) as store:
        yield store


def pool() -> list[str]:
    pools = manifest()["pools"]
    return pools["A_SHARE"] + pools["OTHER"]


def run_both(store, start: date, end: date, settings: dict, capital: float = CAPITAL):
    md = load_market(pool(), start, end, store=store).window(start, end)
    strategy = create_strategy("momentum_topn", {**settings, "adjusted": False, "sizing": "shares",
                                                 "symbols": pool()})
    ours = simulate(md, strategy.targets(md), BacktestConfig.vnpy_compatible(capital, RATE))
    ticks = dict(zip(md.symbols, md.tick.tolist()))
    theirs = vnpy_peer.run_vnpy(list(md.symbols), start, end, settings, capital, RATE, ticks)
    return md, ours, theirs


def assert_same(md, ours, theirs) -> None:
    assert [d.date() for d in md.days] == theirs.days, "both sides must cover the same trading days"
    our_trades = sorted((t[0].date(), t[1], t[2], t[3], t[4]) for t in ours.trades)
    vnpy_trades = sorted(theirs.trades)
    assert len(our_trades) == len(vnpy_trades)
    for a, b in zip(our_trades, vnpy_trades):
        assert (a[0], a[1], a[2], a[4]) == (b[0], b[1], b[2], b[4]), (a, b)
        assert abs(a[3] - b[3]) <= 1e-9, (a, b)
    difference = np.abs(ours.equity() - np.asarray(theirs.equity))
    worst = int(difference.argmax())
    assert difference[worst] < 0.005, (md.days[worst], ours.equity()[worst], theirs.equity[worst])


CASES = [
    # start, end, lookback, top_n, rebalance, absolute
    (date(2018, 1, 2), date(2023, 12, 29), 20, 2, "week_end", True),
    (date(2018, 2, 1), date(2022, 12, 30), 5, 1, "week_end", True),  # first bar on the 1st of a month
    (date(2019, 2, 1), date(2023, 6, 30), 60, 3, "month_end", False),
    (date(2018, 1, 2), date(2021, 12, 31), 10, 9, "week_end", False),  # every symbol, 159915's gap
]


@pytest.mark.parametrize("start,end,lookback,top_n,rebalance,absolute", CASES)
def test_same_fills_and_equity_as_vnpy(bundled_db, start, end, lookback, top_n, rebalance, absolute):
    settings = dict(lookback=lookback, top_n=top_n, rebalance=rebalance, absolute=absolute, invested=0.99,
                    notional=CAPITAL / 3)
    md, ours, theirs = run_both(bundled_db, start, end, settings)
    assert len(theirs.trades) > 40
    assert not [o for o in ours.orders if o[8]], "nothing may be refused or reduced in vnpy mode"
    assert_same(md, ours, theirs)


def test_no_order_for_a_symbol_without_a_bar_on_the_decision_day(bundled_db):
    """159915 has no bar on 2021-02-08: vnpy's rebalance_portfolio sends it no order, nor may we."""
    settings = dict(lookback=20, top_n=3, rebalance="daily", absolute=True, invested=0.99,
                    notional=CAPITAL / 3)
    md, ours, theirs = run_both(bundled_db, date(2020, 6, 1), date(2021, 6, 30), settings)
    gap = md.days.get_loc("2021-02-08")
    assert not np.isfinite(md.close[gap, md.symbols.index("159915.SZSE")])
    assert ours.holdings()[gap - 1, md.symbols.index("159915.SZSE")] > 0  # held into the gap
    assert_same(md, ours, theirs)


def test_buys_beyond_cash_fill_in_full_like_vnpy(bundled_db):
    """vnpy's backtester has no cash check: buys beyond the cash fill in full and cash goes negative."""
    settings = dict(lookback=5, top_n=1, rebalance="week_end", absolute=True, invested=0.99,
                    notional=CAPITAL)
    md, ours, theirs = run_both(bundled_db, date(2018, 1, 2), date(2019, 12, 31), settings)
    assert ours.cash().min() < 0  # the case this test is about happens
    assert not [o for o in ours.orders if o[8]]
    assert_same(md, ours, theirs)
