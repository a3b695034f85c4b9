"""The sweep fast path changes no result: the bundled-data sweeps and walk-forwards of ``sweep_cases`` equal
what the code before the speed work produced (``tests/golden/``), and every sweep row equals a single run
of its combination on a freshly created strategy (no cache shared with any other run)."""

from __future__ import annotations

import hashlib
import json
import math
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from conftest import fresh_bundled_store
from sweep_cases import (
    FACTOR_MIXES,
    WALKFORWARD_FILES,
    WALKFORWARDS,
    canonical_csv,
    etf_combos,
    markets,
    momentum_combos,
    vqm_combos,
)

from vnpy_rotation.backtest.config import BacktestConfig
from vnpy_rotation.backtest.sweep import quick_metrics, run_span, sweep
from vnpy_rotation.data.store import BarStore
from vnpy_rotation.research.walkforward import run_walkforward
from vnpy_rotation.research.wf_config import read_walkforward_spec
from vnpy_rotation.research.wf_report import write_report
from vnpy_rotation.strategies import create_strategy

GOLDEN = Path(__file__).resolve().parent / "golden"
COMBOS = {"etf_rotation": etf_combos, "vqm": vqm_combos, "momentum_topn": momentum_combos}
MARKET = {"etf_rotation": "etf_rotation", "vqm": "vqm", "momentum_topn": "etf_rotation"}  # which market it trades


@pytest.fixture(scope="module")
def found(runtime_home):
    return markets(fresh_bundled_store(stocks=True))


@pytest.fixture(scope="module")
def swept(found):
    config = BacktestConfig()
    return {name: sweep(found[MARKET[name]], name, COMBOS[name](), config) for name in COMBOS}


@pytest.mark.parametrize("name", list(COMBOS))
def test_the_sweep_equals_the_golden_frame_of_the_code_before(swept, name):
    assert canonical_csv(swept[name]) == (GOLDEN / f"sweep_{name}.csv").read_text(encoding="utf-8")


def single_row(market, name: str, combo: dict, span=None) -> dict:
    run = run_span(market, create_strategy(name, combo, "test"), BacktestConfig(), span)
    return {**quick_metrics(run.equity()), "trade_count": len(run.fill_rows), "total_cost": float(run.costs[:3].sum())}


def same(a, b) -> bool:
    return (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)) or a == b


def sample(name: str) -> list[dict]:
    """Every factor mix on both schedules (ETF), every top_n and stop setting (VQM): a few rows each."""
    combos = COMBOS[name]()
    if name == "etf_rotation":
        return [next(c for c in combos if c["factors"] == mix and c["schedule"] == schedule and
                     c["top_n"] == 1 + k % 2 and c["buffer"] == k % 5)
                for k, mix in enumerate(FACTOR_MIXES) for schedule in ("week_end", "month_end")]
    if name == "vqm":
        return [c for c in combos if c["w_pe"] in (0.4, 0.8)][::2]
    return combos[::5]


@pytest.mark.parametrize("name", list(COMBOS))
def test_every_sweep_row_equals_a_single_run_of_its_combination(found, swept, name):
    frame = swept[name]
    combos = COMBOS[name]()
    for combo in sample(name):
        row = frame.iloc[combos.index(combo)].to_dict()
        alone = single_row(found[MARKET[name]], name, combo)
        assert all(same(row[k], v) for k, v in alone.items()), (combo, row, alone)


@pytest.mark.parametrize("name", list(COMBOS))
def test_a_span_sweep_row_equals_a_single_run_on_that_span(found, name):
    market = found[MARKET[name]]
    span = (market.days[300].date(), market.days[800].date())
    combos = sample(name)[:4]
    frame = sweep(market, name, combos, BacktestConfig(), span=span)
    for k, combo in enumerate(combos):
        alone = single_row(market, name, combo, span)
        assert all(same(frame.iloc[k][key], v) for key, v in alone.items()), combo


@pytest.mark.parametrize("name", list(WALKFORWARDS))
def test_walkforward_files_equal_those_of_the_code_before(found, tmp_path, name):
    """``run.py walkforward`` of the case, in this process on the same database (as the command runs it)."""
    start, years, grid_args = WALKFORWARDS[name]
    spec = read_walkforward_spec(name, None, date.fromisoformat(start), None, None, {"train_years": years}, grid_args)
    write_report(run_walkforward(spec, store=BarStore()), tmp_path)
    golden = json.loads((GOLDEN / "walkforward_sha256.json").read_text(encoding="utf-8"))[name]
    assert {f: hashlib.sha256((tmp_path / f).read_bytes()).hexdigest() for f in WALKFORWARD_FILES} == golden


def test_a_window_is_a_view_that_leaves_its_parent_alone(found):
    market = found["etf_rotation"]
    before = market.close.copy()
    window = market.window(market.days[10].date(), market.days[20].date())
    assert np.shares_memory(window.close, market.close) and len(window.days) == 11
    assert window.days[0] == market.days[10] and np.array_equal(window.close, market.close[10:21], equal_nan=True)
    create_strategy("etf_rotation").targets(window)  # a strategy reading a window writes nothing into it
    assert np.array_equal(market.close, before, equal_nan=True)


def _records(run) -> list[bytes]:
    return [a.tobytes() for a in (run.equity(), run.holdings_array, run.cash_array, run.order_rows, run.action_rows)]


ONE_SETTING_APART = [  # (VQM settings, config) each differing in one setting from the run that filled the memo
    ({"w_pe": 0.5}, {}), ({"top_n": 20}, {}), ({"min_listed_days": 120}, {}), ({"stock_stop": None}, {}),
    ({}, {"fill_price": "vwap"}), ({}, {"rules": {"suspension": False}}),
    ({}, {"stock_commission": {"rate": 0.0003, "minimum": 5.0}}),
    ({}, {"stock_commission": {"rate": 0.00025, "minimum": 1.0}}),
]


@pytest.mark.parametrize("changed, configured", ONE_SETTING_APART)
def test_a_run_one_setting_apart_from_the_cached_one_equals_a_fresh_single_run(found, changed, configured):
    """The sweep's caches (the kernel's market inputs per fill price, suspension rule and fees; VQM's
    eligibility, score and rank per weights; the plan frame's axes) are keyed by every input they read: a
    run that reuses the memo of a run one setting apart gets exactly the records of a run with no memo."""
    from vnpy_rotation.data.market_data import MarketMemo
    from vnpy_rotation.strategies import for_sweep

    market, memo = found["vqm"], MarketMemo()
    cached = {"w_pe": 0.6, "top_n": 10, "min_listed_days": 250, "stock_stop": 0.08}
    run_span(market, for_sweep("vqm", cached, memo), BacktestConfig(), memo=memo)  # fills the memo
    combo, config = {**cached, **changed}, BacktestConfig.model_validate(configured)
    shared = run_span(market, for_sweep("vqm", combo, memo), config, memo=memo)
    fresh = run_span(market, create_strategy("vqm", combo, "test"), config)
    assert _records(shared) == _records(fresh)
