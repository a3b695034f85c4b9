"""The look-ahead harness every strategy goes through.

Re-run with every bar after day t perturbed (prices scaled by random factors, volumes shuffled, and every
attached input such as point-in-time fundamentals or index membership changed too) and
require every decision, fill and equity value up to t to be identical. A strategy that peeks at
t+1 (a centred window, a forward shift, a full-sample normalisation) changes something up to t and
fails. Fills on t+1 legitimately use t+1's open, so the comparison stops at t.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..data.market_data import MarketData, perturb_after
from ..protocol import TargetStrategy
from .config import BacktestConfig
from .engine import RawRun, simulate


@dataclass(frozen=True)
class LookaheadCheck:
    cut: pd.Timestamp
    ok: bool
    detail: str


def _fills_until(run: RawRun, day: pd.Timestamp) -> list[tuple]:
    return [t for t in run.trades if pd.Timestamp(t[0]) <= day]


def check_lookahead(strategy: TargetStrategy, md: MarketData, config: BacktestConfig,
                    cuts: int = 3, seed: int = 0) -> list[LookaheadCheck]:
    """Perturb after ``cuts`` decision days spread over the run; compare decisions, fills and equity.

    Cutting on a decision day makes even a one-day peek visible: that day's decision reads the
    perturbed bar of the next day.
    """
    base_plan = strategy.targets(md)
    base = simulate(md, base_plan, config)
    base_equity = base.equity()
    decided = md.days.get_indexer(base_plan.frame.index)
    spread = np.linspace(len(md.days) * 0.3, len(md.days) * 0.85, cuts).astype(int)
    on_decisions = [int(decided[np.abs(decided - s).argmin()]) if len(decided) else int(s) for s in spread]
    checks = []
    for k, cut in enumerate(on_decisions):
        day = md.days[cut]
        other_md = perturb_after(md, cut, seed + k)
        plan = strategy.targets(other_md)
        run = simulate(other_md, plan, config)
        problems = []
        left = base_plan.frame[base_plan.frame.index <= day]
        right = plan.frame[plan.frame.index <= day]
        if not left.equals(right):
            problems.append("targets decided up to the cut changed")
        if _fills_until(base, day) != _fills_until(run, day):
            problems.append("fills up to the cut changed")
        if not np.array_equal(base_equity[:cut + 1], run.equity()[:cut + 1]):
            problems.append("equity up to the cut changed")
        checks.append(LookaheadCheck(day, not problems, "; ".join(problems) or
                                     f"decisions, fills and equity to {day.date()} unchanged"))
    return checks
