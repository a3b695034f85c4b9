"""The look-ahead harness every strategy goes through.

Re-run the strategy's decision path with every bar after day t perturbed (prices scaled by random factors,
volumes shuffled, and every attached input such as point-in-time fundamentals or index membership changed too)
and require everything it decided up to t to be identical: the targets as the kernel receives them (after the
configured exposure limits and the drift response, which read the bars too), the notes that become the trades'
reasons, the drift response's events, the plan's kind, reason and risk rules, and each pool's own plan (the
per-pool report). A strategy that peeks at t+1
(a centred window, a forward shift, a full-sample normalisation) changes something up to t and fails.

Only the decision path is re-run, not the simulation: the simulation of days up to t reads the plan's rows up
to t and bars up to t (fills on t use t's open, equity on t its close), none of which the perturbation touches,
so identical decisions up to t imply identical fills and equity up to t. The simulator's own causality (it never
reads a later bar for an earlier day) is the kernel's property, tested with the kernel.

Not covered: inputs a strategy's ``prepare_market`` attaches are perturbed as attached; a ``prepare_market`` that
itself reads the future (row t's value built from data after t) is not re-run here. The point-in-time readers
it uses are tested on their own (announcement dates, membership as of each day).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..data.market_data import MarketData
from ..data.perturbation import perturb_after
from ..protocol import TargetStrategy
from .config import BacktestConfig
from .engine import TargetPlan, effective_plan


@dataclass(frozen=True)
class LookaheadCheck:
    cut: pd.Timestamp
    ok: bool
    detail: str


def _until(frame: pd.DataFrame | None, day: pd.Timestamp, column: str | None = None) -> pd.DataFrame | None:
    """``frame``'s rows dated up to ``day`` (by index, or by ``column`` when given)."""
    if frame is None:
        return None
    dates = pd.to_datetime(frame[column]) if column is not None and column in frame.columns else frame.index
    return frame[np.asarray(dates <= day)]


def _same(left: pd.DataFrame | None, right: pd.DataFrame | None) -> bool:
    """Same labels and the same values (missing in the same cells); a column's dtype may differ (an all-None
    notes column is ``object``, one with text may be pandas' string dtype)."""
    if left is None or right is None:
        return left is None and right is None
    if left.shape != right.shape or not (left.index.equals(right.index) and left.columns.equals(right.columns)):
        return False
    a, b = left.to_numpy(dtype=object), right.to_numpy(dtype=object)
    missing_a, missing_b = pd.isna(a), pd.isna(b)
    return bool((missing_a == missing_b).all() and (a[~missing_a] == b[~missing_b]).all())


def decision_changes(base: TargetPlan, other: TargetPlan, day: pd.Timestamp) -> list[str]:
    """What ``other`` decided differently from ``base`` up to and including ``day`` (empty: nothing)."""
    problems = []
    if not _until(base.frame, day).equals(_until(other.frame, day)):
        problems.append("targets decided up to the cut changed")
    if not _same(_until(base.notes, day), _until(other.notes, day)):
        problems.append("target notes (the trades' reasons) up to the cut changed")
    if not _same(_until(base.drift_events, day, "date"), _until(other.drift_events, day, "date")):
        problems.append("drift events up to the cut changed")
    if (base.kind, base.reason, base.risk) != (other.kind, other.reason, other.risk):
        problems.append("the plan's kind, reason or risk rules changed")
    return problems


def cut_days(md: MarketData, plan: TargetPlan, cuts: int) -> list[int]:
    """``cuts`` decision days spread over 30 %…85 % of the run (a cut on a decision day makes even a one-day peek
    visible: that day's decision reads the perturbed bar of the next day)."""
    decided = md.days.get_indexer(plan.frame.index)
    spread = np.linspace(len(md.days) * 0.3, len(md.days) * 0.85, cuts).astype(int)
    return [int(decided[np.abs(decided - s).argmin()]) if len(decided) else int(s) for s in spread]


def check_lookahead(strategy: TargetStrategy, md: MarketData, config: BacktestConfig, cuts: int = 3, seed: int = 0,
                    base_plan: TargetPlan | None = None) -> list[LookaheadCheck]:
    """Perturb after ``cuts`` decision days spread over the run; compare the decisions up to each cut.

    ``base_plan``: ``strategy.targets(md)`` when the caller already has it (a backtest does).
    """
    decided = base_plan if base_plan is not None else strategy.targets(md)
    base = effective_plan(md, decided, config)
    base_pools = strategy.pool_plans(md)
    checks = []
    for k, cut in enumerate(cut_days(md, decided, cuts)):
        day = md.days[cut]
        perturbed = perturb_after(md, cut, seed + k)
        problems = decision_changes(base, effective_plan(perturbed, strategy.targets(perturbed), config), day)
        problems += _pool_changes(base_pools, strategy.pool_plans(perturbed), day)
        checks.append(LookaheadCheck(day, not problems, "; ".join(problems) or
                                     f"decisions, fills and equity to {day.date()} unchanged"))
        del perturbed  # the arrays it copied (those the decision read): gone before the next cut's, not after
    return checks


def _pool_changes(base: dict[str, TargetPlan] | None, other: dict[str, TargetPlan] | None,
                  day: pd.Timestamp) -> list[str]:
    """The pools whose own plan (the per-pool report's input) changed up to ``day``."""
    if base is None or other is None:
        return [] if base is None and other is None else ["the pools' plans changed"]
    return [f"pool {pool}: {problem}" for pool in sorted(set(base) | set(other))
            for problem in (decision_changes(base[pool], other[pool], day) if pool in base and pool in other
                            else ["plan appeared or vanished"])]
