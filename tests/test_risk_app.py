"""The risk app on a real MainEngine with vnpy_riskmanager: the account ladder stepped at each close on the
account's balance, the strategies' rungs from their updates, enforcement through ``MainEngine.send_order``
(REDUCING refuses buys, HALTED lets only the flattening sells through or freezes), the events and
notifications, persistence across a kill and restart, manual resets, the CLI and the widget."""

from __future__ import annotations

import json
import os
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli
from vnpy.event import Event, EventEngine
from vnpy.trader.constant import Direction, Exchange, Offset, OrderType, Product
from vnpy.trader.engine import MainEngine
from vnpy.trader.gateway import BaseGateway
from vnpy.trader.object import AccountData, ContractData, OrderRequest

from vnpy_rotation.apps.risk import RiskApp, RiskEngine
from vnpy_rotation.apps.risk.rule import RULE_NAME
from vnpy_rotation.apps.risk.state_file import STATE_FILENAME, RiskStateFile
from vnpy_rotation.apps.rotation.clock import EVENT_ROTATION_PHASE, Phase, SessionClock
from vnpy_rotation.errors import InputRejected
from vnpy_rotation.notify import Notifier, NotifyConfig
from vnpy_rotation.risk.config import RiskConfig
from vnpy_rotation.risk.events import (
    EVENT_RISK_ALERT,
    EVENT_RISK_DENIAL,
    EVENT_RISK_STATE,
    EVENT_RISK_STRATEGY,
    RiskAlert,
    RiskDenial,
    RiskStateChange,
    StrategyRiskUpdate,
)
from vnpy_rotation.risk.ladder import LadderConfig

LADDER = RiskConfig(ladder=LadderConfig(reduce_at=0.10, halt_at=0.15, recover_at=0.05, cooldown=20,
                                        halt_cooldown=20, flatten=True))
SYMBOL = "510300.SSE"
DAYS = [date(2024, 1, d) for d in (2, 3, 4, 5, 8)]


class PaperGateway(BaseGateway):
    """Accepts every order (keeping it) and publishes one ETF contract and the account it is told."""

    default_name = "PAPER"
    default_setting: dict = {}
    exchanges = [Exchange.SSE]

    def __init__(self, event_engine: EventEngine, gateway_name: str = "PAPER") -> None:
        super().__init__(event_engine, gateway_name)
        self.sent: list[OrderRequest] = []

    def connect(self, setting: dict) -> None:
        self.on_contract(ContractData(symbol="510300", exchange=Exchange.SSE, name="沪深300ETF", product=Product.ETF,
                                      size=1, pricetick=0.001, min_volume=100, gateway_name=self.gateway_name))

    def balance(self, value: float) -> None:
        self.on_account(AccountData(accountid="A1", balance=value, frozen=0.0, gateway_name=self.gateway_name))

    def send_order(self, req: OrderRequest) -> str:
        self.sent.append(req)
        return f"{self.gateway_name}.{len(self.sent)}"

    def cancel_order(self, req) -> None: ...
    def subscribe(self, req) -> None: ...
    def query_account(self) -> None: ...
    def query_position(self) -> None: ...
    def close(self) -> None: ...


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, subject: str, content: str) -> None:
        self.sent.append((subject, content))


