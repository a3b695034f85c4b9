"""MarketMonitor, the monitor app's window in VeighNa Trader: the watchlist's live indicators and the alerts,
refreshed from the engine's ``EVENT_MONITOR_VIEW`` (once a second) — the same MonitorView the terminal monitor
renders."""

from __future__ import annotations

import math
import threading
from typing import Callable

from vnpy.event import Event, EventEngine
from vnpy.trader.engine import MainEngine
from vnpy.trader.ui import QtCore, QtGui, QtWidgets

from ....errors import RotationError
from ....monitor.records import Alert, Indicators
from ....monitor.view import MonitorView
from ...rotation.ui.tables import DataTable
from ...rotation.ui.widget import EventWindow, group, splitter
from ..engine import APP_NAME, EVENT_MONITOR_VIEW, MonitorEngine

TITLE = "Market monitor"
UP, DOWN = "#ff4040", "#3cb371"  # A-share convention: red up, green down
SEVERITY_COLOURS = {"info": "#4f9fe0", "warning": "#e0a030", "critical": "#ff4040"}


def pct(value: float | None) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:+.2%}"


def num(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def state(ind: Indicators) -> str:
    if ind.suspended:
        return "停牌"
    if ind.sealed_up:
        return "封涨停"
    if ind.sealed_down:
        return "封跌停"
    return "limit≠feed" if ind.limit_mismatch else ""


def watch_row(vt_symbol: str, ind: Indicators | None, rank: str = "") -> list[str]:
    """One table row; ``rank``: the strategies' ranks at the last close (``MonitorView.rank_text``)."""
    if ind is None:
        return [vt_symbol] + ["-"] * 10 + ["no quote", rank]
    return [vt_symbol, num(ind.last), pct(ind.change), num(ind.vwap), num(ind.volume_ratio, ".2f"),
            pct(ind.turnover_rate), pct(ind.return_1m), pct(ind.return_5m), pct(ind.to_limit_up),
            pct(ind.to_limit_down), f"{ind.time:%H:%M:%S}", state(ind), rank]


class WatchTable(DataTable):
    headers = ("Symbol", "Last", "Change", "VWAP", "量比", "Turnover", "1m", "5m", "To limit-up", "To limit-down",
               "Time", "State", "Rank")
    fit = (0, 10, 11, 12)

    def show_view(self, view: MonitorView) -> None:
        self.set_rows([watch_row(s, ind, view.rank_text(s)) for s, ind in view.rows])
        for r, (vt_symbol, _) in enumerate(view.rows):  # the factor values behind the rank, on hover
            self.item(r, 12).setToolTip("\n".join(
                f"{x.strategy} ({x.as_of}): " + ", ".join(f"{k} {v:.4g}" for k, v in x.factors)
                for x in view.scores.get(vt_symbol, ())))
        for r, (_, ind) in enumerate(view.rows):
            if ind is not None and not math.isnan(ind.change) and ind.change != 0:
                self.item(r, 2).setForeground(QtGui.QColor(UP if ind.change > 0 else DOWN))


class AlertTable(DataTable):
    headers = ("Time", "Severity", "Rule", "Symbol", "Reason")
    fit = (0, 1, 2, 3)

    def show_alerts(self, alerts: tuple[Alert, ...]) -> None:
        newest_first = alerts[::-1]
        self.set_rows([[f"{a.time:%H:%M:%S}", a.severity.value, a.rule, a.vt_symbol, a.reason] for a in newest_first])
        for r, alert in enumerate(newest_first):
            self.item(r, 1).setForeground(QtGui.QColor(SEVERITY_COLOURS[alert.severity.value]))


class MarketMonitor(EventWindow):
    """The monitor app's window (``MonitorApp.widget_name``)."""

    signal_view: QtCore.Signal = QtCore.Signal(Event)

    def __init__(self, main_engine: MainEngine, event_engine: EventEngine) -> None:
        super().__init__()
        self.main_engine = main_engine
        self.event_engine = event_engine
        self.monitor_engine: MonitorEngine = main_engine.get_engine(APP_NAME)
        self.registered = False
        self.init_ui()
        self.signal_view.connect(self.process_view_event)

    def init_ui(self) -> None:
        self.setWindowTitle(TITLE)
        self.resize(1100, 640)
        self.gateway_combo = QtWidgets.QComboBox()
        self.gateway_combo.addItems(self.main_engine.get_all_gateway_names())
        self.lists_edit = QtWidgets.QLineEdit()
        self.lists_edit.setPlaceholderText("lists of rotation_watchlists.yaml, comma-separated (blank: all)")
        self.start_button = QtWidgets.QPushButton("Start")
        self.start_button.clicked.connect(self.start_monitor)
        self.status_label = QtWidgets.QLabel()
        self.watch_table = WatchTable()
        self.alert_table = AlertTable()
        bar = QtWidgets.QHBoxLayout()
        bar.addWidget(QtWidgets.QLabel("Gateway"))
        bar.addWidget(self.gateway_combo)
        bar.addWidget(self.lists_edit, 1)
        bar.addWidget(self.start_button)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.status_label)
        layout.addWidget(splitter(QtCore.Qt.Orientation.Vertical, group("Watchlist", self.watch_table),
                                  group("Alerts", self.alert_table)))

    def start_monitor(self) -> None:
        """Start on the chosen gateway with the named lists; a bad watchlist file is a message box."""
        names = [n.strip() for n in self.lists_edit.text().split(",") if n.strip()] or None
        try:
            symbols = self.monitor_engine.start_watchlists(self.gateway_combo.currentText(), names)
        except RotationError as exc:
            QtWidgets.QMessageBox.warning(self, TITLE, str(exc))
            return
        # the strategies' ranks at the last close: loading their data takes seconds, off the GUI thread
        threading.Thread(target=self.monitor_engine.load_scores_logged, name="monitor-scores", daemon=True).start()
        self.show_view(self.monitor_engine.view())
        self.status_label.setText(f"{self.status_label.text()}  ·  started: {len(symbols)} symbols")

    def handlers(self) -> list[tuple[str, Callable[[Event], None]]]:
        return [(EVENT_MONITOR_VIEW, self.signal_view.emit)]

    def catch_up(self) -> None:
        self.show_view(self.monitor_engine.view())

    def process_view_event(self, event: Event) -> None:
        self.show_view(event.data)

    def show_view(self, view: MonitorView) -> None:
        link = "connected" if view.connected else "DISCONNECTED"
        self.status_label.setText(f"{view.at:%Y-%m-%d %H:%M:%S}  ·  {len(view.rows)} symbols  ·  {link}")
        self.status_label.setStyleSheet("" if view.connected else f"color: {UP}; font-weight: bold")
        self.watch_table.show_view(view)
        self.alert_table.show_alerts(view.alerts)
