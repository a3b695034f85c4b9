"""The canary's release state machine: every transition of the table, refused events, share, JSON."""

from __future__ import annotations

from datetime import date

import pytest

from vnpy_rotation.canary.config import DEFAULT_STAGES, Stage
from vnpy_rotation.canary.gates import Action
from vnpy_rotation.canary.machine import (
    TRANSITIONS,
    CanaryEventRefused,
    CanaryState,
    Event,
    Status,
    share,
    start,
    step,
)
from vnpy_rotation.errors import RotationError

STAGES = (Stage(name="shadow", share=0.0, min_sessions=2), Stage(name="10pct", share=0.1, min_sessions=3),
          Stage(name="full", share=1.0, min_sessions=3))
DAY = date(2024, 3, 1)
S, E = Status, Event


def state(status: Status, stage: int, sessions: int) -> CanaryState:
    return CanaryState(status=status, stage=stage, sessions=sessions, started=date(2024, 1, 2))


# (status, stage, sessions) before, event, (status, stage, sessions) after
CASES = [
    ((S.SHADOW, 0, 1), E.HOLD, (S.SHADOW, 0, 2)),
    ((S.SHADOW, 0, 1), E.PROMOTE, (S.STAGED, 1, 0)),
    ((S.SHADOW, 0, 1), E.AWAIT_APPROVAL, (S.AWAITING_APPROVAL, 0, 2)),
    ((S.SHADOW, 0, 1), E.ROLLBACK, (S.ROLLED_BACK, 0, 0)),  # paper holdings: nothing to sell
    ((S.SHADOW, 0, 1), E.MANUAL_ROLLBACK, (S.ROLLED_BACK, 0, 0)),
    ((S.STAGED, 1, 2), E.HOLD, (S.STAGED, 1, 3)),
    ((S.STAGED, 1, 2), E.PROMOTE, (S.STAGED, 2, 0)),
    ((S.STAGED, 2, 3), E.PROMOTE, (S.COMPLETE, 2, 0)),  # past the last stage: champion
    ((S.STAGED, 1, 2), E.AWAIT_APPROVAL, (S.AWAITING_APPROVAL, 1, 3)),
    ((S.STAGED, 1, 2), E.ROLLBACK, (S.ROLLING_BACK, 1, 0)),
    ((S.STAGED, 1, 2), E.MANUAL_ROLLBACK, (S.ROLLING_BACK, 1, 0)),
    ((S.AWAITING_APPROVAL, 1, 3), E.HOLD, (S.STAGED, 1, 4)),  # the gates stopped passing: the request lapses
    ((S.AWAITING_APPROVAL, 0, 2), E.HOLD, (S.SHADOW, 0, 3)),
    ((S.AWAITING_APPROVAL, 1, 3), E.AWAIT_APPROVAL, (S.AWAITING_APPROVAL, 1, 4)),
    ((S.AWAITING_APPROVAL, 1, 3), E.APPROVE, (S.STAGED, 2, 0)),
    ((S.AWAITING_APPROVAL, 0, 2), E.APPROVE, (S.STAGED, 1, 0)),
    ((S.AWAITING_APPROVAL, 2, 3), E.APPROVE, (S.COMPLETE, 2, 0)),
    ((S.AWAITING_APPROVAL, 1, 3), E.REJECT, (S.STAGED, 1, 3)),  # not a session: the count stays
    ((S.AWAITING_APPROVAL, 0, 2), E.REJECT, (S.SHADOW, 0, 2)),
    ((S.AWAITING_APPROVAL, 1, 3), E.ROLLBACK, (S.ROLLING_BACK, 1, 0)),
    ((S.AWAITING_APPROVAL, 0, 2), E.ROLLBACK, (S.ROLLED_BACK, 0, 0)),
    ((S.AWAITING_APPROVAL, 1, 3), E.MANUAL_ROLLBACK, (S.ROLLING_BACK, 1, 0)),
    ((S.ROLLING_BACK, 1, 1), E.HOLD, (S.ROLLING_BACK, 1, 2)),  # a session with the book not empty yet
    ((S.ROLLING_BACK, 1, 2), E.DRAINED, (S.ROLLED_BACK, 1, 2)),  # the count: sessions the rollback took
]