class RiskStack:
    """MainEngine + PaperGateway + RiskManager + RiskApp, with the events and notifications it produced."""

    def __init__(self, folder: Path, config: RiskConfig | None = LADDER) -> None:
        from vnpy_riskmanager import RiskManagerApp

        self.event_engine = EventEngine()
        self.main_engine = MainEngine(self.event_engine)
        self.gateway: PaperGateway = self.main_engine.add_gateway(PaperGateway)
        self.manager = self.main_engine.add_app(RiskManagerApp)
        self.risk: RiskEngine = self.main_engine.add_app(RiskApp)
        self.risk.init_engine(state_folder=folder, config=config, notifications=False)
        self.recorder = Recorder()
        self.risk.notifier = Notifier(NotifyConfig(), channels=[self.recorder])
        self.risk.notify = self.risk.notifier.notify
        self.clock = SessionClock(self.event_engine)
        self.changes: list[RiskStateChange] = []
        self.denials: list[RiskDenial] = []
        self.event_engine.register(EVENT_RISK_STATE, lambda e: self.changes.append(e.data))
        self.event_engine.register(EVENT_RISK_DENIAL, lambda e: self.denials.append(e.data))
        self.main_engine.connect({}, "PAPER")
        self.clock.drain()
        self.count = 0

    def close_day(self, day: date, balance: float) -> None:
        """The account's balance at the close, then the clock's close phase (which steps the ladder)."""
        self.gateway.balance(balance)
        self.clock.drain()
        self.event_engine.put(Event(EVENT_ROTATION_PHASE, Phase("close", day)))
        self.clock.drain()

    def order(self, side: str, reference: str = "") -> bool:
        """Send one 100-share order through MainEngine.send_order; True when it reached the gateway."""
        self.count += 1  # a new price each time: vnpy_riskmanager's duplicate-order rule stays quiet
        req = OrderRequest(symbol="510300", exchange=Exchange.SSE,
                           direction=Direction.LONG if side == "buy" else Direction.SHORT, type=OrderType.LIMIT,
                           volume=100, price=round(3.5 + self.count * 0.001, 3), offset=Offset.NONE,
                           reference=reference)
        sent = len(self.gateway.sent)
        order_id = self.main_engine.send_order(req, "PAPER")
        assert bool(order_id) == (len(self.gateway.sent) == sent + 1)  # an empty id: it never left
        self.clock.drain()
        return bool(order_id)

    def strategy(self, name: str, day: date, rung: str, flatten: bool = True, reasons: tuple[str, ...] = (),
                 equity: float = 900_000.0, peak: float = 1_000_000.0) -> None:
        self.event_engine.put(Event(EVENT_RISK_STRATEGY, StrategyRiskUpdate(name, day, rung, reasons, equity, peak,
                                                                            flatten)))
        self.clock.drain()

    def close(self) -> None:
        self.main_engine.close()


@pytest.fixture
def stack(tmp_path, runtime_home):
    built = RiskStack(tmp_path / "risk")
    yield built
    built.close()


def test_the_rule_is_registered_first_on_vnpy_riskmanager(stack):
    assert next(iter(stack.manager.rules)) == RULE_NAME
    assert stack.risk.rule is stack.manager.rules[RULE_NAME]


# The account ladder (REDUCING at -10 %, HALTED at -15 %, flattening) at five closes; after each close a buy
# and a sell without a strategy reference: (balance, rung after the close, buy passes, sell passes).
ACCOUNT_SCENARIO = [
    (1_000_000.0, "ACTIVE", True, True),
    (950_000.0, "ACTIVE", True, True),  # -5 %
    (890_000.0, "REDUCING", False, True),  # -11 %: reduce-only
    (880_000.0, "REDUCING", False, True),
    (840_000.0, "HALTED", False, True),  # -16 %: only the flattening sells
]


def test_the_account_ladder_steps_at_each_close_and_binds_orders_without_a_reference(stack):
    for day, (balance, rung, buy, sell) in zip(DAYS, ACCOUNT_SCENARIO):
        stack.close_day(day, balance)
        assert stack.risk.state_file.account_gate().rung == rung, day
        assert (stack.order("buy"), stack.order("sell")) == (buy, sell), day
    assert [(c.scope, c.day, c.before, c.after, c.source) for c in stack.changes] == [
        ("account", DAYS[2], "ACTIVE", "REDUCING", "ladder"), ("account", DAYS[4], "REDUCING", "HALTED", "ladder")]
    assert [(d.strategy, d.vt_symbol, d.direction, d.volume, d.rung) for d in stack.denials] == [
        ("", SYMBOL, "buy", 100.0, "REDUCING"), ("", SYMBOL, "buy", 100.0, "REDUCING"),
        ("", SYMBOL, "buy", 100.0, "HALTED")]
    # once per session: the same day again (a second close phase, another balance) changes nothing
    assert stack.risk.evaluate_close(DAYS[4], equity=2_000_000.0) == []
    assert stack.risk.state_file.account_gate().rung == "HALTED" and stack.risk.state_file.session == 5
    stack.risk.notifier.flush(5)
    assert len(stack.recorder.sent) == 2  # one notification per rung change


