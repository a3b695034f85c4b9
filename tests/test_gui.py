"""The rotation app in VeighNa Trader, offscreen: the assembled main window, the manager's tables fed by the
engine's events, user mistakes shown in message boxes (never raised), and a screenshot of every widget.

Screenshots go to the test's tmp folder, and also to ``$ROTATION_SCREENSHOTS`` when that is set.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("pytestqt")

from vnpy.event import Event  # noqa: E402
from vnpy.trader.ui import QtCore, QtGui, QtWidgets  # noqa: E402

from vnpy_rotation.apps.rotation.engine import APP_NAME, EVENT_ROTATION_LOG, EVENT_ROTATION_STRATEGY  # noqa: E402
from vnpy_rotation.apps.rotation.ui import RotationManager  # noqa: E402
from vnpy_rotation.apps.rotation.ui import widget as ui  # noqa: E402
from vnpy_rotation.cli.gui_cmd import build_main_window  # noqa: E402
from vnpy_rotation.live.plan import DayProgress, FillRecord, LegRecord, OrderPlan, OrderRecord  # noqa: E402

CLASS = "EtfRotationStrategy"
WAIT = 5000  # ms


@pytest.fixture
def trader(qtbot, runtime_home, tmp_path):
    """build_main_window() in the tests' runtime folder; the rotation engine keeps its instances in tmp_path."""
    for fmt in (QtCore.QSettings.Format.NativeFormat, QtCore.QSettings.Format.IniFormat):  # MainWindow's layout
        QtCore.QSettings.setPath(fmt, QtCore.QSettings.Scope.UserScope, str(tmp_path / "qsettings"))
    cwd = os.getcwd()
    qapp, main_engine, main_window = build_main_window()  # MainEngine chdirs into the runtime folder
    try:
        engine = main_engine.get_engine(APP_NAME)
        engine.init_engine(state_folder=tmp_path / "state", strategy_folder=tmp_path / "strategies")
        yield SimpleNamespace(qapp=qapp, main_engine=main_engine, event_engine=main_engine.event_engine,
                              main_window=main_window, engine=engine)
    finally:
        try:
            for widget in main_window.widgets.values():
                widget.close()
            main_window.hide()  # not close(): MainWindow.closeEvent asks with a modal box
            main_window.deleteLater()
        finally:
            main_engine.close()
            os.chdir(cwd)


@pytest.fixture
def manager(trader, qtbot):
    widget = RotationManager(trader.main_engine, trader.event_engine)
    qtbot.addWidget(widget)
    widget.resize(1500, 900)
    QtWidgets.QWidget.show(widget)  # RotationManager.show maximises
    return widget


@pytest.fixture
def boxes(monkeypatch):
    """Message boxes recorded instead of shown; question() answers Yes."""
    shown: list[tuple[str, str]] = []
    box = QtWidgets.QMessageBox
    for kind in ("warning", "information", "critical"):
        monkeypatch.setattr(box, kind, staticmethod(lambda parent, title, text, *a, k=kind: shown.append((k, text))))
    monkeypatch.setattr(box, "question", staticmethod(lambda *a, **k: box.StandardButton.Yes))
    return shown


