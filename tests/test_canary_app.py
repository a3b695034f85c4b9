"""The canary app on the live stack, offscreen: a real MainEngine with the replay gateway, RiskManager, the risk
app, the rotation app and the canary app; two versions in a temporary registry; a canary started on the
strategy and replayed on the bundled data. The manager's tables show the engine's stage, gates, books and the
registry's versions; Promote outside an awaited approval is refused in a message box with nothing changed;
a Promote while awaiting and a Rollback are applied at the next close.

Screenshots go to the test's tmp folder, and also to ``$ROTATION_SCREENSHOTS`` when that is set.
"""

from __future__ import annotations

import json
from datetime import date

import peewee
import pytest

pytest.importorskip("pytestqt")

from test_gui import WAIT, assert_picture, boxes, rows, screenshot_folders, trader  # noqa: E402,F401  (fixtures used by name)
from test_versions import version  # noqa: E402  (a hand-made stored version)
from vnpy.trader.ui import QtGui, QtWidgets  # noqa: E402

from vnpy_rotation.apps.canary import APP_NAME, CanaryApp  # noqa: E402
from vnpy_rotation.apps.canary.ui import CanaryManager  # noqa: E402
from vnpy_rotation.apps.rotation.canary_records import command_path  # noqa: E402
from vnpy_rotation.canary.config import CanaryConfig, Stage  # noqa: E402
from vnpy_rotation.canary.machine import Status  # noqa: E402
from vnpy_rotation.ops import versions  # noqa: E402
from vnpy_rotation.ops.version_store import VersionStore  # noqa: E402
from vnpy_rotation.ops.versions import check_version  # noqa: E402

STRATEGY = "etf_rotation"  # the instance is named after the versions' strategy: aliases are per strategy
CHAMPION, CANDIDATE = "aaaa00000001", "bbbb00000002"
DAILY = {"schedule": "every_k", "every_k": 1}  # decide every session: both versions trade in a short replay
STAGES = (Stage(name="shadow", share=0.0, min_sessions=2), Stage(name="half", share=0.5, min_sessions=3),
          Stage(name="full", share=1.0, min_sessions=3))


@pytest.fixture
def registry(tmp_path, monkeypatch):
    """The project's version registry on a database in tmp_path (its rows are insert-only: never the shared one);
    every ``VersionRegistry()`` of the engines opens it. Holds the champion and the candidate."""
    database = peewee.SqliteDatabase(str(tmp_path / "versions.db"))
    monkeypatch.setattr(versions, "VersionStore", lambda db=None: VersionStore(db or database))
    registry = versions.VersionRegistry()
    registry.save(version(CHAMPION, settings={"top_n": 2, **DAILY}))
    registry.save(version(CANDIDATE, settings={"top_n": 3, **DAILY}, metrics={"sharpe": 1.1, "max_drawdown": -0.125},
                          created_at="2024-10-09T15:00:00+08:00"))
    return registry


@pytest.fixture
def stack(tmp_path, runtime_home, registry):
    """Stack (MainEngine, replay gateway, RiskManager, risk, rotation and canary apps) with the champion's
    settings as strategy ``etf_rotation``, started, on the bundled data of June 2024."""
    from conftest import fresh_bundled_store

    from vnpy_rotation.apps.rotation.daemon import Stack
    from vnpy_rotation.gateways.replay import ReplayGateway

    fresh_bundled_store()
    built = Stack(ReplayGateway, tmp_path / "state", notifications=False)
    try:
        built.main_engine.connect({"初始资金": 1_000_000.0, "开始日期": "2024-06-03", "结束日期": "2024-06-21",
                                   "账本文件": ""}, "REPLAY")
        built.drain()
        built.size_risk_rules(1_000_000.0, lambda _: None)
        built.engine.add_strategy(STRATEGY, "EtfRotationStrategy", {"top_n": 2, **DAILY}, gateway="REPLAY",
                                  history_start="2024-06-03", version=CHAMPION)
        built.engine.init_strategy(STRATEGY)
        built.engine.start_strategy(STRATEGY)
        yield built
    finally:
        built.close()