# Strategy rungs from the rotation app's updates; orders carry "strategy|day|leg|n" references:
# (reference, side, passes, the denial's rung).
STRATEGY_SCENARIO = [
    ("rot|2024-01-05|0|0", "buy", False, "REDUCING"),
    ("rot|2024-01-05|1|0", "sell", True, None),
    ("frz|2024-01-05|0|0", "sell", False, "HALTED"),  # HALTED freeze: not even a sell
    ("frz|2024-01-05|1|0", "buy", False, "HALTED"),
    ("flat|2024-01-05|0|0", "sell", True, None),  # HALTED flattening: its sells go out
    ("flat|2024-01-05|1|0", "buy", False, "HALTED"),
    ("other|2024-01-05|0|0", "buy", True, None),  # a strategy the app has no rung for: the account's (ACTIVE)
    ("", "buy", True, None),
]


def test_strategy_rungs_bind_their_orders_by_reference(stack):
    stack.close_day(DAYS[0], 1_000_000.0)
    stack.strategy("rot", DAYS[0], "REDUCING", reasons=("drawdown -12.00% from peak",))
    stack.strategy("frz", DAYS[0], "HALTED", flatten=False, reasons=("portfolio stop -10.40%",))
    stack.strategy("flat", DAYS[0], "HALTED", reasons=("drawdown -16.00%",))
    stack.strategy("calm", DAYS[0], "ACTIVE")
    results = [(ref, side, stack.order(side, ref)) for ref, side, _, _ in STRATEGY_SCENARIO]
    assert results == [(ref, side, passes) for ref, side, passes, _ in STRATEGY_SCENARIO]
    refused = [(ref.split("|")[0], side, rung) for ref, side, passes, rung in STRATEGY_SCENARIO if not passes]
    assert [(d.strategy, d.direction, d.rung) for d in stack.denials] == refused
    assert all(d.reason for d in stack.denials)
    assert [(c.scope, c.before, c.after, c.source) for c in stack.changes] == [
        ("rot", "ACTIVE", "REDUCING", "strategy"), ("frz", "ACTIVE", "HALTED", "strategy"),
        ("flat", "ACTIVE", "HALTED", "strategy")]  # "calm" stayed ACTIVE: no change
    assert stack.changes[0].reason == "drawdown -12.00% from peak"
    # the account ladder binds a strategy's orders too: the strictest rung wins
    stack.close_day(DAYS[1], 880_000.0)
    assert not stack.order("buy", "calm|2024-01-03|0|0")
    assert stack.denials[-1].rung == "REDUCING" and stack.denials[-1].reason.startswith("account")


def test_a_failing_check_refuses_the_order_and_the_rule_cannot_be_switched_off(stack, monkeypatch):
    stack.close_day(DAYS[0], 1_000_000.0)
    stack.close_day(DAYS[1], 800_000.0)  # HALTED (flattening)
    rule = stack.manager.rules[RULE_NAME]
    rule.update_setting({"active": False})  # what RiskManager's window does with its check box
    assert rule.active and not stack.order("buy")

    def broken(strategy: str, buy: bool):
        raise KeyError("corrupt state")

    monkeypatch.setattr(stack.risk.state_file, "check", broken)
    assert not stack.order("sell")  # the exception stays inside the rule; the order is refused
    assert stack.denials[-1].rung == "ERROR" and "KeyError" in stack.denials[-1].reason