def synthetic_snapshot(name: str) -> dict:
    """A strategy mid-session: a plan of three symbols, two legs, three orders, two fills, a summary."""
    plan = OrderPlan(name, "2024-01-05", ["510300.SSE", "159915.SZSE", "511010.SSE"], [0.6, 0.39, float("nan")],
                     notes={"510300.SSE": "rank 1", "159915.SZSE": "rank 2"})
    legs = [LegRecord("511010.SSE", False, 2000.0, 2000.0, filled=2000.0, sized=True),
            LegRecord("510300.SSE", True, 160_000.0, 159_900.0, filled=100_000.0, sized=True)]
    orders = [OrderRecord(f"{name}|2024-01-08|0|0", "511010.SSE", False, 2000.0, 100.2, 100.5, 0, "final",
                          "REPLAY.1", 2000.0, "filled", 2000.0),
              OrderRecord(f"{name}|2024-01-08|1|0", "510300.SSE", True, 159_900.0, 3.512, 3.51, 1, "final",
                          "REPLAY.2", 100_000.0, "cancelled", 100_000.0),
              OrderRecord(f"{name}|2024-01-08|1|1", "510300.SSE", True, 59_900.0, 3.52, 3.518, 1, "sent",
                          "REPLAY.3", 0.0, "active", 0.0)]
    fills = [FillRecord("REPLAY.t1", orders[0].reference, "511010.SSE", False, 100.5, 2000.0, 201_000.0,
                        20.1, 0.0, 0.0, 0.0, "rebalance", "2024-01-08T09:30:00+08:00"),
             FillRecord("REPLAY.t2", orders[1].reference, "510300.SSE", True, 3.51, 100_000.0, 351_000.0,
                        35.1, 0.0, 3.51, 0.0, "rank 1", "2024-01-08T09:31:00+08:00")]
    progress = DayProgress("2024-01-08", "retry", 1_000_000.0, {"511010.SSE": 2000.0}, legs, orders, fills, round=1)
    summary = {"day": "2024-01-05", "cash": 798_000.0, "market_value": 201_500.0, "equity": 999_500.0, "pnl": -500.0,
               "positions": {"511010.SSE": 2000.0}, "orders": 1, "fills": 1, "unfilled": {}, "reconciliation": []}
    return {"name": name, "class_name": CLASS, "gateway": "REPLAY", "inited": True, "trading": True,
            "error": "", "plan": plan.to_json(), "progress": progress.to_json(), "last_summary": summary,
            "trail": ["sizing.pass: unchanged"]}


def rows(table: QtWidgets.QTableWidget) -> list[list[str]]:
    return [[table.item(r, c).text() for c in range(table.columnCount())] for r in range(table.rowCount())]


def names(table: QtWidgets.QTableWidget) -> list[str]:
    return [row[0] for row in rows(table)]


def add_and_show(trader, manager, qtbot, name: str = "etf") -> dict:
    trader.engine.add_strategy(name, CLASS, {}, gateway="REPLAY")
    qtbot.waitUntil(lambda: name in manager.snapshots, timeout=WAIT)
    data = synthetic_snapshot(name)
    trader.event_engine.put(Event(EVENT_ROTATION_STRATEGY, data))
    qtbot.waitUntil(lambda: manager.snapshots[name].get("plan") is not None, timeout=WAIT)
    manager.strategy_table.selectRow(names(manager.strategy_table).index(name))
    return data


# -- (a) the assembled VeighNa Trader ----------------------------------------------------------------
def test_main_window_has_the_rotation_app(trader, qtbot):
    from vnpy_rotation.apps.rotation import RotationStrategyApp

    assert "REPLAY" in trader.main_engine.get_all_gateway_names()
    apps = {app.app_name for app in trader.main_engine.get_all_apps()}
    assert {APP_NAME, "CtaStrategy", "CtaBacktester", "RiskManager"} <= apps
    actions = {a.text(): a for a in trader.main_window.findChildren(QtGui.QAction)}
    action = actions[RotationStrategyApp.display_name]
    action.trigger()  # MainWindow.open_widget: RotationManager(main_engine, event_engine), shown
    manager = trader.main_window.widgets[APP_NAME]
    assert isinstance(manager, RotationManager)
    assert manager.isVisible()
    action.trigger()  # the same widget again
    assert trader.main_window.widgets[APP_NAME] is manager

    # closed and reopened: events while closed are not lost, the table is rebuilt from the engine
    manager.close()
    assert manager.signal_strategy.emit not in trader.event_engine._handlers.get(EVENT_ROTATION_STRATEGY, [])
    trader.engine.add_strategy("while_closed", CLASS, {})
    action.trigger()
    qtbot.waitUntil(lambda: names(manager.strategy_table) == ["while_closed"], timeout=WAIT)


