"""The headless trading daemon: a MainEngine with a gateway, vnpy_riskmanager and our app, driven by a clock.

Replay (:func:`run_replay`) walks the stored sessions as fast as the event queue drains; live
(:func:`run_live`) waits for the exchange's times in Asia/Shanghai. Both put the same phase events on
the queue, so the live code path is the one the replay exercises.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd
from vnpy.event import EventEngine
from vnpy.trader.engine import MainEngine

from ...allocation import AllocationConfig
from ...backtest.config import BacktestConfig
from ...backtest.engine import simulate
from ...backtest.loader import market_for
from ...backtest.runner import clipped_warning
from ...backtest.sweep import plan_within
from ...canary.config import CanaryConfig
from ...data.panels import bar_span
from ...errors import InputRejected, Problem
from ...live.consistency import Consistency, compare, write_report
from ...live.schedule import SessionTimes
from ...live.session_log import SESSIONS_FILE, STRATEGY_STOPPED, SessionLog, close_slot, replay_phases, slots
from ...live.state_file import read_json, write_atomic
from ...live.trouble import Trouble
from ...market.calendar import default_calendar
from ...ops.kpi_config import KpiThresholds
from ...risk.config import RiskConfig
from . import RotationStrategyApp
from .engine import RotationEngine
from .journal import DayJournal
from .kpi_hook import SessionKpis


@dataclass(frozen=True)
class TradeSpec:
    strategy: str  # the built-in name (run.py --strategy) or a class name
    settings: dict[str, Any]
    config: BacktestConfig
    out: Path
    start: date | None = None
    end: date | None = None
    tolerance_bps: float = 0.0
    max_rounds: int = 3
    canary: CanaryStart | None = None  # a candidate version run beside the strategy from the first session
    version: str = ""  # the registered version ``settings`` are ("": not registered)
    trouble: Trouble | None = None  # replay: trouble the paper account injects (a canary drill)
    until_canary_ends: bool = False  # replay: stop after the session that ends the canary (a drill)
    kpi: KpiThresholds | None = None  # the daily KPI snapshot's thresholds (None: the defaults)
    allocation: AllocationConfig | None = None  # capital shared among strategies and accounts (None: not capped)


@dataclass(frozen=True)
class CanaryStart:
    """A canary release to start with the run: the candidate version and the release's configuration."""

    candidate: str  # version id
    config: CanaryConfig = CanaryConfig()
    champion: str = ""  # version id of the running settings ("": not registered)
    who: str = "run.py"
    why: str = "canary started with the run"
    rehearsal: bool = False  # a drill: alias moves are recorded in the run's state, not in the registry


PARAMETERS_FILE = "run_parameters.json"  # in OUT/state: what the state there was built with
RUN_OUTPUTS = ("state", "journal", "trades.csv", "orders.csv", "daily_summary.csv", "consistency.md",
               "consistency.csv", SESSIONS_FILE, "kpi")  # what a run writes into its --out folder (removed by --fresh)


