"""RotationManager, the rotation app's window in VeighNa Trader: the strategies (add / edit / remove / init /
start / stop) and, for the selected one, its plan with the day's legs, orders, fills, execution statistics and
last summary; the allocation in force; batch operations (cancel a strategy's or an account's orders, flatten a
strategy), each through the engine's methods; a log."""

from __future__ import annotations

import json
import threading
from datetime import datetime
from typing import Any, Callable

from vnpy.event import Event, EventEngine
from vnpy.trader.engine import MainEngine
from vnpy.trader.ui import QtCore, QtGui, QtWidgets

from ....errors import InputRejected
from ..engine import APP_NAME, EVENT_ROTATION_LOG, EVENT_ROTATION_STRATEGY, RotationEngine
from ..settings import InstanceSetting
from .account_tables import AllocationTable, ExecutionTable
from .tables import DataTable, _missing, money, qty

TITLE = "Rotation strategies"
OPTIONS = ("bars", "history_start", "tolerance_bps", "max_rounds")  # InstanceSetting fields the dialog edits
SIDE, FLAG = {True: "Buy", False: "Sell"}, {True: "Yes", False: "No"}
SUMMARY_LABELS = {"day": "Day", "equity": "Equity", "market_value": "Market value", "cash": "Cash", "pnl": "P&L",
                  "positions": "Positions", "orders": "Orders", "fills": "Fills", "unfilled": "Unfilled",
                  "reconciliation": "Reconciliation", "carried": "Plan carried over"}


# -- cell text --------------------------------------------------------------------------------------
def plain(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {qty(v) if isinstance(v, (int, float)) else v}" for k, v in value.items()) or "-"
    if isinstance(value, (list, tuple)):
        return "; ".join(str(v) for v in value) or "-"
    if isinstance(value, bool):
        return FLAG[value]
    if isinstance(value, float):
        return money(value)
    return "-" if value is None else str(value)


# -- settings fields: shown as text, parsed back with the type of their default -------------------
def edit_text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def parse_value(text: str, default: Any) -> Any:
    """``text`` as the type of ``default`` (JSON for lists, mappings and None); ValueError when it is not."""
    text = text.strip()
    if isinstance(default, bool):  # (the dialog edits booleans with check boxes)
        return text.lower() in ("true", "1", "yes")
    if isinstance(default, int):
        return int(text)
    if isinstance(default, float):
        return float(text)
    if isinstance(default, str) and not text.startswith(("[", "{")):
        return text
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        if default is None:
            return text  # e.g. a path or a date
        raise ValueError(f"{text!r} is not valid JSON") from None


class StrategyTable(DataTable):
    headers = ("Name", "Class", "Gateway", "Inited", "Trading", "Error")
    fit = (0, 1)

    def __init__(self) -> None:
        super().__init__()
        self.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)

    def show_strategies(self, snapshots: dict[str, dict]) -> None:
        selected = self.selected_name()
        rows = [snapshots[name] for name in sorted(snapshots)]
        self.blockSignals(True)  # re-selecting below fires the selection signal once
        self.set_rows([[s["name"], s["class_name"], s["gateway"], FLAG[s["inited"]], FLAG[s["trading"]],
                        "ERROR" if s["error"] else ""] for s in rows])
        for r, s in enumerate(rows):
            if s["error"]:
                self.item(r, 5).setForeground(QtGui.QColor("red"))
                self.item(r, 5).setToolTip(s["error"])
        self.blockSignals(False)
        names = [s["name"] for s in rows]
        if names:
            self.selectRow(names.index(selected) if selected in names else 0)

    def selected_name(self) -> str | None:
        rows = self.selectionModel().selectedRows()
        return self.item(rows[0].row(), 0).text() if rows else None


