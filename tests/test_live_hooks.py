"""The stages between a decided plan and its execution: each names its action and reason."""

from datetime import date

import pytest

from vnpy_rotation.live.hooks import Allocation, HookContext, Stages
from vnpy_rotation.live.plan import OrderPlan
from vnpy_rotation.risk.decision import Action

PLAN = OrderPlan("rot", "2024-01-31", ["510300.SSE", "510500.SSE"], [0.5, 0.5])


def context(rung: str, allocation: Allocation | None = None) -> HookContext:
    return HookContext("rot", date(2024, 1, 31), {}, 1_000_000.0, (), allocation, rung)


@pytest.mark.parametrize("rung,action", [("ACTIVE", "PASS"), ("REDUCING", "REDUCE_ONLY"), ("HALTED", "FLATTEN")])
def test_the_risk_stage_names_what_the_ladder_will_do_with_the_plan(rung, action):
    plan, trail = Stages().run(PLAN, context(rung))
    assert plan is PLAN  # enforced at the next open, where the backtest enforces it
    assert trail[-1].startswith(f"risk.risk_engine: {action} ")
    assert Action[action] is Action[trail[-1].split()[1]]


def test_the_allocation_record_says_whose_capital_the_plan_trades():
    _, trail = Stages().run(PLAN, context("ACTIVE", Allocation("XT", "rot", 300_000.0, "canary 20%")))
    assert trail[0] == "sizing.capital: PASS allocation XT/rot: 300,000 CNY (canary 20%)"
    with pytest.raises(ValueError):
        Allocation("XT", "rot", 0.0)


def test_a_hook_that_vetoes_stops_the_chain():
    stages = Stages(risk=[("veto", lambda plan, ctx: __import__("vnpy_rotation.live.hooks", fromlist=["Decision"])
                           .Decision(None, "frozen", Action.FREEZE))])
    plan, trail = stages.run(PLAN, context("ACTIVE"))
    assert plan is None and trail[-1] == "risk.veto: FREEZE frozen"
