"""Plan-level limits: hand-written target rows and their exact limited weights and reasons, the limits
inside a backtest (trades name the binding rule), a configured run through ``run.py``, and properties
(caps never raise a weight, the budgets never lengthen a row's move from the targets in force, limiting
twice changes nothing)."""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
import pandas as pd
import pytest
from conftest import replay_and_backtest, run_cli
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from pydantic import ValidationError
from scenario_market import AUG, CAPITAL, ETF, ETF_B, flat, make_panels, plan

from vnpy_rotation.backtest.config import BacktestConfig
from vnpy_rotation.backtest.engine import simulate
from vnpy_rotation.backtest.limits import apply_limits, skipped
from vnpy_rotation.data.market_data import build_market_data
from vnpy_rotation.risk.config import RiskConfig
from vnpy_rotation.risk.limits import LimitsConfig, limit_weights, reasons

N = math.nan
A, B, C, D = "A", "B", "C", "D"


def limit(rows: list[list[float]], symbols: tuple[str, ...] = (A, B, C), buy: float = 0.0, sell: float = 0.0,
          **config) -> tuple[list[list[float]], list[list[str | None]]]:
    """The limited rows (rounded to 1e-12) and each cell's reason text."""
    weights = np.array(rows, dtype=float)
    limits = LimitsConfig(**config)
    names = list(symbols)
    limited = limit_weights(weights, limits, names, np.full(weights.shape, buy), np.full(weights.shape, sell))
    texts = reasons(limited, limits, names)
    return np.round(limited.weights, 12).tolist(), texts.tolist()


def same(got: list[list[float]], want: list[list[float]]) -> bool:
    return np.allclose(np.array(got), np.array(want), rtol=0, atol=1e-12, equal_nan=True)


# ---------------------------------------------------------------------------------------------------
# Scenario tables: rows in, exact rows and reasons out
# ---------------------------------------------------------------------------------------------------

CAP = "max_position_weight 10.0%"
EQ_POOL = "max_pool_weight eq 30.0%"


@pytest.mark.parametrize("rows,config,want,why", [
    # A above the cap is clipped, the excess stays in cash (B is not raised); NaN (keep) is untouched
    ([[0.30, 0.05, N]], dict(max_position_weight=0.10), [[0.10, 0.05, N]], [[CAP, None, None]]),
    # exactly at the cap is not binding
    ([[0.10, 0.10, 0.10]], dict(max_position_weight=0.10), [[0.10, 0.10, 0.10]], [[None, None, None]]),
    # pool eq (A, B) at 0.40 > 0.30: both scaled by 3/4; C in another pool under the cap is untouched
    ([[0.30, 0.10, 0.20]], dict(max_pool_weight=0.30, pools={A: "eq", B: "eq", C: "bond"}),
     [[0.225, 0.075, 0.20]], [[EQ_POOL, EQ_POOL, None]]),
    # a member without instruction counts at its carried target (A: 0.20) and is not scaled:
    # B gets what is left of the pool, 0.10
    ([[0.20, 0.10, 0.0], [N, 0.30, 0.0]], dict(max_pool_weight=0.30, pools={A: "eq", B: "eq"}),
     [[0.20, 0.10, 0.0], [N, 0.10, 0.0]], [[None, None, None], [None, EQ_POOL, None]]),
    # position cap first, then the pool: A 0.5 → 0.2, pool 0.2 + 0.2 = 0.4 > 0.3 → both x0.75
    ([[0.50, 0.20, 0.0]], dict(max_position_weight=0.20, max_pool_weight=0.30, pools={A: "eq", B: "eq"}),
     [[0.15, 0.15, 0.0]], [["max_position_weight 20.0%; " + EQ_POOL, EQ_POOL, None]]),
])
def test_caps(rows, config, want, why):
    got, texts = limit(rows, **config)
    assert same(got, want), got
    assert texts == why


