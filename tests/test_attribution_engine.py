"""Attribution inputs built from the backtest engine's own result on hand-written bars: a refused limit-up
buy, the delay of a filled one, the board and industry segments."""

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest
from scenario_market import backtest, bar, days, flat, make_panels

from vnpy_rotation.attribution import attribute
from vnpy_rotation.backtest.attribution_inputs import book_input, holdings_matrix, strategy_benchmark
from vnpy_rotation.backtest.config import BacktestConfig
from vnpy_rotation.errors import InputRejected

DAYS = days("2023-08-28", 4)


@pytest.fixture(scope="module")
def run():
    # 600000 (main board, ±10 %) opens and stays limit-up at 11.00 the day after the decision: the buy is
    # refused; 300750 (ChiNext) opens at 20.40 above the 20.00 decision close and is bought
    bars = {"600000.SSE": [flat(10.0), bar(11.0, 11.0, 11.0, 11.0), flat(11.0), flat(11.0)],
            "300750.SZSE": [flat(20.0), bar(20.4, 21.2, 20.3, 21.0), flat(21.0), flat(21.0)]}
    md, result = backtest(make_panels(DAYS, bars), {DAYS[0]: {"600000.SSE": 1000, "300750.SZSE": 1000}},
                          resubmit=False)
    data = book_input("scenario", md, BacktestConfig(resubmit=False), holdings_matrix(md, result.positions),
                      result.equity["equity"].to_numpy(float), result.initial_capital, result.trades,
                      result.orders, result.cash_flows, strategy_benchmark(SimpleNamespace(), md))
    return md, result, attribute(data)


def test_the_refused_limit_up_buy_is_the_paper_bridge(run):
    md, result, report = run
    assert result.orders.set_index("vt_symbol").loc["600000.SSE", "reason"] == "limit_up"
    lines = report.summary.set_index("component")["cny"]
    assert lines["opportunity:limit_up"] == pytest.approx(1000 * (11.0 - 10.0))
    by_symbol = report.table("symbol").set_index("vt_symbol")
    assert "600000.SSE" not in by_symbol.index or by_symbol.loc["600000.SSE", "pnl"] == 0


def test_the_filled_buy_pays_the_delay_and_the_lines_sum_to_the_equity_change(run):
    md, result, report = run
    fill = result.trades.set_index("vt_symbol").loc["300750.SZSE"]
    lines = report.summary.set_index("component")["cny"]
    assert lines["delay"] == pytest.approx(-1000 * (20.4 - 20.0))
    assert lines["execution"] == pytest.approx(-1000 * (fill["price"] - 20.4))
    assert lines["commission"] == pytest.approx(-fill["commission"])
    assert lines["holdings"] == pytest.approx(1000 * (21.0 - 20.0))
    assert lines["total (equity change)"] == pytest.approx(result.final_equity - result.initial_capital)
    assert abs(lines["residual"]) < 1e-6


def test_stock_segments_are_boards_or_the_imported_industries(run):
    md = run[0]
    md = dataclasses.replace(md, extras={"member": np.ones((len(md.days), len(md.symbols)), dtype=bool)})
    boards = strategy_benchmark(SimpleNamespace(), md)
    assert boards.segment_of == ("main", "ChiNext") and boards.weights[0].tolist() == [0.5, 0.5]
    industries = strategy_benchmark(SimpleNamespace(), md, {"600000.SSE": "J66货币金融服务"})
    assert industries.segment_of == ("J66货币金融服务", "unclassified")


def test_a_member_without_a_return_weighs_nothing_in_the_benchmark(run):
    md = run[0]
    close = md.last_close.copy()
    close[:2, 0] = np.nan  # 600000 not listed before the third day
    md = dataclasses.replace(md, last_close=close, extras={"member": np.ones((len(md.days), len(md.symbols)), dtype=bool)})
    weights = strategy_benchmark(SimpleNamespace(), md).weights
    assert weights.tolist() == [[0.0, 1.0], [0.0, 1.0], [0.0, 1.0], [0.5, 0.5]]  # day 2: no previous close


def test_an_industry_file_for_another_universe_is_refused(run):
    md = dataclasses.replace(run[0], extras={"member": np.ones((len(run[0].days), len(run[0].symbols)), dtype=bool)})
    with pytest.raises(InputRejected) as caught:
        strategy_benchmark(SimpleNamespace(), md, {"600519.SSE": "C15"})
    assert caught.value.problems[0].source == "--industry"
