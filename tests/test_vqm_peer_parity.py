"""The vnpy VQM peer (``benchmarks/vnpy_vqm_peer.py``) selects by the same rules as ``VqmStrategy``.

``benchmarks/bench_vqm.py`` compares the two on 265 stocks × 10 years; these tests keep the comparison
like for like cheaply: the peer's PE puts the report's EPS on the close's share basis after bonus /
transfer shares (hand-computed scenarios), and on the bundled CSI 300 stocks both sides choose the same
names on every decision day.
"""

from __future__ import annotations

import sys
from datetime import date, datetime

import pytest
from conftest import ROOT, empty_database

pytest.importorskip("vnpy_portfoliostrategy")
sys.path.insert(0, str(ROOT / "benchmarks"))

import vnpy_vqm_peer  # noqa: E402

from vnpy_rotation.market.calendar import default_calendar  # noqa: E402
from vnpy_rotation.strategies import create_strategy  # noqa: E402

A, B = "600001.SSE", "600002.SSE"
DECISION = date(2014, 7, 31)
KNOWN = date(2014, 4, 25)  # A's report became public: usable from 04-26


def peer_strategy(share_changes: dict[str, tuple[list[date], list[float]]]):
    """The peer's vnpy strategy on two stocks with equal ROE: A EPS TTM 2.0, B 1.0; top 1."""
    inputs = vnpy_vqm_peer.VqmInputs(
        reports={A: ([date(2014, 4, 26)], [2.0], [0.1], [KNOWN]),
                 B: ([date(2014, 4, 1)], [1.0], [0.1], [date(2014, 3, 31)])},
        share_changes=share_changes)
    strategy = vnpy_vqm_peer.strategy_class()(None, "vqm", [A, B], {"top_n": 1, "min_listed_days": 0})
    strategy.inputs = inputs
    strategy.last_close = {}
    return strategy


def bars(close_a: float, close_b: float) -> dict:
    from vnpy.trader.constant import Exchange, Interval
    from vnpy.trader.object import BarData

    when = datetime(DECISION.year, DECISION.month, DECISION.day)
    return {s: BarData(gateway_name="test", symbol=s.split(".")[0], exchange=Exchange.SSE, datetime=when,
                       interval=Interval.DAILY, volume=1e6, open_price=c, high_price=c, low_price=c, close_price=c)
            for s, c in ((A, close_a), (B, close_b))}


# A closes at 15 (PE 7.5 on the report's shares), B at 12 (PE 12). A bonus issue of ratio r with its ex-date
# after A's report became public and on or before the decision day puts A's EPS at 2 / r per current share.
@pytest.mark.parametrize("ex_dates, ratios, eps_a, chosen", [
    ([], [], 2.0, A),                                           # no share change
    ([date(2014, 6, 25)], [2.0], 1.0, B),                       # 10送10 after the report: PE 15 > 12
    ([date(2014, 6, 25)], [1.1], 2.0 / 1.1, A),                 # 10送1: PE 8.25, still the cheaper
    ([date(2014, 4, 25)], [2.0], 2.0, A),                       # ex-date on the announcement day: already counted
    ([date(2014, 3, 20)], [2.0], 2.0, A),                       # before the report: its EPS is restated
    ([DECISION], [2.0], 1.0, B),                                # ex-date on the decision day: close per new share
    ([date(2014, 8, 1)], [2.0], 2.0, A),                        # after the decision day: not yet
    ([date(2014, 3, 20), date(2014, 5, 5), date(2014, 6, 25)], [2.0, 1.5, 1.2], 2.0 / 1.8, B),  # 1.5 × 1.2
    ([date(2014, 6, 25)], [0.5], 4.0, A),                       # a 2:1 consolidation doubles EPS per share
])
def test_peer_puts_eps_on_the_share_basis_of_the_day(ex_dates, ratios, eps_a, chosen):
    cumulative, product = [], 1.0
    for ratio in ratios:
        product *= ratio
        cumulative.append(product)
    strategy = peer_strategy({A: (ex_dates, cumulative)} if ex_dates else {})
    assert strategy.fundamentals_on(A, DECISION) == (pytest.approx(eps_a, rel=1e-12), 0.1)
    assert strategy.fundamentals_on(B, DECISION) == (1.0, 0.1)
    assert strategy.select(DECISION, bars(15.0, 12.0)) == [chosen]