def test_turnover_budget_scales_the_move_from_the_held_targets():
    """From cash, buying 100 % is a turnover of 1.0 > 0.2: the move is scaled to a fifth. The next row moves
    from the limited row (A 0.1, B 0.1) to (0, 0.5): buys 0.4, sells 0.1, turnover 0.4 → half the move.
    The third row is within the budget from there (sells 0.05 → A 0): taken whole, no reason."""
    got, texts = limit([[0.5, 0.5, 0.0], [0.0, 0.5, 0.0], [0.0, 0.3, 0.0]], max_turnover=0.2)
    assert same(got, [[0.1, 0.1, 0.0], [0.05, 0.3, 0.0], [0.0, 0.3, 0.0]]), got
    assert texts == [["max_turnover 20.0% (move x0.20)"] * 2 + [None],
                     ["max_turnover 20.0% (move x0.50)"] * 2 + [None],
                     [None, None, None]]


def test_a_row_without_instructions_moves_nothing():
    got, texts = limit([[0.5, 0.0, 0.0], [N, N, N], [N, 0.5, 0.0]], max_turnover=0.25)
    # row 1 keeps everything; row 2: A kept at 0.25 (carried), B 0 → 0.5 is a turnover 0.5 → x0.5
    assert same(got, [[0.25, 0.0, 0.0], [N, N, N], [N, 0.25, 0.0]]), got
    assert texts[2] == [None, "max_turnover 25.0% (move x0.50)", None]


def test_cost_budget():
    """Buys cost 10 bp, sells 20 bp, the budget is 5 bp of equity. Row 0 buys A 100 % (10 bp) → half.
    Row 1: sell A 0.5 (10 bp) and buy B 1.0 (10 bp) = 20 bp → a quarter of the move."""
    got, texts = limit([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], buy=0.001, sell=0.002, cost_budget_bps=5)
    assert same(got, [[0.5, 0.0, 0.0], [0.375, 0.25, 0.0]]), got
    assert texts == [["cost_budget 5bp (move x0.50)", None, None], ["cost_budget 5bp (move x0.25)"] * 2 + [None]]


def test_both_budgets_bind_the_smaller_scale_wins_and_both_are_named():
    got, texts = limit([[1.0, 0.0, 0.0]], buy=0.001, max_turnover=0.4, cost_budget_bps=5)
    assert same(got, [[0.4, 0.0, 0.0]]), got  # turnover x0.4 is smaller than cost x0.5
    assert texts[0][0] == "max_turnover 40.0% (move x0.40); cost_budget 5bp (move x0.40)"


def test_all_off_returns_the_rows_unchanged():
    weights = np.array([[0.7, 0.3, N]])
    limited = limit_weights(weights, LimitsConfig(), [A, B, C])
    assert np.array_equal(limited.weights, weights, equal_nan=True) and not limited.bound.any()


@pytest.mark.parametrize("config,field", [
    (dict(max_pool_weight=0.3), "max_pool_weight"),  # without pools
    (dict(max_position_weight=0.0), "max_position_weight"),
    (dict(max_turnover=1.5), "max_turnover"),
    (dict(cost_budget_bps=-1), "cost_budget_bps"),
    (dict(max_weight=0.1), "max_weight"),  # unknown
])
def test_bad_config_is_rejected_naming_the_field(config, field):
    with pytest.raises(ValidationError) as error:
        RiskConfig(limits=config)
    assert field in str(error.value)


# ---------------------------------------------------------------------------------------------------
# In a backtest: the limited plan is what is traded, and the trades say why
# ---------------------------------------------------------------------------------------------------

def run(rows, kind="weight", notes=None, **limits):
    panels = make_panels(AUG[:4], {ETF: [flat(4.0)] * 4, ETF_B: [flat(2.0)] * 4})
    target = dataclasses.replace(plan({AUG[k]: row for k, row in rows.items()}, panels.symbols, kind), notes=notes)
    config = BacktestConfig(capital=CAPITAL, risk=RiskConfig(limits=LimitsConfig(**limits)))
    return simulate(build_market_data(panels), target, config).to_result()