class PlanTable(DataTable):
    """Today's targets and their legs: one row per symbol of the plan or of the day's execution."""

    headers = ("Symbol", "Target", "Note", "Side", "Wanted", "Submitted", "Filled", "Remaining")
    fit = (0, 2)

    def show_plan(self, plan: dict | None, progress: dict | None) -> None:
        plan = plan or {"symbols": [], "target": [], "notes": {}, "reason": "", "weighted": True}
        legs = {leg["symbol"]: leg for leg in (progress or {}).get("legs", [])}
        targets = dict(zip(plan["symbols"], plan["target"]))
        rows = []
        for symbol in list(plan["symbols"]) + [s for s in legs if s not in targets]:
            target = targets.get(symbol)
            shown = "keep" if symbol in targets and _missing(target) else "-" if _missing(target) \
                else f"{target:.2%}" if plan.get("weighted", True) else qty(target)
            note = plan["notes"].get(symbol) or plan.get("reason", "") if symbol in targets else ""
            leg = legs.get(symbol)
            rows.append([symbol, shown, note] + ([""] * 5 if leg is None else [
                SIDE[leg["buy"]], qty(leg["wanted"]), qty(leg["submitted"]), qty(leg["filled"]),
                qty(max(leg["submitted"] - leg["filled"], 0.0))]))
        self.set_rows(rows)


class OrderTable(DataTable):
    headers = ("Reference", "Symbol", "Side", "Volume", "Limit", "State", "Broker status", "Traded")
    fit = (0, 1, 6)

    def show_orders(self, progress: dict | None) -> None:
        self.set_rows([[o["reference"], o["symbol"], SIDE[o["buy"]], qty(o["volume"]), money(o["price"], ".3f"),
                        o["state"], o["status"] or "-", qty(o["traded"])] for o in (progress or {}).get("orders", [])])


class FillTable(DataTable):
    headers = ("Time", "Symbol", "Side", "Price", "Volume", "Value", "Fees", "Reason")
    fit = (0, 1)

    def show_fills(self, progress: dict | None) -> None:
        self.set_rows([[f["time"].replace("T", " ")[:19], f["symbol"], SIDE[f["buy"]], money(f["price"], ".3f"),
                        qty(f["volume"]), money(f["value"]), money(f["commission"] + f["stamp_duty"]
                                                                    + f["transfer_fee"]), f["reason"]]
                       for f in (progress or {}).get("fills", [])])


class SummaryTable(DataTable):
    """The last daily summary as key / value rows, then the last decision's sizing and risk trail."""

    headers = ("Item", "Value")
    fit = (0,)

    def show_summary(self, summary: dict | None, trail: list[str]) -> None:
        rows = [[SUMMARY_LABELS.get(key, key), plain(value)] for key, value in (summary or {}).items()]
        self.set_rows(rows + [["Decision trail", line] for line in trail])


