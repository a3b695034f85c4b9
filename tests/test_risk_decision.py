"""The risk facade: hand-written equity and close sequences and the exact decision at each close, the
combination of decisions, and the state surviving a save and a restart."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from scenario_market import flat

from vnpy_rotation.risk.config import RiskConfig
from vnpy_rotation.risk.decision import Action, RiskDecision, Snapshot, combine
from vnpy_rotation.risk.evaluate import RiskState, evaluate, plan_started
from vnpy_rotation.risk.ladder import LadderConfig
from vnpy_rotation.risk.stops import RiskRules

X, Y = "600000.SSE", "600036.SSE"
DAY0 = date(2024, 1, 2)
P, S, R, F, Z = Action.PASS, Action.SCALE, Action.REDUCE_ONLY, Action.FLATTEN, Action.FREEZE


def snapshot(session: int, equity: float, **book) -> Snapshot:
    return Snapshot(equity, equity, DAY0 + timedelta(days=session), session, **book)


def walk(equities, rules=None, risk=RiskConfig(), state=RiskState()):
    """(action, fraction, reasons) at each close of a cash-only book with these equities."""
    out = []
    for session, equity in enumerate(equities):
        decision, state = evaluate(snapshot(session, equity), rules, risk, state, DAY0 + timedelta(days=session))
        out.append((decision.action, decision.fraction, decision.reasons))
    return out


# ---------------------------------------------------------------------------------------------------
# combine
# ---------------------------------------------------------------------------------------------------

HALVE = RiskDecision(S, 0.5, ("drawdown_halve -16.0%",), ("drawdown_halve",))
REDUCE = RiskDecision(R, 0.6, ("account ladder REDUCING at -16.0%",), ("account_ladder",))
STOP = RiskDecision(P, 1.0, (f"{X} stock_stop -9.5%",), ("stock_stop",), (X,))
HALT = RiskDecision(Z, 1.0, ("account ladder HALTED at -20.0%",), ("account_ladder",))


@pytest.mark.parametrize("decisions,want", [
    ([], RiskDecision()),
    ([RiskDecision(), RiskDecision()], RiskDecision()),
    # the most restrictive action, the smallest fraction, both reasons in the given order
    ([HALVE, REDUCE], RiskDecision(R, 0.5, HALVE.reasons + REDUCE.reasons, ("drawdown_halve", "account_ladder"))),
    ([REDUCE, HALVE], RiskDecision(R, 0.5, REDUCE.reasons + HALVE.reasons, ("account_ladder", "drawdown_halve"))),
    # a stock stop sells its symbol, the book keeps its action
    ([STOP, HALVE], RiskDecision(S, 0.5, STOP.reasons + HALVE.reasons, ("stock_stop", "drawdown_halve"), (X,))),
    # FREEZE wins over everything and scales nothing; the stock stop's symbol stays listed
    ([HALVE, STOP, HALT], RiskDecision(Z, 1.0, HALVE.reasons + STOP.reasons + HALT.reasons,
                                       ("drawdown_halve", "stock_stop", "account_ladder"), (X,))),
])
def test_combine(decisions, want):
    assert combine(decisions) == want


def test_actions_are_ordered_by_restrictiveness():
    assert P < S < R < F < Z
    with pytest.raises(ValueError):
        RiskDecision(S, 1.5)


# ---------------------------------------------------------------------------------------------------
# Scenario tables: equities (and closes) in, the exact decision at each close out
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("close,want", [
    (9.05, ((X,), (f"{X} stock_stop -9.5%",))),  # 9.05 / 10.00 − 1 = −9.5 %
    (9.20, ((X,), (f"{X} stock_stop -8.0%",))),  # exactly at the stop fires
    (9.21, ((), ())),  # −7.9 %: does not
])
def test_stock_stop_flattens_its_symbol(close, want):
    book = dict(holdings={X: 1000, Y: 500}, entry={X: 10.0, Y: 20.0}, closes={X: close, Y: 21.0})
    decision, _ = evaluate(snapshot(0, 10_000 + 1000 * close + 500 * 21.0, **book), RiskRules(stock_stop=0.08),
                           RiskConfig(), RiskState(), DAY0)
    assert (decision.action, decision.flatten, decision.reasons) == (P, *want)


def test_portfolio_stop_flattens_until_the_next_plan_row():
    rules = RiskRules(portfolio_stop=0.10)
    equities = [100, 110, 99.5, 99, 120]
    assert walk(equities, rules) == [
        (P, 1.0, ()), (P, 1.0, ()),
        (P, 1.0, ()),  # 99.5 / 110 − 1 = −9.5 %
        (F, 0.0, ("portfolio_stop -10.0%",)),  # 99 / 110 − 1 = −10.0 %
        (F, 0.0, ("portfolio_stop -10.0%",)),  # stays flat whatever the equity does
    ]
    state = RiskState()
    for session, equity in enumerate(equities):
        _, state = evaluate(snapshot(session, equity), rules, RiskConfig(), state, DAY0)
    row, state = plan_started(rules, state, {X: 0.5})
    assert row == {X: 0.5}
    # the peak restarts at the re-entry close: 100, then 91 is −9 % from it
    decision, state = evaluate(snapshot(5, 100), rules, RiskConfig(), state, DAY0)
    assert decision == RiskDecision()
    decision, _ = evaluate(snapshot(6, 91), rules, RiskConfig(), state, DAY0)
    assert decision == RiskDecision()


def test_drawdown_halving_scales_while_the_drawdown_exceeds_the_threshold():
    rules = RiskRules(drawdown_halve=0.15, halve_to=0.5)
    assert walk([100, 90, 85, 84, 83, 86], rules) == [
        (P, 1.0, ()), (P, 1.0, ()),
        (P, 1.0, ()),  # −15.0 %: not beyond the threshold
        (S, 0.5, ("drawdown_halve -16.0%",)),
        (S, 0.5, ("drawdown_halve -16.0%",)),  # the trigger is the close it started on
        (P, 1.0, ()),  # −14 %: over
    ]


def test_plan_rows_starting_while_halving_are_halved():
    rules = RiskRules(drawdown_halve=0.15, halve_to=0.5)
    state = RiskState()
    for session, equity in enumerate([100, 84]):
        _, state = evaluate(snapshot(session, equity), rules, RiskConfig(), state, DAY0)
    row, _ = plan_started(rules, state, {X: 0.4, Y: 0.6})
    assert row == {X: 0.2, Y: 0.3}


LADDER = LadderConfig(reduce_at=0.10, halt_at=0.15, recover_at=0.05, reduce_exposure=0.6, cooldown=20,
                      halt_cooldown=3, flatten=True)


@pytest.mark.parametrize("flatten,halted", [(True, (F, 0.0)), (False, (Z, 1.0))])
def test_account_ladder(flatten, halted):
    risk = RiskConfig(ladder=LADDER.model_copy(update={"flatten": flatten}))
    got = walk([100, 89.7, 92, 96, 81, 90, 95, 95], risk=risk)
    assert got == [
        (P, 1.0, ()),
        (R, 0.6, ("account ladder REDUCING at -10.3%",)),
        (R, 0.6, ("account ladder REDUCING at -10.3%",)),  # −8 %: not yet within −5 % (hysteresis)
        (P, 1.0, ()),  # −4 %: ACTIVE again, the peak restarts at 96
        (*halted, ("account ladder HALTED at -15.6%",)),  # 81 / 96 − 1
        (*halted, ("account ladder HALTED at -15.6%",)),  # a halted book does not recover by itself
        (*halted, ("account ladder HALTED at -15.6%",)),
        (P, 1.0, ()),  # three sessions after the halt: ACTIVE, peak 95
    ]


def test_daily_loss_limit():
    risk = RiskConfig(daily_loss=LadderConfig(measure="day_return", reduce_at=0.05, reduce_exposure=0.0,
                                              cooldown=1))
    assert walk([100, 94, 95, 90], risk=risk) == [
        (P, 1.0, ()),
        (R, 0.0, ("daily loss limit REDUCING at -6.0%",)),
        (P, 1.0, ()),  # one session later, on a rising day
        (R, 0.0, ("daily loss limit REDUCING at -5.3%",)),  # 90 / 95 − 1
    ]


def test_rules_combine_in_the_configured_order():
    rules = RiskRules(drawdown_halve=0.15, halve_to=0.5)
    risk = RiskConfig(ladder=LadderConfig(reduce_at=0.10, halt_at=0.20, reduce_exposure=0.6))
    decision, _ = evaluate(snapshot(1, 84), rules, risk, evaluate(snapshot(0, 100), rules, risk, RiskState(),
                                                                 DAY0)[1], DAY0)
    assert decision == RiskDecision(R, 0.5, ("drawdown_halve -16.0%", "account ladder REDUCING at -16.0%"),
                                    ("drawdown_halve", "account_ladder"))
    first = evaluate(snapshot(0, 100), rules, risk, RiskState(), DAY0)[1]
    order = ("account_ladder", "daily_loss", "portfolio_stop", "stock_stop", "drawdown_halve")
    decision, _ = evaluate(snapshot(1, 84), rules, risk, first, DAY0, order)
    assert decision.rules == ("account_ladder", "drawdown_halve") and decision.action == R
    with pytest.raises(ValueError, match="order"):
        evaluate(snapshot(1, 84), rules, risk, first, DAY0, ("account_ladder",))


# ---------------------------------------------------------------------------------------------------
# State: saved and restored, a session stepped once
# ---------------------------------------------------------------------------------------------------

def test_state_survives_json_and_a_repeated_session():
    rules = RiskRules(stock_stop=0.08, portfolio_stop=0.2, drawdown_halve=0.15)
    risk = RiskConfig(ladder=LADDER, daily_loss=LadderConfig(measure="day_return", reduce_at=0.05, cooldown=1))
    equities = [100, 89.7, 84, 92, 96, 81, 90]
    straight, state = [], RiskState()
    for session, equity in enumerate(equities):
        decision, state = evaluate(snapshot(session, equity), rules, risk, state, DAY0)
        straight.append(decision)
    restarted, state = [], RiskState()
    for session, equity in enumerate(equities):
        state = RiskState.from_json(json.loads(json.dumps(state.to_json(), allow_nan=False)))
        decision, state = evaluate(snapshot(session, equity), rules, risk, state, DAY0)
        again, state = evaluate(snapshot(session, equity), rules, risk, state, DAY0)  # a restart after the close
        assert again == decision
        restarted.append(decision)
    assert restarted == straight
    assert {d.action for d in straight} == {P, R, F}  # the walk went through every rung


def test_damaged_state_is_rejected():
    with pytest.raises(ValueError, match="stops"):
        RiskState.from_json({"stops": [0.0, 1.0]})


# ---------------------------------------------------------------------------------------------------
# The facade decides what the backtest's day loop did (same compiled functions)
# ---------------------------------------------------------------------------------------------------

def kernel_walk(bars, rows, rules, entry=None):
    """Evaluate the facade at every close of the backtest of ``rows`` over ``bars`` (its holdings, cash and
    closes), starting each plan row on the day it executes; returns (decisions, the backtest's fills)."""
    import test_risk_rules as scenario  # the stop rules' scenario helpers (module import: no re-collection)

    raw, result = scenario.run(bars, rows, risk=rules.model_dump())
    symbols = raw.market.symbols
    starts = {k + 1 for k in rows}
    decisions, state = [], RiskState()
    for i in range(len(raw.market.days)):
        if i in starts:
            _, state = plan_started(rules, state, {})
        book = dict(holdings={s: raw.holdings_array[i, j] for j, s in enumerate(symbols)},
                    closes={s: raw.market.last_close[i, j] for j, s in enumerate(symbols)}, entry=entry or {})
        decision, state = evaluate(snapshot(i, float(raw.equity()[i]), **book), rules, RiskConfig(), state, DAY0)
        decisions.append((decision.action, decision.flatten, decision.reasons))
    return decisions, [(t.datetime.strftime("%Y-%m-%d"), t.direction, t.reason) for t in result.trades.itertuples()]


def test_facade_portfolio_stop_matches_the_day_loop():
    from scenario_market import ETF

    bars = {ETF: [flat(4.000), flat(4.000), flat(3.700), flat(3.400), flat(3.400), flat(3.400), flat(3.400),
                  flat(3.100), flat(3.000), flat(3.000), flat(3.000)]}
    decisions, trades = kernel_walk(bars, {0: {ETF: 20000}, 5: {ETF: 20000}}, RiskRules(portfolio_stop=0.08))
    first, again = (F, (), ("portfolio_stop -12.0%",)), (F, (), ("portfolio_stop -9.1%",))
    none = (P, (), ())
    # stop at the d3 close, flat until the row decided on d5 executes on d6; the new peak's stop on d8
    assert decisions == [none, none, none, first, first, first, none, none, again, again, again]
    import test_risk_rules as scenario

    d = scenario.d
    assert trades == [(d[1], "buy", "rebalance"), (d[4], "sell", "portfolio_stop -12.0%"),
                      (d[6], "buy", "rebalance"), (d[9], "sell", "portfolio_stop -9.1%")]


def test_facade_stock_stop_matches_the_day_loop():
    from scenario_market import STOCK

    bars = {STOCK: [flat(10.00), flat(10.00), flat(10.50), flat(9.50), flat(9.43), flat(9.50)]}
    # the average entry of the two buys (100 at 10.00, 100 at 10.50), as the live book records it
    decisions, trades = kernel_walk(bars, {0: {STOCK: 100}, 1: {STOCK: 200}}, RiskRules(stock_stop=0.08),
                                    entry={STOCK: 10.25})
    assert decisions[3] == (P, (), ())  # −7.3 % from the average
    assert decisions[4] == (P, (STOCK,), (f"{STOCK} stock_stop -8.0%",))
    assert trades[-1][1:] == ("sell", "stock_stop -8.0%")
