"""The response to drift, and the fail-safes, as tables.

Three-stage response (:data:`DEFAULT_STAGES`): a session in which any drift monitor breached moves the
strategy one rung up after the row's ``escalate_after`` such sessions in a row at that rung; clean sessions
move it one rung down after ``deescalate_after`` in a row. The rungs: ``normal`` → ``alert`` (tell the
operator) → ``degrade`` (exposure cut to a fraction, or the cut moved into the defensive asset) →
``retrain`` (request a walk-forward re-optimisation and a parameter audit report; nothing it proposes
goes live by itself).

Fail-safes (:data:`DEFAULT_FAILSAFES`): each row raises a persisted flag when its condition holds on
``sessions`` consecutive sessions — a major risk threshold on 2 days raises ``release_freeze``, a
backtest-vs-live deviation beyond the policy's threshold raises ``downgrade_request``, a drift alert on
3 days raises ``forced_retrain`` (with a parameter audit). A flag stays raised until cleared by
:func:`clear_flag` with a reason.

:func:`step` is pure: ``(state, observations, now) -> (new state, events)``; the state is a JSON record
(:meth:`ResponseState.to_json` / :meth:`ResponseState.from_json`) the caller persists atomically.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from datetime import date
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

Stage = Literal["normal", "alert", "degrade", "retrain"]
Flag = Literal["release_freeze", "downgrade_request", "forced_retrain"]
Condition = Literal["drift", "major", "deviation"]
Request = Literal["walkforward_retrain", "parameter_audit"]
EventKind = Literal["stage_changed", "flag_raised", "flag_cleared"]
STAGES: tuple[Stage, ...] = get_args(Stage)
CONDITIONS: tuple[Condition, ...] = get_args(Condition)
_FROZEN = ConfigDict(frozen=True, extra="forbid")


class StageRow(BaseModel):
    """One rung of the response ladder."""

    model_config = _FROZEN

    stage: Stage
    exposure: float = Field(ge=0.0, le=1.0)  # fraction of the strategy's target exposure allowed
    escalate_after: int | None = Field(default=None, ge=1)  # breached sessions in a row here → one rung up
    deescalate_after: int | None = Field(default=None, ge=1)  # clean sessions in a row here → one rung down
    requests: tuple[Request, ...] = ()  # what entering this rung asks for


class FailSafeRow(BaseModel):
    """A fail-safe: ``condition`` on ``sessions`` consecutive sessions raises ``flag``."""

    model_config = _FROZEN

    flag: Flag
    condition: Condition
    sessions: int = Field(ge=1)
    requests: tuple[Request, ...] = ()
    meaning: str  # what the flag stops or asks for (the canary and release gates act on it)


DEFAULT_STAGES: tuple[StageRow, ...] = (
    StageRow(stage="normal", exposure=1.0, escalate_after=1),
    StageRow(stage="alert", exposure=1.0, escalate_after=1, deescalate_after=1),
    StageRow(stage="degrade", exposure=0.5, escalate_after=1, deescalate_after=3),
    StageRow(stage="retrain", exposure=0.5, deescalate_after=5, requests=("walkforward_retrain", "parameter_audit")),
)

DEFAULT_FAILSAFES: tuple[FailSafeRow, ...] = (
    FailSafeRow(flag="release_freeze", condition="major", sessions=2,
                meaning="no new strategy version is released or promoted"),
    FailSafeRow(flag="downgrade_request", condition="deviation", sessions=1,
                meaning="the live version is asked to step down a canary stage (or roll back)"),
    FailSafeRow(flag="forced_retrain", condition="drift", sessions=3,
                requests=("walkforward_retrain", "parameter_audit"),
                meaning="a walk-forward re-optimisation and a parameter audit are due"),
)


class ResponsePolicy(BaseModel):
    """The tables and thresholds, validated once."""

    model_config = _FROZEN

    stages: tuple[StageRow, ...] = DEFAULT_STAGES
    failsafes: tuple[FailSafeRow, ...] = DEFAULT_FAILSAFES
    # Backtest-vs-live deviation (e.g. |live − replay| cumulative return over the compared sessions,
    # as a fraction) above which the deviation condition holds.
    deviation_threshold: float = Field(default=0.02, gt=0.0)
    degrade_mode: Literal["cut", "defensive"] = "cut"  # the exposure cut stays in cash or goes defensive
    defensive_symbol: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ResponsePolicy:
        names = tuple(r.stage for r in self.stages)
        if names != STAGES:
            raise ValueError(f"stages must be the rungs {list(STAGES)} in order, got {list(names)}")
        if self.stages[0].deescalate_after is not None or self.stages[-1].escalate_after is not None:
            raise ValueError("the bottom rung cannot step down nor the top rung step up")
        if any(r.escalate_after is None for r in self.stages[:-1]):
            raise ValueError("every rung below the top needs escalate_after")
        if any(r.deescalate_after is None for r in self.stages[1:]):
            raise ValueError("every rung above the bottom needs deescalate_after")
        exposures = [r.exposure for r in self.stages]
        if any(b > a for a, b in itertools.pairwise(exposures)):
            raise ValueError(f"exposure must not rise up the ladder: {exposures}")
        flags = [r.flag for r in self.failsafes]
        if len(set(flags)) != len(flags):
            raise ValueError(f"a flag has two fail-safe rows: {flags}")
        if self.degrade_mode == "defensive" and not self.defensive_symbol:
            raise ValueError("degrade_mode 'defensive' needs defensive_symbol")
        return self

    def row(self, stage: Stage) -> StageRow:
        return self.stages[STAGES.index(stage)]


DEFAULT_POLICY = ResponsePolicy()


class Observations(BaseModel):
    """What one session brought: the drift monitors that breached, the major risk thresholds breached
    (e.g. an account ladder rung, a VaR exception), and the backtest-vs-live deviation where measured."""

    model_config = _FROZEN

    drift: tuple[str, ...] = ()
    major: tuple[str, ...] = ()
    deviation: float | None = None


def _drift(obs: Observations, policy: ResponsePolicy) -> str | None:
    return f"drift monitors breached: {', '.join(obs.drift)}" if obs.drift else None


def _major(obs: Observations, policy: ResponsePolicy) -> str | None:
    return f"major risk threshold breached: {', '.join(obs.major)}" if obs.major else None


def _deviation(obs: Observations, policy: ResponsePolicy) -> str | None:
    if obs.deviation is None or not obs.deviation > policy.deviation_threshold:
        return None
    return f"backtest-vs-live deviation {obs.deviation:.4g} above {policy.deviation_threshold:.4g}"


# Each condition: the reason it holds this session, or None.
CONDITION_TESTS: Mapping[Condition, Callable[[Observations, ResponsePolicy], str | None]] = {
    "drift": _drift, "major": _major, "deviation": _deviation}


class RaisedFlag(BaseModel):
    model_config = _FROZEN

    flag: Flag
    day: date  # the session that raised it
    reason: str
    requests: tuple[Request, ...] = ()


class ResponseEvent(BaseModel):
    model_config = _FROZEN

    day: date
    kind: EventKind
    reason: str
    stage: Stage | None = None  # stage_changed: the new rung
    flag: Flag | None = None  # flag_raised / flag_cleared
    exposure: float | None = None  # stage_changed: the new rung's exposure
    requests: tuple[Request, ...] = ()


class ResponseState(BaseModel):
    """The persisted state of one strategy's response (JSON round-trip)."""

    model_config = _FROZEN

    stage: Stage = "normal"
    breach_sessions: int = Field(default=0, ge=0)  # breached sessions in a row at this rung
    clean_sessions: int = Field(default=0, ge=0)  # clean sessions in a row at this rung
    condition_sessions: dict[Condition, int] = Field(default_factory=lambda: dict.fromkeys(CONDITIONS, 0))
    flags: tuple[RaisedFlag, ...] = ()
    day: date | None = None  # the last session stepped

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str) -> ResponseState:
        return cls.model_validate_json(text)

    def raised(self, flag: Flag) -> RaisedFlag | None:
        return next((f for f in self.flags if f.flag == flag), None)