def test_peer_counts_a_series_starting_with_the_data_as_listed_before_it():
    strategy = peer_strategy({})
    strategy.inputs.first_day = {A: date(2014, 1, 2), B: date(2014, 3, 3)}
    strategy.inputs.data_start = date(2014, 1, 2)
    strategy.inputs.sessions = [d.date() for d in default_calendar().between()]
    strategy.min_listed_days = 250
    assert strategy.select(DECISION, bars(15.0, 12.0)) == [A]  # B: fewer than 250 sessions since its first bar


# Twelve of the bundled CSI 300 stocks (bonus and transfer shares after reports among them: 600887.SSE's
# 10送10 ex 2015-05-28, 002236.SZSE's and 002415.SZSE's 转增), top 5: the twelve import in seconds where all
# 55 take about 20 s. The data begin on 2013-01-04, so the listing-age rule for a series starting with the
# data is exercised too.
SYMBOLS = ["000002.SZSE", "000651.SZSE", "000858.SZSE", "002236.SZSE", "002415.SZSE", "600030.SSE",
           "600036.SSE", "600048.SSE", "600519.SSE", "600887.SSE", "601318.SSE", "601888.SSE"]
START, END = date(2013, 1, 4), date(2018, 12, 28)
INDEX = "000300.SSE"
CAPITAL = 10_000_000.0


@pytest.fixture(scope="module")
def bundled_stocks(runtime_home):
    """:data:`SYMBOLS`' bundled bars with the bundled fundamentals and membership in an emptied database,
    vnpy's bar cache cleared around (it caches by symbol and span: never serve another test's bars)."""
    from vnpy_portfoliostrategy import backtesting

    from vnpy_rotation.bundled import bundled_stock_files
    from vnpy_rotation.data.importer import import_paths
    from vnpy_rotation.data.store import BarStore

    codes = {s.split(".")[0] for s in SYMBOLS}
    files = [f for f in bundled_stock_files() if f.parent.name != "stocks" or f.name.split(".")[0] in codes]
    store = BarStore()
    empty_database(store)
    result = import_paths(files, store, progress=False)
    assert result.ok, result.failures
    backtesting.load_bar_data.cache_clear()
    yield store
    backtesting.load_bar_data.cache_clear()


def test_same_choice_as_vqm_on_every_decision_day_of_bundled_stocks(bundled_stocks):
    from vnpy_rotation.data.market_data import build_market_data
    from vnpy_rotation.data.panels import load_panels

    store = bundled_stocks
    ours = create_strategy("vqm", {"symbols": SYMBOLS, "index": INDEX, "top_n": 5, "stock_stop": None,
                                   "portfolio_stop": None, "drawdown_halve": None})
    market = ours.prepare_market(build_market_data(load_panels(SYMBOLS, START, END, store=store)), store)
    frame = ours.targets(market).frame
    our_choice = {day.date(): set(frame.columns[row > 0]) for day, row in zip(frame.index, frame.to_numpy())}

    s = ours.settings
    peer = vnpy_vqm_peer.VnpyVqmPeer(list(market.symbols), START, END, CAPITAL, 0.0003,
                                     dict(zip(market.symbols, market.tick.tolist())))
    settings = {"w_pe": s.w_pe, "w_roe": s.roe_weight, "top_n": s.top_n, "min_listed_days": s.min_listed_days,
                "invested": s.invested, "notional": CAPITAL, "lot": 100}
    theirs = peer.run(settings, vnpy_vqm_peer.build_inputs(list(market.symbols), INDEX, s.roe, store))
    vnpy_choice = {day: set(chosen) for day, chosen in theirs.selections.items()}

    assert sorted(our_choice) == sorted(vnpy_choice) and len(our_choice) == 72  # month ends 2013-01 … 2018-12
    assert sum(len(chosen) == 5 for chosen in our_choice.values()) >= 60  # not an empty comparison
    differ = {day: (sorted(our_choice[day] - vnpy_choice[day]), sorted(vnpy_choice[day] - our_choice[day]))
              for day in our_choice if our_choice[day] != vnpy_choice[day]}
    assert differ == {}  # day: (ours only, vnpy only)