def run_parameters(spec: TradeSpec, gateway: str, connection: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything that shapes a run's state: resuming it under other values would mix two accounts."""
    return {"gateway": gateway, "strategy": spec.strategy, "settings": spec.settings,
            "backtest": spec.config.model_dump(mode="json"),
            "start": spec.start.isoformat() if spec.start else None, "end": spec.end.isoformat() if spec.end else None,
            "tolerance_bps": spec.tolerance_bps, "max_rounds": spec.max_rounds,  # not the version: a release moves it
            # the champion is not a parameter: a completed canary moves it, and the run must resume
            "canary": None if spec.canary is None else {"candidate": spec.canary.candidate,
                                                         "config": spec.canary.config.model_dump(mode="json")},
            "trouble": None if spec.trouble is None else spec.trouble.model_dump(mode="json"),
            "connection": {k: v for k, v in (connection or {}).items() if k != "token"},  # no secrets on disk
            # only when set: runs recorded before allocation existed resume unchanged
            **({} if spec.allocation is None else {"allocation": spec.allocation.model_dump(mode="json")})}


def claim_out_folder(out: Path, parameters: dict[str, Any], fresh: bool = False) -> str:
    """Make ``out`` hold a run of ``parameters``: resume one with the same parameters, refuse other ones
    (naming what differs) unless ``fresh``, which removes the earlier run's files first. Returns what was done.

    The parameters are stored atomically (their SHA-256 and the readable values) before any state is written.
    """
    text = json.dumps(parameters, sort_keys=True, ensure_ascii=False, default=str)
    values = json.loads(text)  # as stored: dates and paths as strings
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    path = out / "state" / PARAMETERS_FILE
    stored = read_json(path)
    earlier = [name for name in RUN_OUTPUTS if (out / name).exists()]
    if not fresh and stored is not None and stored.get("sha256") == digest:
        return "resumed"
    if earlier and not fresh:
        if stored is None:
            reason = "holds a trade run whose parameters were not recorded"
        else:
            old, new = _flat(stored.get("parameters") or {}), _flat(values)
            differ = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            reason = f"holds a trade run with other parameters (differing: {', '.join(differ)}; see {path})"
        raise InputRejected(Problem("--out", None, f"{out} {reason}; rerun with the same parameters to resume it, "
                                    "add --fresh to start over in that folder, or choose another --out"))
    for name in earlier:
        target = out / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    write_atomic(path, {"sha256": digest, "parameters": values})
    return "started afresh" if earlier else "started"


def _flat(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"backtest": {"capital": 1}}`` → ``{"backtest.capital": 1}``: to name the field that differs."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict) and value:
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


class Stack:
    """MainEngine + gateway + RiskManager + our RiskEngine (its rule on RiskManager) + RotationEngine + the
    CanaryEngine over it, and a way to wait until the queue is idle."""

    def __init__(self, gateway_class: type, state_folder: Path, notifications: bool = True,
                 risk: RiskConfig | None = None, accounts: Sequence[str] = (),
                 allocation: AllocationConfig | None = None) -> None:
        """``accounts``: gateway names, one ``gateway_class`` instance each in the one MainEngine (several
        accounts; empty: the class's default name); ``allocation``: how capital is shared among strategies."""
        from vnpy_riskmanager import RiskManagerApp

        from ..canary import CanaryApp, CanaryEngine
        from ..risk import RiskApp, RiskEngine

        self.event_engine = EventEngine()
        self.main_engine = MainEngine(self.event_engine)
        self.gateways = {}
        for name in accounts or ("",):
            gateway = self.main_engine.add_gateway(gateway_class, name)
            self.gateways[gateway.gateway_name] = gateway
        self.gateway = next(iter(self.gateways.values()))  # the first account's
        self.main_engine.add_app(RiskManagerApp)
        self.risk: RiskEngine = self.main_engine.add_app(RiskApp)  # after RiskManager: it registers its rule there
        # the account ladder of the run's configuration (None: the one stored with the state)
        self.risk.init_engine(state_folder=state_folder, config=risk, notifications=notifications,
                              allocation=allocation)
        self.engine: RotationEngine = self.main_engine.add_app(RotationStrategyApp)
        self.engine.init_engine(state_folder=state_folder, notifications=notifications)
        self.canary: CanaryEngine = self.main_engine.add_app(CanaryApp)  # the releases' control plane

    def size_risk_rules(self, capital: float, log: Callable[[str], None]) -> None:
        """vnpy_riskmanager's order-size rule defaults to 500 shares per order, far below an A-share
        portfolio's orders. Unless the user configured it, size it to the capital (not saved to disk)."""
        risk = self.main_engine.get_engine("RiskManager")
        rule = risk.rules.get("委托规模检查") if risk else None
        if rule is None or "委托规模检查" in risk.setting:
            return
        limits = {"order_volume_limit": int(capital * 10), "order_value_limit": float(capital)}
        rule.update_setting(limits)
        log(f"vnpy_riskmanager 委托规模检查 (not configured) sized to the capital: {limits}")

    def drain(self, timeout: float = 120.0) -> None:
        self.engine.clock.drain(timeout)

    def phase(self, name: str, day: date) -> None:
        self.engine.clock.phase(name, day)

    def close(self) -> None:
        self.main_engine.close()


def accounts_of(spec: TradeSpec) -> tuple[str, ...]:
    """The gateway name the run's strategy trades through: its account's in the ``allocation:`` section
    (empty: the gateway class's default name)."""
    if spec.allocation is None:
        return ()
    line = next((s for s in spec.allocation.strategies if s.name == spec.strategy), None)
    return () if line is None else (spec.allocation.account(line.account).gateway,)


def class_name_of(strategy: str) -> str:
    from ...strategies import STRATEGIES

    return STRATEGIES[strategy].__name__ if strategy in STRATEGIES else strategy


def ensure_instance(engine: RotationEngine, spec: TradeSpec, gateway: str) -> str:
    """The instance named after the strategy, created (or its settings refreshed) from ``spec``."""
    options = {"backtest": spec.config.model_dump(mode="json"), "gateway": gateway,
               "history_start": spec.start.isoformat() if spec.start else None,
               "tolerance_bps": spec.tolerance_bps, "max_rounds": spec.max_rounds, "version": spec.version}
    name = spec.strategy
    existing = engine.instances.get(name)
    if existing is not None and existing.setting.version and existing.setting.version != spec.version:
        # a release moved the instance to another version (a completed canary, a rollback): it keeps it
        options.pop("version")
        engine.edit_strategy(name, None, **options)
    elif existing is not None:
        engine.edit_strategy(name, spec.settings, **options)
    else:
        engine.add_strategy(name, class_name_of(spec.strategy), spec.settings, **options)
    return name


def run_replay(spec: TradeSpec, output: Callable[[str], None] = print) -> Consistency | None:
    """Replay ``spec.start … spec.end`` through the live stack in paper mode, resuming where a previous
    run in the same ``out`` folder stopped; then compare with the backtest."""
    from ...backtest.loader import BENCHMARKS, ensure_bundled
    from ...data.store import BarStore
    from ...gateways.replay import ReplayGateway
    from ...strategies import create_strategy

    symbols = create_strategy(spec.strategy, spec.settings).symbols
    if ensure_bundled(symbols + list(BENCHMARKS), BarStore()):
        output("imported the bundled real data into the database (first run)")
    spec = clip_replay(spec, bar_span(symbols), output)
    state = spec.out / "state"
    stack = Stack(ReplayGateway, state, notifications=False, risk=spec.config.risk,  # paper history: nobody to tell
                  accounts=accounts_of(spec), allocation=spec.allocation)
    try:
        gateway: ReplayGateway = stack.gateway
        gateway.config = spec.config
        gateway.trouble = spec.trouble
        stack.engine.day_closed.append(DayJournal(spec.out))
        stack.engine.day_closed.append(SessionKpis(spec.out, stack.engine.notify, stack.engine.write_log,
                                                   spec.kpi))
        stack.main_engine.connect({"初始资金": spec.config.capital, "开始日期": str(spec.start or ""),
                                   "结束日期": str(spec.end or ""), "账本文件": str(state / "replay_book.json")},
                                  gateway.gateway_name)
        stack.drain()
        stack.size_risk_rules(spec.config.capital, output)
        # orders limited at the expected price fill as the backtest fills; injected slippage needs room to fill
        tolerance = spec.tolerance_bps if spec.trouble is not None else 0.0
        name = ensure_instance(stack.engine, replace(spec, tolerance_bps=tolerance), gateway.gateway_name)
        stack.engine.init_strategy(name)
        stack.drain()
        stack.engine.start_strategy(name)
        cycle = stack.engine.instances[name].cycle
        if cycle is None:
            raise RuntimeError(stack.engine.instances[name].error or "the strategy did not initialise")
        sessions = gateway.sessions()
        if sessions and canary_to_start(cycle.state.canary, spec.canary):
            start_canary(stack, name, spec.canary, sessions[0].date())
        log = SessionLog(spec.out)
        schedule = slots([d.date() for d in sessions], replay_phases(SessionTimes()))
        logged = log.around(schedule, lambda: stopped(stack.engine.instances[name]))
        for day in sessions:
            today = day.date()
            if cycle.state.last_close >= today.isoformat():
                log.note_done(close_slot(today, SessionTimes()), "closed before a restart")
                continue  # closed before a restart
            # checked before each session, not after: a drill resumed after its canary ended replays nothing more
            if spec.until_canary_ends and stack.engine.canary.ledger(stack.engine.instances[name]) is None:
                break
            stack.engine.clock.replay_session(gateway, day, logged)
            instance = stack.engine.instances[name]
            if not instance.trading:
                raise RuntimeError(f"strategy {name} stopped on {today}:\n{instance.error}")
            output(f"{today}  equity {cycle.state.history[-1]['equity']:>14,.2f}  "
                   f"fills {cycle.state.history[-1]['fills']}")
        if spec.canary is not None:  # two versions in one account: no single backtest to equal
            return None
        result = replay_consistency(spec)
        write_report(result, spec.out / "consistency.md", spec.out / "consistency.csv")
        if len(result.daily):  # the downgrade-request fail-safe's observation of the last session
            stack.risk.observe_deviation(name, result.daily["date"].iloc[-1], replay_deviation(result, spec))
            stack.drain()
    finally:
        stack.close()
    return result


def stopped(instance: Any) -> str | None:
    """Why a phase failed: the instance stopped trading (the last line of its error), else None."""
    if instance.trading:
        return None
    lines = (instance.error or "").strip().splitlines()
    return f"{STRATEGY_STOPPED}: {lines[-1] if lines else 'no error recorded'}"


def canary_to_start(ledger: Any, canary: CanaryStart | None) -> bool:
    """Whether the run's canary must be started: none ran yet, or the last one (ended) was another
    candidate's. A run resumed after its canary ended does not start the same candidate again."""
    if canary is None:
        return False
    return ledger is None or (ledger.machine.status.value in ("complete", "rolled_back")
                              and ledger.candidate != canary.candidate)


def start_canary(stack: Stack, name: str, canary: CanaryStart, first_session: date) -> None:
    """Start ``canary`` on instance ``name`` before its first session (its stages count from that session)."""
    from ...ops.versions import VersionRegistry

    instance = stack.engine.instances[name]
    candidate = VersionRegistry().load(canary.candidate)
    day = default_calendar().previous(first_session) if instance.cycle.state.last_close == "" else \
        date.fromisoformat(instance.cycle.state.last_close)
    stack.engine.canary.start(instance, candidate, canary.config, canary.champion, canary.who, canary.why, day,
                              rehearsal=canary.rehearsal)
    stack.drain()


def replay_deviation(result: Consistency, spec: TradeSpec) -> float:
    """The backtest-vs-live deviation of a replay: its largest |equity difference| as a fraction of capital."""
    worst = result.daily["equity_diff"].abs().max()
    return float(worst) / spec.config.capital if pd.notna(worst) else 0.0


def clip_replay(spec: TradeSpec, span: tuple[date, date] | None, output: Callable[[str], None]) -> TradeSpec:
    """``spec`` with ``start``/``end`` moved inside the stored bars (said on ``output``): sessions past the
    data would replay flat days as if the market had been open and quiet."""
    if span is None:
        return spec
    calendar = default_calendar()
    if spec.end is not None and spec.end > span[1]:
        if len(calendar.between(span[1] + timedelta(days=1), spec.end)):  # not just a weekend or a holiday
            output(f"warning: {clipped_warning('--end', spec.end, span[1])}")
        spec = replace(spec, end=span[1])
    if spec.start is not None and spec.start < span[0]:
        if len(calendar.between(spec.start, span[0] - timedelta(days=1))):
            output(f"warning: {clipped_warning('--start', spec.start, span[0])}")
        spec = replace(spec, start=span[0])
    return spec


def backtest_of(spec: TradeSpec) -> tuple[pd.DataFrame, pd.Series]:
    """The backtest the replay must equal: same data cut, same config, the plan's risk rules on (the live
    risk stage runs the same compiled rules at every open and close)."""
    from ...strategies import create_strategy

    strategy = create_strategy(spec.strategy, spec.settings, "strategy")
    full = market_for(strategy, spec.start, spec.end)
    plan = strategy.targets(full)
    market = full.window(spec.start, None)
    result = simulate(market, plan_within(plan, market.days), spec.config, full).to_result()
    return result.trades, result.equity["equity"]


def replay_consistency(spec: TradeSpec) -> Consistency:
    """The backtest of ``spec`` against the replay's files in ``spec.out``."""
    trades, equity = backtest_of(spec)
    live = pd.read_csv(spec.out / "trades.csv")
    summary = pd.read_csv(spec.out / "daily_summary.csv", parse_dates=["date"]).set_index("date")["equity"]
    return compare(trades, live, equity, summary)