def test_a_killed_engine_restarts_halted_and_keeps_denying(tmp_path, runtime_home):
    first = RiskStack(tmp_path / "risk")
    try:
        first.close_day(DAYS[0], 1_000_000.0)
        first.close_day(DAYS[1], 800_000.0)
        first.strategy("frz", DAYS[1], "HALTED", flatten=False, reasons=("portfolio stop",))
        assert not first.order("buy")
        saved = json.loads((tmp_path / "risk" / STATE_FILENAME).read_text(encoding="utf-8"))
        # killed here: no close(), no final save; a new process starts on the same folder
        second = RiskStack(tmp_path / "risk", config=None)  # the stored ladder configuration
        try:
            book = second.risk.state_file
            assert book.config == LADDER and book.account_gate().rung == "HALTED" and book.last_day == "2024-01-03"
            assert book.history == saved["history"] and len(book.denials) == 1
            assert (second.order("buy"), second.order("sell")) == (False, True)  # still HALTED, flattening
            assert not second.order("sell", "frz|2024-01-04|0|0")  # the frozen strategy stays frozen
            second.close_day(DAYS[1], 2_000_000.0)  # that close was evaluated before the kill: nothing changes
            assert second.changes == [] and book.account_gate().rung == "HALTED"
        finally:
            second.close()
    finally:
        first.close()


def test_a_manual_reset_needs_a_reason_and_is_audited(stack):
    stack.close_day(DAYS[0], 1_000_000.0)
    stack.close_day(DAYS[1], 800_000.0)
    stack.strategy("rot", DAYS[1], "REDUCING")
    history = list(stack.risk.state_file.history)
    for scope, reason in (("account", " "), ("nope", "looked at it"), ("calm", "x")):
        with pytest.raises(InputRejected):
            stack.risk.reset(scope, reason)
    assert stack.risk.state_file.history == history and stack.risk.state_file.audit == []  # refused: nothing written
    change = stack.risk.reset("account", "flattened by hand, reviewed")
    assert (change.scope, change.before, change.after, change.source) == ("account", "HALTED", "ACTIVE", "reset")
    assert stack.risk.state_file.history[:len(history)] == history  # appended, never edited
    assert [(a["scope"], a["before"], a["reason"]) for a in stack.risk.state_file.audit] == [
        ("account", "HALTED", "flattened by hand, reviewed")]
    assert stack.order("buy")
    with pytest.raises(InputRejected):
        stack.risk.reset("account", "again")  # ACTIVE already
    # the peak restarted at the reset: the next close measures from 800 000, not from 1 000 000
    stack.close_day(DAYS[2], 790_000.0)
    assert stack.risk.state_file.account_gate().rung == "ACTIVE"
    on_disk = RiskStateFile(stack.risk.state_file.path.parent)
    assert on_disk.audit == stack.risk.state_file.audit and on_disk.account_gate().rung == "ACTIVE"


def test_the_stack_adds_the_risk_app_with_its_rule_first(tmp_path, runtime_home):
    from vnpy_rotation.apps.rotation.daemon import Stack
    from vnpy_rotation.gateways.replay import ReplayGateway

    built = Stack(ReplayGateway, tmp_path / "state", notifications=False)
    try:
        manager = built.main_engine.get_engine("RiskManager")
        assert next(iter(manager.rules)) == RULE_NAME
        assert built.risk.state_file.path == tmp_path / "state" / STATE_FILENAME
    finally:
        built.close()


# -- the CLI ------------------------------------------------------------------------------------------
def halted_home(home: Path) -> Path:
    """A home whose risk state has the account HALTED and strategy rot REDUCING."""
    book = RiskStateFile(home / ".vntrader" / "rotation_risk", LADDER)
    book.evaluate(DAYS[0], 1_000_000.0)
    book.evaluate(DAYS[1], 800_000.0)
    book.update_strategy(StrategyRiskUpdate("rot", DAYS[1], "REDUCING", ("drawdown -11%",), 89.0, 100.0))
    book.save()
    return book.path


