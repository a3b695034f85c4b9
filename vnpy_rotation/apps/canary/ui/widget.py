"""CanaryManager, the canary app's window in VeighNa Trader: the stored versions with their aliases, and for the
chosen strategy its canary's stage strip, the last session's gates, the transitions and the two version books;
Promote / Reject / Rollback ask for a reason and go through the release table (a refusal is a message box),
and a release check of the selected version shows the pre-release gates ``run.py release check`` prints."""

from __future__ import annotations

from typing import Any, Callable

from vnpy.event import Event, EventEngine
from vnpy.trader.engine import MainEngine
from vnpy.trader.ui import QtCore, QtGui, QtWidgets

from ....canary.release import GateResult
from ....errors import RotationError
from ...rotation.ui.tables import DataTable, money
from ...rotation.ui.widget import EventWindow, group, splitter
from ..engine import APP_NAME, EVENT_CANARY_VIEW, CanaryEngine, CanarySnapshot, StrategyCanary

TITLE = "Canary releases"
RESULT_COLOURS = {"passed": "#3cb371", "failed": "#ff4040"}  # readable on light and dark styles


def number(value: Any, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


def colour(table: QtWidgets.QTableWidget, row: int, column: int, colours: dict[str, str]) -> None:
    item = table.item(row, column)
    name = colours.get(item.text())
    if name:
        item.setForeground(QtGui.QColor(name))


class VersionTable(DataTable):
    headers = ("Id", "Strategy", "Created", "Sharpe", "Max drawdown", "Aliases", "Note")
    fit = (0, 1, 2, 3, 4, 5)

    def show_versions(self, snapshot: CanarySnapshot) -> None:
        selected = self.selected_id()
        self.set_rows([[v.id, v.strategy, v.created.replace("T", " ")[:19], number(v.sharpe, ".2f"),
                        "-" if v.max_drawdown is None else f"{v.max_drawdown:.2%}", ", ".join(v.aliases) or "-",
                        v.note or "-"] for v in snapshot.versions])
        ids = [v.id for v in snapshot.versions]
        if selected in ids:
            self.selectRow(ids.index(selected))

    def selected_id(self) -> str | None:
        rows = self.selectionModel().selectedRows()
        return self.item(rows[0].row(), 0).text() if rows else None


class StageTable(DataTable):
    """The stage strip: one row per stage of the table, the current one highlighted."""

    headers = ("Stage", "Share", "Min sessions", "Sessions", "State")
    fit = (0, 1, 2, 3, 4)

    def show_stages(self, canary: StrategyCanary | None) -> None:
        stages = canary.stages if canary is not None else ()
        self.set_rows([[s.name, f"{s.share:.0%}", str(s.min_sessions),
                        "-" if s.state in ("done", "next") else str(canary.sessions_in_stage), s.state]
                       for s in stages])
        for r, s in enumerate(stages):
            if s.state not in ("done", "next"):
                for c in range(self.columnCount()):
                    item = self.item(r, c)
                    item.setBackground(QtGui.QColor("#2f6f4f"))
                    item.setForeground(QtGui.QColor("white"))
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)


class GateTable(DataTable):
    headers = ("Gate", "Kind", "Value", "Threshold", "Result", "Note")
    fit = (0, 1, 2, 3, 4)

    def show_gates(self, canary: StrategyCanary | None) -> None:
        gates = canary.gates if canary is not None else ()
        self.set_rows([[g.name, g.kind, number(g.value), number(g.threshold), g.result, g.note or ""]
                       for g in gates])
        for r in range(len(gates)):
            colour(self, r, 4, RESULT_COLOURS)


class HistoryTable(DataTable):
    headers = ("Day", "Event", "From", "To", "Reason")
    fit = (0, 1, 2, 3)

    def show_history(self, canary: StrategyCanary | None) -> None:
        history = canary.history if canary is not None else ()
        self.set_rows([[t.day, t.event, t.source, t.target, t.reason] for t in reversed(history)])


class BookTable(DataTable):
    headers = ("Role", "Version", "Book", "Equity", "Cash", "Holdings", "Fees")
    fit = (0, 1, 2, 3, 4, 5, 6)

    def show_books(self, canary: StrategyCanary | None) -> None:
        books = canary.books if canary is not None else ()
        self.set_rows([[b.role, b.version, "paper" if b.paper else "real", money(b.equity), money(b.cash),
                        str(b.holdings), money(b.fees)] for b in books])