@pytest.fixture
def manager(stack, qtbot):
    widget = CanaryManager(stack.main_engine, stack.event_engine)
    qtbot.addWidget(widget)
    widget.resize(1600, 950)
    widget.show()
    return widget


@pytest.fixture
def reasons(monkeypatch):
    """QInputDialog.getText answers with the next reason of the list (OK pressed)."""
    queue: list[str] = []
    monkeypatch.setattr(QtWidgets.QInputDialog, "getText", staticmethod(lambda *a, **k: (queue.pop(0), True)))
    return queue


def session(stack, manager, qtbot) -> date:
    """Replay the next session; wait until the manager shows the canary's state after its close."""
    day = stack.engine.clock.replay_next(stack.gateway)
    assert day is not None, "the replay window has no session left"
    stack.drain()
    assert stack.engine.instances[STRATEGY].trading, stack.engine.instances[STRATEGY].error
    # the first view may not have reached the manager yet: wait for it too (not an AttributeError on None)
    qtbot.waitUntil(lambda: shown(manager) is not None and shown(manager).last_day == day.isoformat(), timeout=WAIT)
    return day


def shown(manager):
    return manager.data.strategy(STRATEGY)


def ledger(stack):
    return stack.engine.instances[STRATEGY].cycle.state.canary


def pending(stack) -> dict | None:
    """The command waiting for the next close, without its time stamp."""
    path = command_path(stack.engine.state_folder, STRATEGY)
    return {k: v for k, v in json.loads(path.read_text()).items() if k != "at"} if path.exists() else None


