"""The drawdown ladder: ACTIVE → REDUCING → HALTED as a transition table, one step per close.

A ladder watches one equity series (a strategy's book, or the account) and moves between three rungs:

======== ==================================================================================
ACTIVE    normal trading; the peak follows the equity (the highest close since the start or
          since the last return to ACTIVE)
REDUCING  reduce-only: no buys; plan rows that start are scaled to ``reduce_exposure``
HALTED    nothing but the flattening plan (``flatten``: every holding is sold, retried each day
          through limit-down days, suspensions and T+1 locks), or nothing at all (freeze)
======== ==================================================================================

The transitions are the table :data:`TRANSITIONS` (rung × condition → rung), the conditions tested in
the order of :data:`CONDITIONS` at every close; the first one that holds and has a transition moves the
ladder. Recovery has hysteresis: REDUCING returns to ACTIVE only when the drawdown is back within
``recover_at`` (stricter than ``reduce_at``) or after ``cooldown`` sessions; a HALTED book is flat, so
its drawdown cannot recover by itself: it returns to ACTIVE only after ``halt_cooldown`` sessions (or a
manual reset with a reason). On every return to ACTIVE the peak restarts at that close's equity.

``measure = "day_return"`` makes the same table a daily loss limit: the close-to-close return of the
equity is compared with the thresholds and the rung lasts ``cooldown`` sessions.

The step is compiled (numba) because the backtest's day loop calls it; the live risk stage calls the same
function with the state it keeps on disk, so both take the same decisions on the same closes.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import Field, model_validator

from ..compiled import jit
from ..config import Frozen

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

ACTIVE, REDUCING, HALTED = 0, 1, 2
RUNGS = ("ACTIVE", "REDUCING", "HALTED")
# Conditions, in the order they are tested at a close.
HALT_BREACH, REDUCE_BREACH, RECOVERED, COOLED = 0, 1, 2, 3
CONDITIONS = ("halt_breach", "reduce_breach", "recovered", "cooled")
NO_MOVE = -1
TRANSITIONS = np.array([
    # halt_breach reduce_breach  recovered  cooled
    [HALTED,      REDUCING,      NO_MOVE,   NO_MOVE],   # from ACTIVE
    [HALTED,      NO_MOVE,       ACTIVE,    ACTIVE],    # from REDUCING
    [NO_MOVE,     NO_MOVE,       NO_MOVE,   ACTIVE],    # from HALTED
], dtype=np.int64)

# One ladder's parameters as the compiled code reads them (NaN = that threshold is off).
P_REDUCE_AT, P_HALT_AT, P_RECOVER_AT, P_EXPOSURE, P_COOLDOWN, P_HALT_COOLDOWN, P_FLATTEN, P_MEASURE = range(8)
LADDER_PARAMS = 8
# One ladder's state: rung, peak, the session it entered the rung, the measure that moved it, last equity.
S_RUNG, S_PEAK, S_SINCE, S_TRIGGER, S_LAST = range(5)
LADDER_STATE = 5
DRAWDOWN, DAY_RETURN = 0, 1
EPS = 1e-9


class LadderConfig(Frozen):
    """One ladder's thresholds (fractions: 0.10 = 10 %); ``None`` turns a rung off."""

    reduce_at: float | None = Field(default=None, gt=0, lt=1)  # REDUCING at a loss of this much
    halt_at: float | None = Field(default=None, gt=0, lt=1)  # HALTED at a loss of this much
    recover_at: float | None = Field(default=None, gt=0, lt=1)  # REDUCING → ACTIVE once the loss is within
    reduce_exposure: float = Field(default=1.0, ge=0, le=1)  # plan rows starting in REDUCING are scaled
    cooldown: int = Field(default=20, ge=1, le=2500)  # sessions in REDUCING before it ends by itself
    halt_cooldown: int = Field(default=20, ge=1, le=2500)  # sessions in HALTED before ACTIVE again
    flatten: bool = True  # HALTED sells everything (False: it freezes the book: no orders at all)
    measure: Literal["drawdown", "day_return"] = "drawdown"

    @model_validator(mode="after")
    def _ordered(self) -> LadderConfig:
        if self.reduce_at is not None and self.halt_at is not None and self.halt_at <= self.reduce_at:
            raise ValueError(f"halt_at ({self.halt_at}) must be beyond reduce_at ({self.reduce_at})")
        if self.recover_at is not None and self.reduce_at is not None and self.recover_at >= self.reduce_at:
            raise ValueError(f"recover_at ({self.recover_at}) must be within reduce_at ({self.reduce_at}): "
                             "recovery needs hysteresis")
        return self

    @property
    def active(self) -> bool:
        return self.reduce_at is not None or self.halt_at is not None

    def params(self) -> FloatArray:
        """The compiled form (:data:`LADDER_PARAMS` floats)."""
        def off(value: float | None) -> float:
            return math.nan if value is None else float(value)

        return np.array([off(self.reduce_at), off(self.halt_at), off(self.recover_at), self.reduce_exposure,
                         float(self.cooldown), float(self.halt_cooldown), float(self.flatten),
                         float(DAY_RETURN if self.measure == "day_return" else DRAWDOWN)])