def status_of(home: Path) -> dict:
    result = run_cli("risk", "status", "--json", home=home)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_cli_status_and_reset(tmp_path):
    home = tmp_path / "home"
    path = halted_home(home)
    status = status_of(home)
    assert [(r["scope"], r["rung"], r["since"]) for r in status["rows"]] == [
        ("account", "HALTED", "2024-01-03"), ("rot", "REDUCING", "2024-01-03")]
    text = run_cli("risk", "status", home=home)
    assert text.returncode == 0 and "HALTED" in text.stdout
    before = path.read_bytes()
    for args in (("--strategy", "nope", "--reason", "x"), ("--strategy", "rot", "--reason", "")):
        refused = run_cli("risk", "reset", *args, home=home)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr
        assert path.read_bytes() == before  # nothing written
    done = run_cli("risk", "reset", "--strategy", "rot", "--reason", "stock stop reviewed", home=home)
    assert done.returncode == 0, done.stderr
    status = status_of(home)
    assert [(r["scope"], r["rung"]) for r in status["rows"]] == [("account", "HALTED"), ("rot", "ACTIVE")]
    assert [(a["scope"], a["before"], a["reason"], a["who"]) for a in status["audit"]] == [
        ("rot", "REDUCING", "stock stop reviewed", "cli")]


def test_cli_refuses_a_home_without_risk_state_or_with_a_damaged_one(tmp_path):
    home = tmp_path / "fresh"
    home.mkdir()
    result = run_cli("risk", "status", home=home)
    assert result.returncode == 2 and STATE_FILENAME in result.stderr and "Traceback" not in result.stderr
    assert list(home.iterdir()) == []  # a refused command leaves no runtime folder behind
    damaged = home / ".vntrader" / "rotation_risk" / STATE_FILENAME
    damaged.parent.mkdir(parents=True)
    damaged.write_text(json.dumps({"strategies": {"rot": {"strategy": "rot", "day": "2024-01-03", "rung": "ASLEEP",
                                                          "reasons": [], "equity": 1.0, "peak": 1.0}}}))
    for args in (("status",), ("reset", "--strategy", "rot", "--reason", "x")):
        result = run_cli("risk", *args, home=home)
        assert result.returncode == 2 and str(damaged) in result.stderr and "Traceback" not in result.stderr


# -- the widget ---------------------------------------------------------------------------------------
def test_risk_monitor_shows_the_ladders_and_denials(stack, qtbot, tmp_path):
    import qdarkstyle
    from test_gui import assert_picture
    from vnpy.trader.ui import QtWidgets

    from vnpy_rotation.apps.risk.ui import RiskMonitor

    widget = RiskMonitor(stack.main_engine, stack.event_engine)
    qtbot.addWidget(widget)
    widget.setStyleSheet(qdarkstyle.load_stylesheet(qt_api="pyside6"))
    widget.resize(1400, 800)
    QtWidgets.QWidget.show(widget)
    stack.close_day(DAYS[0], 1_000_000.0)
    stack.close_day(DAYS[1], 1_012_500.0)
    stack.close_day(DAYS[2], 903_900.0)  # -10.7 %: REDUCING
    stack.strategy("etf_rotation", DAYS[2], "ACTIVE", equity=515_600.0, peak=526_200.0)
    stack.strategy("vqm", DAYS[2], "HALTED", reasons=("portfolio stop -10.40% (flat until the next rebalance)",),
                   equity=448_000.0, peak=500_000.0)
    stack.order("buy", "etf_rotation|2024-01-04|0|0")
    stack.order("buy", "vqm|2024-01-04|0|0")
    stack.order("sell", "vqm|2024-01-04|1|0")
    stack.risk.raise_alert(RiskAlert("drift", "vqm", DAYS[1], "realised volatility regime: 20-day vol 2.3x its "
                                                              "1-year median"))
    stack.risk.raise_alert(RiskAlert("drift", "vqm", DAYS[2], "factor PSI 0.41 above its null 99th percentile "
                                                              "for 2 sessions"),
                           flag="release_freeze")
    widget.set_exception_zone("vqm", "yellow (6 exceptions / 250 d at 99 %)")
    table = widget.scope_table
    qtbot.waitUntil(lambda: table.rowCount() == 3 and widget.denial_table.rowCount() == 2
                    and widget.alert_table.rowCount() == 2, timeout=5000)
    cells = [[table.item(r, c).text() for c in range(table.columnCount())] for r in range(3)]
    assert [(row[0], row[1], row[7], row[8]) for row in cells] == [
        ("account", "REDUCING", "-", "too short (3/501 closes)"), ("etf_rotation", "ACTIVE", "-", "too short (1/501 closes)"),
        ("vqm", "HALTED", "release_freeze", "yellow (6 exceptions / 250 d at 99 %)")]
    assert cells[0][5] == "-10.73%"  # from the peak 1 012 500 to the close 903 900
    folders = [tmp_path / "screenshots"] + ([Path(os.environ["ROTATION_SCREENSHOTS"])]
                                            if os.environ.get("ROTATION_SCREENSHOTS") else [])
    picture = widget.grab()
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        assert picture.save(str(folder / "risk_monitor.png"))
        assert_picture(folder / "risk_monitor.png")


