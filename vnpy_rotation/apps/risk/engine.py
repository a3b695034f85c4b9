"""RiskEngine: the risk app's engine on vnpy's event engine.

It keeps the latest account, position and trade data; at each session close (the rotation clock's ``close``
phase, or a call of :meth:`RiskEngine.evaluate_close`) it steps the account ladder once on the accounts'
``AccountData.balance``; it takes each strategy's rung from the :class:`StrategyRiskUpdate` the rotation app
publishes; it enforces the rungs through a vnpy_riskmanager rule (:mod:`.rule`) registered on the
RiskManager engine when this engine is built; every rung change and denial is kept, persisted atomically,
published as an event and (rung changes) notified.

At each scope's close it also keeps the scope's equity, judges its VaR exception test and steps its
fail-safes (:mod:`.failsafe`) on the major thresholds (HALTED, a red zone), the drift alerts the rotation app
publishes (``RiskAlert`` of kind ``drift``) and the replay's deviation (:meth:`RiskEngine.observe_deviation`);
a zone change and every raised flag go out as alerts through :meth:`RiskEngine.raise_alert`.
"""

from __future__ import annotations

import traceback
from datetime import date, datetime
from pathlib import Path
from typing import Any, Callable

from vnpy.event import Event, EventEngine
from vnpy.trader.constant import Direction
from vnpy.trader.engine import BaseEngine, MainEngine
from vnpy.trader.event import EVENT_ACCOUNT, EVENT_POSITION, EVENT_TRADE
from vnpy.trader.object import AccountData, OrderRequest, PositionData, TradeData
from vnpy.trader.utility import get_folder_path

from ...allocation import AccountState, AllocationConfig, AllocationDecision, Snapshot, review
from ...risk.config import RiskConfig
from ...risk.events import (
    ACCOUNT,
    EVENT_RISK_ALERT,
    EVENT_RISK_DENIAL,
    EVENT_RISK_SNAPSHOT,
    EVENT_RISK_STATE,
    EVENT_RISK_STRATEGY,
    RiskAlert,
    RiskDenial,
    RiskStateChange,
    StrategyRiskUpdate,
)
from ...risk.response import Flag, Observations
from .state_file import RiskStateFile

APP_NAME = "RotationRisk"
STATE_FOLDER = "rotation_risk"  # in the runtime folder (.vntrader), unless init_engine is given another
EVENT_RISK_LOG = "eRiskLog"
RISK_MANAGER = "RiskManager"  # vnpy_riskmanager's APP_NAME
MAX_TRADES = 1000  # the newest trades kept for the snapshot