def step(state: ResponseState, observations: Observations, now: date,
         policy: ResponsePolicy = DEFAULT_POLICY) -> tuple[ResponseState, tuple[ResponseEvent, ...]]:
    """One session: move along the ladder and raise due fail-safe flags.

    Sessions must advance; stepping the last session again returns the state unchanged and no events
    (a restart that replays the session it crashed after does not count it twice).
    """
    if state.day is not None and now < state.day:
        raise ValueError(f"session {now} is before the last one stepped ({state.day})")
    if state.day == now:
        return state, ()
    events: list[ResponseEvent] = []
    reasons = {c: CONDITION_TESTS[c](observations, policy) for c in CONDITIONS}
    breach = reasons["drift"] is not None
    row = policy.row(state.stage)
    breaches = state.breach_sessions + 1 if breach else 0
    cleans = 0 if breach else state.clean_sessions + 1
    stage = state.stage
    index = STAGES.index(stage)
    if breach and row.escalate_after is not None and breaches >= row.escalate_after:
        stage, why = STAGES[index + 1], f"{reasons['drift']} ({breaches} session(s) in a row at {row.stage})"
    elif not breach and row.deescalate_after is not None and cleans >= row.deescalate_after:
        stage, why = STAGES[index - 1], f"{cleans} clean session(s) in a row at {row.stage}"
    if stage != state.stage:
        new_row = policy.row(stage)
        events.append(ResponseEvent(day=now, kind="stage_changed", reason=why, stage=stage,
                                    exposure=new_row.exposure, requests=new_row.requests))
        breaches = cleans = 0
    counts = {c: state.condition_sessions.get(c, 0) + 1 if reasons[c] else 0 for c in CONDITIONS}
    flags = list(state.flags)
    for failsafe in policy.failsafes:
        reason = reasons[failsafe.condition]
        if reason is None or counts[failsafe.condition] < failsafe.sessions or state.raised(failsafe.flag):
            continue
        text = f"{reason} ({counts[failsafe.condition]} session(s) in a row)"
        flags.append(RaisedFlag(flag=failsafe.flag, day=now, reason=text, requests=failsafe.requests))
        events.append(ResponseEvent(day=now, kind="flag_raised", reason=text, flag=failsafe.flag,
                                    requests=failsafe.requests))
    new = ResponseState(stage=stage, breach_sessions=breaches, clean_sessions=cleans, condition_sessions=counts,
                        flags=tuple(flags), day=now)
    return new, tuple(events)


