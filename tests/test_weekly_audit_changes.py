"""The change log's readers on hand-made records: a canary release's transitions (a held session is no change; a
rollback is counted as one), the risk state's rung changes, resets with who and alerts, and which champion
moves are rollbacks or parameter changes."""

from __future__ import annotations

from datetime import date

from vnpy_rotation.canary import machine
from vnpy_rotation.canary.config import CanaryConfig, Stage
from vnpy_rotation.live.canary_stage import start_ledger
from vnpy_rotation.live.plan import StrategyState
from vnpy_rotation.live.state_file import write_atomic
from vnpy_rotation.ops.change_log import alias_rows, canary_rows, change_table, risk_rows
from vnpy_rotation.ops.versions import AliasMove

STAGES = (Stage(name="shadow", share=0.0, min_sessions=1), Stage(name="full", share=1.0, min_sessions=1))


def test_canary_transitions_become_rows_and_a_rollback_is_marked(tmp_path):
    state = machine.start(STAGES, date(2024, 7, 19))
    for day, event, reason in ((22, "hold", "one session"), (23, "promote", "gates passed"),
                               (24, "rollback", "slippage 31 bp > 20 bp"), (25, "drained", "book empty")):
        state = machine.step(state, event, date(2024, 7, day), reason, STAGES)
    ledger = start_ledger("etf_rotation", "aaaa", "bbbb", "EtfRotationStrategy", {}, CanaryConfig(stages=STAGES),
                          state, {}, 1e6, 1e6, date(2024, 7, 19))
    write_atomic(tmp_path / "etf_rotation.json", StrategyState(canary=ledger).to_json())
    rows = canary_rows(tmp_path, "etf_rotation")
    assert [(r["date"], r["kind"], r["change"], r["why"]) for r in rows] == [
        ("2024-07-23", "canary", "promote: shadow/0 → staged/1", "gates passed"),
        ("2024-07-24", "canary_rollback", "rollback: staged/1 → rolling_back/1", "slippage 31 bp > 20 bp"),
        ("2024-07-25", "canary", "drained: rolling_back/1 → rolled_back/1", "book empty"),
    ]
    assert canary_rows(tmp_path, "other") == []


def test_risk_rows_take_rung_changes_resets_with_who_and_alerts_once(tmp_path):
    write_atomic(tmp_path / "risk_state.json", {
        "history": [{"scope": "account", "day": "2024-07-22", "before": "ACTIVE", "after": "REDUCING",
                     "reason": "drawdown -10.2%", "source": "ladder"},
                    {"scope": "account", "day": "2024-07-24", "before": "REDUCING", "after": "ACTIVE",
                     "reason": "manual reset: checked", "source": "reset"}],
        "audit": [{"time": "2024-07-24T09:00:00+08:00", "scope": "account", "before": "REDUCING", "after": "ACTIVE",
                   "reason": "checked", "who": "wang"}],
        "alerts": [{"kind": "failsafe", "scope": "s", "day": "2024-07-23", "reason": "release_freeze: red"}],
        "flags": {"s.release_freeze": {"flag": "release_freeze", "scope": "s", "day": "2024-07-23",
                                       "reason": "release_freeze: red"},
                  "s.retrain": {"flag": "retrain", "scope": "s", "day": "2024-07-29", "reason": "drift"}}})
    rows = change_table(risk_rows(tmp_path), date(2024, 7, 22), date(2024, 7, 28))
    assert rows[["date", "kind", "change", "who", "why"]].values.tolist() == [
        ["2024-07-22", "risk_rung", "ACTIVE → REDUCING", "ladder", "drawdown -10.2%"],
        ["2024-07-23", "risk_alert", "alert failsafe", "risk engine", "release_freeze: red"],
        ["2024-07-24", "risk_reset", "REDUCING → ACTIVE", "wang", "checked"],
    ]  # the reset's history row is the audit row; the alerted flag once; the flag of 07-29 is another week


def test_a_champion_move_back_to_a_former_champion_is_a_rollback():
    moves = [AliasMove(1, "s", "champion", "a", None, "x", "first", "2024-07-01T10:00:00+08:00"),
             AliasMove(2, "s", "candidate", "b", None, "x", "try b", "2024-07-02T10:00:00+08:00"),
             AliasMove(3, "s", "champion", "b", "a", "x", "promote b", "2024-07-03T10:00:00+08:00"),
             AliasMove(4, "s", "candidate", "a", "b", "x", "candidate back", "2024-07-04T10:00:00+08:00"),
             AliasMove(5, "s", "champion", "a", "b", "x", "back to a", "2024-07-05T10:00:00+08:00"),
             AliasMove(6, "s", "champion", "c", "a", "x", "new c", "2024-07-08T10:00:00+08:00")]
    assert [r["kind"] for r in alias_rows(moves)] == ["alias", "alias", "alias", "alias", "rollback", "alias"]


def test_a_week_belongs_to_the_quarter_of_its_last_session():
    """2024-W40 traded only on 09-30 (National Day holiday from 10-01): its quarter to date is Q3, not an
    empty Q4; a week wholly inside a quarter is unchanged."""
    from vnpy_rotation.ops.weekly_audit import parse_week

    assert parse_week("2024-W40").quarter_start == date(2024, 7, 1)
    assert parse_week("2024-W30").quarter_start == date(2024, 7, 1)
    assert parse_week("2024-W41").quarter_start == date(2024, 10, 1)
