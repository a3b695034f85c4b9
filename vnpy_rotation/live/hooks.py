"""Named, ordered stages between a strategy's targets and the order plan: sizing, then risk.

Each hook is a pure function ``(plan, context) -> Decision``: the plan it lets through (possibly changed)
and why. Both stages pass everything through until the risk-engine and canary-sizing issues fill them;
vnpy_riskmanager's own order rules stay active underneath, on every order the engine sends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Callable

from .plan import OrderPlan


@dataclass(frozen=True)
class HookContext:
    strategy: str
    now: date  # the session the plan was decided after
    holdings: dict[str, float]
    cash: float
    history: tuple[dict, ...] = ()  # daily summaries so far


@dataclass(frozen=True)
class Decision:
    plan: OrderPlan | None  # None: nothing is traded
    reason: str


Hook = Callable[[OrderPlan, HookContext], Decision]


def pass_through(plan: OrderPlan, context: HookContext) -> Decision:
    return Decision(plan, "pass-through")


@dataclass
class Stages:
    """The hooks in the order they run; names appear in the log and the daily summary."""

    sizing: list[tuple[str, Hook]] = field(default_factory=lambda: [("capital", pass_through)])
    risk: list[tuple[str, Hook]] = field(default_factory=lambda: [("risk_engine", pass_through)])

    def run(self, plan: OrderPlan, context: HookContext) -> tuple[OrderPlan | None, list[str]]:
        trail = []
        for stage, hooks in (("sizing", self.sizing), ("risk", self.risk)):
            for name, hook in hooks:
                decision = hook(plan, context)
                trail.append(f"{stage}.{name}: {decision.reason}")
                if decision.plan is None:
                    return None, trail
                plan = decision.plan
        return plan, trail