def clear_flag(state: ResponseState, flag: Flag, reason: str, now: date,
               policy: ResponsePolicy = DEFAULT_POLICY) -> tuple[ResponseState, ResponseEvent]:
    """Clear a raised flag (an operator's decision, with its reason). The flag's condition count starts
    again, so a new episode needs its full run of sessions to raise it anew."""
    if not reason.strip():
        raise ValueError(f"clearing {flag} needs a reason")
    if state.raised(flag) is None:
        raise ValueError(f"{flag} is not raised")
    conditions = {r.condition for r in policy.failsafes if r.flag == flag}
    counts = {c: 0 if c in conditions else n for c, n in state.condition_sessions.items()}
    new = state.model_copy(update={"flags": tuple(f for f in state.flags if f.flag != flag),
                                   "condition_sessions": counts})
    return new, ResponseEvent(day=now, kind="flag_cleared", reason=reason.strip(), flag=flag)


class ResponseAction(BaseModel):
    """What the current state asks of the strategy's orders."""

    model_config = _FROZEN

    stage: Stage
    exposure: float  # fraction of the target exposure allowed
    defensive_symbol: str | None  # where the cut goes (None: it stays in cash)
    release_frozen: bool
    downgrade_requested: bool
    retrain_requested: bool


def action(state: ResponseState, policy: ResponsePolicy = DEFAULT_POLICY) -> ResponseAction:
    row = policy.row(state.stage)
    defensive = policy.defensive_symbol if policy.degrade_mode == "defensive" and row.exposure < 1 else None
    return ResponseAction(stage=state.stage, exposure=row.exposure, defensive_symbol=defensive,
                          release_frozen=state.raised("release_freeze") is not None,
                          downgrade_requested=state.raised("downgrade_request") is not None,
                          retrain_requested=bool(row.requests) or state.raised("forced_retrain") is not None)
