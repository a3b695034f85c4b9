"""RiskMonitor, the risk app's window in VeighNa Trader: each scope's rung (the account, then each strategy)
with its peak, drawdown, reasons, flags and latest exception-test zone; the orders the rule refused; the
rung changes; the monitors' alerts; the capital allocation in force and its last re-allocations; a manual reset and the clearing of a raised fail-safe flag, each asking
for a reason."""

from __future__ import annotations

from typing import Any, Callable

from vnpy.event import Event, EventEngine
from vnpy.trader.engine import MainEngine
from vnpy.trader.ui import QtCore, QtGui, QtWidgets

from ....errors import InputRejected
from ....risk.events import EVENT_RISK_SNAPSHOT
from ...rotation.ui.account_tables import AllocationTable, rate
from ...rotation.ui.tables import DataTable, money
from ...rotation.ui.widget import EventWindow, group, splitter
from ..engine import APP_NAME, RiskEngine

TITLE = "Risk monitor"
RUNG_COLOURS = {"REDUCING": "orange", "HALTED": "red"}
ZONE_COLOURS = {"yellow": "orange", "red": "red"}


def percent(value: Any) -> str:
    return "-" if value is None else f"{value:+.2%}"


class ScopeTable(DataTable):
    headers = ("Scope", "Rung", "Since", "Peak", "Equity", "Drawdown", "Reasons", "Flags", "Exception test")
    fit = (0, 1, 2, 3, 4, 5, 7, 8)

    def show_rows(self, rows: list[dict[str, Any]], zones: dict[str, str]) -> None:
        self.set_rows([[r["scope"], r["rung"], r["since"] or "-", money(r["peak"]), money(r["equity"]),
                        percent(r["drawdown"]), "; ".join(r["reasons"]) or "-", ", ".join(r["flags"]) or "-",
                        zones.get(r["scope"]) or r.get("zone", "")] for r in rows])
        for i, r in enumerate(rows):
            colour = RUNG_COLOURS.get(r["rung"])
            if colour:
                self.item(i, 1).setForeground(QtGui.QColor(colour))
            zone = ZONE_COLOURS.get((r.get("verdict") or {}).get("zone"))
            if zone and r["scope"] not in zones:
                self.item(i, 8).setForeground(QtGui.QColor(zone))
            self.item(i, 6).setToolTip("\n".join(r["reasons"]))

    def selected_scope(self) -> str | None:
        rows = self.selectionModel().selectedRows()
        return self.item(rows[0].row(), 0).text() if rows else None


class DenialTable(DataTable):
    headers = ("Time", "Strategy", "Symbol", "Side", "Volume", "Rung", "Reason")
    fit = (0, 1, 2, 3, 4, 5)

    def show_denials(self, denials: list[dict[str, Any]]) -> None:
        self.set_rows([[d["time"].replace("T", " ")[:19], d["strategy"] or "-", d["vt_symbol"], d["direction"],
                        f"{d['volume']:,.0f}", d["rung"], d["reason"]] for d in reversed(denials)])


class AlertTable(DataTable):
    headers = ("Day", "Scope", "Kind", "Reason")
    fit = (0, 1, 2)

    def show_alerts(self, alerts: list[dict[str, Any]]) -> None:
        self.set_rows([[a["day"], a["scope"], a["kind"], a["reason"]] for a in reversed(alerts)])


class ChangeTable(DataTable):
    headers = ("Day", "Scope", "From", "To", "Source", "Reason")
    fit = (0, 1, 2, 3, 4)

    def show_changes(self, history: list[dict[str, Any]]) -> None:
        self.set_rows([[c["day"], c["scope"], c["before"], c["after"], c["source"], c["reason"]]
                       for c in reversed(history)])


class ReallocationTable(DataTable):
    """The re-allocations, newest first: one row per decision and strategy."""

    headers = ("Date", "Rule", "Strategy", "Account", "Amount (CNY)", "Weight", "Reason")
    fit = (0, 1, 2, 3, 4, 5)
    shown = 20  # the last re-allocations listed (the state file keeps more)

    def show_allocations(self, decisions: list[dict[str, Any]]) -> None:
        self.set_rows([[d["at"].replace("T", " ")[:16], d["rule"], x["strategy"], x["account"], money(x["amount"]),
                        rate(x["weight"]), x["reason"] or d.get("reason", "")]
                       for d in reversed(decisions[-self.shown:]) for x in d["lines"]])