@pytest.mark.parametrize("before, event, after", CASES, ids=[f"{b[0].value}-{e.value}-{b[1]}" for b, e, _ in CASES])
def test_transition(before: tuple[Status, int, int], event: Event, after: tuple[Status, int, int]) -> None:
    old = state(*before)
    new = step(old, event, DAY, "why", STAGES)
    assert (new.status, new.stage, new.sessions) == after
    assert new.history[-1].day == DAY and new.history[-1].event is event and new.history[-1].reason == "why"
    assert (new.history[-1].from_status, new.history[-1].to_status) == (before[0], after[0])
    assert (new.history[-1].from_stage, new.history[-1].to_stage) == (before[1], after[1])
    assert old.history == ()  # the old record is untouched


def test_every_transition_is_covered() -> None:
    assert {(b[0], e) for b, e, _ in CASES} == set(TRANSITIONS)


@pytest.mark.parametrize("status, event", [(s, e) for s in Status for e in Event if (s, e) not in TRANSITIONS])
def test_meaningless_event_is_refused(status: Status, event: Event) -> None:
    with pytest.raises(CanaryEventRefused) as info:
        step(state(status, 1, 1), event, DAY, "", STAGES)
    assert isinstance(info.value, RotationError)


def test_terminal_statuses_accept_nothing() -> None:
    for status in (S.COMPLETE, S.ROLLED_BACK):
        assert not [e for (s, e) in TRANSITIONS if s == status]


def test_unknown_event_is_refused() -> None:
    with pytest.raises(CanaryEventRefused):
        step(state(S.STAGED, 1, 0), "celebrate", DAY, "", STAGES)


def test_verdicts_are_events() -> None:
    """A gate verdict's value is the event the engine sends."""
    assert {Event(a.value) for a in Action} == {E.HOLD, E.PROMOTE, E.AWAIT_APPROVAL, E.ROLLBACK}


@pytest.mark.parametrize("status, stage, expected", [
    (S.SHADOW, 0, 0.0), (S.STAGED, 1, 0.1), (S.STAGED, 2, 1.0), (S.AWAITING_APPROVAL, 1, 0.1),
    (S.AWAITING_APPROVAL, 0, 0.0), (S.COMPLETE, 2, 1.0), (S.ROLLING_BACK, 1, 0.0), (S.ROLLED_BACK, 1, 0.0)])
def test_share(status: Status, stage: int, expected: float) -> None:
    assert share(state(status, stage, 0), STAGES) == expected


def test_a_whole_life_on_the_default_table() -> None:
    """Shadow 5 sessions, then 5 % ... 100 %, one promotion per stage, champion at the end."""
    s = start(DEFAULT_STAGES, DAY)
    assert (s.status, s.stage, share(s, DEFAULT_STAGES)) == (S.SHADOW, 0, 0.0)
    shares = []
    for stage in DEFAULT_STAGES:
        for _ in range(stage.min_sessions - 1):
            s = step(s, "hold", DAY, "", DEFAULT_STAGES)
        assert s.sessions == stage.min_sessions - 1
        s = step(s, Action.PROMOTE.value, DAY, "gates passed", DEFAULT_STAGES)
        shares.append(share(s, DEFAULT_STAGES))
    assert shares == [0.05, 0.2, 0.5, 1.0, 1.0] and s.status is S.COMPLETE
    assert len(s.history) == sum(st.min_sessions for st in DEFAULT_STAGES)


def test_start_without_shadow() -> None:
    stages = (Stage(name="half", share=0.5, min_sessions=1), Stage(name="all", share=1.0, min_sessions=1))
    assert start(stages, DAY).status is S.STAGED


def test_json_round_trip() -> None:
    s = start(STAGES, date(2024, 1, 2))
    for event, reason in [("hold", "1 of 2"), ("promote", "gates"), ("await_approval", "ok"),
                          ("reject", "not yet, 中文 reason"), ("rollback", "tracking_bp 65 vs 60"), ("hold", ""),
                          ("drained", "book empty")]:
        s = step(s, event, DAY, reason, STAGES)
    text = s.to_json()
    assert CanaryState.from_json(text) == s
    assert CanaryState.from_json(start(STAGES, DAY).to_json()) == start(STAGES, DAY)


@pytest.mark.parametrize("text", ["", "{}", '{"status": "lost", "stage": 0, "sessions": 0, "started": "2024-01-02", '
                                  '"history": []}', "[1]"])
def test_bad_json_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="canary state"):
        CanaryState.from_json(text)
