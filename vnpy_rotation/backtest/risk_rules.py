"""Risk rules applied inside the simulation: stock stop, portfolio stop, drawdown halving.

A strategy sets them on its plan (``TargetPlan.risk``); :func:`~vnpy_rotation.backtest.engine.simulate`
hands them to the compiled day loop, which evaluates them at every close after that day's orders (on
the close, carried forward over suspensions) and sends the orders they call for at the next day's
fill price, before the plan's own orders. Every rule is off (``None``) by default; with all of them off
the simulation is exactly the one without rules.

Risk orders are sells only and go through the same matcher as every order: T+1, lots, suspension,
limit-down and the participation cap apply; one refused for a reason that may clear (limit-down,
suspension, T+1, the cap) is sent again the next day while its rule still holds, as said per rule.
Trades and orders name the rule and its trigger, e.g. ``stock_stop -9.5%``.
"""

from __future__ import annotations

import math

from pydantic import Field

from .config import _Frozen

# Order causes as the kernel records them (index = code); the names prefix the risk orders' reasons.
CAUSES = ("plan", "stock_stop", "portfolio_stop", "drawdown_halve")


class RiskRules(_Frozen):
    """Which risk rules apply and their thresholds (fractions: 0.08 = 8 %); ``None`` turns a rule off.

    ``stock_stop``: every holding (stocks and funds alike) whose close falls to entry × (1 − stock_stop)
    or below is sold in full at the next day's fill price. The entry price is the volume-weighted
    average fill price of the current position: buys move it, sells keep it, it resets when the
    position is closed, and on an ex-date it follows the price: entry = (entry − dividend per share) /
    split (only when ``Rules.corporate_actions`` adjusts the holdings). The stop is evaluated afresh at
    every close: a refused stop sell is sent again the next day as long as the close still breaches the
    stop. It overrides the plan for that symbol: neither the target being executed nor the plan row
    decided on the stop's close (executed the next morning) trades it; the first plan row decided
    after that close may buy it again.

    ``portfolio_stop``: when equity at a close is at or below peak × (1 − portfolio_stop), every holding
    is sold at the next day's fill price and the book stays flat -- the current target, its resubmits
    and the plan row decided on that close are dropped, refused sells are sent again every day --
    until the strategy's next plan row executes (the first decided after that close). That row
    executes normally, and the peak for this rule restarts there (the re-entry day's close is the new
    peak), so the rule cannot fire again straight away. The peak is the highest close equity since the
    start or the last re-entry.

    ``drawdown_halve`` with ``halve_to``: while the drawdown from the all-time peak of close equity
    (never reset) exceeds ``drawdown_halve`` (strictly), exposure is scaled to ``halve_to``. On the close
    it is first exceeded, the current target and its resubmits are dropped and the next day sells each
    holding down to ``halve_to`` of its shares (whole lots: the sale rounds down); refused parts are
    sent again the next day while the drawdown still exceeds the threshold. Plan rows executing while
    it holds have their targets (weights, or share counts) multiplied by ``halve_to``; such a row
    replaces any pending halving sells (its halved targets already scale the book). It ends at the
    first close where the drawdown is back within the threshold: later plan rows execute at full
    weight. A portfolio stop on the same close takes precedence (everything is sold).

    When several rules call for a sale of the same holding on one day, the larger one is sent once:
    portfolio stop, then stock stop, then halving.
    """

    stock_stop: float | None = Field(default=None, gt=0, lt=1)
    portfolio_stop: float | None = Field(default=None, gt=0, lt=1)
    drawdown_halve: float | None = Field(default=None, gt=0, lt=1)
    halve_to: float = Field(default=0.5, ge=0, lt=1)

    @property
    def active(self) -> bool:
        return any(v is not None for v in (self.stock_stop, self.portfolio_stop, self.drawdown_halve))

    def kernel_args(self) -> tuple[float, float, float, float]:
        """``(stock_stop, portfolio_stop, drawdown_halve, halve_to)`` for the compiled loop; NaN = off."""
        def off(value: float | None) -> float:
            return math.nan if value is None else float(value)

        return off(self.stock_stop), off(self.portfolio_stop), off(self.drawdown_halve), float(self.halve_to)


def risk_reason(cause: int, trigger: float) -> str:
    """The reason text of a risk order: its rule and the trigger (loss from entry, or drawdown)."""
    return f"{CAUSES[cause]} {trigger:.1%}"
