"""Risk rules applied inside the simulation: stock stop, portfolio stop, drawdown halving.

A strategy sets them on its plan (``TargetPlan.risk``). The compiled day loop of the backtest
(:mod:`~vnpy_rotation.backtest.kernel`), the CTA sleeves and the live risk stage call the same functions
here (:func:`check_close`, :func:`start_row`, :func:`stock_stop_hit`): they evaluate the rules at every close after that day's orders (on
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

import numpy as np
import numpy.typing as npt
from pydantic import Field

from ..compiled import jit
from ..config import Frozen
from .config import RiskConfig
from .ladder import HALTED, LadderConfig, halt_flattens, ladders_step, worst_rung, worst_trigger

# Order causes as the kernel records them (index = code); the names prefix the risk orders' reasons.
CAUSES = ("plan", "stock_stop", "portfolio_stop", "drawdown_halve", "ladder")
PLAN, STOCK_STOP, PORTFOLIO_STOP, DRAWDOWN_HALVE, LADDER = 0, 1, 2, 3, 4
# The risk rules' scalars, kept in one float array that the functions below update in place.
FLAT, FLAT_SINCE, FLAT_TRIGGER, HALVING, HALVE_TRIGGER, PEAK_STOP, PEAK_ALL = 0, 1, 2, 3, 4, 5, 6
RISK_STATE = 7
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
RiskArgs = tuple[float, float, float, float]  # (stock_stop, portfolio_stop, drawdown_halve, halve_to); NaN = off
EPS = 1e-9  # the tolerance on every threshold (a loss of exactly the stop triggers it)


class RiskRules(Frozen):
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

    ``ladder``: the strategy's own drawdown ladder (:class:`~vnpy_rotation.risk.ladder.LadderConfig`, off
    by default), evaluated after the rules above at every close, like the account ladder of
    :class:`~vnpy_rotation.risk.config.RiskConfig`.
    """

    stock_stop: float | None = Field(default=None, gt=0, lt=1)
    portfolio_stop: float | None = Field(default=None, gt=0, lt=1)
    drawdown_halve: float | None = Field(default=None, gt=0, lt=1)
    halve_to: float = Field(default=0.5, ge=0, lt=1)
    ladder: LadderConfig = LadderConfig()

    @property
    def active(self) -> bool:
        return self.ladder.active or self.stops_on

    @property
    def stops_on(self) -> bool:
        """Any of the stop rules (as opposed to the ladder) is on."""
        return any(v is not None for v in (self.stock_stop, self.portfolio_stop, self.drawdown_halve))

    def kernel_args(self) -> tuple[float, float, float, float]:
        """``(stock_stop, portfolio_stop, drawdown_halve, halve_to)`` for the compiled loop; NaN = off."""
        def off(value: float | None) -> float:
            return math.nan if value is None else float(value)

        return off(self.stock_stop), off(self.portfolio_stop), off(self.drawdown_halve), float(self.halve_to)


def risk_reason(cause: int, trigger: float) -> str:
    """The reason text of a risk order: its rule and the trigger (loss from entry, or drawdown)."""
    return f"{CAUSES[cause]} {trigger:.1%}"


def configured_ladders(rules: RiskRules | None, risk: RiskConfig) -> list[tuple[str, LadderConfig]]:
    """The active drawdown ladders by name, in the order the day loop and the live stage evaluate them:
    the strategy's own, the daily loss limit, the account's."""
    named = [("strategy", rules.ladder if rules is not None else None), ("daily_loss", risk.daily_loss),
             ("account", risk.ladder)]
    return [(name, ladder) for name, ladder in named if ladder is not None and ladder.active]


@jit()
def stops_on(risk: RiskArgs) -> bool:
    """Any stop rule on in the compiled form (NaN = off; ``halve_to`` is not a rule)."""
    return risk[0] == risk[0] or risk[1] == risk[1] or risk[2] == risk[2]


def stock_stop_level(entry: float, stock_stop: float) -> float:
    """The price at or below which :func:`stock_stop_hit` sells: entry × (1 − stock_stop + EPS); NaN when the
    stop is off or the entry unknown (the market monitor alerts on it intraday)."""
    if stock_stop != stock_stop or not entry > 0:
        return math.nan
    return entry * (1.0 - stock_stop + EPS)


@jit()
def stock_stop_hit(close: float, entry: float, stock_stop: float) -> bool:
    """The single-stock stop: the close is at or below entry × (1 − stock_stop) (NaN stop = off)."""
    if stock_stop != stock_stop or not entry > 0 or close != close:
        return False
    return close / entry - 1.0 <= -stock_stop + EPS