def test_the_manager_shows_the_canary_and_its_buttons_go_through_the_release_table(
        stack, manager, qtbot, boxes, reasons, registry, tmp_path):  # noqa: F811
    from vnpy_rotation.apps.rotation.canary_records import canary_view
    from vnpy_rotation.market.calendar import default_calendar

    instance = stack.engine.instances[STRATEGY]
    first = stack.gateway.sessions()[0].date()
    stack.engine.canary.start(instance, registry.load(CANDIDATE), CanaryConfig(stages=STAGES, approval="manual"),
                              CHAMPION, "test", "top 3 instead of top 2", default_calendar().previous(first))
    stack.drain()
    session(stack, manager, qtbot)

    # the registry's versions with the aliases the start moved; the stage strip, the gates, the books
    assert rows(manager.version_table) == [
        [CHAMPION, STRATEGY, "2024-10-08 15:00:00", "0.80", "-10.00%", "champion", "-"],
        [CANDIDATE, STRATEGY, "2024-10-09 15:00:00", "1.10", "-12.50%", "candidate", "-"]]
    assert [r[2:5] for r in rows(manager.alias_table)] == [["champion", "-", CHAMPION], ["candidate", "-", CANDIDATE]]
    assert rows(manager.stage_table) == [["shadow", "0%", "2", "1", "current"], ["half", "50%", "3", "-", "next"],
                                         ["full", "100%", "3", "-", "next"]]
    view = canary_view(ledger(stack))
    assert view["gates"] and rows(manager.gate_table) == [
        [g["name"], g["kind"], "-" if g["value"] is None else f"{g['value']:.4f}",
         "-" if g["threshold"] is None else f"{g['threshold']:.4f}",
         "reported" if g["kind"] == "report" else "not evaluated" if g["passed"] is None else
         "passed" if g["passed"] else "failed", g["note"]] for g in view["gates"]]
    books = {r[0]: r for r in rows(manager.book_table)}
    assert books["champion"][1:3] == [CHAMPION, "real"] and books["candidate"][1:3] == [CANDIDATE, "paper"]
    assert books["champion"][3] == f"{view['books']['champion']['equity']:,.2f}"

    # Promote and Reject while no approval is awaited: refused in a message box, nothing written or changed;
    # an empty reason is refused too
    before = ledger(stack).machine
    reasons += ["looks good", "not yet", "   "]
    manager.promote_button.click()
    manager.reject_button.click()
    manager.rollback_button.click()
    assert [kind for kind, _ in boxes] == ["warning"] * 3
    assert ledger(stack).machine == before and pending(stack) is None

    # the gates pass after the shadow's minimum sessions: the canary awaits approval; Promote is accepted
    while ledger(stack).machine.status is not Status.AWAITING_APPROVAL:
        assert ledger(stack).machine.status is Status.SHADOW
        session(stack, manager, qtbot)
    assert shown(manager).status == "awaiting_approval"
    reasons.append("tracking within 20 bp")
    manager.promote_button.click()
    assert len(boxes) == 3
    assert pending(stack) == {"event": "approve", "reason": "tracking within 20 bp", "who": "gui", "to": ""}
    qtbot.waitUntil(lambda: shown(manager).pending is not None, timeout=WAIT)
    assert "Pending for the next close: approve" in manager.status_label.text()
    day = session(stack, manager, qtbot)
    assert (shown(manager).status, shown(manager).stage, shown(manager).share) == ("staged", "half", 0.5)
    assert rows(manager.history_table)[0] == [day.isoformat(), "approve", "awaiting_approval/shadow", "staged/half",
                                              "gui: tracking within 20 bp"]
    assert pending(stack) is None and shown(manager).pending is None
    session(stack, manager, qtbot)
    assert [r[3:] for r in rows(manager.stage_table)] == [["-", "done"], ["1", "current"], ["-", "next"]]
    books = {r[0]: r for r in rows(manager.book_table)}
    assert books["candidate"][2] == "real"

    import qdarkstyle

    manager.setStyleSheet(qdarkstyle.load_stylesheet(qt_api="pyside6"))  # as VeighNa Trader's qapp styles it
    manager.version_table.selectRow(1)
    manager.check_button.click()
    assert len(boxes) == 3 and rows(manager.check_table)
    picture = manager.grab()
    for folder in screenshot_folders(tmp_path):
        assert picture.save(str(folder / "canary_manager.png"))
        assert_picture(folder / "canary_manager.png")

    # Rollback: the command waits for the close; then the candidate is retired and its capital moves back
    reasons.append("drill: roll back by hand")
    manager.rollback_button.click()
    assert len(boxes) == 3 and pending(stack)["event"] == "manual_rollback"
    day = session(stack, manager, qtbot)
    assert shown(manager).status in ("rolling_back", "rolled_back") and shown(manager).share == 0.0
    assert rows(manager.history_table)[0][:2] == [day.isoformat(), "manual_rollback"]
    assert rows(manager.history_table)[0][4] == "gui: drill: roll back by hand"
    assert registry.aliases(STRATEGY) == {"champion": CHAMPION}
    qtbot.waitUntil(lambda: rows(manager.version_table)[1][5] == "-", timeout=WAIT)
    assert rows(manager.alias_table)[0][2:5] == ["candidate", CANDIDATE, "retired"]

    # the candidate's book drains through the order plan; once rolled back, no command means anything
    while shown(manager).status == "rolling_back":
        session(stack, manager, qtbot)
    assert shown(manager).status == "rolled_back" and not shown(manager).running
    assert [r[4] for r in rows(manager.stage_table)] == ["done", "rolled back", "next"]
    assert rows(manager.history_table)[0][1] == "drained"
    reasons.append("again")
    manager.rollback_button.click()
    assert [kind for kind, _ in boxes] == ["warning"] * 4 and pending(stack) is None


def test_release_check_of_the_selected_version_shows_the_clis_gates(runtime_home, tmp_path, qtbot, boxes,  # noqa: F811
                                                                      registry):
    """The check button runs the CLI's check_version with the freezes the risk app of this stack has raised."""
    from vnpy_rotation.apps.rotation.daemon import Stack
    from vnpy_rotation.gateways.replay import ReplayGateway

    built = Stack(ReplayGateway, tmp_path / "state", notifications=False)
    try:
        manager = CanaryManager(built.main_engine, built.event_engine)
        qtbot.addWidget(manager)
        manager.show()
        qtbot.waitUntil(lambda: manager_versions(manager) == [CHAMPION, CANDIDATE], timeout=WAIT)
        assert manager.strategy_combo.count() == 0
        manager.check_button.click()  # nothing selected: a hint
        assert [kind for kind, _ in boxes] == ["information"]

        def check() -> list[list[str]]:
            manager.version_table.selectRow(1)
            manager.check_button.click()
            return rows(manager.check_table)

        expected = check_version(registry.get(CANDIDATE), [])
        assert [[r[0], r[3]] for r in check()] == [[g.name, "passed" if g.passed else "failed"] for g in expected]
        freeze = {r[0]: r for r in check()}["release_freeze"]
        assert freeze[3] == "passed"
        built.risk.state_file.raise_flag("release_freeze", STRATEGY, date(2024, 6, 5), "VaR red zone")
        frozen = {r[0]: r for r in check()}
        assert frozen["release_freeze"][3] == "failed" and "VaR red zone" in frozen["release_freeze"][4]
        assert len(boxes) == 1

        # Promote without a rotation strategy of that name: a hint, no traceback
        manager.promote_button.click()
        assert [kind for kind, _ in boxes] == ["information", "information"]
    finally:
        built.close()