def shown_window(stack: RiskStack, qtbot, monkeypatch) -> tuple[Any, list[str]]:
    """The risk window, shown, and the texts of the warnings it shows (their message boxes stubbed)."""
    from vnpy.trader.ui import QtWidgets

    from vnpy_rotation.apps.risk.ui import RiskMonitor

    shown: list[str] = []
    monkeypatch.setattr(QtWidgets.QMessageBox, "warning", staticmethod(lambda parent, title, text: shown.append(text)))
    widget = RiskMonitor(stack.main_engine, stack.event_engine)
    qtbot.addWidget(widget)
    QtWidgets.QWidget.show(widget)
    return widget, shown


def test_the_windows_reset_asks_for_a_reason(stack, qtbot, monkeypatch):
    from vnpy.trader.ui import QtWidgets

    widget, shown = shown_window(stack, qtbot, monkeypatch)
    stack.close_day(DAYS[0], 1_000_000.0)
    stack.close_day(DAYS[1], 800_000.0)
    qtbot.waitUntil(lambda: widget.scope_table.rowCount() == 1 and widget.scope_table.item(0, 1).text() == "HALTED",
                    timeout=5000)
    widget.scope_table.selectRow(0)
    answers = iter([("", True), ("checked the flattening by hand", True)])
    monkeypatch.setattr(QtWidgets.QInputDialog, "getText", staticmethod(lambda *a, **k: next(answers)))
    widget.reset_button.click()  # an empty reason: refused in a message box, nothing changes
    assert len(shown) == 1 and stack.risk.state_file.account_gate().rung == "HALTED" and stack.risk.state_file.audit == []
    widget.reset_button.click()
    assert stack.risk.state_file.account_gate().rung == "ACTIVE"
    assert [(a["scope"], a["reason"], a["who"]) for a in stack.risk.state_file.audit] == [
        ("account", "checked the flattening by hand", "gui")]
    qtbot.waitUntil(lambda: widget.scope_table.item(0, 1).text() == "ACTIVE", timeout=5000)


def test_a_failing_handler_leaves_the_event_thread_running(stack, monkeypatch):
    """vnpy's event thread dies on any handler's exception: the app's handlers report theirs instead."""
    kinds: list[str] = []
    monkeypatch.setattr(stack.risk, "notify", lambda kind, subject, content: kinds.append(kind))

    def broken(day, equity):
        raise OSError("disk full")

    monkeypatch.setattr(stack.risk.state_file, "evaluate", broken)
    stack.close_day(DAYS[0], 1_000_000.0)
    stack.strategy("rot", DAYS[0], "HALTED", flatten=False)
    stack.event_engine.put(Event(EVENT_RISK_STRATEGY, "not an update"))
    stack.clock.drain(timeout=10)  # would time out with the event thread dead
    assert kinds == ["failure", "risk_state", "failure"]
    assert not stack.order("sell", "rot|2024-01-02|0|0")  # the update before the broken one still binds