class AliasTable(DataTable):
    headers = ("When", "Strategy", "Alias", "From", "To", "Who", "Why")
    fit = (0, 1, 2, 3, 4, 5)

    def show_moves(self, snapshot: CanarySnapshot) -> None:
        self.set_rows([[m.at.replace("T", " ")[:19], m.strategy, m.alias, m.previous or "-", m.version or "retired",
                        m.who, m.why] for m in snapshot.alias_moves])


class CheckTable(DataTable):
    headers = ("Gate", "Value", "Threshold", "Result", "Reason")
    fit = (0, 1, 2, 3)

    def show_check(self, results: tuple[GateResult, ...]) -> None:
        self.set_rows([[r.name, "-" if r.value is None else str(r.value),
                        "-" if r.threshold is None else str(r.threshold), "passed" if r.passed else "failed",
                        r.reason] for r in results])
        for r in range(len(results)):
            colour(self, r, 3, RESULT_COLOURS)


class CanaryManager(EventWindow):
    """The canary app's window (``CanaryApp.widget_name``); refreshed by the engine's view events."""

    signal_view: QtCore.Signal = QtCore.Signal(Event)

    def __init__(self, main_engine: MainEngine, event_engine: EventEngine) -> None:
        super().__init__()
        self.main_engine = main_engine
        self.event_engine = event_engine
        self.canary_engine: CanaryEngine = main_engine.get_engine(APP_NAME)
        self.data = CanarySnapshot((), (), ())
        self.registered = False
        self.init_ui()
        self.signal_view.connect(self.process_view_event)

    def init_ui(self) -> None:
        self.setWindowTitle(TITLE)
        self.strategy_combo = QtWidgets.QComboBox()
        self.strategy_combo.setMinimumWidth(140)
        self.strategy_combo.currentTextChanged.connect(lambda _: self.show_strategy())
        self.status_label = QtWidgets.QLabel("-")
        self.status_label.setWordWrap(True)
        policy = QtWidgets.QSizePolicy.Policy
        self.status_label.setSizePolicy(policy.Preferred, policy.Maximum)  # one or two lines, not a third of the window
        self.version_table, self.stage_table, self.gate_table = VersionTable(), StageTable(), GateTable()
        self.history_table, self.book_table = HistoryTable(), BookTable()
        self.alias_table, self.check_table = AliasTable(), CheckTable()

        buttons = QtWidgets.QHBoxLayout()
        label = QtWidgets.QLabel("Strategy")
        label.setMinimumWidth(80)  # the dark style pads labels after their size hint was taken
        buttons.addWidget(label)
        buttons.addWidget(self.strategy_combo)
        for text, tip, slot in (
                ("Promote…", "Approve the promotion the canary awaits (only while awaiting approval)", self.promote),
                ("Reject…", "Decline the promotion the canary awaits: it stays in its stage", self.reject),
                ("Rollback…", "Roll the candidate back at the next close: its capital returns to the champion",
                 self.rollback)):
            button = QtWidgets.QPushButton(text)
            button.setToolTip(tip + "; it asks for a reason, kept in the canary's history")
            button.clicked.connect(slot)
            buttons.addWidget(button)
            setattr(self, f"{text.rstrip('…').lower()}_button", button)
        buttons.addStretch()
        check = QtWidgets.QPushButton("Release check of selected version")
        check.setToolTip("The pre-release gates of the selected version (as run.py release check)")
        check.clicked.connect(self.check_selected)
        self.check_button = check
        buttons.addWidget(check)
        refresh = QtWidgets.QPushButton("Refresh")
        refresh.clicked.connect(self.refresh)
        buttons.addWidget(refresh)

        horizontal, vertical = QtCore.Qt.Orientation.Horizontal, QtCore.Qt.Orientation.Vertical
        canary = splitter(vertical, splitter(horizontal, group("Stages", self.stage_table),
                                             group("Version books", self.book_table)),
                          group("Gates of the last session", self.gate_table),
                          group("Transitions", self.history_table))
        registry = splitter(vertical, group("Versions", self.version_table), group("Alias moves", self.alias_table),
                            group("Release check", self.check_table))
        vbox = QtWidgets.QVBoxLayout(self)
        vbox.addLayout(buttons)
        vbox.addWidget(self.status_label)
        panes = splitter(horizontal, canary, registry)
        panes.setSizes([900, 700])
        vbox.addWidget(panes)

    # -- data ---------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Read the registry and the rotation engine again (the engine publishes; this widget redraws)."""
        self.canary_engine.request_view()

    def process_view_event(self, event: Event) -> None:
        self.show_snapshot(event.data)

    def show_snapshot(self, snapshot: CanarySnapshot) -> None:
        self.data = snapshot
        names = [s.strategy for s in snapshot.strategies]
        current = self.strategy_combo.currentText()
        if names != [self.strategy_combo.itemText(i) for i in range(self.strategy_combo.count())]:
            self.strategy_combo.blockSignals(True)
            self.strategy_combo.clear()
            self.strategy_combo.addItems(names)
            running = [s.strategy for s in snapshot.strategies if s.running]
            chosen = current if current in names else (running or names or [""])[0]
            self.strategy_combo.setCurrentText(chosen)
            self.strategy_combo.blockSignals(False)
        self.version_table.show_versions(snapshot)
        self.alias_table.show_moves(snapshot)
        self.show_strategy()

    def selected(self) -> StrategyCanary | None:
        return self.data.strategy(self.strategy_combo.currentText())

    def show_strategy(self) -> None:
        canary = self.selected()
        self.status_label.setText(status_text(canary))
        self.stage_table.show_stages(canary)
        self.gate_table.show_gates(canary)
        self.history_table.show_history(canary)
        self.book_table.show_books(canary)

    # -- actions ------------------------------------------------------------------------------------
    def guarded(self, call: Callable[..., Any], *args: Any) -> Any:
        """Run an engine call; a refusal (bad input, an event the release table refuses) is a message box."""
        try:
            return call(*args)
        except RotationError as exc:
            QtWidgets.QMessageBox.warning(self, TITLE, str(exc))
            return None

    def command(self, verb: str, call: Callable[[str, str], Any]) -> None:
        strategy = self.strategy_combo.currentText()
        if not strategy:
            QtWidgets.QMessageBox.information(self, TITLE, "No rotation strategy to act on.")
            return
        reason, ok = QtWidgets.QInputDialog.getText(self, TITLE, f"Why {verb} the canary of {strategy}?")
        if ok:
            self.guarded(call, strategy, reason)

    def promote(self) -> None:
        self.command("promote", self.canary_engine.promote)

    def reject(self) -> None:
        self.command("reject the promotion of", self.canary_engine.reject)

    def rollback(self) -> None:
        self.command("roll back", self.canary_engine.rollback)

    def check_selected(self) -> None:
        ref = self.version_table.selected_id()
        if ref is None:
            QtWidgets.QMessageBox.information(self, TITLE, "Select a version first.")
            return
        checked = self.guarded(self.canary_engine.check, ref)
        if checked is not None:
            self.check_table.show_check(checked[1])

    # -- events -------------------------------------------------------------------------------------
    def handlers(self) -> list[tuple[str, Callable[[Event], None]]]:
        return [(EVENT_CANARY_VIEW, self.signal_view.emit)]

    def catch_up(self) -> None:
        self.canary_engine.request_view()  # what changed while the window was closed


def status_text(canary: StrategyCanary | None) -> str:
    """The one-line state of a strategy's release above the tables."""
    if canary is None:
        return "No rotation strategy."
    runs = f"{canary.strategy} runs version {canary.version or '(not registered)'}"
    if not canary.canary:
        return f"{runs}; no canary."
    text = (f"{runs}; canary {canary.candidate} beside champion {canary.champion or '(not registered)'}: "
            f"{canary.status}, stage {canary.stage} ({canary.share:.0%} of the capital), "
            f"{canary.sessions_in_stage} session(s) in stage, approval {canary.approval}, started {canary.started}")
    if canary.last_day:
        text += f"; {canary.last_day}: {canary.last_event} ({canary.last_reason})"
    if canary.pending is not None:
        text += (f". Pending for the next close: {canary.pending.event} "
                 f"({canary.pending.who}: {canary.pending.reason})")
    return text