class RiskEngine(BaseEngine):
    """The account ladder, the strategies' rungs and their enforcement; see the module docstring."""

    def __init__(self, main_engine: MainEngine, event_engine: EventEngine) -> None:
        super().__init__(main_engine, event_engine, APP_NAME)
        self.accounts: dict[str, AccountData] = {}
        self.positions: dict[str, PositionData] = {}
        self.trades: list[TradeData] = []
        self.gateway: str | None = None  # the account(s) the ladder watches; None: every gateway's
        self.notify: Callable[[str, str, str], object] = lambda kind, subject, content: None
        self.notifier: Any = None
        self._state_file: RiskStateFile | None = None  # read on first use: init_engine may name another folder
        self.rule: Any = None
        self.allocation_config: AllocationConfig | None = None  # None: no allocation, nothing capped
        self._registered = False
        self._register()
        self.attach_rule()

    @property
    def state_file(self) -> RiskStateFile:
        """The state; the runtime folder's until :meth:`init_engine` names another (a damaged file raises
        InputRejected naming it: the rule then refuses every order)."""
        if self._state_file is None:
            self._state_file = RiskStateFile(get_folder_path(STATE_FOLDER))
        return self._state_file

    # -- set-up -------------------------------------------------------------------------------------
    def init_engine(self, state_folder: Path | None = None, config: RiskConfig | None = None,
                    gateway: str | None = None, notifications: bool = True,
                    allocation: AllocationConfig | None = None) -> None:
        """Load the state from ``state_folder`` (default: the runtime folder's ``rotation_risk``) with the
        account ladder ``config`` (None: the one stored there, else off); ``gateway``: watch only that
        gateway's accounts; ``notifications``: notify every rung change (see the rotation app's notifier);
        ``allocation``: how capital is shared among strategies and accounts (reviewed after each close)."""
        from ..rotation.notifications import build_notifier

        self._state_file = RiskStateFile(Path(state_folder) if state_folder else get_folder_path(STATE_FOLDER), config)
        self.gateway = gateway
        self.allocation_config = allocation
        if notifications and self.notifier is None:
            self.notifier = build_notifier(self.main_engine, self.write_log)
            self.notify = self.notifier.notify
        if self.rule is None:  # RiskManager was added after this app
            self.attach_rule()
        self.write_log(f"风控引擎初始化成功: {self.state_file.path}")
        self.put_snapshot()

    def _register(self) -> None:
        if self._registered:
            return
        self.event_engine.register(EVENT_ACCOUNT, self._process_account)
        self.event_engine.register(EVENT_POSITION, self._process_position)
        self.event_engine.register(EVENT_TRADE, self._process_trade)
        self.event_engine.register(EVENT_RISK_STRATEGY, self._process_strategy)
        self.event_engine.register(EVENT_RISK_ALERT, self._process_alert)
        from ..rotation.clock import EVENT_ROTATION_PHASE  # the session clock both apps run on

        self.event_engine.register(EVENT_ROTATION_PHASE, self._process_phase)
        self._registered = True

    def attach_rule(self) -> bool:
        """Register the rule on vnpy_riskmanager's engine, first in its checking order (so a denial carries
        the ladder's reason, not another rule's). False (logged) when RiskManager is not added yet."""
        from .rule import attach

        manager = self.main_engine.get_engine(RISK_MANAGER)
        if manager is None:
            self.write_log("vnpy_riskmanager (RiskManager) 未加载: 风控阶梯无法拦截委托; 请先添加 RiskManagerApp")
            return False
        self.rule = attach(manager, self)
        return True

    def close(self) -> None:
        if self.notifier is not None:
            self.notifier.close()

    # -- events (event thread) ------------------------------------------------------------------------
    def _process_account(self, event: Event) -> None:
        account: AccountData = event.data
        self.accounts[account.vt_accountid] = account

    def _process_position(self, event: Event) -> None:
        position: PositionData = event.data
        self.positions[position.vt_positionid] = position

    def _process_trade(self, event: Event) -> None:
        self.trades.append(event.data)
        del self.trades[:-MAX_TRADES]

    def _process_phase(self, event: Event) -> None:
        if event.data.name == "close":
            self._guarded(f"{event.data.day} 收盘评估", lambda: self.evaluate_close(event.data.day))

    def _process_strategy(self, event: Event) -> None:
        update: StrategyRiskUpdate = event.data

        def apply() -> None:
            change = self.state_file.update_strategy(update)
            self._changed([change] if change else [])
            self._close_scope(update.strategy, update.day, update.equity, update.rung)

        self._guarded(f"策略风险更新 {getattr(update, 'strategy', update)!r}", apply)

    def _process_alert(self, event: Event) -> None:
        """A drift alert (the rotation app's, or one raised here): kept once, and a drift observation of its
        scope's session for the forced-retrain fail-safe."""
        alert: RiskAlert = event.data
        if alert.kind != "drift":
            return

        def apply() -> None:
            with self.state_file.lock:
                new = alert.to_json() not in self.state_file.alerts
                if new:
                    self.state_file.record_alert(alert)
                raised = self.state_file.observe(alert.scope, alert.day, Observations(drift=(alert.reason,)))
                self.state_file.save()
            if new:
                self.write_log(f"风控告警 [drift] {alert.scope} {alert.day}: {alert.reason}")
                self.notify("risk_state", f"风控告警 {alert.scope} drift", alert.reason)
            self._raise_all(raised)
            self.put_snapshot()

        self._guarded(f"漂移告警 {alert.scope}", apply)

    def _guarded(self, what: str, call: Callable[[], object]) -> None:
        """Run a handler's work; an exception is logged and notified, never raised: vnpy's event thread
        dies on an exception in any handler, which would stop every app."""
        try:
            call()
        except Exception:
            text = traceback.format_exc()
            self.write_log(f"风控引擎异常 ({what}):\n{text}")
            self.notify("failure", f"风控引擎异常: {what}", text)

    # -- the session close ------------------------------------------------------------------------------
    def equity(self) -> float | None:
        """The watched accounts' total ``balance`` (None before any account report)."""
        accounts = [a for a in self.accounts.values() if self.gateway is None or a.gateway_name == self.gateway]
        return sum(float(a.balance) for a in accounts) if accounts else None

    def evaluate_close(self, day: date, equity: float | None = None) -> list[RiskStateChange]:
        """Step the account ladder for ``day``'s close (once per day: a repeated day changes nothing) on
        ``equity`` (default: :meth:`equity`). Returns the rung changes (also published and saved)."""
        equity = self.equity() if equity is None else equity
        if equity is None:
            self.write_log(f"风控: {day} 收盘无账户资金数据, 账户阶梯未评估")
            return []
        stepped = self.state_file.last_day is None or day.isoformat() > self.state_file.last_day
        changes = self.state_file.evaluate(day, equity)
        self._changed(changes, force_save=True)
        if stepped:
            self._close_scope(ACCOUNT, day, equity, self.state_file.account_gate().rung)
        return changes

    # -- capital allocation -------------------------------------------------------------------------------
    def allocation(self) -> AllocationDecision | None:
        """The allocation record in force (None without an ``allocation:`` configuration or before its first
        review): what sizing caps each strategy's buys by."""
        if self.allocation_config is None:
            return None
        return self.state_file.allocation_decision()

    def account_states(self) -> dict[str, AccountState]:
        """Each configured account's equity (``balance``) and cash (``available``) from its gateway's reports."""
        states: dict[str, AccountState] = {}
        for account in self.allocation_config.accounts if self.allocation_config else ():
            reports = [a for a in self.accounts.values() if a.gateway_name == account.gateway]
            if reports:
                states[account.id] = AccountState(sum(float(a.balance) for a in reports),
                                                  sum(float(a.available) for a in reports))
        return states

    def review_allocation(self, now: datetime, returns: dict[str, tuple[tuple[date, float], ...]]
                          ) -> AllocationDecision | None:
        """The scheduled review after a close (:func:`vnpy_rotation.allocation.review`) on the accounts'
        reported equities and the strategies' daily ``returns``; the result is stored in the risk state
        (saved atomically), a re-allocation is logged and notified. Returns the allocation in force."""
        if self.allocation_config is None:
            return None
        previous = self.state_file.allocation_decision()
        decision, changed = review(self.allocation_config, Snapshot(self.account_states(), returns), now, previous)
        if decision is not previous:
            self.state_file.set_allocation(decision, changed)
            self.state_file.save()
        if changed:
            lines = "; ".join(f"{x.account}/{x.strategy} {x.amount:,.2f}" for x in decision.lines)
            self.write_log(f"资金分配 {decision.at:%Y-%m-%d} ({decision.reason}): {lines}")
            self.notify("risk_state", "资金分配调整", f"{decision.reason}\n{lines}")
        return decision

    def observe_deviation(self, scope: str, day: date, value: float) -> list[tuple[RiskAlert, Flag]]:
        """The backtest-vs-live deviation of ``scope`` measured over the sessions up to ``day`` (the replay's
        max |equity difference| / capital): a fail-safe observation of that session. Returns the flags raised
        (also published)."""
        raised = self.state_file.observe(scope, day, Observations(deviation=float(value)))
        self.state_file.save()
        self._raise_all(raised)
        return raised

    def clear_flag(self, scope: str, flag: str, reason: str, who: str = "gui") -> None:
        """Clear ``scope``'s raised ``flag`` with a reason (audited, published as a ``flag_cleared`` alert)."""
        now = datetime.now()
        self.state_file.clear_flag(flag, scope, reason, now, who)
        self.raise_alert(RiskAlert("flag_cleared", scope, now.date(), f"{flag} cleared: {reason.strip()}"))

    def _close_scope(self, scope: str, day: date, equity: float, rung: str) -> None:
        alerts, raised = self.state_file.close_scope(scope, day, equity, rung)
        self.state_file.save()
        for alert in alerts:
            self.raise_alert(alert)
        self._raise_all(raised)

    def _raise_all(self, raised: list[tuple[RiskAlert, Flag]]) -> None:
        for alert, flag in raised:
            self.raise_alert(alert, flag)

    def reset(self, scope: str, reason: str, who: str = "gui") -> RiskStateChange:
        """A manual return to ACTIVE of ``scope`` (``"account"`` or a strategy); needs a reason (audited)."""
        change = self.state_file.reset(scope, reason, datetime.now(), who)
        self._changed([change])
        return change

    def raise_alert(self, alert: RiskAlert, flag: str | None = None) -> None:
        """Publish ``alert``; with ``flag``, also raise that persisted fail-safe flag on its scope."""
        self.state_file.record_alert(alert)
        if flag:
            self.state_file.raise_flag(flag, alert.scope, alert.day, alert.reason)
        self.state_file.save()
        self.event_engine.put(Event(EVENT_RISK_ALERT, alert))
        self.write_log(f"风控告警 [{alert.kind}] {alert.scope} {alert.day}: {alert.reason}")
        self.notify("risk_state", f"风控告警 {alert.scope} {alert.kind}", alert.reason)
        self.put_snapshot()

    def _changed(self, changes: list[RiskStateChange], force_save: bool = False) -> None:
        if changes or force_save:
            self.state_file.save()
        for change in changes:
            self.event_engine.put(Event(EVENT_RISK_STATE, change))
            text = f"{change.scope}: {change.before} -> {change.after} ({change.day}): {change.reason}"
            self.write_log(f"风控阶梯 {text}")
            self.notify("risk_state", f"风控 {change.scope} {change.after}", text)
        self.put_snapshot()

    # -- orders (the rule calls this from whichever thread sends the order) ----------------------------
    def allow(self, req: OrderRequest) -> bool:
        """Whether ``req`` may go out; a refusal is logged, kept, saved and published as a RiskDenial."""
        strategy = req.reference.split("|", 1)[0] if "|" in req.reference else ""
        buy = req.direction == Direction.LONG
        verdict = self.state_file.check(strategy, buy)
        if verdict is None:
            return True
        self.deny(req, strategy, *verdict)
        return False

    def deny(self, req: OrderRequest, strategy: str, rung: str, reason: str) -> None:
        denial = RiskDenial(strategy, req.vt_symbol, "buy" if req.direction == Direction.LONG else "sell",
                            float(req.volume), rung, reason, datetime.now())
        try:
            self.state_file.record_denial(denial)  # appended to the denial log (the state is saved at the close)
        except OSError:
            self.write_log(f"风控: 拒单日志写入失败 {self.state_file.denial_log}:\n{traceback.format_exc()}")
        self.event_engine.put(Event(EVENT_RISK_DENIAL, denial))
        self.write_log(f"风控拒单 {strategy or '-'} {req.vt_symbol} {denial.direction} {req.volume:g}: {reason}")
        self.put_snapshot()

    # -- views --------------------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """What the widget shows: one row per scope, the denials and alerts (newest last), the history, the
        audit rows, the flags, the allocation in force and the re-allocations (newest last)."""
        with self.state_file.lock:
            return {"rows": self.state_file.rows(), "denials": list(self.state_file.denials), "alerts": list(self.state_file.alerts),
                    "history": list(self.state_file.history), "audit": list(self.state_file.audit), "flags": dict(self.state_file.flags),
                    "allocation": self.state_file.allocation if self.allocation_config is not None else None,
                    "allocations": list(self.state_file.allocations)}

    def put_snapshot(self) -> None:
        self.event_engine.put(Event(EVENT_RISK_SNAPSHOT, self.snapshot()))

    def write_log(self, msg: str) -> None:
        self.main_engine.write_log(msg, APP_NAME)
        self.event_engine.put(Event(EVENT_RISK_LOG, msg))