def test_veighna_trader_opens_the_canary_manager(trader, qtbot, registry):  # noqa: F811
    actions = {a.text(): a for a in trader.main_window.findChildren(QtGui.QAction)}
    assert APP_NAME in {app.app_name for app in trader.main_engine.get_all_apps()}
    actions[CanaryApp.display_name].trigger()
    widget = trader.main_window.widgets[APP_NAME]
    assert isinstance(widget, CanaryManager) and widget.isVisible()
    qtbot.waitUntil(lambda: manager_versions(widget) == [CHAMPION, CANDIDATE], timeout=WAIT)


def manager_versions(widget: CanaryManager) -> list[str]:
    return [r[0] for r in rows(widget.version_table)]



@pytest.mark.parametrize("status, stage, states", [
    ("shadow", 0, ["current", "next", "next"]),
    ("staged", 1, ["done", "current", "next"]),
    ("awaiting_approval", 1, ["done", "current", "next"]),
    ("rolling_back", 1, ["done", "rolling back", "next"]),
    ("rolled_back", 0, ["rolled back", "next", "next"]),
    ("complete", 2, ["done", "done", "done"]),
])
def test_the_stage_strip_per_status(status, stage, states):
    from vnpy_rotation.apps.canary.engine import strategy_canary

    view = {"champion": CHAMPION, "candidate": CANDIDATE, "status": status, "stage": STAGES[stage].name,
            "stage_index": stage, "stages": [s.model_dump() for s in STAGES], "sessions_in_stage": 1,
            "share": 0.5, "approval": "manual", "started": "2024-05-31", "last_session": None,
            "gates": [{"name": "fill_rate", "kind": "promote", "value": None, "threshold": 0.95, "passed": None,
                       "note": "no orders"}],
            "history": [], "books": {"candidate": {"version": CANDIDATE, "paper": False, "cash": 10.0,
                                                   "holdings": {"510300.SSE": 100.0, "159915.SZSE": 0.0},
                                                   "equity": 20.0, "fees": {"commission": 5.0, "stamp_duty": 1.5}}}}
    row = strategy_canary(STRATEGY, CHAMPION, {}, view, None)
    assert [s.state for s in row.stages] == states
    assert row.running is (status not in ("rolled_back", "complete"))
    assert [(g.name, g.result) for g in row.gates] == [("fill_rate", "not evaluated")]
    assert [(b.role, b.holdings, b.fees) for b in row.books] == [("candidate", 1, 6.5)]


@pytest.mark.parametrize("flags, held", [
    ([("release_freeze", STRATEGY)], True),
    ([("release_freeze", "account")], True),  # the account's freeze holds every strategy's releases
    ([("release_freeze", "*")], True),
    ([("release_freeze", "vqm")], False),  # another strategy's
    ([("downgrade_request", STRATEGY)], False),  # another flag
    ([], False),
])
def test_release_freezes_that_hold_a_strategy(tmp_path, flags, held):
    from vnpy_rotation.apps.risk.state_file import RiskStateFile

    state = RiskStateFile(tmp_path)
    for flag, scope in flags:
        state.raise_flag(flag, scope, date(2024, 6, 5), "red zone")
    found = state.freezes(STRATEGY)
    assert found == ([(flags[0][1], "red zone (since 2024-06-05)")] if held else [])
