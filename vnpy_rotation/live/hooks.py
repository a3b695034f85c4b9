"""Named, ordered stages between a strategy's decided plan and its execution: sizing, then risk.

Each hook is a pure function ``(plan, context) -> Decision``: the plan it lets through (possibly changed),
the action it stands for and why. The risk stage's enforcement happens where the backtest enforces it,
at the next open and close (:mod:`~vnpy_rotation.live.risk_stage`); the hook here records what that will
be for the plan just decided. vnpy_riskmanager's own order rules, and the risk app's ladder rule, stay
active underneath on every order the engine sends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Callable

from ..risk.decision import Action
from .plan import OrderPlan


@dataclass(frozen=True)
class Allocation:
    """The capital one strategy instance trades: the account it trades in and its share of it.

    ``capital`` None: the whole account (one strategy per account, what a backtest of the same
    configuration simulates). Canary stages and multi-account allocation fill it by rule (``source``
    says which) without changing its shape.
    """

    account: str
    strategy: str
    capital: float | None = None
    source: str = "config"

    def __post_init__(self) -> None:
        if self.capital is not None and not self.capital > 0:
            raise ValueError(f"allocation of {self.strategy}: capital must be > 0, got {self.capital}")

    def describe(self) -> str:
        share = "the whole account" if self.capital is None else f"{self.capital:,.0f} CNY"
        return f"{self.account}/{self.strategy}: {share} ({self.source})"


@dataclass(frozen=True)
class HookContext:
    strategy: str
    now: date  # the session the plan was decided after
    holdings: dict[str, float]
    cash: float
    history: tuple[dict, ...] = ()  # daily summaries so far
    allocation: Allocation | None = None
    rung: str = "ACTIVE"  # the strategy's most restrictive drawdown ladder after this close


@dataclass(frozen=True)
class Decision:
    plan: OrderPlan | None  # None: nothing is traded
    reason: str
    action: Action = Action.PASS


Hook = Callable[[OrderPlan, HookContext], Decision]


def capital(plan: OrderPlan, context: HookContext) -> Decision:
    """The plan sized to the instance's allocation (the whole account until an allocation rule sets one)."""
    allocation = context.allocation or Allocation("", context.strategy)
    return Decision(plan, f"allocation {allocation.describe()}")


def ladder(plan: OrderPlan, context: HookContext) -> Decision:
    """What the drawdown ladder will do with the plan at the next open (the risk stage enforces it there,
    as the backtest does): HALTED drops it, REDUCING refuses its buys."""
    if context.rung == "HALTED":
        return Decision(plan, "ladder HALTED: the plan is dropped at the open", Action.FLATTEN)
    if context.rung == "REDUCING":
        return Decision(plan, "ladder REDUCING: only the plan's sells are sent", Action.REDUCE_ONLY)
    return Decision(plan, "ladder ACTIVE")


@dataclass
class Stages:
    """The hooks in the order they run; names appear in the log and the daily summary."""

    sizing: list[tuple[str, Hook]] = field(default_factory=lambda: [("capital", capital)])
    risk: list[tuple[str, Hook]] = field(default_factory=lambda: [("risk_engine", ladder)])

    def run(self, plan: OrderPlan, context: HookContext) -> tuple[OrderPlan | None, list[str]]:
        trail = []
        for stage, hooks in (("sizing", self.sizing), ("risk", self.risk)):
            for name, hook in hooks:
                decision = hook(plan, context)
                trail.append(f"{stage}.{name}: {decision.action.name} {decision.reason}")
                if decision.plan is None:
                    return None, trail
                plan = decision.plan
        return plan, trail