def test_an_alert_is_published_and_its_flag_persisted(stack):
    alerts: list[RiskAlert] = []
    stack.event_engine.register(EVENT_RISK_ALERT, lambda e: alerts.append(e.data))
    stack.strategy("vqm", DAYS[0], "ACTIVE")
    alert = RiskAlert("drift", "vqm", DAYS[0], "factor PSI above its null 99th percentile for 3 sessions")
    stack.risk.raise_alert(alert, flag="forced_retrain")
    stack.clock.drain()
    assert alerts == [alert]
    reloaded = RiskStateFile(stack.risk.state_file.path.parent)
    assert [RiskAlert.from_json(a) for a in reloaded.alerts] == [alert]
    assert reloaded.flags == {"vqm.forced_retrain": {"flag": "forced_retrain", "scope": "vqm", "day": "2024-01-02",
                                                     "reason": alert.reason}}
    assert [(r["scope"], r["flags"]) for r in reloaded.rows()] == [("account", []), ("vqm", ["forced_retrain"])]


def test_changed_thresholds_keep_the_held_rung_and_peak(tmp_path):
    book = RiskStateFile(tmp_path, LADDER)
    book.evaluate(DAYS[0], 1_000_000.0)
    book.evaluate(DAYS[1], 840_000.0)  # -16 %: HALTED
    book.save()
    looser = RiskConfig(ladder=LadderConfig(reduce_at=0.20, halt_at=0.30, recover_at=0.10))
    reopened = RiskStateFile(tmp_path, looser)
    assert reopened.config == looser and reopened.account_gate().rung == "HALTED"
    assert reopened.account_peak() == 1_000_000.0
    assert RiskStateFile(tmp_path).config == LADDER  # nothing saved yet: the file still holds the old ladder


def test_added_before_riskmanager_the_rule_is_attached_at_init(tmp_path, runtime_home):
    from vnpy_riskmanager import RiskManagerApp

    main_engine = MainEngine(EventEngine())
    try:
        risk = main_engine.add_app(RiskApp)
        assert risk.rule is None  # nothing to attach to yet (logged)
        manager = main_engine.add_app(RiskManagerApp)
        risk.init_engine(state_folder=tmp_path, notifications=False)
        assert next(iter(manager.rules)) == RULE_NAME and manager.rules[RULE_NAME] is risk.rule
    finally:
        main_engine.close()


def test_denials_are_appended_to_their_log_and_a_torn_last_line_is_skipped(tmp_path, runtime_home):
    from vnpy_rotation.apps.risk.state_file import DENIAL_LOG

    first = RiskStack(tmp_path / "risk")
    try:
        first.close_day(DAYS[0], 1_000_000.0)
        first.close_day(DAYS[1], 800_000.0)  # HALTED: buys are refused
        saved = (tmp_path / "risk" / STATE_FILENAME).read_text(encoding="utf-8")
        assert not first.order("buy") and not first.order("buy")
        # the refusals did not rewrite the state file: they went to the log, one line each
        assert (tmp_path / "risk" / STATE_FILENAME).read_text(encoding="utf-8") == saved
        log = tmp_path / "risk" / DENIAL_LOG
        assert len(log.read_text(encoding="utf-8").splitlines()) == 2
    finally:
        first.close()
    with log.open("a", encoding="utf-8") as handle:
        handle.write('{"strategy": "", "vt_symbol": "510')  # killed mid-write
    restarted = RiskStateFile(tmp_path / "risk")
    assert len(restarted.denials) == 2
    denial = RiskDenial("", "510300.SSE", "buy", 100.0, "HALTED", "account HALTED", datetime(2024, 1, 4, 9, 30))
    restarted.record_denial(denial)  # the torn line was cut: the next one starts cleanly
    restarted.record_denial(denial)
    assert len(RiskStateFile(tmp_path / "risk").denials) == 4
    log.write_text('{"broken"\n{}\n', encoding="utf-8")
    with pytest.raises(InputRejected) as refused:
        RiskStateFile(tmp_path / "risk")
    assert refused.value.problems[0].line == 1



