"""RotationEngine: the rotation strategy app's engine on vnpy's event engine.

It keeps strategy instances (created, edited and removed from the GUI or the daemon, persisted in
``rotation_strategy_setting.json`` in the runtime folder), and runs each started instance through the
session phases a clock puts on the event queue (:data:`EVENT_ROTATION_PHASE`): ``open`` (size the plan,
sells first), ``retry`` (resubmit unfilled parts), ``deadline`` (cancel what still works), ``close``
(reconcile, summarise, update bars, decide the next plan with the strategy's own ``targets``, run the
sizing and risk stages). Order and trade events feed the instances' cycles. An exception in one
strategy stops that strategy, logs the traceback and notifies; the engine and the others carry on.
"""

from __future__ import annotations

import math
import threading
import traceback
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any, Callable

from vnpy.event import Event, EventEngine
from vnpy.trader.constant import Exchange, Status
from vnpy.trader.engine import BaseEngine, MainEngine
from vnpy.trader.event import EVENT_CONTRACT, EVENT_ORDER, EVENT_TRADE
from vnpy.trader.object import (
    ContractData,
    OrderData,
    OrderRequest,
    SubscribeRequest,
    TradeData,
)
from vnpy.trader.utility import get_folder_path

from ...attribution.execution import ExecutionStats, render_markdown
from ...config import validate_section
from ...errors import InputRejected, Problem
from ...live.cycle import ExecutionCycle, RiskInputs
from ...live.hooks import HookContext, Stages
from ...live.plan import DayProgress, StrategyState
from ...live.risk_stage import RiskBook
from ...live.sizing import Quote
from ...live.state_file import read_json, write_atomic
from ...live.terms import terms_on
from ...market.instruments import default_registry
from ...market.xt_check import XtMismatch, check_contract
from ...risk.events import (
    ACCOUNT,
    EVENT_RISK_ALERT,
    EVENT_RISK_STATE,
    EVENT_RISK_STRATEGY,
    RiskAlert,
    RiskStateChange,
    StrategyRiskUpdate,
)
from .accounts import FLATTEN, AccountOperations
from .broker import VnpyBroker, broker_order, broker_trade
from .canary import CanaryDriver
from .canary_records import canary_view, with_holdings
from .clock import EVENT_ROTATION_PHASE, Phase, SessionClock
from .decide import decide_plan
from .execution_book import ExecutionBook, session_benchmarks
from .settings import SETTING_FILENAME, InstanceSetting, read_instance

APP_NAME = "RotationStrategy"
EVENT_ROTATION_STRATEGY = "eRotationStrategy"
EVENT_ROTATION_LOG = "eRotationLog"


@dataclass
class StrategyInstance:
    name: str
    setting: InstanceSetting
    strategy: Any = None
    cycle: ExecutionCycle | None = None
    inited: bool = False
    trading: bool = False
    error: str = ""
    trail: list[str] = field(default_factory=list)  # the last decision's sizing and risk stages
    execution: tuple[ExecutionStats, ...] = ()  # the last session's execution statistics (strategy, account)
    closed: dict | None = None  # today's summary, sent once every strategy closed (with the account's figures)


