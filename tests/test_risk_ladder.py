"""The drawdown ladder: its transition table on hand-written equity paths, and inside the simulation.

The simulation cases are tables of bars (``d[k]`` is the k-th day); a target decided at the close of
``d[k]`` executes at the open of ``d[k+1]``, and so do the ladder's sales decided at that close. Stock
limits are ±10 % of the previous close. 100000 CNY, default costs.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scenario_market import AUG, CAPITAL, STOCK, STOCK_B, bar, flat, make_panels, plan

from vnpy_rotation.backtest.config import BacktestConfig
from vnpy_rotation.backtest.engine import simulate
from vnpy_rotation.data.market_data import build_market_data
from vnpy_rotation.risk.config import RiskConfig
from vnpy_rotation.risk.ladder import (
    ACTIVE,
    HALTED,
    RUNGS,
    S_PEAK,
    S_RUNG,
    LadderConfig,
    ladder_params,
    ladders_step,
    new_state,
    reset,
)
from vnpy_rotation.risk.stops import RiskRules

d = AUG + ["2023-09-04", "2023-09-05", "2023-09-06", "2023-09-07", "2023-09-08",
           "2023-09-11", "2023-09-12", "2023-09-13", "2023-09-14", "2023-09-15"]
LADDER = LadderConfig(reduce_at=0.10, halt_at=0.15, recover_at=0.05, cooldown=3, halt_cooldown=4)


def path(config: LadderConfig, equities: list[float]) -> list[str]:
    params, state = ladder_params([config]), new_state(1)
    rungs = []
    for session, equity in enumerate(equities):
        ladders_step(session, float(equity), params, state)
        rungs.append(RUNGS[int(state[0, S_RUNG])])
    return rungs


# ---------------------------------------------------------------------------------------------------
# The transition table
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("equities,expected", [
    # −10 % from the peak (110) is REDUCING; back within −5 % (104.5) is ACTIVE again, peak restarts.
    ([100, 110, 100, 99, 104, 105, 104], ["ACTIVE", "ACTIVE", "ACTIVE", "REDUCING", "REDUCING", "ACTIVE", "ACTIVE"]),
    # Exactly −10 % triggers (≤); one fen less does not.
    ([100, 90.0], ["ACTIVE", "REDUCING"]),
    ([100, 90.01], ["ACTIVE", "ACTIVE"]),
    # Straight to HALTED at −15 %; a halted book stays HALTED however it moves, until the cool-down (4).
    ([100, 85, 99, 100, 101, 95], ["ACTIVE", "HALTED", "HALTED", "HALTED", "HALTED", "ACTIVE"]),
    # REDUCING that keeps falling halts; the frozen peak (100) is the reference.
    ([100, 89, 84.9], ["ACTIVE", "REDUCING", "HALTED"]),
    # REDUCING ends by itself after 3 sessions even without recovery; the peak restarts at that close (88).
    ([100, 89, 88, 88, 88, 79], ["ACTIVE", "REDUCING", "REDUCING", "REDUCING", "ACTIVE", "REDUCING"]),
])
def test_the_drawdown_ladder_moves_by_its_table(equities, expected):
    assert path(LADDER, equities) == expected


def test_daily_loss_limit_sessions():
    limit = LadderConfig(reduce_at=0.03, cooldown=1, measure="day_return")
    # d1 −3.1 %: REDUCING. d2 −2.0 %: one session served, the day is within the limit: ACTIVE.
    # d3 −3.2 %: REDUCING. d4 −3.5 %: served, but the day breaches again: REDUCING restarts. d5 +5 %: ACTIVE.
    assert path(limit, [100, 96.9, 94.962, 91.9232, 88.7059, 93.1412]) == [
        "ACTIVE", "REDUCING", "ACTIVE", "REDUCING", "REDUCING", "ACTIVE"]


def test_a_manual_reset_returns_to_active_with_a_new_peak():
    params, state = ladder_params([LADDER]), new_state(1)
    for session, equity in enumerate([100.0, 84.0]):
        ladders_step(session, equity, params, state)
    assert int(state[0, S_RUNG]) == HALTED
    reset(state, 0, 2, 84.0)
    assert int(state[0, S_RUNG]) == ACTIVE and state[0, S_PEAK] == 84.0
    ladders_step(3, 80.0, params, state)  # −4.8 % from the new peak
    assert int(state[0, S_RUNG]) == ACTIVE


def test_thresholds_must_leave_room_for_hysteresis():
    with pytest.raises(ValueError):
        LadderConfig(reduce_at=0.10, recover_at=0.10)
    with pytest.raises(ValueError):
        LadderConfig(reduce_at=0.10, halt_at=0.08)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=50, max_value=200), min_size=1, max_size=60))
def test_active_only_while_the_drawdown_is_within_the_reducing_threshold(equities):
    """While ACTIVE the loss from the peak is above −reduce_at; HALTED only after a −halt_at loss."""
    params, state = ladder_params([LADDER]), new_state(1)
    for session, equity in enumerate(equities):
        before = int(state[0, S_RUNG])
        ladders_step(session, equity, params, state)
        rung = int(state[0, S_RUNG])
        if rung == ACTIVE:
            assert equity / state[0, S_PEAK] - 1 > -LADDER.reduce_at + 1e-12 or before != ACTIVE
        if rung == HALTED and before != HALTED:
            assert equity / max(equities[: session + 1]) - 1 <= -LADDER.halt_at + 1e-9


# ---------------------------------------------------------------------------------------------------
# Inside the simulation (the account ladder of BacktestConfig.risk, and a strategy's own ladder)
# ---------------------------------------------------------------------------------------------------

def run(bars, rows, ladder=LADDER, strategy_ladder=None):
    count = len(next(iter(bars.values())))
    panels = make_panels(d[:count], bars)
    target_plan = plan({d[k]: row for k, row in rows.items()}, panels.symbols, "shares")
    if strategy_ladder is not None:
        target_plan = dataclasses.replace(target_plan, risk=RiskRules(ladder=strategy_ladder))
    config = BacktestConfig(capital=CAPITAL, risk=RiskConfig(ladder=ladder or LadderConfig()))
    return simulate(build_market_data(panels), target_plan, config).to_result()


def fills(result):
    return [(t.datetime.strftime("%Y-%m-%d"), t.vt_symbol, t.direction, t.volume, round(t.price, 6), t.reason)
            for t in result.trades.itertuples()]


def drawdown_on(result, day: str) -> float:
    equity = result.equity["equity"]
    return float(equity.loc[day] / equity.loc[:day].max() - 1)


def test_reducing_refuses_buys_and_lets_sells_through():
    bars = {STOCK: [flat(100.0), flat(100.0), flat(88.0), flat(88.0), flat(88.0)],
            STOCK_B: [flat(10.0)] * 5}
    # d0: buy 900 STOCK (90 % of the book). d2: −10.8 % → REDUCING. The row decided on d2 sells 400 STOCK and
    # buys 1000 STOCK_B: the sell fills on d3, the buy is refused (risk_denied) and not sent again.
    result = run(bars, {0: {STOCK: 900}, 2: {STOCK: 500, STOCK_B: 1000}})
    assert fills(result) == [(d[1], STOCK, "buy", 900.0, 100.0, "rebalance"),
                             (d[3], STOCK, "sell", 400.0, 88.0, "rebalance")]
    refused = result.orders[result.orders["reason"] == "risk_denied"]
    assert [(o.date.strftime("%Y-%m-%d"), o.vt_symbol, o.direction, o.filled) for o in refused.itertuples()] == [
        (d[3], STOCK_B, "buy", 0.0)]
    assert list(result.risk_days["account"]) == ["ACTIVE", "ACTIVE", "REDUCING", "REDUCING", "REDUCING"]


def test_halted_flattens_retries_through_limit_down_and_drops_plan_rows():
    bars = {STOCK: [flat(100.0), flat(100.0), flat(83.0),
                    bar(74.7, 74.7, 74.7, 74.7),   # d3: opens and stays at limit-down (83 × 0.9): refused
                    flat(76.0),                    # d4: the sale is sent again and fills
                    flat(76.0), flat(76.0), flat(76.0), flat(76.0), flat(76.0)],
            STOCK_B: [flat(10.0)] * 10}
    # d2 close: −15.3 % → HALTED. The row decided on d3 (buy STOCK_B) is dropped: HALTED sends nothing but
    # the flattening. Cool-down 4 sessions: ACTIVE again at the close of d6; the row decided on d7 executes.
    result = run(bars, {0: {STOCK: 900}, 3: {STOCK_B: 1000}, 7: {STOCK_B: 1000}})
    trigger = drawdown_on(result, d[2])
    assert fills(result) == [(d[1], STOCK, "buy", 900.0, 100.0, "rebalance"),
                             (d[4], STOCK, "sell", 900.0, 76.0, f"ladder {trigger:.1%}"),
                             (d[8], STOCK_B, "buy", 1000.0, 10.0, "rebalance")]
    refused = result.orders[result.orders["reason"] != ""]
    assert [(o.date.strftime("%Y-%m-%d"), o.reason, o.cause) for o in refused.itertuples()] == [
        (d[3], "limit_down", f"ladder {trigger:.1%}")]
    assert list(result.risk_days["rung"]) == ["ACTIVE", "ACTIVE"] + ["HALTED"] * 4 + ["ACTIVE"] * 4


def test_a_freezing_ladder_sends_nothing_at_all():
    freeze = LADDER.model_copy(update={"flatten": False})
    bars = {STOCK: [flat(100.0), flat(100.0), flat(83.0), flat(83.0), flat(83.0)], STOCK_B: [flat(10.0)] * 5}
    result = run(bars, {0: {STOCK: 900}, 2: {STOCK: 0, STOCK_B: 1000}}, ladder=freeze)
    assert fills(result) == [(d[1], STOCK, "buy", 900.0, 100.0, "rebalance")]
    assert len(result.orders) == 1


def test_a_strategy_ladder_and_the_account_ladder_most_restrictive_wins():
    bars = {STOCK: [flat(100.0), flat(100.0), flat(92.0), flat(92.0)], STOCK_B: [flat(10.0)] * 4}
    strict = LadderConfig(reduce_at=0.05, halt_at=0.07, cooldown=5, halt_cooldown=5)
    result = run(bars, {0: {STOCK: 900}, 2: {STOCK_B: 100}}, strategy_ladder=strict)
    # −7.2 %: the strategy's ladder halts (the account's, at −10/−15 %, stays ACTIVE): everything is sold.
    assert list(result.risk_days.columns) == ["rung", "strategy", "account"]
    assert result.risk_days.loc[d[2]].tolist() == ["HALTED", "HALTED", "ACTIVE"]
    assert [f[:4] for f in fills(result)] == [(d[1], STOCK, "buy", 900.0), (d[3], STOCK, "sell", 900.0)]


def test_without_a_ladder_the_simulation_is_unchanged():
    bars = {STOCK: [flat(100.0), flat(100.0), flat(60.0), flat(60.0)], STOCK_B: [flat(10.0)] * 4}
    rows = {0: {STOCK: 900}, 2: {STOCK_B: 1000}}
    off, on = run(bars, rows, ladder=None), run(bars, rows)
    assert off.risk_days is None
    assert fills(off) == [(d[1], STOCK, "buy", 900.0, 100.0, "rebalance"),
                          (d[3], STOCK, "sell", 900.0, 60.0, "rebalance"),
                          (d[3], STOCK_B, "buy", 1000.0, 10.0, "rebalance")]
    assert fills(on) != fills(off)
    np.testing.assert_array_equal(off.equity["equity"].iloc[:3], on.equity["equity"].iloc[:3])