@jit()
def start_row(target: FloatArray, risk: RiskArgs, state: FloatArray, keep: FloatArray,
              sell_cause: IntArray) -> None:
    """A plan row starts executing: it ends a portfolio stop's flat spell (the peak restarts), is scaled
    while the drawdown halving holds, and replaces pending halving sells."""
    if state[FLAT] != 0:
        state[FLAT] = 0.0
        state[PEAK_STOP] = 0.0  # the re-entry day's close becomes the peak
        for j in range(len(target)):
            if sell_cause[j] == PORTFOLIO_STOP:
                sell_cause[j] = PLAN
    if state[HALVING] != 0:
        target *= risk[3]  # NaN (no instruction) stays NaN
    for j in range(len(target)):
        keep[j] = np.nan
        if sell_cause[j] == DRAWDOWN_HALVE:
            sell_cause[j] = PLAN


@jit()
def check_close(i: int, cash: float, shares: FloatArray, close: FloatArray, entry: FloatArray, risk: RiskArgs,
                state: FloatArray, keep: FloatArray, sell_cause: IntArray, sell_trigger: FloatArray,
                blocked_until: IntArray) -> bool:
    """Evaluate the risk rules at day ``i``'s close and set the next day's risk sells (``sell_cause``:
    what sells symbol j, ``PLAN`` = nothing; ``keep``: the shares a halving sale leaves). Returns True
    when the current target must be dropped (a portfolio stop or the start of a halving)."""
    stock_stop, portfolio_stop, drawdown_halve, halve_to = risk
    equity = cash
    for j in range(len(shares)):
        if shares[j] != 0 and close[j] == close[j]:
            equity += shares[j] * close[j]
    drop = False
    if drawdown_halve == drawdown_halve:
        state[PEAK_ALL] = max(state[PEAK_ALL], equity)
        drawdown = equity / state[PEAK_ALL] - 1.0
        if drawdown < -drawdown_halve - EPS:
            if state[HALVING] == 0:
                state[HALVING], state[HALVE_TRIGGER], drop = 1.0, drawdown, True
                for j in range(len(shares)):
                    keep[j] = shares[j] * halve_to if shares[j] > 0 else np.nan
        elif state[HALVING] != 0:
            state[HALVING] = 0.0
            keep[:] = np.nan
    if portfolio_stop == portfolio_stop and state[FLAT] == 0:
        state[PEAK_STOP] = max(state[PEAK_STOP], equity)
        loss = equity / state[PEAK_STOP] - 1.0
        if loss <= -portfolio_stop + EPS:
            state[FLAT], state[FLAT_SINCE], state[FLAT_TRIGGER], drop = 1.0, float(i), loss, True
    for j in range(len(shares)):
        sell_cause[j] = PLAN
        if shares[j] <= 0:
            continue
        if state[FLAT] != 0:
            sell_cause[j], sell_trigger[j] = PORTFOLIO_STOP, state[FLAT_TRIGGER]
        elif stock_stop_hit(close[j], entry[j], stock_stop):  # (entry > 0: the loss is defined)
            sell_cause[j], sell_trigger[j] = STOCK_STOP, close[j] / entry[j] - 1.0
            blocked_until[j] = i + 1  # the row decided on this close does not trade it either
        elif keep[j] == keep[j] and shares[j] > keep[j] + EPS:
            sell_cause[j], sell_trigger[j] = DRAWDOWN_HALVE, state[HALVE_TRIGGER]
    return drop


@jit()
def ladder_close(i: int, cash: float, shares: FloatArray, close: FloatArray, ladders: FloatArray,
                 ladder_state: FloatArray, sell_cause: IntArray, sell_trigger: FloatArray, stops_on: bool) -> int:
    """The drawdown ladders at day ``i``'s close (after the stop rules, when ``stops_on``; without them the
    next day's sales are decided here alone): step them on the close equity and, while one is HALTED and
    flattens, set every holding's sale for the next day (a stop's own full sale keeps its reason). Returns
    the most restrictive rung."""
    equity = cash
    for j in range(len(shares)):
        if not stops_on:
            sell_cause[j] = PLAN
        if shares[j] != 0 and close[j] == close[j]:
            equity += shares[j] * close[j]
    ladders_step(i, equity, ladders, ladder_state)
    rung = worst_rung(ladders, ladder_state)
    if rung == HALTED and halt_flattens(ladders, ladder_state):
        trigger = worst_trigger(ladders, ladder_state)
        for j in range(len(shares)):
            if shares[j] > 0 and (sell_cause[j] == PLAN or sell_cause[j] == DRAWDOWN_HALVE):
                sell_cause[j], sell_trigger[j] = LADDER, trigger
    return rung