class RotationEngine(AccountOperations, BaseEngine):
    """Strategy instances, their persisted state and their daily cycle."""

    def __init__(self, main_engine: MainEngine, event_engine: EventEngine) -> None:
        super().__init__(main_engine, event_engine, APP_NAME)
        self.classes: dict[str, type] = {}
        self.instances: dict[str, StrategyInstance] = {}
        self.stages = Stages()
        self.state_folder: Path | None = None
        self.settings_path: Path | None = None
        self.notify: Callable[[str, str, str], object] = lambda kind, subject, content: None
        self.notifier = None
        self.day_closed: list[Callable[[str, DayProgress | None, dict], None]] = []  # e.g. the daemon's files
        self.contract_mismatches: dict[str, list[XtMismatch]] = {}  # traded symbol -> gateway vs table
        self._lock = threading.RLock()
        self._registered = False
        self.clock = SessionClock(event_engine)
        self.canary = CanaryDriver(self)

    # -- set-up -------------------------------------------------------------------------------------
    def init_engine(self, state_folder: Path | None = None, strategy_folder: Path | None = None,
                    notifications: bool = True) -> None:
        """Discover classes and load the persisted instances. ``state_folder`` (default: the runtime folder's
        ``rotation_state``) holds the instances' settings and states: a replay keeps its own.
        ``notifications``: send failures, daily summaries and rejected orders (see :mod:`.notifications`)."""
        from .discovery import discover
        from .notifications import build_notifier

        if notifications:
            self.notifier = build_notifier(self.main_engine, self.write_log)
            self.notify = self.notifier.notify

        self.state_folder = Path(state_folder) if state_folder else get_folder_path("rotation_state")
        self.execution_book = ExecutionBook(self.state_folder, self.write_log)
        self.settings_path = self.state_folder.parent / SETTING_FILENAME if not state_folder \
            else self.state_folder / SETTING_FILENAME
        self.classes = discover(strategy_folder or Path.cwd() / "strategies", self.write_log)
        for name, raw in (read_json(self.settings_path, {}) or {}).items():
            try:
                self.instances[name] = StrategyInstance(name, read_instance(name, raw, str(self.settings_path)))
            except InputRejected as exc:
                self.write_log(f"策略{name}配置无效, 已跳过: {exc}")
        if not self._registered:
            self.event_engine.register(EVENT_ROTATION_PHASE, self._process_phase)
            self.event_engine.register(EVENT_ORDER, self._process_order)
            self.event_engine.register(EVENT_TRADE, self._process_trade)
            self.event_engine.register(EVENT_CONTRACT, self._process_contract)
            self.event_engine.register(EVENT_RISK_STATE, self._process_risk_state)
            self._registered = True
        self.write_log("轮动策略引擎初始化成功")

    def _save_settings(self) -> None:
        write_atomic(self.settings_path, {name: i.setting.model_dump(mode="json") for name, i in self.instances.items()})

    def close(self) -> None:
        self.clock.stop()
        if self.notifier is not None:
            self.notifier.close()

    # -- instances ----------------------------------------------------------------------------------
    def class_parameters(self, class_name: str) -> dict[str, Any]:
        cls = self._class(class_name)
        return cls.Settings().model_dump(mode="json")

    def add_strategy(self, name: str, class_name: str, settings: dict | None = None, **options: Any) -> None:
        with self._lock:
            if not name or "|" in name:
                raise InputRejected(Problem("strategy name", None, "must be non-empty without '|'"))
            if name in self.instances:
                raise InputRejected(Problem("strategy name", None, f"{name!r} exists already"))
            setting = self._validated(name, {"class_name": class_name, "settings": settings or {}, **options})
            self.instances[name] = StrategyInstance(name, setting)
            self._save_settings()
            self._put_strategy(self.instances[name])

    def edit_strategy(self, name: str, settings: dict | None = None, **options: Any) -> None:
        with self._lock:
            instance = self._instance(name)
            if instance.trading:
                raise InputRejected(Problem(name, None, "stop the strategy before editing it"))
            raw = instance.setting.model_dump(mode="json")
            raw["settings"] = {**raw["settings"], **(settings or {})}
            raw.update(options)
            instance.setting = self._validated(name, raw)
            instance.inited, instance.strategy, instance.cycle = False, None, None
            self._save_settings()
            self._put_strategy(instance)

    def remove_strategy(self, name: str) -> None:
        with self._lock:
            instance = self._instance(name)
            if instance.trading:
                raise InputRejected(Problem(name, None, "stop the strategy before removing it"))
            del self.instances[name]
            self._save_settings()
            self._state_path(name).unlink(missing_ok=True)

    def init_strategy(self, name: str) -> None:
        """Build the strategy, load its state, subscribe its symbols and recover orders after a restart."""
        with self._lock:
            instance = self._instance(name)
            setting = instance.setting
            try:
                cls = self._class(setting.class_name)
                instance.strategy = cls(validate_section(cls.Settings, setting.settings, f"{name}: settings"))
                state = StrategyState.from_json(read_json(self._state_path(name), None) or {})
                if self._shared(instance):
                    self._check_disjoint(instance)
                broker = VnpyBroker(self.main_engine, setting.gateway, partial(self._refused, name),
                                    partial(self._holding_filter, instance))
                instance.cycle = ExecutionCycle(name, setting.execution(), broker,
                                                partial(terms_on, config=setting.backtest), state,
                                                partial(self._save_state, name),
                                                lambda msg: self.write_log(f"[{name}] {msg}"),
                                                partial(self._journal, name))
                instance.cycle.allocation = partial(self.allocated, name)
                clock = getattr(self.main_engine.get_gateway(setting.gateway), "market_clock", None)
                if clock is not None:  # a replay's simulated time stamps the orders (live: the wall clock)
                    instance.cycle.clock = clock
                for vt_symbol in self.canary.symbols(instance):
                    self.subscribe(vt_symbol, setting.gateway)
                for note in instance.cycle.recover():
                    self.write_log(f"[{name}] 恢复: {note}")
                self.canary.resume(instance)
                instance.inited, instance.error = True, ""
                self.write_log(f"[{name}] 初始化完成")
            except Exception:
                self._fail(instance, traceback.format_exc())
            self._put_strategy(instance)

    def subscribe(self, vt_symbol: str, gateway: str) -> None:
        code, exchange = vt_symbol.split(".")
        self.main_engine.subscribe(SubscribeRequest(code, Exchange(exchange)), gateway)
        contract = self.main_engine.get_contract(vt_symbol)  # arrived at connect, before this
        if contract is not None:
            self._check_contract(contract)

    def adopt_version(self, instance: StrategyInstance, version: str, settings: dict[str, Any]) -> None:
        """The instance runs ``version`` from now on (a completed canary, a rollback to a version): its
        settings replaced, its strategy rebuilt; holdings, state and plan stay."""
        with self._lock:
            instance.setting = self._validated(instance.name, {**instance.setting.model_dump(mode="json"),
                                                               "settings": settings, "version": version})
            cls = self._class(instance.setting.class_name)
            instance.strategy = cls(validate_section(cls.Settings, instance.setting.settings, f"{instance.name}: settings"))
            self._save_settings()
            for vt_symbol in instance.strategy.symbols:
                self.subscribe(vt_symbol, instance.setting.gateway)

    def start_strategy(self, name: str) -> None:
        instance = self._instance(name)
        if not instance.inited:
            raise InputRejected(Problem(name, None, "initialise the strategy before starting it"))
        instance.trading, instance.error = True, ""
        self._put_strategy(instance)

    def stop_strategy(self, name: str) -> None:
        instance = self._instance(name)
        instance.trading = False
        self._put_strategy(instance)

    # -- the clock's phases (event thread) ----------------------------------------------------------
    def _process_phase(self, event: Event) -> None:
        phase: Phase = event.data
        for instance in list(self.instances.values()):
            if not instance.trading:
                continue
            try:
                getattr(self, f"_on_{phase.name}")(instance, phase.day)
            except Exception:
                self._fail(instance, traceback.format_exc())
            self._put_strategy(instance)
        if phase.name == "close":
            self._daily_summaries(phase.day)
            try:
                self._after_close(phase.day)
            except Exception:
                text = traceback.format_exc()
                self.write_log(f"收盘后资金分配/账户对账异常:\n{text}")
                self.notify("failure", f"资金分配/账户对账异常 {phase.day}", text)

    def _on_open(self, instance: StrategyInstance, day: date) -> None:
        cycle = instance.cycle
        if cycle.state.history:
            expected = cycle.state.history[-1].get("positions", {})
            held = {s: v for s, v in cycle.broker.holdings().items() if v}
            if held != expected and cycle.state.progress is None:
                self.write_log(f"[{instance.name}] 开盘对账: 券商持仓{held}, 昨收记录{expected}")
        quotes = self._quotes(instance, day, opening=True)
        self.canary.on_open(instance, day, quotes)  # a canary's two versions netted into the one plan
        cycle.open(day, quotes)

    def _on_retry(self, instance: StrategyInstance, day: date) -> None:
        instance.cycle.retry(self._quotes(instance, day, opening=False))

    def _on_deadline(self, instance: StrategyInstance, day: date) -> None:
        instance.cycle.deadline()

    def _on_close(self, instance: StrategyInstance, day: date) -> None:
        """After the close: today's bars and decision first (the risk stage reads the same closes as the
        backtest), then the session's close with the risk stage, then the new plan through the stages. A
        strategy that fails to decide still closes its session (summary, journal) before it stops."""
        cycle = instance.cycle
        flattening = cycle.state.plan is not None and cycle.state.plan.reason == FLATTEN
        if flattening:  # no new decision: the flatten plan until the strategy holds nothing
            plan = cycle.state.plan
            self._close_session(instance, day, None)
            if not any(cycle.broker.holdings().values()):
                instance.trading = False
                self.write_log(f"[{instance.name}] 已清仓, 策略停止")
            elif cycle.state.plan is None:
                cycle.adopt(plan)
            return
        since = date.fromisoformat(cycle.state.history[0]["day"]) if cycle.state.history else day
        canary = self.canary.ledger(instance) is not None
        try:
            decided = decide_plan(instance.name, instance.strategy, instance.setting, day, self.main_engine,
                                  since=since, latest=canary)
        except Exception:
            self._close_session(instance, day, None)
            raise
        for warning in decided.warnings:
            self.write_log(f"[{instance.name}] {warning}")
        if decided.drift:  # the risk app counts drift sessions for its forced-retrain fail-safe (before the close)
            self.event_engine.put(Event(EVENT_RISK_ALERT, RiskAlert("drift", instance.name, day,
                                                                    "; ".join(decided.drift))))
        book = cycle.state.risk
        if book is None and decided.risk_inputs is not None:
            book = cycle.state.risk = RiskBook.create(decided.symbols, decided.rules, cycle.settings.config.risk)
        elif book is not None and decided.risk_inputs is not None:
            book.align(decided.symbols, decided.rules, cycle.settings.config.risk)
        self.canary.before_close(instance, day)  # a canary: the session's fills to the version books,
        self.canary.decide(instance, day, decided, since)  # then both versions' plans for the next open
        closes = {s: q.price for s, q in self._quotes(instance, day, opening=False).items()}
        self._close_session(instance, day, decided.risk_inputs, partial(self.canary.settle, instance, day, closes))
        if canary:  # the canary's plans; when it ended here, the remaining version's decision
            plan = self.canary.winner_plan(instance, day)
            if plan is not None:
                cycle.adopt(plan)
            return
        if self.canary.switch(instance, day):  # a version switch adopted the new version's plan
            return
        if decided.plan is None:
            return
        decided.plan = with_holdings(decided.plan, cycle.broker.holdings())
        context = HookContext(instance.name, day, cycle.broker.holdings(), cycle.broker.cash(),
                              tuple(cycle.state.history), self._allocation_of(instance),
                              cycle.state.risk.rung_name if cycle.state.risk is not None else "ACTIVE")
        plan, instance.trail = self.stages.run(decided.plan, context)
        if plan is not None:
            cycle.adopt(plan)

    def _close_session(self, instance: StrategyInstance, day: date, risk: RiskInputs | None,
                       settle: Callable[[], None] | None = None) -> None:
        cycle = instance.cycle
        book = cycle.state.risk
        seen = len(book.changes) if book is not None else 0
        closes = {s: q.price for s, q in self._quotes(instance, day, opening=False).items()}
        progress = cycle.state.progress.to_json() if cycle.state.progress is not None else None
        summary = cycle.close(day, closes, risk, settle)
        if summary is not None:
            if summary["reconciliation"]:
                self.notify("failure", f"{instance.name} 对账差异 {day}", str(summary["reconciliation"]))
            ticks = [self.main_engine.get_tick(s) for s in self.canary.symbols(instance)]
            self.execution_book.add(instance.name, instance.setting.gateway, day, progress,
                                    session_benchmarks([t for t in ticks if t is not None], day))
            instance.closed = summary
        if book is None or summary is None:
            return
        changes = [f"{c.ladder} {c.before} → {c.after} ({c.trigger:.1%})" for c in book.changes[seen:]]
        for text in changes:
            self.write_log(f"[{instance.name}] 风控阶梯 {text}")
        # The risk app enforces the strategy's rung on every order below the apps (and notifies changes).
        peak, flatten = book.peak_and_flatten()
        self.event_engine.put(Event(EVENT_RISK_STRATEGY, StrategyRiskUpdate(
            instance.name, day, book.rung_name, tuple(changes), float(summary["equity"]), peak, flatten)))

    def _daily_summaries(self, day: date) -> None:
        """Once every strategy closed ``day``: each closed one's daily summary with the execution statistics
        (docs/execution_stats.md) of the strategy and of its account (all its strategies), the session's and
        cumulated since the run began."""
        closed = [i for i in self.instances.values() if i.closed is not None]
        try:
            stats = self.execution_book.stats(day) if closed else ()
        except Exception:  # the summaries go out all the same, without the statistics
            stats = ()
            self.notify("failure", f"执行统计异常 {day}", traceback.format_exc())
        for instance in closed:
            summary, instance.closed = instance.closed, None
            instance.execution = ExecutionBook.of(stats, instance.name, instance.setting.gateway)
            self.notify("daily_summary", f"{instance.name} 日终 {day}",
                        _summary_text(summary) + "\n\n" + render_markdown(instance.execution))
            self._put_strategy(instance)

    def _process_risk_state(self, event: Event) -> None:
        """A manual reset in the risk app (GUI or ``run.py risk reset``) applies to the strategy's own
        ladders too (the account's to the ladder named ``account`` of every strategy)."""
        change: RiskStateChange = event.data
        if change.source != "reset":
            return
        for instance in self.instances.values():
            book = instance.cycle.state.risk if instance.cycle is not None else None
            if book is None or change.scope not in (instance.name, ACCOUNT):
                continue
            history = instance.cycle.state.history
            equity = float(history[-1]["equity"]) if history else float(instance.cycle.broker.cash())
            names = ["account"] if change.scope == ACCOUNT else [n for n in book.ladder_names if n != "account"]
            with self._lock:
                done = book.reset(names, equity)
                instance.cycle.save()
            if done:
                self.write_log(f"[{instance.name}] 风控阶梯手动复位 {', '.join(done)}: {change.reason}")

    def _quotes(self, instance: StrategyInstance, day: date, opening: bool) -> dict[str, Quote]:
        """Each symbol's price from the gateway's latest tick of ``day``: the open, or the last price."""
        quotes = {}
        for vt_symbol in self.canary.symbols(instance):
            tick = self.main_engine.get_tick(vt_symbol)
            if tick is None or tick.datetime is None or tick.datetime.date() != day:
                quotes[vt_symbol] = Quote(math.nan)
                continue
            price = tick.open_price if opening else tick.last_price
            quotes[vt_symbol] = Quote(price if price > 0 else math.nan, tick.limit_up or math.nan,
                                      tick.limit_down or math.nan, tick.pre_close or math.nan)
        return quotes

    # -- order and trade events (event thread) ------------------------------------------------------
    def _process_order(self, event: Event) -> None:
        order: OrderData = event.data
        instance = self._owner(order)
        if instance is None:
            return
        if order.status == Status.REJECTED:
            self._refused(instance.name, order)
        self._guarded(instance, lambda: instance.cycle.on_order(broker_order(order)))

    def _process_trade(self, event: Event) -> None:
        trade: TradeData = event.data
        for instance in self.instances.values():
            if instance.cycle is not None:
                self._guarded(instance, lambda i=instance: i.cycle.on_trade(broker_trade(trade)))

    def _refused(self, name: str, order: OrderData | OrderRequest) -> None:
        """An order refused by the broker, or by vnpy_riskmanager before it left."""
        self.notify("rejected_order", f"{name} 委托被拒",
                    f"{order.vt_symbol} {order.direction.value} {order.volume:g}@{order.price:g} ({order.reference})")

    def _owner(self, order: OrderData) -> StrategyInstance | None:
        """The instance that sent ``order``: by its reference, or (vnpy_xt drops the reference after the
        first update) by the order id its cycle recorded."""
        if "|" in order.reference:
            instance = self.instances.get(order.reference.split("|", 1)[0])
            return instance if instance is not None and instance.cycle is not None else None
        return next((i for i in self.instances.values() if i.cycle is not None and i.cycle.owns(order.vt_orderid)),
                    None)

    def _guarded(self, instance: StrategyInstance, call: Callable[[], None]) -> None:
        try:
            call()
        except Exception:
            self._fail(instance, traceback.format_exc())
        self._put_strategy(instance)

    # -- contracts (event thread) -------------------------------------------------------------------
    def _process_contract(self, event: Event) -> None:
        """Check the contracts of traded symbols only: a gateway publishes thousands at connect, and the
        table's names for codes nobody trades (renamed funds) would bury the warnings that matter."""
        contract: ContractData = event.data
        if any(i.strategy is not None and contract.vt_symbol in i.strategy.symbols for i in self.instances.values()):
            try:
                self._check_contract(contract)
            except InputRejected as exc:  # a broken user instruments file must not stop the event thread
                self.write_log(f"{contract.vt_symbol} 合约核对失败: {exc}")

    def _check_contract(self, contract: ContractData) -> None:
        """Compare the gateway's name, tick and product with the instrument table; one warning per change."""
        instrument = default_registry().find(contract.symbol, contract.exchange.value)
        product = contract.product.value if contract.product is not None else ""
        found = check_contract(instrument, contract.name, product, contract.pricetick)
        if found == self.contract_mismatches.get(contract.vt_symbol, []):
            return
        if found:
            self.contract_mismatches[contract.vt_symbol] = found
            self.write_log(f"合约与品种表不符 ({contract.gateway_name}): " + "; ".join(map(str, found)))
        else:
            self.contract_mismatches.pop(contract.vt_symbol, None)

    # -- helpers ------------------------------------------------------------------------------------
    def _fail(self, instance: StrategyInstance, text: str) -> None:
        instance.trading, instance.error = False, text
        self.write_log(f"[{instance.name}] 策略异常, 已停止:\n{text}")
        self.notify("failure", f"{instance.name} 策略异常已停止", text)

    def _validated(self, name: str, raw: dict) -> InstanceSetting:
        setting = read_instance(name, raw, "strategy setting")
        cls = self._class(setting.class_name)
        validate_section(cls.Settings, setting.settings, f"{name}: settings")
        return setting

    def _class(self, class_name: str) -> type:
        cls = self.classes.get(class_name)
        if cls is None:
            raise InputRejected(Problem("class_name", None, f"unknown strategy class {class_name!r}; "
                                        f"choose from {', '.join(sorted(self.classes))}"))
        return cls

    def _instance(self, name: str) -> StrategyInstance:
        instance = self.instances.get(name)
        if instance is None:
            raise InputRejected(Problem("strategy name", None, f"no strategy named {name!r}"))
        return instance

    def _state_path(self, name: str) -> Path:
        return self.state_folder / f"{name}.json"

    def _journal(self, name: str, progress: DayProgress | None, summary: dict) -> None:
        for callback in self.day_closed:
            callback(name, progress, summary)

    def _save_state(self, name: str, state: StrategyState) -> None:
        write_atomic(self._state_path(name), state.to_json())

    def snapshot(self, instance: StrategyInstance) -> dict[str, Any]:
        """What the widget shows of an instance."""
        cycle = instance.cycle
        state = cycle.state if cycle else StrategyState()
        return {"name": instance.name, "class_name": instance.setting.class_name, "gateway": instance.setting.gateway,
                "inited": instance.inited, "trading": instance.trading, "error": instance.error,
                "plan": None if state.plan is None else state.plan.to_json(),
                "progress": None if state.progress is None else state.progress.to_json(),
                "last_summary": state.history[-1] if state.history else None, "trail": list(instance.trail),
                "version": instance.setting.version, "execution": [x.to_json() for x in instance.execution],
                "canary": None if state.canary is None else canary_view(state.canary)}

    def _put_strategy(self, instance: StrategyInstance) -> None:
        self.event_engine.put(Event(EVENT_ROTATION_STRATEGY, self.snapshot(instance)))

    def write_log(self, msg: str) -> None:
        self.main_engine.write_log(msg, APP_NAME)
        self.event_engine.put(Event(EVENT_ROTATION_LOG, msg))


def _summary_text(summary: dict) -> str:
    lines = [f"{k}: {summary[k]}" for k in ("day", "equity", "pnl", "cash", "orders", "fills")]
    lines.append("positions: " + ", ".join(f"{s} {v:g}" for s, v in summary["positions"].items()))
    if summary.get("unfilled"):
        lines.append(f"unfilled: {summary['unfilled']}")
    return "\n".join(lines)