class RiskMonitor(EventWindow):
    """The risk app's window; refreshed by the engine's ``eRiskSnapshot`` events."""

    signal_snapshot = QtCore.Signal(Event)

    def __init__(self, main_engine: MainEngine, event_engine: EventEngine) -> None:
        super().__init__()
        self.main_engine = main_engine
        self.event_engine = event_engine
        self.risk_engine: RiskEngine = main_engine.get_engine(APP_NAME)
        self.zones: dict[str, str] = {}  # scope -> the latest exception test's traffic-light zone
        self.data: dict[str, Any] = {"rows": [], "denials": [], "alerts": [], "history": []}
        self.registered = False
        self.setWindowTitle(TITLE)
        self.scope_table = ScopeTable()
        self.denial_table = DenialTable()
        self.change_table = ChangeTable()
        self.alert_table = AlertTable()
        self.allocation_table = AllocationTable()
        self.reallocation_table = ReallocationTable()
        reset = QtWidgets.QPushButton("Reset selected to ACTIVE…")
        reset.setToolTip("A manual return to ACTIVE; it asks for a reason, which is kept in the audit rows")
        reset.clicked.connect(self.reset_selected)
        self.reset_button = reset
        clear = QtWidgets.QPushButton("Clear a flag of the selected…")
        clear.setToolTip("Clear a raised fail-safe flag; it asks for a reason, which is kept in the audit rows")
        clear.clicked.connect(self.clear_selected)
        self.clear_button = clear
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(reset)
        buttons.addWidget(clear)
        buttons.addStretch()
        vbox = QtWidgets.QVBoxLayout(self)
        vbox.addLayout(buttons)
        lower = splitter(QtCore.Qt.Orientation.Horizontal, group("Rung changes", self.change_table),
                         group("Monitor alerts", self.alert_table))
        capital = splitter(QtCore.Qt.Orientation.Horizontal, group("Allocation in force", self.allocation_table),
                           group("Re-allocations", self.reallocation_table))
        vbox.addWidget(splitter(QtCore.Qt.Orientation.Vertical, group("Ladders", self.scope_table),
                                group("Refused orders", self.denial_table), lower, capital))
        self.signal_snapshot.connect(self.process_snapshot_event)

    # -- data ---------------------------------------------------------------------------------------
    def set_exception_zone(self, scope: str, zone: str) -> None:
        """Show ``zone`` as ``scope``'s latest exception test instead of the engine's own verdict (which the
        column shows otherwise: the 99 % historical VaR's traffic light over the scope's last 250 closes)."""
        self.zones[scope] = zone
        self.refresh()

    def process_snapshot_event(self, event: Event) -> None:
        self.data = event.data
        self.refresh()

    def refresh(self) -> None:
        self.scope_table.show_rows(self.data["rows"], self.zones)
        self.denial_table.show_denials(self.data["denials"])
        self.change_table.show_changes(self.data["history"])
        self.alert_table.show_alerts(self.data["alerts"])
        self.allocation_table.show_allocation(self.data.get("allocation"))
        self.reallocation_table.show_allocations(self.data.get("allocations", []))

    # -- actions ------------------------------------------------------------------------------------
    def reset_selected(self) -> None:
        scope = self.scope_table.selected_scope()
        if scope is None:
            QtWidgets.QMessageBox.information(self, TITLE, "Select a ladder first.")
            return
        reason, ok = QtWidgets.QInputDialog.getText(self, TITLE, f"Why reset {scope} to ACTIVE?")
        if not ok:
            return
        try:
            self.risk_engine.reset(scope, reason, who="gui")
        except InputRejected as exc:
            QtWidgets.QMessageBox.warning(self, TITLE, str(exc))

    def clear_selected(self) -> None:
        scope = self.scope_table.selected_scope()
        row = next((r for r in self.data["rows"] if r["scope"] == scope), None)
        if row is None or not row["flags"]:
            QtWidgets.QMessageBox.information(self, TITLE, "Select a ladder with a raised flag first.")
            return
        flag, ok = QtWidgets.QInputDialog.getItem(self, TITLE, f"Which flag of {scope}?", row["flags"], 0, False)
        if not ok:
            return
        reason, ok = QtWidgets.QInputDialog.getText(self, TITLE, f"Why clear {flag} of {scope}?")
        if not ok:
            return
        try:
            self.risk_engine.clear_flag(scope, flag, reason, who="gui")
        except InputRejected as exc:
            QtWidgets.QMessageBox.warning(self, TITLE, str(exc))

    # -- events -------------------------------------------------------------------------------------
    def handlers(self) -> list[tuple[str, Callable[[Event], None]]]:
        return [(EVENT_RISK_SNAPSHOT, self.signal_snapshot.emit)]

    def catch_up(self) -> None:
        self.data = self.risk_engine.snapshot()  # what changed while the window was closed
        self.refresh()