def fills(result) -> list[tuple]:
    return [(t.datetime.strftime("%Y-%m-%d"), t.vt_symbol, t.direction, t.volume, t.reason)
            for t in result.trades.itertuples()]


def test_backtest_trades_the_capped_weights_and_names_the_rule():
    """100 000 CNY; ETF at 4.00 wanted at 60 %, capped at 25 % → 25 000 CNY = 6 250 units, rounded down to
    whole lots: 6 200 (the excess stays in cash); ETF_B 20 % → 20 000 CNY / 2.00 = 10 000 units."""
    notes = pd.DataFrame({ETF: ["momentum rank 1"], ETF_B: [None]}, index=pd.DatetimeIndex([AUG[0]]))
    result = run({0: {ETF: 0.6, ETF_B: 0.2}}, notes=notes, max_position_weight=0.25)
    assert fills(result) == [
        (AUG[1], ETF, "buy", 6200.0, "momentum rank 1; max_position_weight 25.0%"),
        (AUG[1], ETF_B, "buy", 10000.0, "rebalance"),
    ]


def test_backtest_turnover_budget_spreads_a_rebalance_over_rows():
    """100 % of ETF decided twice under a turnover budget of 30 %: first 30 % (30 000 CNY / 4.00 = 7 500
    units), then the move from 30 % to 100 % (0.7) is scaled by 0.3 / 0.7 to 60 % of 99 992.50 CNY (after
    the first commission of 7.50) = 14 998 units, 14 900 in whole lots: 7 400 more."""
    result = run({0: {ETF: 1.0}, 1: {ETF: 1.0}}, max_turnover=0.3)
    assert fills(result) == [
        (AUG[1], ETF, "buy", 7500.0, "rebalance; max_turnover 30.0% (move x0.30)"),
        (AUG[2], ETF, "buy", 7400.0, "rebalance; max_turnover 30.0% (move x0.43)"),
    ]


def test_limits_off_change_nothing():
    rows = {0: {ETF: 0.6, ETF_B: 0.4}}
    panels = make_panels(AUG[:4], {ETF: [flat(4.0)] * 4, ETF_B: [flat(2.0)] * 4})
    target = plan({AUG[0]: rows[0]}, panels.symbols, "weight")
    assert apply_limits(target, BacktestConfig(), build_market_data(panels)) is target
    # configured but not binding: the very same plan too
    loose = BacktestConfig(risk=RiskConfig(limits=LimitsConfig(max_position_weight=0.9)))
    assert apply_limits(target, loose, build_market_data(panels)) is target


def test_share_plans_pass_unchanged_with_a_warning():
    panels = make_panels(AUG[:4], {ETF: [flat(4.0)] * 4, ETF_B: [flat(2.0)] * 4})
    target = plan({AUG[0]: {ETF: 20_000}}, panels.symbols, "shares")
    config = BacktestConfig(risk=RiskConfig(limits=LimitsConfig(max_position_weight=0.1)))
    assert apply_limits(target, config, build_market_data(panels)) is target
    assert skipped(target, config) is not None  # said in the run's data warnings and the live log
    assert skipped(dataclasses.replace(target, kind="weight"), config) is None
    assert skipped(target, BacktestConfig()) is None  # no limit configured: nothing to say


