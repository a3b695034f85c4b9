"""The risk app's fail-safes and exception verdict on a real MainEngine: per scope (the account and each
strategy), the fail-safe rows of ``risk/response.py`` stepped at each close on the major thresholds (HALTED, a
red VaR zone), the rotation app's drift alerts and the replay's deviation; the flags persisted, published,
surviving a restart and cleared only with a reason; the exception verdict's zone kept, alerted on a change and
shown in the window."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pytest
from conftest import needs_real, run_cli
from test_risk_app import DAYS, RiskStack, shown_window
from vnpy.event import Event

from vnpy_rotation.apps.risk.failsafe import HISTORY_DAYS, append_equity
from vnpy_rotation.apps.risk.state_file import RiskStateFile
from vnpy_rotation.errors import InputRejected
from vnpy_rotation.risk.events import EVENT_RISK_ALERT, RiskAlert


class Alerts:
    """The alerts a stack published."""

    def __init__(self, stack: RiskStack) -> None:
        self.seen: list[RiskAlert] = []
        stack.event_engine.register(EVENT_RISK_ALERT, lambda e: self.seen.append(e.data))

    def flags(self) -> list[tuple[str, str]]:
        """(scope, flag) of each fail-safe alert, in order."""
        return [(a.scope, a.reason.split(":", 1)[0]) for a in self.seen if a.kind == "failsafe"]


def flags_of(stack: RiskStack) -> dict[str, list[str]]:
    return {r["scope"]: r["flags"] for r in stack.risk.snapshot()["rows"]}


@pytest.fixture
def stack(tmp_path, runtime_home):
    built = RiskStack(tmp_path / "risk")
    yield built
    built.close()


# The account ladder (HALTED at -15 %) at four closes: (balance, rung, flags after the close). A major threshold
# on two consecutive sessions raises release_freeze: the second HALTED close, not the first.
HALTED_SCENARIO = [
    (1_000_000.0, []),
    (840_000.0, []),  # -16 %: HALTED, one session
    (830_000.0, ["release_freeze"]),  # HALTED again: two in a row
    (835_000.0, ["release_freeze"]),  # stays raised (no second alert)
]


def test_two_consecutive_halted_closes_raise_the_release_freeze(stack):
    alerts = Alerts(stack)
    for day, (balance, flags) in zip(DAYS, HALTED_SCENARIO):
        stack.close_day(day, balance)
        assert flags_of(stack)["account"] == flags, day
    assert alerts.flags() == [("account", "release_freeze")]
    assert stack.risk.state_file.flags["account.release_freeze"]["day"] == DAYS[2].isoformat()
    assert any("release_freeze" in subject + content for subject, content in stack.recorder.sent)


def test_a_strategys_halted_updates_raise_its_own_release_freeze(stack):
    alerts = Alerts(stack)
    stack.strategy("vqm", DAYS[0], "HALTED")
    stack.strategy("rot", DAYS[0], "REDUCING")
    assert alerts.flags() == []
    stack.strategy("vqm", DAYS[1], "HALTED")
    stack.strategy("rot", DAYS[1], "HALTED")  # one HALTED session only
    assert alerts.flags() == [("vqm", "release_freeze")]
    assert flags_of(stack) == {"account": [], "rot": [], "vqm": ["release_freeze"]}


# A drift alert (as the rotation app publishes it, before the strategy's close) on each session:
# (drift that session, flags after). Three sessions in a row raise forced_retrain; a clean one restarts the count.
DRIFT_SCENARIO = [(True, []), (True, []), (False, []), (True, []), (True, []), (True, ["forced_retrain"])]


def test_a_drift_alert_on_three_consecutive_sessions_raises_the_forced_retrain(stack):
    alerts = Alerts(stack)
    days = [date(2024, 1, d) for d in (2, 3, 4, 5, 8, 9)]
    for day, (drift, flags) in zip(days, DRIFT_SCENARIO):
        if drift:
            stack.event_engine.put(Event(EVENT_RISK_ALERT, RiskAlert("drift", "vqm", day, "volatility breached")))
        stack.strategy("vqm", day, "ACTIVE")
        assert flags_of(stack)["vqm"] == flags, day
    assert alerts.flags() == [("vqm", "forced_retrain")]
    kept = [a for a in stack.risk.state_file.alerts if a["kind"] == "drift"]
    assert [a["day"] for a in kept] == [d.isoformat() for d, (drift, _) in zip(days, DRIFT_SCENARIO) if drift]


def test_a_drift_alert_after_the_close_still_counts_for_its_session(stack):
    """Pieces of one session arrive in any order: the session is re-stepped with everything seen so far."""
    for day in DAYS[:3]:
        stack.strategy("vqm", day, "ACTIVE")
        stack.risk.raise_alert(RiskAlert("drift", "vqm", day, "volume breached"))
        stack.clock.drain()
    assert flags_of(stack)["vqm"] == ["forced_retrain"]
    assert [a["day"] for a in stack.risk.state_file.alerts if a["kind"] == "drift"] == [
        d.isoformat() for d in DAYS[:3]]  # each kept once


@pytest.mark.parametrize("deviation,flags", [(0.019, []), (0.02, []), (0.021, ["downgrade_request"])])
def test_a_deviation_above_the_threshold_raises_the_downgrade_request(stack, deviation, flags):
    """The default threshold: 2 % of capital."""
    stack.strategy("rot", DAYS[0], "ACTIVE")
    raised = stack.risk.observe_deviation("rot", DAYS[0], deviation)
    stack.clock.drain()
    assert [flag for _, flag in raised] == flags and flags_of(stack)["rot"] == flags
    assert stack.risk.observe_deviation("rot", DAYS[0], deviation) == []  # the same session: raised once


def test_flags_and_the_fail_safe_counts_survive_a_restart(tmp_path, runtime_home):
    first = RiskStack(tmp_path / "risk")
    try:
        first.close_day(DAYS[0], 1_000_000.0)
        first.close_day(DAYS[1], 840_000.0)  # HALTED: one session counted
        first.risk.observe_deviation("account", DAYS[1], 0.05)
    finally:
        first.close()
    second = RiskStack(tmp_path / "risk")
    try:
        alerts = Alerts(second)
        assert flags_of(second)["account"] == ["downgrade_request"]
        second.close_day(DAYS[2], 830_000.0)  # the second HALTED session in a row, across the restart
        assert alerts.flags() == [("account", "release_freeze")]
        assert flags_of(second)["account"] == ["downgrade_request", "release_freeze"]
    finally:
        second.close()


def test_clearing_a_flag_needs_a_reason_and_restarts_its_count(tmp_path, runtime_home):
    home = tmp_path / "home"
    stack = RiskStack(home / ".vntrader" / "rotation_risk")
    try:
        for day, (balance, _) in zip(DAYS, HALTED_SCENARIO[:3]):
            stack.close_day(day, balance)
    finally:
        stack.close()
    path = home / ".vntrader" / "rotation_risk" / "risk_state.json"
    before = path.read_bytes()
    for args in (("--flag", "release_freeze", "--strategy", "account", "--reason", " "),
                 ("--flag", "forced_retrain", "--strategy", "account", "--reason", "x"),
                 ("--flag", "release_freeze", "--strategy", "vqm", "--reason", "x")):
        refused = run_cli("risk", "clear", *args, home=home)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr, args
        assert path.read_bytes() == before
    done = run_cli("risk", "clear", "--flag", "release_freeze", "--strategy", "account", "--reason",
                   "losses reviewed with the desk", home=home)
    assert done.returncode == 0, done.stderr
    book = RiskStateFile(path.parent)
    assert book.flags == {}
    assert [(a["scope"], a["before"], a["after"], a["who"]) for a in book.audit] == [
        ("account", "release_freeze", "cleared", "cli")]
    assert book.observe("account", DAYS[3], book_major()) == []  # one more major session: counted afresh
    assert [flag for _, flag in book.observe("account", DAYS[4], book_major())] == ["release_freeze"]


def book_major():
    from vnpy_rotation.risk.response import Observations

    return Observations(major=("ladder HALTED",))


# -- the exception verdict ----------------------------------------------------------------------------
SESSIONS = pd.bdate_range("2022-01-03", periods=HISTORY_DAYS + 2).date


def crash_equity(crashes: list[int]) -> np.ndarray:
    """Closes whose returns rise a little every session (so a normal day never exceeds a VaR made of the
    smaller gains before it) except on ``crashes`` (return positions), each a loss larger than any before it:
    every crash is a 99 % VaR exception, every other day is not."""
    returns = 0.001 + 1e-6 * np.arange(len(SESSIONS))
    for k, t in enumerate(crashes):
        returns[t] = -(0.02 + 0.001 * k)
    returns[0] = 0.0
    return 1_000_000.0 * np.cumprod(1.0 + returns)


# Return positions judged on the 501st close: 251 … 500. Nine crashes there: yellow (5-9); the 502nd close
# judges 252 … 501, and a tenth crash on 501 makes it red (>= 10).
CRASHES = [300, 310, 320, 330, 340, 350, 360, 370, 380]


def test_a_zone_change_to_red_publishes_an_alert_and_counts_as_major(tmp_path, runtime_home, qtbot):
    from vnpy.trader.ui import QtWidgets

    from vnpy_rotation.apps.risk.ui import RiskMonitor

    equity = crash_equity(CRASHES + [HISTORY_DAYS])
    folder = tmp_path / "risk"
    book = RiskStateFile(folder)
    for day, value in zip(SESSIONS[:HISTORY_DAYS - 1], equity):
        book.equities["vqm"] = append_equity(book.equities.get("vqm", {}), day, value)
    alerts, raised = book.close_scope("vqm", SESSIONS[HISTORY_DAYS - 1], equity[HISTORY_DAYS - 1], "ACTIVE")
    verdict = book.verdicts["vqm"]
    assert (verdict["zone"], verdict["exceptions"]) == ("yellow", 9) and raised == []
    assert [(a.kind, a.reason.split(":")[0]) for a in alerts] == [("var", "exception test zone none -> yellow")]
    book.save()
    stack = RiskStack(folder)
    try:
        seen = Alerts(stack)
        widget = RiskMonitor(stack.main_engine, stack.event_engine)
        qtbot.addWidget(widget)
        QtWidgets.QWidget.show(widget)
        stack.strategy("vqm", SESSIONS[HISTORY_DAYS], "ACTIVE", equity=float(equity[HISTORY_DAYS]))
        verdict = stack.risk.state_file.verdicts["vqm"]
        assert (verdict["zone"], verdict["exceptions"]) == ("red", 10)
        assert [(a.kind, a.scope, a.day) for a in seen.seen] == [("var", "vqm", SESSIONS[HISTORY_DAYS])]
        assert "yellow -> red" in seen.seen[0].reason
        assert len(stack.risk.state_file.equities["vqm"]) == HISTORY_DAYS  # the oldest close dropped
        table = widget.scope_table
        qtbot.waitUntil(lambda: table.rowCount() == 2 and table.item(1, 8).text().startswith("red"), timeout=5000)
        assert table.item(1, 8).text() == f"red: 10 exceptions / 250 d, Kupiec p {verdict['kupiec_p']:.3f}"
        assert flags_of(stack)["vqm"] == []  # one red session
        stack.strategy("vqm", SESSIONS[HISTORY_DAYS + 1], "ACTIVE", equity=float(equity[HISTORY_DAYS + 1]))
        assert seen.flags() == [("vqm", "release_freeze")]  # red on two sessions in a row: a major threshold
        assert [a.kind for a in seen.seen] == ["var", "failsafe"]  # still red: no second zone alert
    finally:
        stack.close()


# -- through the live stack ---------------------------------------------------------------------------
@needs_real
def test_a_replays_drift_alerts_and_deviation_reach_the_fail_safes(tmp_path):
    """The replay of the drift-response span (tests/test_drift_response.py): the rotation app publishes one drift
    alert per session a monitor breached, the risk app counts them and raises forced_retrain on the session the
    backtest's own response (the same table) raised it; the replay equals the backtest, so its
    deviation (0) raises no downgrade request."""
    from test_drift_response import REPLAY_DRIFT

    config = tmp_path / "drift.yaml"
    config.write_text(REPLAY_DRIFT, encoding="utf-8")
    span = ("--start", "2024-01-19", "--end", "2024-04-19")
    for command, out in (("trade", "replay"), ("backtest", "backtest")):
        extra = ("--gateway", "replay") if command == "trade" else ()
        done = run_cli(command, *extra, "--strategy", "etf_rotation", *span, "--config", str(config),
                       "--out", str(tmp_path / out), home=tmp_path)
        assert done.returncode == 0, done.stderr
    events = pd.read_csv(tmp_path / "backtest" / "drift_events.csv", keep_default_na=False)
    state = json.loads((tmp_path / "replay" / "state" / "risk_state.json").read_text(encoding="utf-8"))
    drift_days = [a["day"] for a in state["alerts"] if a["kind"] == "drift"]
    moved = set(events.loc[events["monitors"] != "", "date"].str[:10])  # sessions a breach moved the response
    assert moved < set(drift_days)  # and the breached sessions at the top rung, which move nothing
    retrain = events.loc[events["flag"] == "forced_retrain", "date"].str[:10].tolist()
    assert retrain, "the span's drift episode raises the forced retrain in the backtest"
    assert state["flags"]["etf_rotation.forced_retrain"]["day"] == retrain[0]
    record = state["responses"]["etf_rotation"]
    assert record["observations"]["deviation"] == 0.0 and "etf_rotation.downgrade_request" not in state["flags"]


def test_the_running_engine_clears_a_flag_with_a_reason_and_publishes_it(stack):
    alerts = Alerts(stack)
    stack.strategy("rot", DAYS[0], "ACTIVE")
    stack.risk.observe_deviation("rot", DAYS[0], 0.05)
    with pytest.raises(InputRejected):
        stack.risk.clear_flag("rot", "downgrade_request", "  ")
    assert flags_of(stack)["rot"] == ["downgrade_request"]
    stack.risk.clear_flag("rot", "downgrade_request", "replay difference explained: a fee table fix", who="test")
    stack.clock.drain()
    assert flags_of(stack)["rot"] == [] and RiskStateFile(stack.risk.state_file.path.parent).flags == {}
    assert [(a.kind, a.scope) for a in alerts.seen] == [("failsafe", "rot"), ("flag_cleared", "rot")]
    assert stack.risk.state_file.audit[-1]["who"] == "test"


def test_the_windows_clear_asks_which_flag_and_why(stack, qtbot, monkeypatch):
    from vnpy.trader.ui import QtWidgets

    widget, shown = shown_window(stack, qtbot, monkeypatch)
    for day, (balance, _) in zip(DAYS, HALTED_SCENARIO[:3]):
        stack.close_day(day, balance)
    qtbot.waitUntil(lambda: widget.scope_table.rowCount() == 1 and widget.scope_table.item(0, 7).text() == "release_freeze",
                    timeout=5000)
    widget.scope_table.selectRow(0)
    offered: list[list[str]] = []

    def pick(parent, title, label, items, *args):
        offered.append(list(items))
        return items[0], True

    monkeypatch.setattr(QtWidgets.QInputDialog, "getItem", staticmethod(pick))
    answers = iter([("", True), ("freeze reviewed", True)])
    monkeypatch.setattr(QtWidgets.QInputDialog, "getText", staticmethod(lambda *a, **k: next(answers)))
    widget.clear_button.click()  # an empty reason: refused in a message box, nothing changes
    assert len(shown) == 1 and flags_of(stack)["account"] == ["release_freeze"]
    widget.clear_button.click()
    assert offered == [["release_freeze"], ["release_freeze"]] and flags_of(stack)["account"] == []
    assert [(a["scope"], a["before"], a["reason"], a["who"]) for a in stack.risk.state_file.audit] == [
        ("account", "release_freeze", "freeze reviewed", "gui")]
    qtbot.waitUntil(lambda: widget.scope_table.item(0, 7).text() == "-", timeout=5000)