# -- (b) the manager's tables and actions --------------------------------------------------------------
def test_manager_shows_strategies_plan_orders_fills_and_summary(trader, manager, qtbot):
    add_and_show(trader, manager, qtbot)
    assert rows(manager.strategy_table) == [["etf", CLASS, "REPLAY", "Yes", "Yes", ""]]

    plan = rows(manager.plan_table)
    assert [r[0] for r in plan] == ["510300.SSE", "159915.SZSE", "511010.SSE"]
    assert plan[0][1:] == ["60.00%", "rank 1", "Buy", "160,000", "159,900", "100,000", "59,900"]
    assert plan[1][1:4] == ["39.00%", "rank 2", ""]  # no leg yet
    assert plan[2][1] == "keep"  # NaN target: keep the holding
    assert plan[2][3:] == ["Sell", "2,000", "2,000", "2,000", "0"]

    orders = rows(manager.order_table)
    assert [o[0] for o in orders] == ["etf|2024-01-08|0|0", "etf|2024-01-08|1|0", "etf|2024-01-08|1|1"]
    assert orders[1][5:] == ["final", "cancelled", "100,000"]
    assert orders[2][2:5] == ["Buy", "59,900", "3.520"]

    fills = rows(manager.fill_table)
    assert fills[0] == ["2024-01-08 09:30:00", "511010.SSE", "Sell", "100.500", "2,000", "201,000.00", "20.10",
                        "rebalance"]
    assert fills[1][6] == "38.61"  # commission + transfer fee

    summary = dict((r[0], r[1]) for r in rows(manager.summary_table))
    assert summary["Equity"] == "999,500.00" and summary["P&L"] == "-500.00"
    assert summary["Positions"] == "511010.SSE 2,000"
    assert summary["Decision trail"] == "sizing.pass: unchanged"

    # an error flag, and the engine's log lines reach the log pane
    trader.event_engine.put(Event(EVENT_ROTATION_STRATEGY, {**synthetic_snapshot("etf"), "error": "Traceback ...",
                                                             "trading": False}))
    trader.event_engine.put(Event(EVENT_ROTATION_LOG, "marker-line-1"))
    qtbot.waitUntil(lambda: manager.strategy_table.item(0, 5).text() != "", timeout=WAIT)
    assert manager.strategy_table.item(0, 4).text() == "No"
    qtbot.waitUntil(lambda: "marker-line-1" in manager.log_edit.toPlainText(), timeout=WAIT)

    # a second strategy: selecting it shows its (empty) detail, the first keeps its rows
    trader.engine.add_strategy("other", CLASS, {})
    qtbot.waitUntil(lambda: manager.strategy_table.rowCount() == 2, timeout=WAIT)
    manager.strategy_table.selectRow(names(manager.strategy_table).index("other"))
    assert manager.plan_table.rowCount() == manager.order_table.rowCount() == manager.fill_table.rowCount() == 0
    manager.strategy_table.selectRow(names(manager.strategy_table).index("etf"))
    assert manager.fill_table.rowCount() == 2