def ladder_params(ladders: list[LadderConfig]) -> FloatArray:
    """Several ladders (strategy, daily loss, account) as one ``k × LADDER_PARAMS`` array; ``0 × …`` if none."""
    active = [ladder.params() for ladder in ladders if ladder.active]
    return np.array(active).reshape(len(active), LADDER_PARAMS)


def new_state(count: int) -> FloatArray:
    """Every ladder ACTIVE, no peak yet."""
    state = np.zeros((count, LADDER_STATE))
    state[:, S_LAST] = np.nan
    return state


@jit()
def ladder_step(session: int, equity: float, params: FloatArray, state: FloatArray) -> bool:
    """One close: update one ladder's ``state`` in place; True when its rung changed.

    A return to ACTIVE is judged again at the same close with the restarted peak, so a daily loss limit
    whose cool-down ends on another losing day stays REDUCING (its rung restarts).
    """
    last = state[S_LAST]
    state[S_LAST] = equity
    moved = _move(session, equity, last, params, state)
    if moved and int(state[S_RUNG]) == ACTIVE:
        _move(session, equity, last, params, state)
    return moved


@jit()
def _move(session: int, equity: float, last: float, params: FloatArray, state: FloatArray) -> bool:
    rung = int(state[S_RUNG])
    if rung == ACTIVE:
        state[S_PEAK] = max(state[S_PEAK], equity)
    if params[P_MEASURE] == DAY_RETURN:
        measure = equity / last - 1.0 if last > 0 else 0.0
    else:
        measure = equity / state[S_PEAK] - 1.0 if state[S_PEAK] > 0 else 0.0
    held = session - state[S_SINCE]
    cooldown = params[P_HALT_COOLDOWN] if rung == HALTED else params[P_COOLDOWN]
    for condition in range(4):
        if condition == HALT_BREACH:
            holds = params[P_HALT_AT] == params[P_HALT_AT] and measure <= -params[P_HALT_AT] + EPS
        elif condition == REDUCE_BREACH:
            holds = params[P_REDUCE_AT] == params[P_REDUCE_AT] and measure <= -params[P_REDUCE_AT] + EPS
        elif condition == RECOVERED:
            holds = (params[P_MEASURE] == DRAWDOWN and params[P_RECOVER_AT] == params[P_RECOVER_AT]
                     and measure > -params[P_RECOVER_AT] + EPS)
        else:
            holds = held >= cooldown
        target = TRANSITIONS[rung, condition]
        if holds and target != NO_MOVE:
            state[S_RUNG], state[S_SINCE], state[S_TRIGGER] = float(target), float(session), measure
            if target == ACTIVE:
                state[S_PEAK] = equity  # the peak restarts on every return to ACTIVE
            return True
    return False


@jit()
def ladders_step(session: int, equity: float, params: FloatArray, state: FloatArray) -> bool:
    """Every ladder at one close; True when any rung changed."""
    changed = False
    for k in range(params.shape[0]):
        if ladder_step(session, equity, params[k], state[k]):
            changed = True
    return changed


@jit()
def worst_rung(params: FloatArray, state: FloatArray) -> int:
    """The most restrictive rung over the ladders (HALTED > REDUCING > ACTIVE)."""
    rung = ACTIVE
    for k in range(params.shape[0]):
        rung = max(rung, int(state[k, S_RUNG]))
    return rung


@jit()
def halt_flattens(params: FloatArray, state: FloatArray) -> bool:
    """A HALTED ladder that flattens (rather than freezes) the book."""
    for k in range(params.shape[0]):
        if int(state[k, S_RUNG]) == HALTED and params[k, P_FLATTEN] != 0:
            return True
    return False


@jit()
def exposure(params: FloatArray, state: FloatArray) -> float:
    """The scale of plan rows that start now: the smallest ``reduce_exposure`` of the REDUCING ladders."""
    scale = 1.0
    for k in range(params.shape[0]):
        if int(state[k, S_RUNG]) == REDUCING:
            scale = min(scale, params[k, P_EXPOSURE])
    return scale


@jit()
def worst_trigger(params: FloatArray, state: FloatArray) -> float:
    """The measure that moved the most restrictive ladder (recorded on its orders)."""
    rung, trigger = ACTIVE, 0.0
    for k in range(params.shape[0]):
        if int(state[k, S_RUNG]) > rung:
            rung, trigger = int(state[k, S_RUNG]), state[k, S_TRIGGER]
    return trigger


def reset(state: FloatArray, ladder: int, session: int, equity: float) -> None:
    """A manual return to ACTIVE (the caller logs who and why); the peak restarts at ``equity``."""
    state[ladder, S_RUNG], state[ladder, S_SINCE], state[ladder, S_TRIGGER] = ACTIVE, session, 0.0
    state[ladder, S_PEAK] = equity