# -- the add / edit dialog --------------------------------------------------------------------------
class SettingDialog(QtWidgets.QDialog):
    """Class, name, gateway, execution options and the class's own settings of one instance."""

    def __init__(self, engine: RotationEngine, gateways: list[str], name: str | None = None) -> None:
        super().__init__()
        self.engine = engine
        instance = engine.instances[name] if name else None
        self.current: dict = dict(instance.setting.settings) if instance else {}
        options = (instance.setting if instance else InstanceSetting(class_name="")).model_dump(mode="json")
        self.setWindowTitle(f"Edit {name}" if name else "Add rotation strategy")

        self.name_edit = QtWidgets.QLineEdit(name or "")
        self.name_edit.setReadOnly(bool(name))
        self.class_combo, self.gateway_combo = QtWidgets.QComboBox(), QtWidgets.QComboBox()
        self.class_combo.addItems(sorted(engine.classes))
        self.class_combo.setEnabled(not name)
        self.gateway_combo.setEditable(True)
        self.gateway_combo.addItems(gateways)
        self.gateway_combo.setCurrentText(options["gateway"])
        self.option_fields = {key: QtWidgets.QLineEdit(edit_text(options[key])) for key in OPTIONS}
        self.option_defaults = {key: InstanceSetting.model_fields[key].default for key in OPTIONS}

        form = QtWidgets.QFormLayout()
        for label, field in (("Class", self.class_combo), ("Name", self.name_edit), ("Gateway", self.gateway_combo),
                             *self.option_fields.items()):
            form.addRow(label, field)
        self.settings_form = QtWidgets.QFormLayout()
        box = QtWidgets.QGroupBox("Strategy settings")
        box.setLayout(self.settings_form)
        ok, cancel = QtWidgets.QDialogButtonBox.StandardButton.Ok, QtWidgets.QDialogButtonBox.StandardButton.Cancel
        buttons = QtWidgets.QDialogButtonBox(ok | cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        vbox = QtWidgets.QVBoxLayout(self)
        vbox.addLayout(form)
        vbox.addWidget(box)
        vbox.addWidget(buttons)

        self.class_combo.currentTextChanged.connect(self.show_settings)
        if instance:
            self.class_combo.setCurrentText(instance.setting.class_name)
        self.show_settings(self.class_combo.currentText())

    def show_settings(self, class_name: str) -> None:
        while self.settings_form.rowCount():
            self.settings_form.removeRow(0)
        self.defaults: dict[str, Any] = self.engine.class_parameters(class_name) if class_name else {}
        self.fields: dict[str, QtWidgets.QWidget] = {}
        for key, default in self.defaults.items():
            value = self.current.get(key, default)
            if isinstance(default, bool):
                field = QtWidgets.QCheckBox()
                field.setChecked(bool(value))
            else:
                field = QtWidgets.QLineEdit(edit_text(value))
            self.fields[key] = field
            self.settings_form.addRow(key, field)

    def values(self) -> tuple[str, str, dict, dict]:
        """name, class name, settings, options (gateway included); ValueError names a field that does not parse."""
        settings, options = {}, {"gateway": self.gateway_combo.currentText().strip()}
        for target, fields, defaults in ((settings, self.fields, self.defaults),
                                         (options, self.option_fields, self.option_defaults)):
            for key, field in fields.items():
                if isinstance(field, QtWidgets.QCheckBox):
                    target[key] = field.isChecked()
                    continue
                try:
                    target[key] = parse_value(field.text(), defaults[key])
                except ValueError as exc:
                    raise ValueError(f"{key}: {exc}") from None
        return self.name_edit.text().strip(), self.class_combo.currentText(), settings, options

    def accept(self) -> None:
        try:
            self.values()
        except ValueError as exc:
            QtWidgets.QMessageBox.warning(self, TITLE, str(exc))
            return
        super().accept()


class FlattenDialog(QtWidgets.QDialog):
    """Asks before flattening a strategy: what it will sell (its holdings and the symbols of its plan, target 0)
    and the reason, which is kept in the plan."""

    def __init__(self, name: str, holdings: dict[str, float], symbols: list[str]) -> None:
        super().__init__()
        self.setWindowTitle(f"清仓 {name}")
        self.table = HoldingTable()
        self.table.set_rows([[s, qty(holdings.get(s, 0.0)), "0"] for s in sorted(set(holdings) | set(symbols))])
        self.reason_edit = QtWidgets.QLineEdit("manual")
        ok, cancel = QtWidgets.QDialogButtonBox.StandardButton.Ok, QtWidgets.QDialogButtonBox.StandardButton.Cancel
        buttons = QtWidgets.QDialogButtonBox(ok | cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QtWidgets.QFormLayout()
        form.addRow("Reason", self.reason_edit)
        vbox = QtWidgets.QVBoxLayout(self)
        vbox.addWidget(QtWidgets.QLabel(f"{name}: sell everything below at the next open (sells first, T+1 and price "
                                        "limits as always, every order through the risk engine); the strategy "
                                        "then stops."))
        vbox.addWidget(self.table)
        vbox.addLayout(form)
        vbox.addWidget(buttons)

    def reason(self) -> str:
        return self.reason_edit.text().strip() or "manual"


class HoldingTable(DataTable):
    headers = ("Symbol", "Held", "Target")
    fit = (0,)


# -- the window -------------------------------------------------------------------------------------
class EventWindow(QtWidgets.QWidget):
    """An app window that follows the event engine only while it is shown: VeighNa Trader's MainWindow shows
    the same widget again after a close, so it registers on every show (and catches up with what it missed)
    and unregisters on close."""

    event_engine: EventEngine
    registered: bool = False

    def handlers(self) -> list[tuple[str, Callable[[Event], None]]]:
        """The (event type, handler) pairs followed while shown."""
        raise NotImplementedError

    def catch_up(self) -> None:
        """Show what changed while the window was closed (right after registering)."""

    def register_event(self) -> None:
        if self.registered:
            return
        for kind, handler in self.handlers():
            self.event_engine.register(kind, handler)
        self.registered = True
        self.catch_up()

    def unregister_event(self) -> None:
        if self.registered:
            for kind, handler in self.handlers():
                self.event_engine.unregister(kind, handler)
            self.registered = False

    def showEvent(self, event: QtGui.QShowEvent) -> None:
        self.register_event()
        super().showEvent(event)

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:
        self.unregister_event()
        super().closeEvent(event)


class RotationManager(EventWindow):
    """The rotation strategy app's window (``RotationStrategyApp.widget_name``)."""

    signal_strategy: QtCore.Signal = QtCore.Signal(Event)
    signal_log: QtCore.Signal = QtCore.Signal(Event)

    def __init__(self, main_engine: MainEngine, event_engine: EventEngine) -> None:
        super().__init__()
        self.main_engine = main_engine
        self.event_engine = event_engine
        self.rotation_engine: RotationEngine = main_engine.get_engine(APP_NAME)
        self.snapshots: dict[str, dict] = {}
        self.registered = False
        self.init_ui()
        self.signal_strategy.connect(self.process_strategy_event)
        self.signal_log.connect(self.process_log_event)
        if self.rotation_engine.settings_path is None:  # not initialised by whoever built the stack
            self.rotation_engine.init_engine()
        self.register_event()

    def init_ui(self) -> None:
        self.setWindowTitle(TITLE)
        self.strategy_table = StrategyTable()
        self.strategy_table.itemSelectionChanged.connect(self.show_selected)
        self.plan_table, self.order_table = PlanTable(), OrderTable()
        self.fill_table, self.summary_table = FillTable(), SummaryTable()
        self.execution_table, self.allocation_table = ExecutionTable(), AllocationTable()
        self.log_edit = QtWidgets.QTextEdit()
        self.log_edit.setReadOnly(True)

        buttons = QtWidgets.QHBoxLayout()
        engine = self.rotation_engine
        for text, slot in (("Add", self.add_strategy), ("Edit", self.for_selected(self.edit_strategy)),
                           ("Remove", self.for_selected(self.remove_strategy)),
                           ("Init", self.for_selected(engine.init_strategy)),
                           ("Start", self.for_selected(engine.start_strategy)),
                           ("Stop", self.for_selected(engine.stop_strategy))):
            button = QtWidgets.QPushButton(text)
            button.clicked.connect(slot)
            buttons.addWidget(button)
            setattr(self, f"{text.lower()}_button", button)
        for text, attr, slot in (("撤销全部委托", "cancel_strategy_button", self.cancel_strategy_orders),
                                 ("清仓…", "flatten_button", self.flatten_selected),
                                 ("撤销账户全部委托", "cancel_account_button", self.cancel_account_orders)):
            button = QtWidgets.QPushButton(text)
            button.clicked.connect(slot)
            buttons.addWidget(button)
            setattr(self, attr, button)
        self.cancel_strategy_button.setToolTip("Cancel the selected strategy's working orders (its session goes to "
                                               "its deadline; the plan stays for the next session)")
        self.flatten_button.setToolTip("Sell everything the selected strategy holds at the next open, then stop")
        self.cancel_account_button.setToolTip("Cancel every working order of the selected strategy's account")
        replay = QtWidgets.QPushButton("Replay next session")
        replay.setToolTip("Step the connected REPLAY gateway through its next trading day (paper)")
        replay.clicked.connect(self.replay_next)
        buttons.addWidget(replay)
        self.replay_button = replay
        buttons.addStretch()
        clear = QtWidgets.QPushButton("Clear log")
        clear.clicked.connect(self.log_edit.clear)
        buttons.addWidget(clear)

        self.plan_box = group("Targets and today's legs", self.plan_table)
        left = splitter(QtCore.Qt.Orientation.Vertical, group("Strategies", self.strategy_table),
                        group("Last daily summary", self.summary_table), group("Log", self.log_edit))
        self.tabs = QtWidgets.QTabWidget()
        for widget, title in ((self.fill_table, "Fills"), (self.execution_table, "Execution"),
                              (self.allocation_table, "Allocation")):
            self.tabs.addTab(widget, title)
        right = splitter(QtCore.Qt.Orientation.Vertical, self.plan_box, group("Orders", self.order_table),
                         self.tabs)
        vbox = QtWidgets.QVBoxLayout(self)
        vbox.addLayout(buttons)
        vbox.addWidget(splitter(QtCore.Qt.Orientation.Horizontal, left, right))

    def replay_next(self) -> None:
        """One replay session on a worker thread (the clock waits for the event queue between phases)."""
        gateway = self.main_engine.get_gateway("REPLAY")
        if gateway is None or gateway.book is None:
            QtWidgets.QMessageBox.information(self, TITLE, "Connect the REPLAY gateway first (start and end dates).")
            return
        engine = self.rotation_engine

        def step() -> None:
            try:
                day = engine.clock.replay_next(gateway)
                engine.write_log(f"回放交易日 {day}" if day else "回放区间已结束")
            except Exception as exc:  # shown in the log pane; the GUI keeps running
                engine.write_log(f"回放失败: {exc!r}")

        threading.Thread(target=step, name="rotation-replay-step", daemon=True).start()

    # -- events -------------------------------------------------------------------------------------
    def handlers(self) -> list[tuple[str, Callable[[Event], None]]]:
        return [(EVENT_ROTATION_STRATEGY, self.signal_strategy.emit), (EVENT_ROTATION_LOG, self.signal_log.emit)]

    def catch_up(self) -> None:
        self.snapshots = {name: self.rotation_engine.snapshot(i) for name, i in
                          list(self.rotation_engine.instances.items())}  # events missed while closed
        self.strategy_table.show_strategies(self.snapshots)
        self.show_selected()

    def process_strategy_event(self, event: Event) -> None:
        data: dict = event.data
        if data["name"] not in self.rotation_engine.instances:
            return  # a late event of a removed strategy
        self.snapshots[data["name"]] = data
        self.strategy_table.show_strategies(self.snapshots)
        if self.strategy_table.selected_name() == data["name"]:
            self.show_selected()

    def process_log_event(self, event: Event) -> None:
        self.log_edit.append(f"{datetime.now():%H:%M:%S}  {event.data}")

    def show_selected(self) -> None:
        data = self.snapshots.get(self.strategy_table.selected_name() or "", {})
        plan = data.get("plan")
        self.plan_box.setTitle("Targets and today's legs" + (f" (decided {plan['decided']}, {plan['reason']})"
                                                              if plan else ""))
        self.plan_table.show_plan(plan, data.get("progress"))
        self.order_table.show_orders(data.get("progress"))
        self.fill_table.show_fills(data.get("progress"))
        self.summary_table.show_summary(data.get("last_summary"), data.get("trail", []))
        self.execution_table.show_execution(data.get("execution"))
        self.allocation_table.show_allocation(self.allocation())
        self.update_buttons(data)

    def allocation(self) -> dict | None:
        """The risk engine's allocation record in force (JSON), None without one."""
        risk = self.main_engine.engines.get("RotationRisk")  # (get_engine logs every miss: no risk app added)
        decision = risk.allocation() if risk is not None else None
        return None if decision is None else decision.to_json()

    def update_buttons(self, data: dict) -> None:
        """Batch operations only where they apply: on an initialised strategy; an account's cancel names it."""
        inited = bool(data.get("inited"))
        self.cancel_strategy_button.setEnabled(inited)
        self.flatten_button.setEnabled(inited)
        account = data.get("gateway") or ""
        self.cancel_account_button.setEnabled(bool(account))
        self.cancel_account_button.setText(f"撤销账户全部委托 ({account})" if account else "撤销账户全部委托")

    # -- actions ------------------------------------------------------------------------------------
    def guarded(self, call: Callable[..., None], *args: Any, **kwargs: Any) -> bool:
        """Run an engine call; a user mistake (InputRejected) is shown in a message box."""
        try:
            call(*args, **kwargs)
        except InputRejected as exc:
            QtWidgets.QMessageBox.warning(self, TITLE, str(exc))
            return False
        return True

    def for_selected(self, call: Callable[[str], None]) -> Callable[[], None]:
        """A button's slot: ``call`` with the selected strategy's name, guarded."""
        def slot() -> None:
            name = self.strategy_table.selected_name()
            if name is None:
                QtWidgets.QMessageBox.information(self, TITLE, "Select a strategy first.")
            else:
                self.guarded(call, name)
        return slot

    def cancel_strategy_orders(self) -> None:
        name = self.strategy_table.selected_name()
        if name is not None:
            self.batch(f"撤销 {name} 全部委托", self.rotation_engine.cancel_orders, strategy=name)

    def cancel_account_orders(self) -> None:
        account = self.snapshots.get(self.strategy_table.selected_name() or "", {}).get("gateway")
        if not account:
            return
        answer = QtWidgets.QMessageBox.question(self, TITLE, f"Cancel every working order of account {account}?")
        if answer == QtWidgets.QMessageBox.StandardButton.Yes:
            self.batch(f"撤销账户 {account} 全部委托", self.rotation_engine.cancel_orders, account=account)

    def flatten_selected(self) -> None:
        name = self.strategy_table.selected_name()
        instance = self.rotation_engine.instances.get(name or "")
        if instance is None or instance.cycle is None:
            return
        plan = self.snapshots.get(name or "", {}).get("plan") or {}
        dialog = FlattenDialog(instance.name, instance.cycle.broker.holdings(), list(plan.get("symbols", [])))
        if dialog.exec() == QtWidgets.QDialog.DialogCode.Accepted:
            self.batch(f"清仓 {name}", self.rotation_engine.flatten_strategy, instance.name, dialog.reason())

    def batch(self, what: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """A batch operation: its result in the log pane; a refusal (InputRejected) in a message box."""
        try:
            result = call(*args, **kwargs)
        except InputRejected as exc:
            QtWidgets.QMessageBox.warning(self, TITLE, str(exc))
            return
        shown = (f"{len(result)} 笔: {', '.join(result) or '-'}" if isinstance(result, list)
                 else f"计划 {', '.join(f'{s} → 0' for s in result.symbols) or '-'}")
        self.process_log_event(Event(EVENT_ROTATION_LOG, f"{what}: {shown}"))

    def add_strategy(self) -> None:
        dialog = SettingDialog(self.rotation_engine, self.main_engine.get_all_gateway_names())
        if dialog.exec() == QtWidgets.QDialog.DialogCode.Accepted:
            name, class_name, settings, options = dialog.values()
            self.guarded(self.rotation_engine.add_strategy, name, class_name, settings, **options)

    def edit_strategy(self, name: str) -> None:
        dialog = SettingDialog(self.rotation_engine, self.main_engine.get_all_gateway_names(), name)
        if dialog.exec() == QtWidgets.QDialog.DialogCode.Accepted:
            _, _, settings, options = dialog.values()
            self.rotation_engine.edit_strategy(name, settings, **options)

    def remove_strategy(self, name: str) -> None:
        answer = QtWidgets.QMessageBox.question(self, TITLE, f"Remove {name} and its saved state?")
        if answer == QtWidgets.QMessageBox.StandardButton.Yes:
            self.rotation_engine.remove_strategy(name)
            self.snapshots.pop(name, None)  # the engine sends no event for a removal
            self.strategy_table.show_strategies(self.snapshots)
            self.show_selected()

    def show(self) -> None:
        self.showMaximized()


def group(title: str, widget: QtWidgets.QWidget) -> QtWidgets.QGroupBox:
    box = QtWidgets.QGroupBox(title)
    QtWidgets.QVBoxLayout(box).addWidget(widget)
    return box


def splitter(orientation: QtCore.Qt.Orientation, *widgets: QtWidgets.QWidget) -> QtWidgets.QSplitter:
    split = QtWidgets.QSplitter(orientation)
    for widget in widgets:
        split.addWidget(widget)
    return split
