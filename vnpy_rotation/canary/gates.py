"""One session's verdict on the candidate: hold, promote (or ask for approval), or roll back.

:func:`evaluate` measures every gate and rule on a :class:`~vnpy_rotation.canary.evidence.StageEvidence`
and decides in this order: any rollback rule tripped → ROLLBACK (checked every session, from the first);
fewer sessions than the stage's minimum → HOLD; a promotion gate failed → HOLD; else PROMOTE, or
AWAIT_APPROVAL when the configuration asks for a human. A gate that cannot be measured yet is reported with
``passed=None`` and neither promotes nor rolls back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import Enum
from typing import Literal

import numpy as np

from .config import CanaryConfig
from .evidence import (
    StageEvidence,
    binomial_p_value,
    historical_var,
    max_drawdown,
    return_correlation,
    rolling_drawdowns,
    tracking_bp,
    var_exceptions,
)


class Action(str, Enum):
    """The verdict; its value is the machine event it sends (:mod:`vnpy_rotation.canary.machine`)."""

    HOLD = "hold"
    PROMOTE = "promote"
    AWAIT_APPROVAL = "await_approval"
    ROLLBACK = "rollback"


GateKind = Literal["promote", "rollback", "report"]


@dataclass(frozen=True)
class GateValue:
    """One gate or rule at one session.

    ``passed``: True when the check is satisfied (a promotion gate met, a rollback rule NOT tripped),
    False when not, None when it was not evaluated (``note`` says why); a ``report`` row (the correlation)
    has no threshold and ``passed`` None.
    """

    name: str
    kind: GateKind
    value: float | None
    threshold: float | None
    passed: bool | None
    note: str = ""

    @property
    def evaluated(self) -> bool:
        return self.passed is not None


@dataclass(frozen=True)
class StageDecision:
    """The action, a one-line reason naming the gates that decided it, and every gate's value."""

    action: Action
    reason: str
    gates: tuple[GateValue, ...]
    day: date | None = None

    def gate(self, name: str, kind: GateKind) -> GateValue:
        """The row of gate ``name`` of ``kind`` (KeyError when there is none)."""
        for g in self.gates:
            if g.name == name and g.kind == kind:
                return g
        raise KeyError(f"{kind} gate {name!r}")


# A rule passes at its threshold itself: "rollback when > 60 bp" keeps a candidate at exactly 60 bp.
def _at_most(name: str, kind: GateKind, value: float | None, limit: float, note: str = "") -> GateValue:
    return GateValue(name, kind, value, limit, None if value is None else value <= limit, note)


def _at_least(name: str, kind: GateKind, value: float | None, limit: float, note: str = "") -> GateValue:
    return GateValue(name, kind, value, limit, None if value is None else value >= limit, note)


def _skipped(name: str, up: float | None, down: float | None, note: str) -> tuple[GateValue, GateValue]:
    """Both rows of a gate that cannot be measured yet, with the configured thresholds."""
    return (GateValue(name, "promote", None, up, None, note), GateValue(name, "rollback", None, down, None, note))


