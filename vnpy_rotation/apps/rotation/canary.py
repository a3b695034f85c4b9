"""The rotation engine's canary releases: a candidate version beside a strategy's champion, session by session.

The engine calls :class:`CanaryDriver` at the points of its cycle: at the open the two versions' targets
become one netted order plan (:func:`~vnpy_rotation.live.canary_stage.net_open`); before the close the
session's fills go back to the version books; after the close both versions decide, the books are marked,
the stage's gates are evaluated on what was measured (:func:`vnpy_rotation.canary.gates.evaluate`) and the
release's state machine steps (:mod:`vnpy_rotation.canary.machine`). A promotion past the last stage hands the
strategy to the candidate; a rollback moves the candidate's capital back within the next session through the
same order plan. Every alias move is an audit row in the version registry, written after the state that
decided it is on disk (``pending_aliases``), so a crash never loses one and never writes one twice.

Human events (the GUI's buttons, ``run.py rollback``) go through :meth:`CanaryDriver.command` and the same
table; the command-line ones arrive as a command file beside the strategy's state, applied at the next close.
The risk app's fail-safe flags act here: ``release_freeze`` holds every promotion, ``downgrade_request`` rolls
a running canary back, or moves a strategy without one to its ``last_stable`` version.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from vnpy.event import Event

from ...backtest.engine import simulate
from ...backtest.loader import market_for
from ...canary import machine as release
from ...canary.config import CanaryConfig
from ...canary.evidence import StageEvidence
from ...canary.gates import Action, StageDecision, evaluate
from ...canary.machine import CanaryEventRefused
from ...canary.netting import reconcile
from ...config import validate_section
from ...errors import InputRejected, Problem
from ...live.canary_stage import (
    CANDIDATE,
    CHAMPION,
    AliasIntent,
    CanaryLedger,
    SessionRecord,
    allocate_close,
    entitle,
    mark_close,
    net_open,
    start_ledger,
)
from ...live.hooks import Allocation, HookContext
from ...live.plan import OrderPlan
from ...live.state_file import read_json
from .canary_records import HUMAN_EVENTS, CanaryCommand, canary_view, command_path, with_holdings
from .decide import Decided, decide_plan

if TYPE_CHECKING:
    from .engine import RotationEngine, StrategyInstance

DOWNGRADE = "risk engine downgrade request"
EVENT_CANARY = "eRotationCanary"  # data: canary_view(ledger) after each change of stage or status
class CanaryDriver:
    """Canary releases of the engine's instances (the ledgers live in the instances' persisted states)."""

    def __init__(self, engine: RotationEngine) -> None:
        self.engine = engine
        self.candidates: dict[str, Any] = {}  # instance name -> the candidate's strategy object
        self._research: dict[str, np.ndarray] = {}  # version id -> its research-window daily returns
        self._actions: dict[str, tuple[dict[str, float], dict[str, float]]] = {}  # today's splits, dividends

    # -- queries --------------------------------------------------------------------------------------
    @staticmethod
    def ledger(instance: StrategyInstance) -> CanaryLedger | None:
        """The instance's running canary (None: none, or the last one has ended)."""
        cycle = instance.cycle
        ledger = cycle.state.canary if cycle is not None else None
        return None if ledger is None or ledger.machine.status in release.TERMINAL else ledger

    def strategy(self, instance: StrategyInstance) -> Any:
        """The candidate's strategy object, built from the settings the ledger keeps."""
        ledger = self.ledger(instance)
        if ledger is None:
            return None
        built = self.candidates.get(instance.name)
        if built is None or getattr(built, "_canary_version", "") != ledger.candidate:
            cls = self.engine._class(ledger.candidate_class)
            built = cls(validate_section(cls.Settings, ledger.candidate_settings, f"{ledger.candidate}: settings"))
            built._canary_version = ledger.candidate
            self.candidates[instance.name] = built
        return built

    def symbols(self, instance: StrategyInstance) -> list[str]:
        """Every symbol the instance trades or holds: the champion's, a running candidate's, and whatever the
        account or the plan still has (a candidate's holding the champion sells after a rollback)."""
        symbols = list(instance.strategy.symbols)
        candidate = self.strategy(instance)
        if candidate is not None:
            symbols += [s for s in candidate.symbols if s not in symbols]
        cycle = instance.cycle
        if cycle is not None:
            held = [s for s, v in cycle.broker.holdings().items() if v]
            planned = list(cycle.state.plan.symbols) if cycle.state.plan is not None else []
            symbols += [s for s in dict.fromkeys(held + planned) if s not in symbols]
        return symbols

    # -- start ------------------------------------------------------------------------------------------
    def start(self, instance: StrategyInstance, candidate: Any, config: CanaryConfig, champion: str,
              who: str, why: str, day: date, rehearsal: bool = False) -> CanaryLedger:
        """Start a canary of ``candidate`` (an :class:`~vnpy_rotation.ops.versions.Version`) on ``instance``:
        its first stage begins with the next session."""
        if self.ledger(instance) is not None:
            raise InputRejected(Problem(instance.name, None, "a canary is running already: promote it to the end "
                                        "or roll it back first"))
        if candidate.strategy_class != instance.setting.class_name:
            raise InputRejected(Problem("--candidate", None, f"version {candidate.id} is a {candidate.strategy_class}; "
                                        f"{instance.name} runs {instance.setting.class_name}"))
        refusals = self._release_refusals(instance, candidate)
        if refusals:
            raise InputRejected(Problem("--candidate", None, f"version {candidate.id} may not enter a canary: "
                                        f"release check refuses {'; '.join(refusals)}"))
        cycle = instance.cycle
        if cycle.state.progress is not None:
            raise InputRejected(Problem(instance.name, None, "a session is in progress: start the canary after its "
                                        "close (the books are built from the account between sessions)"))
        history = cycle.state.history
        holdings = {s: v for s, v in cycle.broker.holdings().items() if v}
        cash = float(cycle.broker.cash())
        equity = float(history[-1]["equity"]) if history else cash
        state = release.start(config.stages, day)
        ledger = start_ledger(instance.name, champion, candidate.id, candidate.strategy_class,
                              dict(candidate.settings), config, state, holdings, cash, equity, day)
        ledger.rehearsal = rehearsal
        waiting = read_json(command_path(self.engine.state_folder, instance.name))
        if waiting is not None:  # a command for the strategy before this canary means nothing to it
            command_path(self.engine.state_folder, instance.name).unlink(missing_ok=True)
            self.engine.write_log(f"[{instance.name}] command {waiting.get('event')} dropped: a canary starts")
        if cycle.state.plan is not None and cycle.state.plan.weighted:  # the champion's pending decision stays
            ledger.plans[CHAMPION] = ledger.standing[CHAMPION] = cycle.state.plan
        ledger.pending_aliases.append(AliasIntent("candidate", candidate.id, who, why))
        if champion:
            ledger.pending_aliases.append(AliasIntent("champion", champion, who, why))
        cycle.state.canary = ledger
        cycle.save()
        self._write_aliases(ledger)
        for vt_symbol in self.symbols(instance):
            self.engine.subscribe(vt_symbol, instance.setting.gateway)
        return ledger

    # -- the session ------------------------------------------------------------------------------------
    def on_open(self, instance: StrategyInstance, day: date, quotes: dict) -> None:
        """The two versions' targets become the one order plan the cycle executes this session."""
        ledger = self.ledger(instance)
        if ledger is None:
            return
        cycle = instance.cycle
        progress = cycle.state.progress
        if progress is not None and progress.day == day.isoformat():
            return  # a restart during the session: the cycle carries on with the plan the risk stage let through
        cycle.state.plan = net_open(ledger, day, quotes, cycle.terms_for, cycle.settings.config,
                                    cycle.broker.holdings(), float(cycle.broker.cash()), cycle.allocation())
        for note in ledger.aligned:
            self.engine.write_log(f"[{instance.name}] canary books follow the account overnight: {note}")
        cycle.save()

    def before_close(self, instance: StrategyInstance, day: date) -> None:
        """The session's fills and transfers go to the version books (before the cycle clears the day)."""
        ledger = self.ledger(instance)
        if ledger is None:
            return
        cycle = instance.cycle
        allocate_close(ledger, day, cycle.state.progress, cycle.terms_for, cycle.settings.config.resubmit)
        cycle.save()

    def decide(self, instance: StrategyInstance, day: date, champion: Decided, since: date) -> None:
        """Both versions' targets for the next open, stored before the cycle marks the session closed (a
        restart after that skips the session: its decisions must be on disk by then)."""
        ledger = self.ledger(instance)
        if ledger is None:
            return
        candidate = decide_plan(instance.name, self.strategy(instance), instance.setting, day,
                                self.engine.main_engine, since=since, latest=True)
        split: dict[str, float] = {}
        dividend: dict[str, float] = {}
        for inputs in (candidate.risk_inputs, champion.risk_inputs):  # today's ex-date steps from the data
            if inputs is not None:
                split.update({s: v for s, v in inputs.split.items() if v == v and v != 1.0})
                dividend.update({s: v for s, v in inputs.dividend.items() if v == v and v != 0.0})
        self._actions[instance.name] = (split, dividend)
        trail = []
        for role, decided in ((CHAMPION, champion), (CANDIDATE, candidate)):
            if decided.plan is None:
                continue
            # each version's plan passes the sizing and risk stages with its own book as its allocation
            plan, steps = self.engine.stages.run(decided.plan, self._context(instance, ledger, role, day))
            trail += [f"{role}: {step}" for step in steps]
            if plan is None:
                continue
            # a version's book is given its current target when it starts (the candidate's shadow book
            # begins in cash), then each new decision
            first = role not in ledger.standing
            ledger.standing[role] = plan
            if decided.fresh or (first and role == CANDIDATE):
                ledger.plans[role] = plan
        instance.trail = trail
        instance.cycle.save()

    def settle(self, instance: StrategyInstance, day: date, closes: dict[str, float]) -> None:
        """At the close, after the risk stage (its rung is today's) and before the cycle marks the session
        closed, in the same saved state: the books marked and reconciled, then a human's command or the gates,
        and their effects. Once per session (``closed_day``): a restart that closes the session again skips it."""
        ledger = self.ledger(instance)
        today = day.isoformat()
        if ledger is None or ledger.closed_day == today:
            return
        cycle = instance.cycle
        if cycle.dropped:  # the risk stage dropped the target at this close (a portfolio stop, a halving)
            ledger.plans.clear()
        split, dividend = self._actions.pop(instance.name, ({}, {}))
        if ledger.open_day == today:
            suspense = entitle(ledger, split, dividend, cycle.settings.config.rules.round_costs)
            if abs(suspense) > 0.005:
                self.engine.write_log(f"[{instance.name}] canary: {suspense:+,.2f} CNY of the account's cash not yet "
                                      "explained by a dividend (paid before or after its ex-date, or unexplained)")
        mark_close(ledger, day, closes)
        differences = reconcile(ledger.real_books(), cycle.broker.holdings(),
                                float(cycle.broker.cash()) - ledger.suspense)
        if differences:  # the books no longer sum to the account: say so loudly, keep going on the broker's
            text = "; ".join(f"{d.item}: books {d.books:g} broker {d.broker:g}" for d in differences)
            self.engine.write_log(f"[{instance.name}] canary books vs broker: {text}")
            self.engine.notify("failure", f"{instance.name} 金丝雀账本对账差异 {day}", text)
        book = cycle.state.risk
        halted = book is not None and book.rung_name == "HALTED"
        command = self._read_command(instance, ledger)
        decision = None
        if ledger.machine.status is release.Status.ROLLING_BACK:
            drained = not ledger.books[CANDIDATE].holdings() and ledger.share == 0.0
            event, reason = ("drained", "the candidate's book is empty") if drained else (
                "hold", "the candidate's capital is moving back")
        elif command is not None:
            event, reason = self._flags(instance, command.event, f"{command.who}: {command.reason}")
        else:
            decision = self._decide(instance, ledger, day, halted)
            event, reason = self._flags(instance, decision.action.value, decision.reason)
        self._step(instance, ledger, event, reason, day, decision, halted, differences, closes)
        if command is not None:
            ledger.commands_done.append(command.key)
        ledger.closed_day = today
        if ledger.machine.status is release.Status.COMPLETE:
            self._hand_over(instance, ledger, day)
        cycle.save()
        self._forget_command(instance, command)
        self.resume(instance)  # the alias moves, and a completed canary's hand-over
        if event == "rollback" and reason.startswith(DOWNGRADE):
            self._clear_flag(instance.name, "downgrade_request", "acted on: the canary is rolled back")

    def winner_plan(self, instance: StrategyInstance, day: date) -> OrderPlan | None:
        """When the canary ended at this close: the remaining version's new decision, for the cycle to adopt
        (the canary's own plans end with it)."""
        cycle = instance.cycle
        ledger = cycle.state.canary if cycle is not None else None
        if ledger is None or ledger.closed_day != day.isoformat() or ledger.machine.status not in release.TERMINAL:
            return None
        role = CANDIDATE if ledger.machine.status is release.Status.COMPLETE else CHAMPION
        plan = ledger.plans.get(role)
        return None if plan is None else with_holdings(plan, cycle.broker.holdings())

    def switch(self, instance: StrategyInstance, day: date) -> bool:
        """No canary: a downgrade request (or ``run.py rollback --to``) moves the strategy to a version now.
        True when it did (the engine adopts the version's plan instead of the old one's)."""
        if self.ledger(instance) is not None:
            return False
        return self._downgrade_without_canary(instance, day)

    @staticmethod
    def _context(instance: StrategyInstance, ledger: CanaryLedger, role: str, day: date) -> HookContext:
        """A version's hook context: its own book, and its stage's share of the capital as its allocation."""
        cycle = instance.cycle
        book = ledger.books[role]
        share = release.share(ledger.machine, ledger.config.stages)
        stage = ledger.config.stages[ledger.machine.stage].name
        equity = book.equity[-1][1] if book.equity else None
        capital = equity if equity and equity > 0 else None
        source = f"canary {stage}: {'paper' if book.paper else f'{share if role == CANDIDATE else 1 - share:.0%}'}"
        return HookContext(instance.name, day, book.holdings(), book.cash, tuple(cycle.state.history),
                           Allocation(instance.setting.gateway, f"{instance.name}:{role}", capital, source),
                           cycle.state.risk.rung_name if cycle.state.risk is not None else "ACTIVE")

    # -- gates ------------------------------------------------------------------------------------------
    def _decide(self, instance: StrategyInstance, ledger: CanaryLedger, day: date, halted: bool) -> StageDecision:
        evidence = self.evidence(instance, ledger, day, halted)
        return evaluate(ledger.machine.stage, evidence, ledger.config, day)

    def evidence(self, instance: StrategyInstance, ledger: CanaryLedger, day: date, halted: bool) -> StageEvidence:
        """What was measured over the current stage's sessions, against the candidate's own backtest at the
        stage's capital (the backtest runs from the strategy's history start, so it holds positions on the
        stage's first day as the live book does)."""
        since = stage_since(ledger)
        live = [(d, r) for d, r in ledger.returns if d > since]
        equity = self._backtest_equity(instance, ledger, day)
        backtest = equity.pct_change()
        pairs = [(r, float(backtest.get(pd.Timestamp(d), math.nan))) for d, r in live]
        pairs = [(a, b) for a, b in pairs if math.isfinite(a) and math.isfinite(b)]
        history = self._research_returns(ledger)
        slip = [row for row in ledger.slippage if row[0] > since]
        value = sum(row[1] for row in slip)
        submitted = [row for row in ledger.submitted if row[0] > since]
        halted_any = halted or any(s.halted for s in ledger.sessions if s.day > since)
        return StageEvidence(
            sessions=len(pairs), live_returns=np.array([a for a, _ in pairs]),
            backtest_returns=np.array([b for _, b in pairs]), backtest_history=history,
            slippage_bp=sum(row[2] for row in slip) / value * 1e4 if value > 0 else None,
            model_slippage_bp=sum(row[3] for row in slip) / value * 1e4 if value > 0 else None,
            submitted=float(sum(row[1] for row in submitted)), filled=float(sum(row[2] for row in submitted)),
            halted=halted_any)

    def _research_returns(self, ledger: CanaryLedger) -> np.ndarray:
        """The candidate version's daily backtest returns over the window it was researched on (its drawdown
        distribution and its VaR), from the version registry."""
        cached = self._research.get(ledger.candidate)
        if cached is None:
            from ...ops.versions import VersionRegistry

            returns = VersionRegistry().load(ledger.candidate).returns()
            cached = self._research[ledger.candidate] = returns.dropna().to_numpy(dtype=float)
        return cached

    def _backtest_equity(self, instance: StrategyInstance, ledger: CanaryLedger, day: date) -> pd.Series:
        strategy = self.strategy(instance)
        market = market_for(strategy, instance.setting.history_start, day)
        plan = strategy.targets(market)
        book = ledger.books[CANDIDATE]
        total = sum(b.equity[-1][1] for b in ledger.real_books().values() if b.equity)
        share = release.share(ledger.machine, ledger.config.stages)
        capital = book.equity[-1][1] if book.equity else (share * total or instance.setting.backtest.capital)
        config = instance.setting.backtest.model_copy(update={"capital": max(float(capital), 1.0)})
        run = simulate(market, plan, config, market)
        return pd.Series(run.equity(), index=market.days)

    def _flags(self, instance: StrategyInstance, event: str, reason: str) -> tuple[str, str]:
        """The risk app's fail-safe flags on this strategy: a freeze holds a promotion, a downgrade request
        rolls the canary back."""
        flags = self._risk_flags(instance.name)
        if "downgrade_request" in flags:  # the strategy's own scope only (an account's is not a version's)
            return "rollback", f"{DOWNGRADE}: {flags['downgrade_request']}"  # cleared once the step is saved
        if "release_freeze" in flags and event in (Action.PROMOTE.value, Action.AWAIT_APPROVAL.value, "approve"):
            return "hold", f"release freeze ({flags['release_freeze']}): promotion held; {reason}"
        return event, reason

    def _risk_flags(self, scope: str) -> dict[str, str]:
        """The risk app's raised flags on ``scope`` (a release freeze also from the account or every scope)."""
        risk = self.engine.main_engine.get_engine("RotationRisk")
        if risk is None:
            return {}
        own = {row["flag"]: str(row.get("reason", "")) for row in risk.state_file.flags.values()
               if row.get("scope") == scope}
        freezes = risk.state_file.freezes(scope)
        return {**own, **({"release_freeze": "; ".join(r for _, r in freezes)} if freezes else {})}

    def _release_refusals(self, instance: StrategyInstance, candidate: Any) -> list[str]:
        """The pre-release gates ``candidate`` fails (:func:`~vnpy_rotation.ops.versions.check_version`, the
        gates of ``run.py release check``), with the risk app's release freezes."""
        from ...canary.release import failing
        from ...ops.versions import check_version

        risk = self.engine.main_engine.get_engine("RotationRisk")
        freeze = risk.state_file.freezes(instance.name) if risk is not None else []
        return [f"{r.name}: {r.reason}" for r in failing(check_version(candidate, freeze))]

    def _clear_flag(self, scope: str, flag: str, reason: str) -> None:
        risk = self.engine.main_engine.get_engine("RotationRisk")
        if risk is not None:
            risk.clear_flag(scope, flag, reason, who="canary")

    # -- the machine and its effects ---------------------------------------------------------------------
    def _step(self, instance: StrategyInstance, ledger: CanaryLedger, event: str, reason: str, day: date,
              decision: StageDecision | None, halted: bool, differences: list[Any], closes: dict[str, float]) -> None:
        before = ledger.machine
        ledger.machine = release.step(before, event, day, reason, ledger.config.stages)
        after = ledger.machine
        candidate, champion = ledger.books[CANDIDATE], ledger.books[CHAMPION]
        ledger.sessions.append(SessionRecord(
            day.isoformat(), ledger.config.stages[before.stage].name, after.status.value,
            release.share(after, ledger.config.stages), event, reason, halted, not differences,
            candidate.equity[-1][1] if candidate.equity else None, champion.equity[-1][1] if champion.equity else None,
            () if decision is None else decision.gates))
        if after.status is before.status and after.stage == before.stage:
            return
        share = release.share(after, ledger.config.stages)
        if share > release.share(before, ledger.config.stages):
            ledger.sessions[-1] = replace(ledger.sessions[-1],
                                          slice=tuple(self._slice_notes(instance, ledger, share, day, closes)))
        self.engine.event_engine.put(Event(EVENT_CANARY, canary_view(ledger)))  # a stage changed (GUI, listeners)
        text = (f"{instance.name} canary {ledger.candidate}: {before.status.value}/{ledger.config.stages[before.stage].name}"
                f" → {after.status.value}/{ledger.config.stages[after.stage].name} ({reason})")
        self.engine.write_log(f"[{instance.name}] {text}")
        if after.status in (release.Status.ROLLING_BACK, release.Status.ROLLED_BACK) and before.status not in (
                release.Status.ROLLING_BACK, release.Status.ROLLED_BACK):
            ledger.pending_aliases.append(AliasIntent("candidate", None, "canary", f"rolled back on {day}: {reason}"))
            self.engine.notify("failure", f"{instance.name} 金丝雀回滚 {day}", text)
        elif after.status is not release.Status.ROLLED_BACK:
            self.engine.notify("daily_summary", f"{instance.name} 金丝雀 {after.status.value} {day}", text)

    def _slice_notes(self, instance: StrategyInstance, ledger: CanaryLedger, share: float, day: date,
                     closes: dict[str, float]) -> list[str]:
        """What the candidate's current target cannot hold at the new stage's capital, each with its rule
        (:func:`~vnpy_rotation.canary.capital.check_slice` with the execution's own rounding: whole lots,
        rounded down; the participation cap is the backtester's, applied when orders are sized)."""
        from ...canary.capital import SliceRules, check_slice

        plan = ledger.standing.get(CANDIDATE)
        if plan is None or not plan.weighted:
            return []
        prices = {s: p for s, p in closes.items() if p == p}
        total = sum(b.equity[-1][1] for b in ledger.real_books().values() if b.equity)
        weights = {s: w for s, w in zip(plan.symbols, plan.target) if w == w and w > 0}
        notes = []
        for symbol in weights:
            terms = instance.cycle.terms_for(symbol, day)
            check = check_slice({symbol: weights[symbol]}, prices, {symbol: int(terms.lot)}, total * share,
                                commission_rate=terms.commission_rate, commission_min=terms.commission_min,
                                adv={symbol: math.inf}, rules=SliceRules(lot_tolerance=0.0),
                                lot_steps={symbol: int(terms.lot_step)})
            for c in check:
                if not c.feasible or c.commission_flag:
                    notes.append(f"{c.symbol}: {c.reason or 'minimum commission'} ({c.commission_bp:.1f} bp)")
        for note in notes:
            self.engine.write_log(f"[{instance.name}] canary slice {share:.0%}: {note}")
        return notes

    def _hand_over(self, instance: StrategyInstance, ledger: CanaryLedger, day: date) -> None:
        """The candidate completed every stage: it becomes the instance's strategy (its settings), the
        champion alias moves to it and the old champion becomes ``last_stable``."""
        why = f"canary complete on {day}"
        if ledger.champion:
            ledger.pending_aliases.append(AliasIntent("last_stable", ledger.champion, "canary", why))
        ledger.pending_aliases += [AliasIntent("champion", ledger.candidate, "canary", why),
                                   AliasIntent("candidate", None, "canary", why)]

    def resume(self, instance: StrategyInstance) -> None:
        """At start-up: finish what a crash interrupted after the state was saved -- alias moves not yet in the
        registry, a completed canary's hand-over not yet in the instance's settings."""
        ledger = instance.cycle.state.canary if instance.cycle is not None else None
        if ledger is None:
            return
        self._write_aliases(ledger)
        if ledger.machine.status is release.Status.COMPLETE and not ledger.handed_over:
            self.engine.adopt_version(instance, ledger.candidate, ledger.candidate_settings)
            ledger.handed_over = True  # once: a later rollback to another version must not be undone here
            instance.cycle.save()
            self.engine.write_log(f"[{instance.name}] canary complete: now version {ledger.candidate}")
        self.candidates.pop(instance.name, None)

    def _write_aliases(self, ledger: CanaryLedger) -> None:
        """Write the decided alias moves to the registry, then forget them (a crash in between writes them
        again: a move to where an alias already points writes nothing)."""
        if not ledger.pending_aliases:
            return
        if ledger.rehearsal:  # a drill rehearses the moves: they are kept in its state, the registry is untouched
            ledger.alias_log += ledger.pending_aliases
            ledger.pending_aliases = []
            return
        from ...ops.versions import VersionRegistry

        registry = VersionRegistry()
        for move in list(ledger.pending_aliases):
            try:
                registry.move_alias(ledger.strategy, move.alias, move.version, move.who, move.why, datetime.now())
            except InputRejected as exc:  # e.g. retiring an alias nobody set: nothing to record
                self.engine.write_log(f"[{ledger.strategy}] alias {move.alias}: {exc}")
            ledger.pending_aliases.remove(move)
        instance = self.engine.instances.get(ledger.strategy)
        if instance is not None and instance.cycle is not None:
            instance.cycle.save()

    # -- human commands -----------------------------------------------------------------------------------
    def command(self, instance: StrategyInstance, command: CanaryCommand) -> None:
        """Queue a human's event for the next close (checked now against the table, so a meaningless one is
        refused at once)."""
        ledger = self.ledger(instance)
        if command.event not in HUMAN_EVENTS:
            raise InputRejected(Problem("event", None, f"{command.event!r}: one of {', '.join(HUMAN_EVENTS)}"))
        if ledger is None:
            raise InputRejected(Problem(instance.name, None, "no canary is running"))
        release.step(ledger.machine, command.event, date.today(), command.reason, ledger.config.stages)
        from ...live.state_file import write_atomic

        write_atomic(command_path(self.engine.state_folder, instance.name), command.to_json())

    def _read_command(self, instance: StrategyInstance, ledger: CanaryLedger | None) -> CanaryCommand | None:
        """The command waiting beside the state, unless this canary applied it already (a crash after the state
        recording it was saved, before the file was removed). The file is removed after the state is saved."""
        raw = read_json(command_path(self.engine.state_folder, instance.name))
        if raw is None:
            return None
        command = CanaryCommand(str(raw.get("event", "")), str(raw.get("reason", "")), str(raw.get("who", "")),
                                str(raw.get("to", "")), str(raw.get("at", "")))
        if ledger is not None and command.key in ledger.commands_done:
            self._forget_command(instance, command)
            return None
        if ledger is not None and command.event not in HUMAN_EVENTS:  # a switch waits for the canary to end
            self.engine.write_log(f"[{instance.name}] {command.event} to {command.to}: not while a canary runs")
            return None
        if ledger is not None:
            try:  # the table refuses an event that no longer means anything (e.g. approve after a lapse)
                release.step(ledger.machine, command.event, date.today(), command.reason, ledger.config.stages)
            except CanaryEventRefused as exc:
                self.engine.write_log(f"[{instance.name}] canary command dropped: {exc}")
                self._forget_command(instance, command)
                return None
        return command

    def _forget_command(self, instance: StrategyInstance, command: CanaryCommand | None) -> None:
        """Remove the command file if it still holds ``command`` (a newer one written meanwhile stays)."""
        if command is None:
            return
        path = command_path(self.engine.state_folder, instance.name)
        raw = read_json(path)
        if raw is not None and str(raw.get("at", "")) == command.at and str(raw.get("event", "")) == command.event:
            path.unlink(missing_ok=True)

    def _downgrade_without_canary(self, instance: StrategyInstance, day: date) -> bool:
        """No canary: a downgrade request (or ``run.py rollback --to``) moves the strategy to a version now."""
        command = self._read_command(instance, None)
        target, why = "", ""
        if command is not None and command.to:
            target, why = command.to, f"{command.who}: {command.reason}"
        flags = self._risk_flags(instance.name)
        if not target and "downgrade_request" in flags:
            from ...ops.versions import VersionRegistry

            target = VersionRegistry().aliases(instance.name).get("last_stable", "")
            why = f"risk engine downgrade request: {flags['downgrade_request']}"
            if not target:
                self.engine.write_log(f"[{instance.name}] downgrade request: no last_stable version to move to")
                return False
        if not target or target == instance.setting.version:
            if target:
                self.engine.write_log(f"[{instance.name}] already version {target}: nothing to move")
            self._forget_command(instance, command)
            return False
        from ...ops.versions import VersionRegistry

        registry = VersionRegistry()
        version = registry.load(target)
        # only a completed canary sets last_stable: the version left here is the one that failed
        registry.move_alias(instance.name, "champion", version.id, "canary", why, datetime.now())
        self.engine.adopt_version(instance, version.id, dict(version.settings))
        self.engine.write_log(f"[{instance.name}] moved to version {version.id}: {why}")
        self.engine.notify("failure", f"{instance.name} 版本回退 {day}", f"moved to {version.id}: {why}")
        decided = decide_plan(instance.name, instance.strategy, instance.setting, day, self.engine.main_engine,
                              latest=True)
        if decided.plan is not None:  # its current target, from the next open
            instance.cycle.adopt(with_holdings(decided.plan, instance.cycle.broker.holdings()))
        self._forget_command(instance, command)
        if "downgrade_request" in flags:
            self._clear_flag(instance.name, "downgrade_request", f"acted on: moved to version {version.id}")
        return True


def stage_since(ledger: CanaryLedger) -> str:
    """The last close before the current stage's first session (the canary's start for its first stage)."""
    entered = [t for t in ledger.machine.history if t.to_stage == ledger.machine.stage and t.from_stage != t.to_stage]
    return entered[-1].day.isoformat() if entered else ledger.started