def test_user_mistakes_show_a_message_box(trader, manager, qtbot, boxes, monkeypatch):
    trader.engine.add_strategy("etf", CLASS, {"top_n": 3})
    qtbot.waitUntil(lambda: manager.strategy_table.rowCount() == 1, timeout=WAIT)
    manager.strategy_table.selectRow(0)

    # start before init: InputRejected from the engine -> a warning, nothing raised, nothing changed
    manager.start_button.click()
    assert [kind for kind, _ in boxes] == ["warning"]
    assert not trader.engine.instances["etf"].trading

    # an edit the strategy's settings model rejects
    def accept_with(field: str, text: str):
        def exec_(dialog):
            dialog.fields[field].setText(text)
            return QtWidgets.QDialog.DialogCode.Accepted
        monkeypatch.setattr(ui.SettingDialog, "exec", exec_)

    accept_with("top_n", "-4")
    manager.edit_button.click()
    assert [kind for kind, _ in boxes] == ["warning", "warning"]
    assert trader.engine.instances["etf"].setting.settings["top_n"] == 3

    # an edit of a running strategy
    trader.engine.instances["etf"].trading = True
    accept_with("top_n", "4")
    manager.edit_button.click()
    assert len(boxes) == 3 and trader.engine.instances["etf"].setting.settings["top_n"] == 3
    trader.engine.instances["etf"].trading = False

    # a valid edit goes through; the dialog shows the current values
    accept_with("top_n", "4")
    manager.edit_button.click()
    assert len(boxes) == 3 and trader.engine.instances["etf"].setting.settings["top_n"] == 4
    dialog = ui.SettingDialog(trader.engine, ["REPLAY"], "etf")
    assert dialog.fields["top_n"].text() == "4" and not dialog.class_combo.isEnabled()

    # a field that does not parse keeps the dialog open
    dialog.fields["top_n"].setText("four")
    dialog.accept()
    assert dialog.result() != QtWidgets.QDialog.DialogCode.Accepted and len(boxes) == 4

    # add through the dialog, a duplicate name is rejected, remove (confirmed) drops the row
    def add_named(name: str):
        def exec_(dialog):
            dialog.class_combo.setCurrentText(CLASS)
            dialog.name_edit.setText(name)
            dialog.option_fields["max_rounds"].setText("5")
            return QtWidgets.QDialog.DialogCode.Accepted
        monkeypatch.setattr(ui.SettingDialog, "exec", exec_)

    add_named("second")
    manager.add_button.click()
    assert trader.engine.instances["second"].setting.max_rounds == 5
    qtbot.waitUntil(lambda: manager.strategy_table.rowCount() == 2, timeout=WAIT)
    manager.add_button.click()
    assert len(boxes) == 5
    manager.strategy_table.selectRow(names(manager.strategy_table).index("second"))
    manager.remove_button.click()
    assert "second" not in trader.engine.instances
    assert names(manager.strategy_table) == ["etf"]

    # nothing selected: a hint, no engine call
    manager.strategy_table.clearSelection()
    manager.init_button.click()
    assert boxes[-1][0] == "information" and not trader.engine.instances["etf"].inited


def test_parse_value_uses_the_type_of_the_default():
    assert ui.parse_value("3", 1) == 3 and isinstance(ui.parse_value("3", 1.0), float)
    assert ui.parse_value("week_end", "month_end") == "week_end"
    assert ui.parse_value('["510300.SSE"]', []) == ["510300.SSE"]
    assert ui.parse_value('{"mom_20": 1}', {}) == {"mom_20": 1}
    assert ui.parse_value("", None) is None and ui.parse_value("0.4", None) == 0.4
    assert ui.parse_value("pools.yaml", None) == "pools.yaml"
    for text, default in (("x", 1), ("1.5", 1), ("[1,", [])):
        with pytest.raises(ValueError):
            ui.parse_value(text, default)


