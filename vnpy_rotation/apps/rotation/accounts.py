"""The rotation engine's account operations: capital allocation, reconciliation and batch operations.

Several strategy instances may trade one account (a gateway): each is capped by its line of the risk engine's
allocation record, sees only its own symbols' holdings when it shares the account, and the engine reconciles
every account with the sum of its strategies' books after each close. ``cancel_orders`` and
``flatten_strategy`` act on a strategy or an account through the normal crash-safe plan and the risk engine.
:class:`AccountOperations` is mixed into :class:`~vnpy_rotation.apps.rotation.engine.RotationEngine`, whose
state it uses (declared below).
"""

from __future__ import annotations

import threading
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any, Callable

from vnpy.trader.engine import MainEngine

from ...errors import InputRejected, Problem
from ...live.cycle import reconcile
from ...live.hooks import Allocation
from ...live.plan import OrderPlan
from .broker import VnpyBroker
from .canary import CanaryDriver

if TYPE_CHECKING:
    from .engine import StrategyInstance

FLATTEN = "flatten"  # the reason of a plan that sells everything (flatten_strategy)


class AccountOperations:
    """Allocation, reconciliation and batch operations over the engine's instances."""

    # the engine's state and helpers these operations use (RotationEngine sets and defines them)
    main_engine: MainEngine
    instances: dict[str, StrategyInstance]
    canary: CanaryDriver
    _lock: threading.RLock
    _instance: Callable[[str], StrategyInstance]
    _put_strategy: Callable[[StrategyInstance], None]
    write_log: Callable[[str], None]
    notify: Callable[[str, str, str], object]

    def _risk_engine(self) -> Any:
        return self.main_engine.get_engine("RotationRisk")

    def allocated(self, name: str) -> float | None:
        """The CNY the risk engine's allocation record gives strategy ``name`` (None: not capped)."""
        risk = self._risk_engine()
        decision = risk.allocation() if risk is not None else None
        return None if decision is None else decision.amount(name)

    def _after_close(self, day: date) -> None:
        """After every strategy closed: the risk engine's scheduled allocation review (on each strategy's daily
        returns so far), then each account's reconciliation."""
        risk = self._risk_engine()
        if risk is not None and risk.allocation_config is not None:
            risk.review_allocation(datetime.combine(day, time(15, 0)), self.daily_returns())
        for account, differences in self.reconcile_accounts().items():
            if differences:
                self.write_log(f"账户对账差异 {account} {day}: {differences}")
                self.notify("failure", f"账户 {account} 对账差异 {day}", str(differences))

    def daily_returns(self) -> dict[str, tuple[tuple[date, float], ...]]:
        """Each instance's daily returns from its closed sessions' equities, dated by session (its own book's
        once it has an allocation; the day its book starts is no return: the basis changed)."""
        returns = {}
        for name, instance in self.instances.items():
            history = instance.cycle.state.history if instance.cycle is not None else []
            returns[name] = tuple((date.fromisoformat(b["day"]), b["equity"] / a["equity"] - 1.0)
                                  for a, b in zip(history, history[1:])
                                  if a["equity"] > 0 and a.get("ledger") == b.get("ledger"))
        return returns

    def reconcile_accounts(self) -> dict[str, list[dict]]:
        """Per account (gateway) with an initialised instance: the symbols whose broker holding differs from
        the sum of what its strategies' records hold (e.g. a position nobody's strategy accounts for)."""
        expected: dict[str, dict[str, float]] = {}
        for instance in self.instances.values():
            if instance.cycle is None:
                continue
            mine = expected.setdefault(instance.setting.gateway, {})
            history = instance.cycle.state.history
            for symbol, volume in (history[-1]["positions"] if history else {}).items():
                mine[symbol] = mine.get(symbol, 0.0) + float(volume)
        return {gateway: reconcile(held, VnpyBroker(self.main_engine, gateway).holdings())
                for gateway, held in expected.items()}

    def cancel_orders(self, strategy: str | None = None, account: str | None = None) -> list[str]:
        """Cancel every working order of ``strategy``, or of ``account`` (a gateway name: its strategies'
        and any other order there). A strategy's session goes to its deadline phase first (saved, so nothing
        is resubmitted, also after a restart); its plan stays for the next session. Returns the order ids
        cancelled."""
        if (strategy is None) == (account is None):
            raise InputRejected(Problem("cancel", None, "name either a strategy or an account"))
        if strategy is not None:
            instances = [self._instance(strategy)]
        else:
            instances = [i for i in self.instances.values() if i.setting.gateway == account]
        cancelled = []
        with self._lock:
            for instance in instances:
                if instance.cycle is None:
                    continue
                working = [o.vt_orderid for o in self.main_engine.get_all_active_orders()
                           if instance.cycle.owns(o.vt_orderid)]
                instance.cycle.deadline()
                cancelled += working
            if account is not None:
                broker = VnpyBroker(self.main_engine, account)
                for order in self.main_engine.get_all_active_orders():
                    if order.gateway_name == account and order.vt_orderid not in cancelled:
                        broker.cancel(order.vt_orderid)
                        cancelled.append(order.vt_orderid)
        for instance in instances:
            self._put_strategy(instance)
        self.write_log(f"批量撤单 {strategy or account}: {len(cancelled)} 笔")
        return cancelled

    def flatten_strategy(self, name: str, reason: str = "manual") -> OrderPlan:
        """Sell everything strategy ``name`` holds: a plan with target 0 for its symbols and holdings, adopted
        (saved) and executed by its cycle at the next open like any plan, every order through the risk engine.
        Until it is flat the strategy makes no new decision; then it stops."""
        with self._lock:
            instance = self._instance(name)
            cycle = instance.cycle
            if cycle is None:
                raise InputRejected(Problem(name, None, "initialise the strategy before flattening it"))
            symbols = sorted(set(self.canary.symbols(instance)) | set(cycle.broker.holdings()))
            decided = cycle.state.last_close or date.today().isoformat()
            plan = OrderPlan(name, decided, symbols, [0.0] * len(symbols), True, FLATTEN,
                             {s: f"flatten: {reason}" for s in symbols})
            cycle.adopt(plan)
        self.write_log(f"[{name}] 清仓计划已生成 ({reason}): {', '.join(symbols)}")
        self._put_strategy(instance)
        return plan

    def _allocation_of(self, instance: StrategyInstance) -> Allocation:
        amount = self.allocated(instance.name)
        if amount is None or amount <= 0:
            return Allocation(instance.setting.gateway, instance.name)
        return Allocation(instance.setting.gateway, instance.name, amount, "allocation record")

    def _shared(self, instance: StrategyInstance) -> bool:
        """Whether another instance trades the instance's account (with or without an allocation): then each
        sees, and sells, only the holdings of its own symbols. Alone in its account it sees all of it."""
        return any(i is not instance and i.setting.gateway == instance.setting.gateway
                   for i in self.instances.values())

    def _holding_filter(self, instance: StrategyInstance) -> list[str] | None:
        """The symbols whose holdings are the instance's: its own in a shared account, else all (None)."""
        return self._own_symbols(instance) if self._shared(instance) else None

    def _own_symbols(self, instance: StrategyInstance) -> list[str]:
        """What an instance in a shared account counts as its own: its strategy's symbols, a running
        candidate's, and its plan's (not the account's holdings: those are what this sorts out)."""
        if instance.strategy is None:
            return []
        symbols = list(instance.strategy.symbols)
        candidate = self.canary.strategy(instance)
        symbols += list(candidate.symbols) if candidate is not None else []
        plan = instance.cycle.state.plan if instance.cycle is not None else None
        return symbols + (list(plan.symbols) if plan is not None else [])

    def _check_disjoint(self, instance: StrategyInstance) -> None:
        """Strategies sharing an account tell their holdings apart by symbol: they must not trade the same one."""
        mine = set(self._own_symbols(instance))
        for other in self.instances.values():
            if other is instance or other.setting.gateway != instance.setting.gateway or other.strategy is None:
                continue
            common = sorted(mine & set(self._own_symbols(other)))
            if common:
                raise InputRejected(Problem(instance.name, None, f"shares account {instance.setting.gateway} with "
                                            f"{other.name} and trades the same symbols {common}; strategies in "
                                            "one account must trade different symbols"))