def test_a_change_outside_the_ladders_keeps_each_ladders_state(tmp_path, runtime_home):
    """Editing the limits (or the drift section) must not move the account's ladders: only a changed ladder
    is merged by the never-relax rule."""
    both = LADDER.model_copy(update={"daily_loss": LadderConfig(reduce_at=0.03, halt_at=0.05, measure="day_return",
                                                                cooldown=1, halt_cooldown=3)})
    book = RiskStateFile(tmp_path / "risk", both)
    book.evaluate(DAYS[0], 1_000_000.0)
    book.evaluate(DAYS[1], 940_000.0)  # -6 % on the day: the daily loss limit halts; -6 % from the peak: ACTIVE
    book.save()
    rungs = book.state[:, 0].tolist()
    edited = both.model_copy(update={"limits": both.limits.model_copy(update={"max_turnover": 0.5})})
    assert RiskStateFile(tmp_path / "risk", edited).state[:, 0].tolist() == rungs == [0.0, 2.0]


def test_a_cleared_flag_does_not_come_back_from_the_same_session(tmp_path, runtime_home):
    from vnpy_rotation.risk.response import Observations

    book = RiskStateFile(tmp_path / "risk")
    day = date(2026, 1, 5)
    raised = book.observe("vqm", day, Observations(deviation=0.05))
    assert [flag for _, flag in raised] == ["downgrade_request"]
    for alert, flag in raised:
        book.raise_flag(flag, alert.scope, alert.day, alert.reason)
    book.clear_flag("downgrade_request", "vqm", "replay checked", datetime(2026, 1, 5, 16))
    assert book.observe("vqm", day, Observations(drift=("volatility",))) == []  # a later piece, same session


def test_risk_monitor_shows_the_allocation_and_its_history(stack, qtbot, tmp_path, monkeypatch):
    import qdarkstyle
    from test_gui import allocate, assert_picture, hand_allocation, rows, screenshot_folders

    from vnpy_rotation.allocation.records import AccountLine, AllocationDecision, AllocationLine

    widget, _ = shown_window(stack, qtbot, monkeypatch)
    widget.setStyleSheet(qdarkstyle.load_stylesheet(qt_api="pyside6"))
    earlier = AllocationDecision(datetime(2024, 1, 1, 15, 0), "risk_parity",
                                 (AllocationLine("etf", "REPLAY", 500_000.0, 0.5, "1/σ"),
                                  AllocationLine("vqm", "REPLAY", 450_000.0, 0.45, "1/σ")),
                                 (AccountLine("REPLAY", 1_000_000.0, 950_000.0),), "computed")
    allocate(stack, [earlier, hand_allocation()])
    stack.risk.put_snapshot()
    qtbot.waitUntil(lambda: widget.reallocation_table.rowCount() == 4, timeout=5000)
    assert rows(widget.allocation_table)[:2] == [
        ["etf", "REPLAY", "600,000.00", "60.0%", "18.0%", "2024-01-08 15:00", "risk_parity", "capped"],
        ["vqm", "REPLAY", "350,000.00", "35.0%", "-", "2024-01-08 15:00", "risk_parity", "1/σ"]]
    assert [r[:5] for r in rows(widget.reallocation_table)] == [  # newest first
        ["2024-01-08 15:00", "risk_parity", "etf", "REPLAY", "600,000.00"],
        ["2024-01-08 15:00", "risk_parity", "vqm", "REPLAY", "350,000.00"],
        ["2024-01-01 15:00", "risk_parity", "etf", "REPLAY", "500,000.00"],
        ["2024-01-01 15:00", "risk_parity", "vqm", "REPLAY", "450,000.00"]]
    stack.risk.allocation_config = None  # no allocation configured: nothing in force is shown
    stack.risk.put_snapshot()
    qtbot.waitUntil(lambda: widget.allocation_table.rowCount() == 0, timeout=5000)
    allocate(stack, [])
    stack.risk.put_snapshot()
    qtbot.waitUntil(lambda: widget.allocation_table.rowCount() == 3, timeout=5000)
    widget.resize(1400, 800)
    for folder in screenshot_folders(tmp_path):
        path = folder / "risk_allocation.png"
        assert widget.allocation_table.parentWidget().parentWidget().grab().save(str(path))
        assert_picture(path)