def test_stamp_duty_counts_in_the_cost_budget_of_stock_sells():
    """A stock bought then sold in full. Buying costs 2.6 bp (commission 2.5 bp, transfer fee 0.1 bp):
    within 5 bp. Selling adds the stamp duty, 5 bp on sells since 2023-08-28 (财政部 税务总局公告2023年第39号):
    7.6 bp > 5 bp, so the sale is scaled to 5 / 7.6 of the way."""
    from scenario_market import STOCK

    panels = make_panels(AUG[5:9], {STOCK: [flat(10.0)] * 4})
    md = build_market_data(panels)
    target = plan({AUG[5]: {STOCK: 1.0}, AUG[6]: {STOCK: 0.0}}, panels.symbols, "weight")
    config = BacktestConfig(risk=RiskConfig(limits=LimitsConfig(cost_budget_bps=5)))
    limited = apply_limits(target, config, md)
    sell_rate = 0.00025 + float(md.stamp_rate[1]) + float(md.transfer_rate[1])
    assert float(md.stamp_rate[1]) == pytest.approx(0.0005)
    assert limited.frame[STOCK].tolist() == pytest.approx([1.0, 1.0 - 0.0005 / sell_rate])


# ---------------------------------------------------------------------------------------------------
# Through run.py, configured in YAML
# ---------------------------------------------------------------------------------------------------

def test_run_py_backtest_with_a_position_cap(tmp_path):
    config = tmp_path / "limits.yaml"
    config.write_text("backtest:\n  risk:\n    limits:\n      max_position_weight: 0.05\n", encoding="utf-8")
    out = tmp_path / "out"
    done = run_cli("backtest", "--strategy", "equal_weight", "--start", "2021-01-04", "--end", "2021-06-30",
                   "--config", str(config), "--out", str(out), home=tmp_path)
    assert done.returncode == 0, done.stderr
    trades = pd.read_csv(out / "trades.csv")
    buys = trades[trades["direction"] == "buy"]
    assert len(buys) and buys["reason"].str.endswith("; max_position_weight 5.0%").all()
    first = buys[buys["datetime"] == buys["datetime"].min()]
    assert (first["price"] * first["volume"]).max() <= 0.05 * 1_000_000  # the first buys: at most 5 % each


def test_run_py_rejects_a_bad_limit_naming_the_field(tmp_path):
    config = tmp_path / "limits.yaml"
    config.write_text("backtest:\n  risk:\n    limits:\n      max_position_weight: 2\n", encoding="utf-8")
    done = run_cli("backtest", "--strategy", "equal_weight", "--config", str(config), "--out",
                   str(tmp_path / "out"), home=tmp_path)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "max_position_weight" in done.stderr and str(config) in done.stderr


# ---------------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------------

SYMBOLS = [A, B, C, D]
POOLS = {A: "x", B: "x", C: "y"}  # D in no pool
cells = st.one_of(st.just(math.nan), st.floats(0.0, 0.6), st.just(0.0))
tables = hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.just(4)), elements=cells)
configs = st.builds(
    LimitsConfig,
    max_position_weight=st.none() | st.floats(0.05, 1.0),
    max_pool_weight=st.none() | st.floats(0.05, 1.0),
    pools=st.just(POOLS),
    max_turnover=st.none() | st.floats(0.05, 1.0),
    cost_budget_bps=st.none() | st.floats(1.0, 50.0),
)
RATES = np.array([0.0003, 0.0003, 0.0008, 0.0001])


def turnover(row: np.ndarray, held: np.ndarray) -> float:
    """One-way turnover of moving from ``held`` to ``row`` (NaN: no move)."""
    move = np.where(np.isnan(row), 0.0, row - held)
    return float(max(move.clip(min=0).sum(), (-move).clip(min=0).sum()))


def held_before(weights: np.ndarray) -> list[np.ndarray]:
    """The targets in force before each row (NaN carries the last instruction), cash before the first."""
    held, out = np.zeros(weights.shape[1]), []
    for row in weights:
        out.append(held)
        held = np.where(np.isnan(row), held, row)
    return out


def limited(weights: np.ndarray, config: LimitsConfig) -> np.ndarray:
    rates = np.broadcast_to(RATES, weights.shape)
    return limit_weights(weights, config, SYMBOLS, rates, rates * 2).weights