# -- (c) screenshots ------------------------------------------------------------------------------------
def assert_picture(path: Path) -> None:
    assert path.stat().st_size > 0
    image = QtGui.QImage(str(path))
    assert not image.isNull() and image.width() > 50 and image.height() > 50
    colours = {image.pixel(x * image.width() // 32, y * image.height() // 32) for x in range(32) for y in range(32)}
    assert len(colours) > 2, f"{path.name} is (nearly) a single flat colour"


def screenshot_folders(tmp_path: Path) -> list[Path]:
    """The test's own folder, and ``$ROTATION_SCREENSHOTS`` when set (e.g. docs/screenshots); created."""
    folders = [tmp_path / "screenshots"] + ([Path(os.environ["ROTATION_SCREENSHOTS"])]
                                            if os.environ.get("ROTATION_SCREENSHOTS") else [])
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    return folders


def test_screenshots(trader, manager, qtbot, tmp_path):
    import qdarkstyle

    manager.setStyleSheet(qdarkstyle.load_stylesheet(qt_api="pyside6"))  # as VeighNa Trader's qapp styles it
    add_and_show(trader, manager, qtbot)
    for line in ("rotation engine initialised", "[etf] initialised", "[etf] open: 2 legs sized, 2 orders sent",
                 "[etf] retry: 1 order resubmitted"):
        trader.event_engine.put(Event(EVENT_ROTATION_LOG, line))
    qtbot.waitUntil(lambda: "resubmitted" in manager.log_edit.toPlainText(), timeout=WAIT)
    dialog = ui.SettingDialog(trader.engine, trader.main_engine.get_all_gateway_names(), "etf")
    dialog.setStyleSheet(manager.styleSheet())
    qtbot.addWidget(dialog)
    dialog.resize(520, dialog.sizeHint().height())
    dialog.show()
    qtbot.waitExposed(dialog)

    widgets = {"rotation_manager": manager, "strategy_table": manager.strategy_table, "plan_table": manager.plan_table,
               "order_table": manager.order_table, "fill_table": manager.fill_table,
               "summary_table": manager.summary_table, "log_pane": manager.log_edit, "setting_dialog": dialog}
    folders = screenshot_folders(tmp_path)
    for name, widget in widgets.items():
        picture = widget.grab()
        for folder in folders:
            path = folder / f"{name}.png"
            assert picture.save(str(path))
            assert_picture(path)


def test_replay_button_steps_a_paper_session(trader, manager, qtbot):
    """The GUI drives the replay gateway one session per click: the strategy's plan is executed there."""
    from conftest import fresh_bundled_store

    fresh_bundled_store()
    trader.main_engine.connect({"初始资金": 1_000_000.0, "开始日期": "2024-06-28", "结束日期": "2024-07-01",
                                "账本文件": ""}, "REPLAY")
    engine = trader.engine
    engine.add_strategy("paper", "EtfRotationStrategy", gateway="REPLAY", history_start="2024-06-28")
    engine.init_strategy("paper")
    engine.start_strategy("paper")
    risk = trader.main_engine.get_engine("RiskManager")
    risk.rules["委托规模检查"].update_setting({"order_volume_limit": 10**7, "order_value_limit": 10**7})
    for expected in ("2024-06-28", "2024-07-01"):
        manager.replay_button.click()
        qtbot.waitUntil(lambda day=expected: engine.instances["paper"].cycle.state.last_close == day, timeout=30_000)
    history = engine.instances["paper"].cycle.state.history
    assert history[-1]["fills"] > 0 and history[-1]["positions"]  # decided on Friday, traded on Monday


# -- (d) accounts: batch operations, execution statistics, the allocation in force -----------------------
def execution_rows(name: str, account: str) -> list[dict]:
    """Hand-built statistics (a strategy's day and cumulative, its account's day) as the snapshot holds them."""
    from datetime import date

    from vnpy_rotation.attribution.execution import ExecutionStats, RefusalCount

    nan = float("nan")
    day = ExecutionStats("strategy", name, "day", date(2024, 1, 8), 3, 2, 161_900.0, 102_000.0, 102_000 / 161_900,
                         2 / 3, 2, 15.0, 19.0, 552_000.0, 55.2 + 3.51, (55.2 + 3.51) / 552_000.0, 42.04, 23.4, -1.26,
                         (RefusalCount("lot_rounding", 1, 351.2), RefusalCount("risk_denied", 2, 70_000.0)))
    cumulative = ExecutionStats("strategy", name, "cumulative", date(2024, 1, 8), 5, 4, 200_000.0, 150_000.0, 0.75,
                                0.8, 0, nan, nan, 600_000.0, 60.0, 1e-4, nan, nan, nan)
    acct = ExecutionStats("account", account, "day", date(2024, 1, 8), 0, 0, 0.0, 0.0, nan, nan, 0, nan, nan, 0.0,
                          0.0, nan, nan, nan, nan)
    return [x.to_json() for x in (day, cumulative, acct)]


def hand_allocation():
    from datetime import datetime

    from vnpy_rotation.allocation.records import AccountLine, AllocationDecision, AllocationLine

    return AllocationDecision(datetime(2024, 1, 8, 15, 0), "risk_parity",
                              (AllocationLine("etf", "REPLAY", 600_000.0, 0.6, "capped", 0.18),
                               AllocationLine("vqm", "REPLAY", 350_000.0, 0.35, "1/σ")),
                              (AccountLine("REPLAY", 1_000_000.0, 950_000.0, "reserve 5%"),), "computed")


def allocate(trader, decisions) -> None:
    """The risk engine with an allocation configuration and ``decisions`` stored (the last one in force)."""
    from vnpy_rotation.allocation import allocation_config

    risk = trader.main_engine.get_engine("RotationRisk")
    risk.allocation_config = allocation_config(
        {"accounts": [{"id": "r", "gateway": "REPLAY", "kind": "replay"}],
         "strategies": [{"name": "etf", "account": "r"}, {"name": "vqm", "account": "r"}],
         "rule": "risk_parity"}, "test")
    for decision in decisions:
        risk.state_file.set_allocation(decision, True)


def show_accounts(trader, manager, qtbot) -> dict:
    allocate(trader, [hand_allocation()])
    trader.engine.add_strategy("etf", CLASS, {}, gateway="REPLAY")
    qtbot.waitUntil(lambda: "etf" in manager.snapshots, timeout=WAIT)
    data = {**synthetic_snapshot("etf"), "execution": execution_rows("etf", "REPLAY")}
    trader.event_engine.put(Event(EVENT_ROTATION_STRATEGY, data))
    qtbot.waitUntil(lambda: bool(manager.snapshots["etf"].get("execution")), timeout=WAIT)
    manager.strategy_table.selectRow(0)
    return data


def test_execution_and_allocation_tables(trader, manager, qtbot):
    show_accounts(trader, manager, qtbot)
    assert rows(manager.execution_table) == [
        ["strategy", "etf", "day", "2024-01-08", "3", "2", "63.0%", "66.7%", "15 / 19", "42.0", "23.4", "-1.3",
         "552,000.00", "1.1", "lot_rounding 1 (351.20); risk_denied 2 (70,000.00)"],
        ["strategy", "etf", "cumulative", "2024-01-08", "5", "4", "75.0%", "80.0%", "- / -", "-", "-", "-",
         "600,000.00", "1.0", "-"],
        ["account", "REPLAY", "day", "2024-01-08", "0", "0", "-", "-", "- / -", "-", "-", "-", "0.00", "-", "-"]]
    assert rows(manager.allocation_table) == [
        ["etf", "REPLAY", "600,000.00", "60.0%", "18.0%", "2024-01-08 15:00", "risk_parity", "capped"],
        ["vqm", "REPLAY", "350,000.00", "35.0%", "-", "2024-01-08 15:00", "risk_parity", "1/σ"],
        ["(account)", "REPLAY", "950,000.00", "95.0%", "-", "2024-01-08 15:00", "risk_parity",
         "equity 1,000,000.00; reserve 5%"]]
    # a strategy without statistics shows none; without an allocation configuration nothing is shown
    trader.main_engine.get_engine("RotationRisk").allocation_config = None
    trader.engine.add_strategy("other", CLASS, {})
    qtbot.waitUntil(lambda: manager.strategy_table.rowCount() == 2, timeout=WAIT)
    manager.strategy_table.selectRow(names(manager.strategy_table).index("other"))
    assert manager.execution_table.rowCount() == manager.allocation_table.rowCount() == 0


def test_batch_buttons_call_the_engine(trader, manager, qtbot, boxes, monkeypatch):
    calls: list[tuple] = []
    monkeypatch.setattr(trader.engine, "cancel_orders",
                        lambda strategy=None, account=None: calls.append(("cancel", strategy, account)) or ["REPLAY.7"])
    plan = SimpleNamespace(symbols=["510300.SSE", "511010.SSE"])
    monkeypatch.setattr(trader.engine, "flatten_strategy",
                        lambda name, reason: calls.append(("flatten", name, reason)) or plan)

    # not initialised: the strategy's batch buttons are disabled, the account's names the account
    trader.engine.add_strategy("etf", CLASS, {}, gateway="REPLAY")
    qtbot.waitUntil(lambda: manager.strategy_table.rowCount() == 1, timeout=WAIT)
    manager.strategy_table.selectRow(0)
    assert not manager.cancel_strategy_button.isEnabled() and not manager.flatten_button.isEnabled()
    assert manager.cancel_account_button.isEnabled() and "REPLAY" in manager.cancel_account_button.text()

    # initialised (a cycle whose broker holds one ETF; the plan names another)
    trader.engine.instances["etf"].cycle = SimpleNamespace(broker=SimpleNamespace(holdings=lambda: {"511010.SSE": 2000.0}))
    trader.event_engine.put(Event(EVENT_ROTATION_STRATEGY, synthetic_snapshot("etf")))
    qtbot.waitUntil(lambda: manager.flatten_button.isEnabled(), timeout=WAIT)
    manager.cancel_strategy_button.click()
    assert calls == [("cancel", "etf", None)]
    assert "REPLAY.7" in manager.log_edit.toPlainText()
    manager.cancel_account_button.click()  # question(): Yes
    assert calls[-1] == ("cancel", None, "REPLAY")

    shown: list[list[list[str]]] = []

    def answer(accepted: bool, reason: str = ""):
        def exec_(dialog):
            shown.append(rows(dialog.table))
            dialog.reason_edit.setText(reason)
            return QtWidgets.QDialog.DialogCode.Accepted if accepted else QtWidgets.QDialog.DialogCode.Rejected
        monkeypatch.setattr(ui.FlattenDialog, "exec", exec_)

    answer(False, "drawdown")  # cancelled: nothing happens
    manager.flatten_button.click()
    assert len(calls) == 2
    assert shown[-1] == [["159915.SZSE", "0", "0"], ["510300.SSE", "0", "0"], ["511010.SSE", "2,000", "0"]]
    answer(True, "drawdown")
    manager.flatten_button.click()
    assert calls[-1] == ("flatten", "etf", "drawdown")
    assert "510300.SSE → 0" in manager.log_edit.toPlainText()

    # the account's cancel answered No: nothing; an engine refusal: a warning box, nothing raised
    monkeypatch.setattr(QtWidgets.QMessageBox, "question", staticmethod(lambda *a, **k: QtWidgets.QMessageBox.StandardButton.No))
    manager.cancel_account_button.click()
    assert len(calls) == 3

    def refuse(**kwargs):
        from vnpy_rotation.errors import InputRejected, Problem
        raise InputRejected(Problem("cancel", None, "no"))
    monkeypatch.setattr(trader.engine, "cancel_orders", refuse)
    manager.cancel_strategy_button.click()
    assert boxes[-1][0] == "warning"


def test_account_screenshots(trader, manager, qtbot, tmp_path):
    import qdarkstyle

    manager.setStyleSheet(qdarkstyle.load_stylesheet(qt_api="pyside6"))
    show_accounts(trader, manager, qtbot)
    dialog = ui.FlattenDialog("etf", {"511010.SSE": 2000.0, "510300.SSE": 100_000.0}, ["159915.SZSE"])
    dialog.setStyleSheet(manager.styleSheet())
    qtbot.addWidget(dialog)
    dialog.resize(560, 320)
    dialog.show()
    qtbot.waitExposed(dialog)
    for table in (manager.execution_table, manager.allocation_table):
        table.resize(1500, 180)
    widgets = {"execution_table": manager.execution_table, "allocation_table": manager.allocation_table,
               "flatten_dialog": dialog}
    for folder in screenshot_folders(tmp_path):
        for name, widget in widgets.items():
            path = folder / f"{name}.png"
            assert widget.grab().save(str(path))
            assert_picture(path)
