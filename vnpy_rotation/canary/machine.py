"""The canary's life as a transition table, and a frozen state record that survives a restart as JSON.

Each closed session the engine evaluates the gates (:func:`vnpy_rotation.canary.gates.evaluate`) and sends
the verdict's event (``decision.action.value``); a human sends ``approve``, ``reject`` or
``manual_rollback``; the engine sends ``drained`` once the candidate's book is empty after a rollback.

``TRANSITIONS`` maps (status, event) to a status or to one of three moves relative to the stage table:

- ``STAY``: the current stage again (``shadow`` when its share is 0, else ``staged``);
- ``NEXT``: the next stage, its session count from 0; past the last stage the candidate is ``complete``
  (it holds the whole capital and becomes the champion);
- ``RETIRE``: ``rolling_back`` while the candidate holds real capital, ``rolled_back`` at once from a
  shadow stage (paper holdings have nothing to sell).

A (status, event) pair missing from the table means nothing there: :func:`step` raises
:class:`CanaryEventRefused` and the state is unchanged.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from datetime import date
from enum import Enum
from typing import Any, Literal

from ..errors import RotationError
from .config import Stage


class Status(str, Enum):
    SHADOW = "shadow"  # the candidate decides and is paper-filled beside the champion; no orders
    STAGED = "staged"  # a real stage: the candidate holds the stage's share of the capital
    AWAITING_APPROVAL = "awaiting_approval"  # every gate passed; a human must approve the promotion
    COMPLETE = "complete"  # promoted past the last stage: the candidate is the champion
    ROLLING_BACK = "rolling_back"  # the candidate's capital moves back to the champion until its book is empty
    ROLLED_BACK = "rolled_back"  # the candidate is retired


class Event(str, Enum):
    HOLD = "hold"  # a session closed, no promotion yet
    PROMOTE = "promote"  # a session closed, every gate passed (automatic approval)
    AWAIT_APPROVAL = "await_approval"  # a session closed, every gate passed (manual approval)
    APPROVE = "approve"  # a human approved the promotion
    REJECT = "reject"  # a human declined it: the candidate stays in its stage
    ROLLBACK = "rollback"  # a session closed and a rollback rule tripped
    MANUAL_ROLLBACK = "manual_rollback"  # a human (or ``run.py rollback``) rolled it back
    DRAINED = "drained"  # the candidate's book is empty: the rollback is done


Move = Literal["STAY", "NEXT", "RETIRE"]
TERMINAL = frozenset({Status.COMPLETE, Status.ROLLED_BACK})
# events that close a session without leaving the stage: it counts one more session (promote starts the next
# stage at 0, rollback starts the drain at 0)
SESSION_EVENTS = frozenset({Event.HOLD, Event.AWAIT_APPROVAL})

S, E = Status, Event
TRANSITIONS: dict[tuple[Status, Event], Status | Move] = {
    (S.SHADOW, E.HOLD): "STAY",
    (S.SHADOW, E.PROMOTE): "NEXT",
    (S.SHADOW, E.AWAIT_APPROVAL): S.AWAITING_APPROVAL,
    (S.SHADOW, E.ROLLBACK): "RETIRE",
    (S.SHADOW, E.MANUAL_ROLLBACK): "RETIRE",
    (S.STAGED, E.HOLD): "STAY",
    (S.STAGED, E.PROMOTE): "NEXT",
    (S.STAGED, E.AWAIT_APPROVAL): S.AWAITING_APPROVAL,
    (S.STAGED, E.ROLLBACK): "RETIRE",
    (S.STAGED, E.MANUAL_ROLLBACK): "RETIRE",
    # while it waits the sessions go on: the gates may stop passing (hold: the request lapses) or a rule trip
    (S.AWAITING_APPROVAL, E.HOLD): "STAY",
    (S.AWAITING_APPROVAL, E.AWAIT_APPROVAL): S.AWAITING_APPROVAL,
    (S.AWAITING_APPROVAL, E.APPROVE): "NEXT",
    (S.AWAITING_APPROVAL, E.REJECT): "STAY",
    (S.AWAITING_APPROVAL, E.ROLLBACK): "RETIRE",
    (S.AWAITING_APPROVAL, E.MANUAL_ROLLBACK): "RETIRE",
    (S.ROLLING_BACK, E.HOLD): S.ROLLING_BACK,  # a session closed with the candidate's book not empty yet
    (S.ROLLING_BACK, E.DRAINED): S.ROLLED_BACK,
}
del S, E


class CanaryEventRefused(RotationError):
    """The event means nothing in the canary's current status (e.g. approve when no approval is pending,
    anything after the canary ended). Read the state and send an event its status allows; nothing changed."""


@dataclass(frozen=True)
class Transition:
    """One row of the canary's history."""

    day: date
    event: Event
    reason: str
    from_status: Status
    to_status: Status
    from_stage: int
    to_stage: int