def measure(stage_index: int, evidence: StageEvidence, config: CanaryConfig) -> tuple[GateValue, ...]:
    """Every gate (promote), rule (rollback) and report row for the current stage, in a fixed order."""
    stage = config.stages[stage_index]
    up, down = config.promote, config.rollback
    n = evidence.sessions
    shadow = stage.share == 0.0
    rows: list[GateValue] = []

    # tracking: the candidate against its own backtest at the stage's capital, same sessions
    if n == 0:
        rows += _skipped("tracking_bp", up.tracking_bp, down.tracking_bp, "not evaluated: no session in this stage yet")
        rows.append(GateValue("correlation", "report", None, None, None, "not evaluated: no session yet"))
    else:
        track = tracking_bp(evidence.live_returns, evidence.backtest_returns)
        rows.append(_at_most("tracking_bp", "promote", track, up.tracking_bp))
        rows.append(_at_most("tracking_bp", "rollback", track, down.tracking_bp))
        corr = return_correlation(evidence.live_returns, evidence.backtest_returns)
        rows.append(GateValue("correlation", "report", corr, None, None,
                              "" if corr is not None else "not evaluated: fewer than 2 sessions or a flat series"))

    # slippage: realised minus modelled, value-weighted over the stage's fills
    if shadow:
        rows += _skipped("slippage_bp", up.slippage_bp, down.slippage_bp, "not evaluated: shadow stage (paper fills)")
    elif evidence.slippage_bp is None or evidence.model_slippage_bp is None:
        rows += _skipped("slippage_bp", up.slippage_bp, down.slippage_bp, "not evaluated: no fill in this stage yet")
    else:
        excess = evidence.slippage_bp - evidence.model_slippage_bp
        rows.append(_at_most("slippage_bp", "promote", excess, up.slippage_bp))
        rows.append(_at_most("slippage_bp", "rollback", excess, down.slippage_bp))

    # drawdown: the stage's max drawdown against the backtest's drawdowns over windows of as many sessions
    history = evidence.backtest_history
    if n == 0:
        rows += _skipped("drawdown", None, None, "not evaluated: no session in this stage yet")
    elif len(history) < max(config.min_history, n):
        rows += _skipped("drawdown", None, None,
                         f"not evaluated: {len(history)} backtest sessions, {max(config.min_history, n)} needed")
    else:
        dd = max_drawdown(evidence.live_returns)
        windows = rolling_drawdowns(history, n)  # once for both quantiles
        pairs: tuple[tuple[GateKind, float], ...] = (("promote", up.drawdown_quantile),
                                                     ("rollback", down.drawdown_quantile))
        for kind, q in pairs:
            limit = float(np.quantile(windows, q))
            rows.append(GateValue("drawdown", kind, dd, limit, dd <= limit,
                                  f"the {q:g}-quantile of the backtest's {n}-session max drawdowns"))

    # VaR exceptions: historical one-day VaR of the backtest history, binomial test sized to the stage
    if n == 0:
        rows += _skipped("var_p_value", up.var_p_value, down.var_p_value, "not evaluated: no session in this stage yet")
    elif len(history) < config.min_history:
        rows += _skipped("var_p_value", up.var_p_value, down.var_p_value,
                         f"not evaluated: {len(history)} backtest sessions, {config.min_history} needed")
    else:
        var = historical_var(history, config.var_level)
        hits = var_exceptions(evidence.live_returns, var)
        p = binomial_p_value(hits, n, config.var_level)
        note = f"{hits} exception(s) in {n} sessions of VaR {var:.4%} at {config.var_level:g}"
        rows.append(_at_least("var_p_value", "promote", p, up.var_p_value, note))
        rows.append(_at_least("var_p_value", "rollback", p, down.var_p_value, note))

    # the strategy's risk ladder: HALTED at any session of the stage
    if down.halt:
        rows.append(GateValue("halt", "rollback", 1.0 if evidence.halted else 0.0, 0.0, not evidence.halted,
                              "1: the risk ladder was HALTED during the stage"))

    # fill rate of the candidate's part: filled / submitted order value
    if shadow:
        rows += _skipped("fill_rate", up.fill_rate, down.fill_rate, "not evaluated: shadow stage (paper fills)")
    elif evidence.submitted <= 0.0:
        rows += _skipped("fill_rate", up.fill_rate, down.fill_rate, "not evaluated: no order submitted in this stage yet")
    else:
        rate = evidence.filled / evidence.submitted
        rows.append(_at_least("fill_rate", "promote", rate, up.fill_rate, "filled / submitted order value"))
        rows.append(_at_least("fill_rate", "rollback", rate, down.fill_rate, "filled / submitted order value"))
    return tuple(rows)


def _describe(g: GateValue) -> str:
    return f"{g.name} {g.value:.6g} vs {g.threshold:.6g}"


def evaluate(stage_index: int, evidence: StageEvidence, config: CanaryConfig, now: date | None = None) -> StageDecision:
    """The verdict for the stage ``stage_index`` of ``config.stages`` after the session ``now``."""
    if not 0 <= stage_index < len(config.stages):
        raise ValueError(f"stage_index: {stage_index} outside the {len(config.stages)} stages")
    stage = config.stages[stage_index]
    gates = measure(stage_index, evidence, config)
    tripped = [g for g in gates if g.kind == "rollback" and g.passed is False]
    if tripped:
        return StageDecision(Action.ROLLBACK, "rollback: " + "; ".join(map(_describe, tripped)), gates, now)
    if evidence.sessions < stage.min_sessions:
        return StageDecision(Action.HOLD, f"hold: {evidence.sessions} of {stage.min_sessions} sessions "
                                          f"in stage {stage.name}", gates, now)
    failed = [g for g in gates if g.kind == "promote" and g.passed is False]
    if failed:
        return StageDecision(Action.HOLD, "hold: " + "; ".join(map(_describe, failed)), gates, now)
    last = stage_index == len(config.stages) - 1
    target = "champion" if last else f"stage {config.stages[stage_index + 1].name}"
    if config.approval == "manual":
        return StageDecision(Action.AWAIT_APPROVAL, f"awaiting approval: every gate passed, next {target}",
                             gates, now)
    return StageDecision(Action.PROMOTE, f"promote to {target}: every gate passed", gates, now)
