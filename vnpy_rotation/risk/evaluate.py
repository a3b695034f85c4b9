"""The risk rules as one pure function of a snapshot: ``evaluate(snapshot, rules, risk, state, now)``.

The facade the risk app and the reports call. It runs the compiled functions the backtest's day loop runs
(:func:`~vnpy_rotation.risk.stops.check_close` for the stock stop, portfolio stop and drawdown halving,
:func:`~vnpy_rotation.risk.ladder.ladder_step` for the account ladder and the daily loss limit) on copies
of the state arrays, and maps what they leave to a :class:`~vnpy_rotation.risk.decision.RiskDecision`:

=========================== ====================================================================
stock stop                  its symbol sold in full (``flatten``), e.g. ``stock_stop -9.5%``
portfolio stop              FLATTEN until the next plan row starts (:func:`plan_started`)
drawdown halving            SCALE to ``halve_to`` while the drawdown exceeds the threshold
ladder REDUCING             REDUCE_ONLY, plan rows scaled to ``reduce_exposure``
ladder HALTED               FLATTEN (``flatten: true``) or FREEZE
=========================== ====================================================================

The reasons are listed in the configured order (:data:`ORDER` by default); :func:`~vnpy_rotation.risk.decision.combine`
keeps the most restrictive action and every reason. A session is stepped once: evaluating the same
session again (a restart after the close was evaluated) decides from the saved state without moving the
ladders a second time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np

from .config import RiskConfig
from .decision import Action, RiskDecision, Snapshot, combine
from .ladder import (
    HALTED,
    LADDER_STATE,
    P_EXPOSURE,
    P_FLATTEN,
    REDUCING,
    RUNGS,
    S_RUNG,
    S_TRIGGER,
    LadderConfig,
    ladder_step,
    new_state,
)
from .stops import (
    DRAWDOWN_HALVE,
    FLAT,
    FLAT_TRIGGER,
    HALVE_TRIGGER,
    HALVING,
    PORTFOLIO_STOP,
    RISK_STATE,
    STOCK_STOP,
    RiskRules,
    check_close,
    risk_reason,
    start_row,
)

# The order the rules are evaluated and their reasons listed in (the compiled loop's precedence first).
ORDER = ("portfolio_stop", "stock_stop", "drawdown_halve", "account_ladder", "daily_loss")
LADDER_LABELS = {"account_ladder": "account ladder", "daily_loss": "daily loss limit"}


@dataclass(frozen=True)
class RiskState:
    """Everything the rules remember between closes, in a JSON-safe form.

    ``stops``: the stop rules' scalars (:data:`~vnpy_rotation.risk.stops.RISK_STATE` floats: flat spell,
    halving, their triggers and peaks); ``keep``: the shares a drawdown halving leaves per symbol;
    ``ladders``: each configured ladder's state by rule name; ``session``/``evaluated``: the last close
    stepped (−1 / None: none yet).
    """

    stops: tuple[float, ...] = (0.0,) * RISK_STATE
    keep: Mapping[str, float] = field(default_factory=dict)
    ladders: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    session: int = -1
    evaluated: date | None = None

    def to_json(self) -> dict[str, Any]:
        return {"stops": [_number(v) for v in self.stops], "keep": {s: _number(v) for s, v in self.keep.items()},
                "ladders": {name: [_number(v) for v in values] for name, values in self.ladders.items()},
                "session": self.session, "evaluated": None if self.evaluated is None else self.evaluated.isoformat()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RiskState:
        stops = tuple(_float(v) for v in data.get("stops", ()))
        if len(stops) != RISK_STATE:
            raise ValueError(f"stops: {len(stops)} values, {RISK_STATE} expected")
        ladders = {str(name): tuple(_float(v) for v in values) for name, values in data.get("ladders", {}).items()}
        for name, values in ladders.items():
            if len(values) != LADDER_STATE:
                raise ValueError(f"ladders.{name}: {len(values)} values, {LADDER_STATE} expected")
        evaluated = data.get("evaluated")
        return cls(stops, {str(s): _float(v) for s, v in data.get("keep", {}).items()}, ladders,
                   int(data.get("session", -1)), None if evaluated is None else date.fromisoformat(evaluated))


def _number(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _float(value: float | None) -> float:
    return math.nan if value is None else float(value)


def ladders(risk: RiskConfig) -> dict[str, LadderConfig]:
    """The configured (active) ladders by rule name, in :data:`ORDER`."""
    given = {"account_ladder": risk.ladder, "daily_loss": risk.daily_loss}
    return {name: ladder for name, ladder in given.items() if ladder.active}


def evaluate(snapshot: Snapshot, rules: RiskRules | None, risk: RiskConfig, state: RiskState,
             now: date, order: Sequence[str] = ORDER) -> tuple[RiskDecision, RiskState]:
    """The rules at ``snapshot``'s close: the combined decision and the state after it (``state`` is not
    modified). ``rules``: the strategy's stop rules (None: none); ``risk``: the account-level ladders;
    ``order``: the order the reasons are listed in (every name of :data:`ORDER`, once)."""
    if sorted(order) != sorted(ORDER):
        raise ValueError(f"order must list each of {', '.join(ORDER)} once, not {', '.join(order)}")
    step = snapshot.session > state.session
    symbols = sorted(set(snapshot.holdings) | set(snapshot.closes))
    shares = np.array([float(snapshot.holdings.get(s, 0.0)) for s in symbols])
    close = np.array([float(snapshot.closes.get(s, math.nan)) for s in symbols])
    entry = np.array([float(snapshot.entry.get(s, math.nan)) for s in symbols])
    held = (shares != 0) & np.isfinite(close)
    cash = snapshot.equity - float((shares[held] * close[held]).sum())
    stops = np.array(state.stops, dtype=np.float64)
    keep = np.array([state.keep.get(s, math.nan) for s in symbols], dtype=np.float64)
    decisions: dict[str, RiskDecision] = {}
    if rules is not None and rules.active:
        cause = np.zeros(len(symbols), dtype=np.int64)
        trigger = np.zeros(len(symbols))
        check_close(snapshot.session, cash, shares, close, entry, rules.kernel_args(), stops, keep, cause,
                    trigger, np.zeros(len(symbols), dtype=np.int64))
        decisions.update(_stop_decisions(rules, stops, symbols, cause, trigger))
    ladder_states: dict[str, tuple[float, ...]] = {}
    for name, ladder in ladders(risk).items():
        params = ladder.params()
        values = np.array(state.ladders.get(name, tuple(new_state(1)[0])), dtype=np.float64)
        if step:
            ladder_step(snapshot.session, snapshot.equity, params, values)
        ladder_states[name] = tuple(float(v) for v in values)
        decisions[name] = _ladder_decision(name, params, values)
    decision = combine(decisions[name] for name in order if name in decisions)
    kept = {s: float(v) for s, v in zip(symbols, keep) if not math.isnan(v)}
    return decision, RiskState(tuple(float(v) for v in stops), kept, ladder_states,
                               max(state.session, snapshot.session), now if step else state.evaluated)


def _stop_decisions(rules: RiskRules, stops: np.ndarray, symbols: list[str], cause: np.ndarray,
                    trigger: np.ndarray) -> dict[str, RiskDecision]:
    out: dict[str, RiskDecision] = {}
    if stops[FLAT] != 0:
        reason = risk_reason(PORTFOLIO_STOP, float(stops[FLAT_TRIGGER]))
        out["portfolio_stop"] = RiskDecision(Action.FLATTEN, 0.0, (reason,), ("portfolio_stop",))
    stopped = [k for k in range(len(symbols)) if cause[k] == STOCK_STOP]
    if stopped:
        out["stock_stop"] = RiskDecision(
            Action.PASS, 1.0, tuple(f"{symbols[k]} {risk_reason(STOCK_STOP, float(trigger[k]))}" for k in stopped),
            ("stock_stop",) * len(stopped), tuple(symbols[k] for k in stopped))
    if stops[HALVING] != 0:
        reason = risk_reason(DRAWDOWN_HALVE, float(stops[HALVE_TRIGGER]))
        out["drawdown_halve"] = RiskDecision(Action.SCALE, rules.halve_to, (reason,), ("drawdown_halve",))
    return out


def _ladder_decision(name: str, params: np.ndarray, values: np.ndarray) -> RiskDecision:
    rung = int(values[S_RUNG])
    if rung not in (REDUCING, HALTED):
        return RiskDecision()
    reason = (f"{LADDER_LABELS[name]} {RUNGS[rung]} at {values[S_TRIGGER]:.1%}",)
    if rung == REDUCING:
        return RiskDecision(Action.REDUCE_ONLY, float(params[P_EXPOSURE]), reason, (name,))
    if params[P_FLATTEN] != 0:
        return RiskDecision(Action.FLATTEN, 0.0, reason, (name,))
    return RiskDecision(Action.FREEZE, 1.0, reason, (name,))


def plan_started(rules: RiskRules | None, state: RiskState, target: Mapping[str, float]
                 ) -> tuple[dict[str, float], RiskState]:
    """A plan row starts executing: :func:`~vnpy_rotation.risk.stops.start_row` on copies. It ends a
    portfolio stop's flat spell, is scaled while the drawdown halving holds and replaces pending halving
    sells. Returns the row as it executes and the new state."""
    if rules is None or not rules.active:
        return dict(target), state
    symbols = sorted(set(target) | set(state.keep))
    row = np.array([float(target.get(s, math.nan)) for s in symbols])
    stops = np.array(state.stops, dtype=np.float64)
    keep = np.array([state.keep.get(s, math.nan) for s in symbols], dtype=np.float64)
    start_row(row, rules.kernel_args(), stops, keep, np.zeros(len(symbols), dtype=np.int64))
    return ({s: float(v) for s, v in zip(symbols, row) if s in target},
            RiskState(tuple(float(v) for v in stops), {}, state.ladders, state.session, state.evaluated))