@dataclass(frozen=True)
class CanaryState:
    """Where the canary is: ``stage`` indexes the stage table, ``sessions`` counts the sessions closed in
    it (in ``rolling_back``: since the rollback), ``history`` every transition in order."""

    status: Status
    stage: int
    sessions: int
    started: date
    history: tuple[Transition, ...] = ()

    def to_json(self) -> str:
        def plain(value: Any) -> Any:
            if isinstance(value, Enum):
                return value.value
            if isinstance(value, date):
                return value.isoformat()
            if isinstance(value, (list, tuple)):
                return [plain(v) for v in value]
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            return value

        return json.dumps(plain(asdict(self)), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> CanaryState:
        """The state ``to_json`` wrote; a malformed text raises ValueError naming the field."""
        try:
            raw = json.loads(text)
            history = tuple(Transition(day=date.fromisoformat(t["day"]), event=Event(t["event"]),
                                       reason=str(t["reason"]), from_status=Status(t["from_status"]),
                                       to_status=Status(t["to_status"]), from_stage=int(t["from_stage"]),
                                       to_stage=int(t["to_stage"]))
                            for t in raw["history"])
            return cls(status=Status(raw["status"]), stage=int(raw["stage"]), sessions=int(raw["sessions"]),
                       started=date.fromisoformat(raw["started"]), history=history)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"canary state: {type(exc).__name__}: {exc}") from None


def _stage_status(stage: int, stages: tuple[Stage, ...]) -> Status:
    return Status.SHADOW if stages[stage].share == 0.0 else Status.STAGED


def start(stages: tuple[Stage, ...], day: date) -> CanaryState:
    """A canary at the first stage with no session yet (``shadow`` when that stage's share is 0)."""
    if not stages:
        raise ValueError("stages: at least one stage is needed")
    return CanaryState(status=_stage_status(0, stages), stage=0, sessions=0, started=day)


def step(state: CanaryState, event: Event | str, day: date, reason: str,
         stages: tuple[Stage, ...]) -> CanaryState:
    """The state after ``event`` on ``day``; raises :class:`CanaryEventRefused` when it means nothing."""
    try:
        ev = Event(event)
    except ValueError:
        raise CanaryEventRefused(f"unknown canary event {event!r} (known: "
                                 f"{', '.join(e.value for e in Event)})") from None
    target = TRANSITIONS.get((state.status, ev))
    if target is None:
        allowed = [e.value for (s, e) in TRANSITIONS if s == state.status]
        raise CanaryEventRefused(f"event {ev.value} means nothing while the canary is {state.status.value}"
                                 f" (allowed: {', '.join(allowed) or 'none, the canary has ended'})")
    if not 0 <= state.stage < len(stages):
        raise ValueError(f"stages: the state's stage {state.stage} is outside the {len(stages)} stages")
    stage, sessions = state.stage, state.sessions
    if isinstance(target, Status):
        status = target  # drained keeps the count: how many sessions the rollback took
    elif target == "STAY":
        status = _stage_status(stage, stages)
    elif target == "NEXT":
        if stage + 1 < len(stages):
            stage, sessions, status = stage + 1, 0, _stage_status(stage + 1, stages)
        else:
            status, sessions = Status.COMPLETE, 0
    else:  # RETIRE
        status = Status.ROLLED_BACK if stages[stage].share == 0.0 else Status.ROLLING_BACK
        sessions = 0
    if ev in SESSION_EVENTS:
        sessions += 1
    row = Transition(day=day, event=ev, reason=reason, from_status=state.status, to_status=status,
                     from_stage=state.stage, to_stage=stage)
    return replace(state, status=status, stage=stage, sessions=sessions, history=state.history + (row,))


def share(state: CanaryState, stages: tuple[Stage, ...]) -> float:
    """The candidate's share of the strategy's capital: 0 in shadow and once rolling back, the stage's share
    while staged or awaiting approval, 1 when complete."""
    if state.status in (Status.SHADOW, Status.ROLLING_BACK, Status.ROLLED_BACK):
        return 0.0
    if state.status is Status.COMPLETE:
        return 1.0
    return stages[state.stage].share