@settings(max_examples=300, deadline=None)
@given(tables, configs)
def test_limits_are_idempotent_and_keep_nan(weights, config):
    once = limited(weights, config)
    assert np.array_equal(np.isnan(once), np.isnan(weights))
    assert np.allclose(limited(once, config), once, rtol=0, atol=1e-9, equal_nan=True)


@settings(max_examples=300, deadline=None)
@given(tables, configs)
# A NaN pool member counts at its carried target, which the budgets change: the row the caps alone would give
# must be computed from the targets the full limits left in force, not from a caps-only run's.
@example(weights=np.array([[0.5, 0.5, 0.5, 0.5], [0.5, 0.5, 0.5, 0.5], [np.nan, 0.5, 0.5, 0.5]]),
         config=LimitsConfig(max_pool_weight=0.5, pools=POOLS, max_turnover=0.5))
def test_caps_never_raise_a_weight_and_budgets_never_lengthen_a_move(weights, config):
    caps_only = config.model_copy(update={"max_turnover": None, "cost_budget_bps": None})
    capped = limited(weights, caps_only)
    assert (np.nan_to_num(capped) <= np.nan_to_num(weights) + 1e-12).all()
    if config.max_position_weight is not None:
        assert (np.nan_to_num(capped) <= config.max_position_weight + 1e-9).all()
    full = limited(weights, config)
    for i, (row, held) in enumerate(zip(full, held_before(full))):
        # the caps on this row given the targets the full limits left in force (earlier limited rows are
        # within the caps, so the caps leave them as they are)
        capped_row = limited(np.vstack([full[:i], weights[i:i + 1]]), caps_only)[-1]
        # the budgets shorten the move a row makes from the targets in force, never lengthen it
        assert turnover(row, held) <= turnover(capped_row, held) + 1e-9
        if config.max_turnover is not None:
            assert turnover(row, held) <= config.max_turnover + 1e-9


def test_speed_2500_rows_300_symbols():
    """The whole limit pass (every limit on, a budget binding on most rows) in a few milliseconds."""
    rng = np.random.default_rng(7)
    symbols = [f"{k:06d}.SSE" for k in range(300)]
    weights = np.where(rng.random((2500, 300)) < 0.1, rng.random((2500, 300)) / 15, 0.0)
    config = LimitsConfig(max_position_weight=0.05, max_pool_weight=0.3, max_turnover=0.2, cost_budget_bps=5,
                          pools={s: f"p{k % 6}" for k, s in enumerate(symbols)})
    rates = np.full(weights.shape, 0.0003)
    limit_weights(weights, config, symbols, rates, rates)  # compiled once
    best = min(_timed(lambda: limit_weights(weights, config, symbols, rates, rates)) for _ in range(5))
    assert best < 0.05  # measured ~6 ms on two shared cores; the bound leaves room for a loaded machine


def _timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def test_replay_with_limits_equals_the_backtest(tmp_path):
    """The live stack limits the same rows as the backtest: the replay of etf_rotation with a position cap
    and a turnover budget makes the backtest's fills, with the same reasons (the budget binds on rows
    whose path depends on where the run started: the replay starts in cash, like the backtest)."""
    config = tmp_path / "limits.yaml"
    config.write_text("backtest:\n  risk:\n    limits:\n      max_position_weight: 0.25\n      max_turnover: 0.5\n",
                      encoding="utf-8")
    span = ("--start", "2024-06-24", "--end", "2024-07-31")
    live, backtest = replay_and_backtest(tmp_path, "etf_rotation", span, config)
    key = ["vt_symbol", "direction", "volume", "reason"]
    assert live[key].values.tolist() == backtest[key].values.tolist()
    assert live["reason"].str.contains("max_position_weight 25.0%").any()
    assert live["reason"].str.contains(r"max_turnover 50.0% \(move x").any()
