"""The three-stage response and the fail-safes: hand-written daily observations with the exact stage,
flags and events expected on each day; persistence through JSON; the policy's validation."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from pydantic import ValidationError

from vnpy_rotation.risk.response import (
    DEFAULT_POLICY,
    DEFAULT_STAGES,
    Observations,
    ResponsePolicy,
    ResponseState,
    action,
    clear_flag,
    step,
)

START = date(2024, 1, 2)
D = Observations(drift=("volatility",))  # a session with a drift alert
C = Observations()  # a clean session
M = Observations(major=("account drawdown",))  # a major risk threshold breached, no drift
MD = Observations(drift=("return_ks",), major=("account drawdown",))


def run(rows, state=None, policy=DEFAULT_POLICY):
    """Step through ``rows`` of (observations, stage, flags, events); events as (kind, stage or flag)."""
    state = state or ResponseState()
    for k, (obs, stage, flags, events) in enumerate(rows):
        day = START + timedelta(days=k)
        state, got = step(state, obs, day, policy)
        assert all(e.day == day and e.reason for e in got)
        seen = [(e.kind, e.stage or e.flag) for e in got]
        assert (k, state.stage, {f.flag for f in state.flags}, seen) == (k, stage, set(flags), events)
        state = ResponseState.from_json(state.to_json())  # every session's state survives persistence
    return state


def test_ladder_escalates_on_breaches_and_steps_down_on_clean_sessions():
    retrain = {"forced_retrain"}
    run([
        (D, "alert", set(), [("stage_changed", "alert")]),
        (D, "degrade", set(), [("stage_changed", "degrade")]),
        (D, "retrain", retrain, [("stage_changed", "retrain"), ("flag_raised", "forced_retrain")]),
        (C, "retrain", retrain, []),
        (C, "retrain", retrain, []),
        (D, "retrain", retrain, []),  # a breach restarts the clean count; the top rung cannot rise
        (C, "retrain", retrain, []),
        (C, "retrain", retrain, []),
        (C, "retrain", retrain, []),
        (C, "retrain", retrain, []),
        (C, "degrade", retrain, [("stage_changed", "degrade")]),  # 5 clean at retrain
        (C, "degrade", retrain, []),
        (C, "degrade", retrain, []),
        (C, "alert", retrain, [("stage_changed", "alert")]),  # 3 clean at degrade
        (C, "normal", retrain, [("stage_changed", "normal")]),  # 1 clean at alert; the flag stays
        (C, "normal", retrain, []),
    ])


def test_two_drift_days_then_clean_do_not_force_a_retrain():
    run([
        (D, "alert", set(), [("stage_changed", "alert")]),
        (D, "degrade", set(), [("stage_changed", "degrade")]),
        (C, "degrade", set(), []),
        (D, "retrain", set(), [("stage_changed", "retrain")]),  # one breach at degrade: up; the drift run is 1
        (D, "retrain", set(), []),
        (D, "retrain", {"forced_retrain"}, [("flag_raised", "forced_retrain")]),  # third drift day in a row
    ])


def test_two_consecutive_major_breaches_freeze_releases_one_does_not():
    freeze = {"release_freeze"}
    run([
        (M, "normal", set(), []),
        (C, "normal", set(), []),
        (M, "normal", set(), []),
        (M, "normal", freeze, [("flag_raised", "release_freeze")]),
        (M, "normal", freeze, []),  # raised once, not again while it stands
        (C, "normal", freeze, []),  # persists through clean sessions
    ])
    run([
        (MD, "alert", set(), [("stage_changed", "alert")]),
        (MD, "degrade", freeze, [("stage_changed", "degrade"), ("flag_raised", "release_freeze")]),
    ])


@pytest.mark.parametrize("deviation, raised", [(None, False), (0.0199, False), (0.02, False), (0.0201, True)])
def test_backtest_vs_live_deviation_requests_a_downgrade(deviation, raised):
    flags = {"downgrade_request"} if raised else set()
    run([(Observations(deviation=deviation), "normal", flags, [("flag_raised", "downgrade_request")] if raised else [])])


def test_flags_survive_json_and_clear_only_with_a_reason():
    state = run([
        (MD, "alert", set(), [("stage_changed", "alert")]),
        (MD, "degrade", {"release_freeze"}, [("stage_changed", "degrade"), ("flag_raised", "release_freeze")]),
        (MD, "retrain", {"release_freeze", "forced_retrain"},
         [("stage_changed", "retrain"), ("flag_raised", "forced_retrain")]),
    ])
    restored = ResponseState.from_json(state.to_json())
    assert restored == state
    assert restored.raised("release_freeze").day == START + timedelta(days=1)
    assert restored.raised("forced_retrain").requests == ("walkforward_retrain", "parameter_audit")
    with pytest.raises(ValueError, match="reason"):
        clear_flag(restored, "release_freeze", "  ", START + timedelta(days=3))
    with pytest.raises(ValueError, match="not raised"):
        clear_flag(restored, "downgrade_request", "checked", START + timedelta(days=3))
    cleared, event = clear_flag(restored, "release_freeze", "drawdown reviewed", START + timedelta(days=3))
    assert (event.kind, event.flag, event.reason) == ("flag_cleared", "release_freeze", "drawdown reviewed")
    assert {f.flag for f in cleared.flags} == {"forced_retrain"}
    # A new episode needs its full two sessions: the breach still standing today does not re-raise at once.
    later = cleared.model_copy(update={"day": START + timedelta(days=2)})
    s1, e1 = step(later, M, START + timedelta(days=3))
    _, e2 = step(s1, M, START + timedelta(days=4))
    assert [(e.kind, e.flag) for e in e1] == [] and [(e.kind, e.flag) for e in e2] == [("flag_raised", "release_freeze")]


def test_sessions_must_advance_and_a_replayed_session_is_a_no_op():
    state, _ = step(ResponseState(), D, START)
    again, repeated = step(state, D, START)
    assert again == state and repeated == ()
    with pytest.raises(ValueError, match="before"):
        step(state, D, START - timedelta(days=1))


def test_action_per_rung_and_the_defensive_asset():
    policy = ResponsePolicy(degrade_mode="defensive", defensive_symbol="511990.SSE")
    expected = {"normal": (1.0, None, False), "alert": (1.0, None, False), "degrade": (0.5, "511990.SSE", False),
                "retrain": (0.5, "511990.SSE", True)}
    for stage, (exposure, defensive, retrain) in expected.items():
        got = action(ResponseState(stage=stage), policy)
        assert (got.exposure, got.defensive_symbol, got.retrain_requested) == (exposure, defensive, retrain)
    cut = action(ResponseState(stage="degrade"))
    assert (cut.exposure, cut.defensive_symbol) == (0.5, None)


def test_policy_tables_are_validated():
    with pytest.raises(ValidationError, match="rungs"):
        ResponsePolicy(stages=DEFAULT_STAGES[::-1])
    with pytest.raises(ValidationError, match="defensive_symbol"):
        ResponsePolicy(degrade_mode="defensive")
    rising = (DEFAULT_STAGES[0], DEFAULT_STAGES[1], DEFAULT_STAGES[2].model_copy(update={"exposure": 1.0}),
              DEFAULT_STAGES[3].model_copy(update={"exposure": 1.0}))
    ResponsePolicy(stages=rising)  # flat exposure is allowed
    with pytest.raises(ValidationError, match="rise"):
        ResponsePolicy(stages=(DEFAULT_STAGES[0], DEFAULT_STAGES[1].model_copy(update={"exposure": 0.5}),
                               DEFAULT_STAGES[2].model_copy(update={"exposure": 0.8}), DEFAULT_STAGES[3]))
    with pytest.raises(ValidationError, match="two fail-safe rows"):
        ResponsePolicy(failsafes=DEFAULT_POLICY.failsafes + DEFAULT_POLICY.failsafes[:1])
