"""What the risk engine costs: per order, per session, per backtest. One run, each figure against its peer.

    python benchmarks/bench_risk.py [--repeat N] [--days N] [--orders N] [--home DIR] [--only PART,...]

1. ``send_order``: a real vnpy ``MainEngine`` with vnpy_riskmanager and the replay (paper) gateway on one
   session of the bundled ETFs. The same batch of ``--orders`` limit orders (buys and sells of the six
   A-share ETFs, whole lots near the open, ``reference`` naming a strategy) goes through
   ``MainEngine.send_order`` on three sides, interleaved batch by batch (A B C A B C …, ``--repeat``
   rounds after an untimed warm-up round): **none** (vnpy_riskmanager's rule list emptied), **vnpy** (its
   own rules only: the peer), **ours** (its rules plus our ladder rule, registered by the risk app as in
   the live stack). The ladders are ACTIVE, so every order passes (the common path); the limits of
   vnpy_riskmanager's count and size rules are raised so that none of them refuses (on every side alike).
   Two clocks (wall, and the sending thread's CPU time, which leaves out the time the OS gives other
   processes on a shared machine) and two modes: the event thread paused while a batch is timed (its
   queue handled between batches, untimed: the call itself) and live (the event thread running, as in a
   trading process). The added latency is ours − vnpy; since that difference of two noisy tails is
   itself noisy, the rule's own ``check_allowed`` is also timed inside ``send_order`` on every order (the
   rule wrapped where vnpy_riskmanager calls it): that is the added latency per order. Last, a refused
   buy: by vnpy_riskmanager's order-size rule against by our rule with the account ladder REDUCING.
2. A full daily evaluation of a 300-symbol book on seeded synthetic data (a common factor with GARCH
   volatility clustering plus Student-t idiosyncratic returns; volumes and a 20-day momentum factor from
   them), at each of ``--days`` closes: ``evaluate()`` (stock stop, portfolio stop, halving, the account
   ladder and a daily loss limit on a ``Snapshot`` built from the closes), the drift monitors
   (``drift.evaluate`` on the last 20 rows of the 300 symbols' returns, volumes and factor values) and
   the next day's VaR/ES (``var_es_next``: 5 methods × 2 levels on the book's last 250 returns); p50/p99
   per part and of the session's total. Timed apart: the drift calibration on its 500-row reference
   (seconds, once per reference window), the compiled ``check_close`` + ``ladder_close`` on arrays (what
   the backtest loop runs) and the first calls (numba: compile or cache load). No peer: vnpy has none.
3. The backtest slowdown: the bundled ``etf_rotation`` and ``vqm`` defaults from the bundle's first day
   (as ``run.py demo`` runs them), ``simulate`` with the risk engine **off** (no plan rules, no account
   ladder) against **on** (the strategy's own rules -- VQM: stock stop 8 %, portfolio stop 10 %, halving
   at 15 % -- plus the account ladder ``DEFAULT_ACCOUNT_LADDER``) and **armed** (the same rules with
   unreachable thresholds: the cost of evaluating them with the trades of ``off``). ``--repeat``
   interleaved rounds, the side order rotating each round; per round and side the fastest of 3
   ``simulate`` calls, then ``to_result`` once; the slowdown is the median of the per-round ratios. The
   compiled day loop inside ``simulate`` (``kernel.run_days``) is timed on its own as well. The
   first call of each side (numba's compile or cache load) is reported apart, and the orders each side
   produces are counted (risk on sells more: that work is part of its cost). The drift response (off by
   default: ``RiskConfig.drift``) costs far more; risk on with it is timed apart in a few rounds of its own.

The collector is off while a call is timed (as in timeit). A markdown table of every figure closes the
output.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import math
import os
import queue
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(ROOT))  # measure this checkout (code_version describes it), not another installed copy
from bench_home import code_version, run_in_home  # noqa: E402

TARGETS = {"send_order_p99_us": 50.0, "daily_ms": 50.0, "slowdown": 0.10}
PARTS = ("send_order", "daily", "backtest")
ETFS = ["510300.SSE", "510500.SSE", "159915.SZSE", "510050.SSE", "510880.SSE", "159949.SZSE"]
SESSION = "2024-06-24"  # a session of the bundled ETFs (any would do: the gateway fills at its open)
STRATEGY_REFERENCE = "etf_rotation|{day}|{k}"  # the rotation app's reference: "<strategy>|…"
BARRIER = "eBenchRiskBarrier"
SIDES = ("none", "vnpy", "ours")


def pct(values: np.ndarray | list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q))


# ------------------------------------------------------------------------------------ 1. send_order

@dataclasses.dataclass
class OrderStack:
    """MainEngine + ReplayGateway + vnpy_riskmanager (+ our risk app when it is available)."""

    main_engine: Any
    event_engine: Any
    manager: Any  # vnpy_riskmanager's RiskEngine
    gateway_name: str
    rule_sets: dict[str, dict[str, Any]]  # side -> the rule dict vnpy_riskmanager iterates
    ours: list[Any]  # our rules (instances) in vnpy_riskmanager's list
    risk_engine: Any = None  # our risk app's engine (None when it is not available)
    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    paused: bool = False

    def pause(self) -> None:
        """Stop the event thread: events queue up and :meth:`drain` handles them in this thread."""
        self.drain()
        self.event_engine.stop()
        self.paused = True

    def drain(self, timeout: float = 60.0) -> None:
        """Handle everything put so far (and what that caused): by the event thread, or here when paused."""
        if self.paused:
            while True:
                try:
                    event = self.event_engine._queue.get_nowait()  # noqa: SLF001
                except queue.Empty:
                    return
                self.event_engine._process(event)  # noqa: SLF001 (what the event thread would do)
        while True:
            self.done.clear()
            from vnpy.event import Event

            self.event_engine.put(Event(BARRIER, self.done))
            if not self.done.wait(timeout):
                raise TimeoutError("the event engine did not drain")
            if self.event_engine._queue.empty():  # noqa: SLF001 (vnpy exposes no idle signal)
                return

    def use(self, side: str) -> None:
        self.manager.rules = self.rule_sets[side]

    def close(self) -> None:
        self.main_engine.close()


def build_order_stack(home: Path, capital: float = 1e9) -> tuple[OrderStack, str]:
    """The live stack's order path; returns it and a note on our rule (missing, or how it was found)."""
    from vnpy.event import EventEngine
    from vnpy.trader.engine import MainEngine
    from vnpy.trader.object import SubscribeRequest
    from vnpy_riskmanager import RiskManagerApp

    from vnpy_rotation.backtest.loader import ensure_bundled
    from vnpy_rotation.data.store import BarStore
    from vnpy_rotation.gateways.replay import ReplayGateway
    from vnpy_rotation.risk.config import DEFAULT_ACCOUNT_LADDER, RiskConfig

    ensure_bundled(ETFS, BarStore())
    event_engine = EventEngine()
    main_engine = MainEngine(event_engine)
    gateway = main_engine.add_gateway(ReplayGateway)
    main_engine.add_app(RiskManagerApp)
    manager = main_engine.get_engine("RiskManager")
    # vnpy_riskmanager's defaults would refuse a benchmark's thousands of orders (500 shares per order,
    # 10 repeats of one order, 1000 trades per contract): raised so that every order passes every rule.
    raised = {"order_volume_limit": 10**9, "order_value_limit": 1e12, "duplicate_order_limit": 10**9,
              "active_order_limit": 10**9, "total_order_limit": 10**9, "total_cancel_limit": 10**9,
              "total_trade_limit": 10**9, "contract_order_limit": 10**9, "contract_cancel_limit": 10**9,
              "contract_trade_limit": 10**9}
    for rule in manager.rules.values():
        rule.update_setting(raised)
    own = dict(manager.rules)
    note, risk_engine = "", None
    try:
        from vnpy_rotation.apps.risk import RiskApp
    except ImportError as exc:
        note = f"our rule not measured: the risk app is not importable ({exc})"
    else:
        risk_engine = risk = main_engine.add_app(RiskApp)
        # a new state folder per run: a reused --home must not start from the last run's REDUCING rung
        state = Path(tempfile.mkdtemp(prefix="risk_state_", dir=home))
        risk.init_engine(state_folder=state, config=RiskConfig(ladder=DEFAULT_ACCOUNT_LADDER), notifications=False)
    full = dict(manager.rules)
    ours = [rule for name, rule in full.items() if own.get(name) is not rule]
    if not note:
        note = "our rule(s): " + ", ".join(f"{type(r).__name__} ({r.name})" for r in ours)
    stack = OrderStack(main_engine, event_engine, manager, gateway.gateway_name,
                       {"none": {}, "vnpy": own, "ours": full}, ours, risk_engine)
    event_engine.register(BARRIER, lambda event: event.data.set())
    main_engine.connect({"初始资金": capital, "开始日期": SESSION, "结束日期": SESSION, "账本文件": ""},
                        stack.gateway_name)
    for vt_symbol in ETFS:
        symbol, exchange = vt_symbol.split(".")
        from vnpy.trader.constant import Exchange

        main_engine.subscribe(SubscribeRequest(symbol=symbol, exchange=Exchange(exchange)), stack.gateway_name)
    stack.drain()
    gateway.begin_day(gateway.sessions()[0])
    stack.drain()
    return stack, note


def order_requests(stack: OrderStack, count: int) -> list[Any]:
    """``count`` orders: buys of 100..1000 shares and sells (refused by the paper broker: T+1) at the open."""
    from vnpy.trader.constant import Direction, Exchange, Offset, OrderType
    from vnpy.trader.object import OrderRequest

    ticks = {t.vt_symbol: t for t in stack.main_engine.get_all_ticks()}
    reqs = []
    for k in range(count):
        vt_symbol = ETFS[k % len(ETFS)]
        symbol, exchange = vt_symbol.split(".")
        price = ticks[vt_symbol].open_price
        buy = k % 4 != 3
        reqs.append(OrderRequest(symbol=symbol, exchange=Exchange(exchange),
                                 direction=Direction.LONG if buy else Direction.SHORT, type=OrderType.LIMIT,
                                 volume=float(100 * (1 + k % 10)), price=round(price * (1.01 if buy else 0.99), 3),
                                 offset=Offset.NONE, reference=STRATEGY_REFERENCE.format(day=SESSION, k=k)))
    return reqs


def time_batch(stack: OrderStack, side: str, reqs: list[Any], refused_expected: bool = False) -> np.ndarray:
    """Per-order ``MainEngine.send_order`` time (ns) of one batch on ``side``, as rows (wall clock, CPU
    time of this thread); the queue drained after (not timed). Every order must pass, or with
    ``refused_expected`` every order must be refused."""
    stack.use(side)
    send = stack.main_engine.send_order
    gateway = stack.gateway_name
    wall, cpu = time.perf_counter_ns, time.thread_time_ns
    times = np.empty((len(reqs), 2))
    refused = 0
    gc.disable()  # as timeit does: a collection is not the latency of the order that happens to trigger it
    try:
        for k, req in enumerate(reqs):
            started, used = wall(), cpu()
            order_id = send(req, gateway)
            times[k] = cpu() - used, wall() - started
            refused += not order_id
    finally:
        gc.enable()
    times[:, [0, 1]] = times[:, [1, 0]]
    stack.drain()
    if refused != (len(reqs) if refused_expected else 0):
        raise RuntimeError(f"{refused} of {len(reqs)} orders refused before the gateway on side {side!r}; "
                           f"expected {'all' if refused_expected else 'none'}")
    return times


def interleaved(stack: OrderStack, sides: list[str], reqs: list[Any], rounds: int) -> dict[str, list[np.ndarray]]:
    """``rounds`` rounds of one batch per side (A B C A B C …) after an untimed warm-up round."""
    for side in sides:  # warm-up: first-call costs (imports, caches) are not per-order latency
        time_batch(stack, side, reqs)
    times: dict[str, list[np.ndarray]] = {s: [] for s in sides}
    for _ in range(rounds):
        for side in sides:
            times[side].append(time_batch(stack, side, reqs))
    return times


CLOCKS = ("wall", "cpu")


def summarise(times: dict[str, list[np.ndarray]]) -> dict[str, Any]:
    """Per clock: p50/p99 (µs) per side, and the added latency ours − vnpy with its per-round spread."""
    out: dict[str, Any] = {}
    for c, clock in enumerate(CLOCKS):
        per_round = {side: [batch[:, c] / 1e3 for batch in v] for side, v in times.items()}
        us = {side: np.concatenate(v) for side, v in per_round.items()}
        found: dict[str, Any] = {"sides": {s: {"p50": pct(v, 50), "p99": pct(v, 99), "mean": float(v.mean())}
                                           for s, v in us.items()}}
        if "ours" in us:
            # the difference per round (same orders, adjacent batches) shows how noisy the estimate is
            p50s = [pct(a, 50) - pct(b, 50) for a, b in zip(per_round["ours"], per_round["vnpy"])]
            p99s = [pct(a, 99) - pct(b, 99) for a, b in zip(per_round["ours"], per_round["vnpy"])]
            found["added"] = {"p50": found["sides"]["ours"]["p50"] - found["sides"]["vnpy"]["p50"],
                              "p99": found["sides"]["ours"]["p99"] - found["sides"]["vnpy"]["p99"],
                              "round_p50": (statistics.median(p50s), min(p50s), max(p50s)),
                              "round_p99": (statistics.median(p99s), min(p99s), max(p99s))}
        out[clock] = found
    return out


class TimedRule:
    """Stands in for a rule in vnpy_riskmanager's list and times each of its ``check_allowed`` calls."""

    def __init__(self, rule: Any) -> None:
        self.rule, self.name, self.ns = rule, rule.name, []

    @property
    def active(self) -> bool:
        return bool(self.rule.active)

    def check_allowed(self, req: Any, gateway_name: str) -> bool:
        started = time.perf_counter_ns()
        allowed = self.rule.check_allowed(req, gateway_name)
        self.ns.append(time.perf_counter_ns() - started)
        return allowed


def in_situ(stack: OrderStack, rule: Any, reqs: list[Any], rounds: int) -> tuple[str, float, float]:
    """Our rule's own time inside ``MainEngine.send_order`` (the real path and its caches): ``rounds``
    batches on the ``ours`` side with the rule wrapped by :class:`TimedRule`; (name, p50 µs, p99 µs)."""
    timed = TimedRule(rule)
    stack.rule_sets["timed"] = {name: timed if r is rule else r for name, r in stack.rule_sets["ours"].items()}
    for _ in range(rounds):
        time_batch(stack, "timed", reqs)
    us = np.asarray(timed.ns) / 1e3
    return rule.name, pct(us, 50), pct(us, 99)


def bench_refusals(stack: OrderStack, reqs: list[Any], rounds: int) -> dict[str, Any]:
    """A refused buy, interleaved: refused by vnpy_riskmanager's order-size rule (its limit lowered below
    every order; our rule off) against refused by our rule (the account ladder moved to REDUCING by two
    closes through the risk app; vnpy_riskmanager's limits raised). Ours keeps, saves and publishes each
    refusal (the state file written atomically); vnpy_riskmanager logs it. p50/p99 in µs, wall clock."""
    from datetime import date

    from vnpy.trader.constant import Direction

    size = next(r for r in stack.rule_sets["vnpy"].values() if type(r).__name__ == "OrderSizeRule")
    buys = [r for r in reqs if r.direction == Direction.LONG]
    stack.risk_engine.evaluate_close(date(2000, 1, 3), 1e9)  # the peak
    stack.risk_engine.evaluate_close(date(2000, 1, 4), 0.88e9)  # −12 %: REDUCING (buys refused)
    stack.drain()
    sides = {"vnpy": lambda: size.update_setting({"order_volume_limit": 1}),
             "ours": lambda: size.update_setting({"order_volume_limit": 10**9})}
    times: dict[str, list[np.ndarray]] = {side: [] for side in sides}
    for k in range(rounds + 1):  # the first round warms up
        for side, arrange in sides.items():
            arrange()
            batch = time_batch(stack, side, buys, refused_expected=True)
            if k:
                times[side].append(batch[:, 0] / 1e3)
    size.update_setting({"order_volume_limit": 10**9})
    return {side: (pct(np.concatenate(v), 50), pct(np.concatenate(v), 99)) for side, v in times.items()} | \
        {"orders": len(buys) * rounds}


def bench_send_order(home: Path, rounds: int, per_batch: int, live_rounds: int | None = None) -> dict[str, Any]:
    """Figure 1. Two modes, each interleaved over the sides: ``paused`` (the event thread stopped while a
    batch is timed, its queue handled between batches: the call itself) and ``live`` (the event thread
    running, as in a trading process: its GIL hand-offs land in the timings of every side)."""
    stack, note = build_order_stack(home)
    try:
        sides = [s for s in SIDES if s != "ours" or stack.ours]
        reqs = order_requests(stack, per_batch)
        live = interleaved(stack, sides, reqs, live_rounds or max(2, rounds // 3))
        stack.pause()
        paused = interleaved(stack, sides, reqs, rounds)
        rule_alone = [in_situ(stack, rule, reqs, rounds) for rule in stack.ours]
        refusals = bench_refusals(stack, reqs, max(2, rounds // 3)) if stack.risk_engine is not None else None
    finally:
        stack.close()
    return {"note": note, "orders": per_batch * rounds, "rounds": rounds, "per_batch": per_batch,
            "live_rounds": len(next(iter(live.values()))), "paused": summarise(paused), "live": summarise(live),
            "rule_alone": rule_alone, "refusals": refusals}


# ---------------------------------------------------------------------------- 2. daily evaluation

@dataclasses.dataclass(frozen=True)
class SyntheticBook:
    """Seeded daily data for ``n`` symbols and a book holding all of them."""

    days: Any  # pandas DatetimeIndex
    returns: np.ndarray  # days × symbols
    close: np.ndarray
    volume: np.ndarray
    factor: np.ndarray  # 20-day momentum, NaN for the first 20 rows
    shares: np.ndarray  # the book (fixed: the evaluation, not the execution, is measured)
    entry: np.ndarray
    cash: float
    equity: np.ndarray  # per day
    book_returns: np.ndarray  # per day (NaN on the first)


def synthetic_book(symbols: int, days: int, seed: int = 7) -> SyntheticBook:
    """Returns = beta × market + Student-t(4) noise; the market's variance follows a GARCH(1,1)
    (0.05, 0.90) so that volatility clusters as in daily equity data; volumes are lognormal and rise with
    the absolute return. The book holds every symbol in equal value at the first close; entries are
    the close of a random earlier session, so some positions are well below their entry."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    omega, alpha, beta_g = 1e-4 * 0.05, 0.05, 0.90  # long-run daily variance 1e-4 (1 % a day)
    z = rng.standard_normal(days)
    variance = np.empty(days)
    variance[0] = omega / (1 - alpha - beta_g)
    market = np.empty(days)
    for t in range(days):  # data generation only (GARCH is a recursion); not part of any timing
        market[t] = math.sqrt(variance[t]) * z[t]
        if t + 1 < days:
            variance[t + 1] = omega + alpha * market[t] ** 2 + beta_g * variance[t]
    betas = rng.uniform(0.6, 1.4, symbols)
    noise = rng.standard_t(4, (days, symbols)) * 0.012 / math.sqrt(2.0)  # t(4) has variance 2
    returns = np.clip(market[:, None] * betas[None, :] + noise, -0.095, 0.095)  # ±10 % limits
    close = 10.0 * rng.uniform(0.5, 5.0, symbols) * np.cumprod(1.0 + returns, axis=0)
    volume = np.exp(rng.normal(13.0, 0.5, (days, symbols))) * (1.0 + 20.0 * np.abs(returns))
    factor = np.full((days, symbols), np.nan)
    factor[20:] = close[20:] / close[:-20] - 1.0
    shares = np.floor(1e8 / symbols / close[0] / 100) * 100
    cash = 1e8 - float(shares @ close[0])
    entry = close[rng.integers(0, days // 2, symbols), np.arange(symbols)]
    equity = cash + close @ shares
    book_returns = np.r_[np.nan, equity[1:] / equity[:-1] - 1.0]
    index = pd.bdate_range("2015-01-05", periods=days)
    return SyntheticBook(index, returns, close, volume, factor, shares, entry, cash, equity, book_returns)


def bench_daily(days: int, symbols: int = 300, recalibrate_every: int = 125, seed: int = 7,
                drift_config: Any = None) -> dict[str, Any]:
    """Per session: the ``evaluate()`` facade (stops + ladders on a snapshot), the drift monitors, VaR/ES.

    The total is what the risk app runs after a close. The compiled ``check_close`` + ``ladder_close`` on
    arrays (what the backtest's day loop runs, and what ``evaluate()`` calls inside) is timed as well but
    not added. The drift calibration (seconds: null distributions) belongs to a reference window, not to
    a session: it is timed apart and redone every ``recalibrate_every`` sessions (a session's evaluation
    costs the same with any calibration).
    """
    from datetime import date

    import pandas as pd

    from vnpy_rotation.risk import drift, ladder, stops, var
    from vnpy_rotation.risk.config import DEFAULT_ACCOUNT_LADDER, RiskConfig
    from vnpy_rotation.risk.decision import Snapshot
    from vnpy_rotation.risk.evaluate import RiskState, evaluate

    config = drift_config or drift.DriftConfig()
    var_config = var.VarConfig()
    first = max(config.reference_days + config.recent_days, var_config.window + 1)  # full windows from day one
    book = synthetic_book(symbols, first + days, seed)
    # VQM's rules (stock stop 8 %, portfolio stop 10 %, halving to 50 % at 15 %), the account ladder and a
    # daily loss limit (REDUCING on a day's loss of 5 %), so that every rule of the engine is evaluated
    rules = stops.RiskRules(stock_stop=0.08, portfolio_stop=0.10, drawdown_halve=0.15)
    account = RiskConfig(ladder=DEFAULT_ACCOUNT_LADDER,
                         daily_loss=ladder.LadderConfig(measure="day_return", reduce_at=0.05, cooldown=1))
    risk_args = rules.kernel_args()
    params = ladder.ladder_params([account.ladder, account.daily_loss])
    n = symbols
    names = [f"S{j:03d}.SSE" for j in range(n)]
    stop_state = np.zeros(stops.RISK_STATE)
    keep = np.full(n, np.nan)
    sell_cause = np.zeros(n, dtype=np.int64)
    sell_trigger = np.zeros(n)
    blocked = np.zeros(n, dtype=np.int64)
    lstate = ladder.new_state(len(params))
    shares, entry, cash = book.shares, book.entry, book.cash
    holdings = dict(zip(names, shares.tolist()))
    entries = dict(zip(names, entry.tolist()))

    def compiled(i: int) -> None:
        close = book.close[i]
        stops.check_close(i, cash, shares, close, entry, risk_args, stop_state, keep, sell_cause, sell_trigger,
                          blocked)
        stops.ladder_close(i, cash, shares, close, params, lstate, sell_cause, sell_trigger, True)

    def facade(i: int, state: RiskState) -> tuple[Any, RiskState]:
        """Snapshot built from the session's closes (its cost counted), then evaluate()."""
        now = book.days[i].date()
        snapshot = Snapshot(equity=float(book.equity[i]), peak=float(book.equity[:i + 1].max()), now=now,
                            session=i, holdings=holdings, entry=entries,
                            closes=dict(zip(names, book.close[i].tolist())))
        return evaluate(snapshot, rules, account, state, now)

    def inputs(start: int, stop: int) -> drift.DriftInputs:
        return drift.DriftInputs(returns=book.returns[start:stop], volume=book.volume[start:stop],
                                 factor=book.factor[start:stop])

    returns = pd.Series(book.book_returns, index=book.days)
    first_call = {}
    started = time.perf_counter()
    compiled(first - 1)  # numba: compile, or load the cached machine code
    first_call["check_close + ladder_close"] = time.perf_counter() - started
    started = time.perf_counter()
    facade(first - 1, RiskState())
    first_call["evaluate()"] = time.perf_counter() - started
    stop_state[:] = 0.0
    lstate[:] = ladder.new_state(len(params))

    times: dict[str, list[float]] = {"evaluate()": [], "drift": [], "var_es": [], "compiled": []}
    calibrations: list[float] = []
    calibration = None
    state = RiskState()
    actions: dict[str, int] = {}
    for d in range(days):
        i = first + d
        started = time.perf_counter()
        decision, state = facade(i, state)
        times["evaluate()"].append(time.perf_counter() - started)
        actions[decision.action.name] = actions.get(decision.action.name, 0) + 1
        started = time.perf_counter()
        compiled(i)
        times["compiled"].append(time.perf_counter() - started)
        if d % recalibrate_every == 0:  # the reference window ends before the recent one
            ref_end = i - config.recent_days + 1
            started = time.perf_counter()
            calibration = drift.calibrate(inputs(ref_end - config.reference_days, ref_end), config)
            calibrations.append(time.perf_counter() - started)
        started = time.perf_counter()
        report = drift.evaluate(calibration, inputs(i - config.recent_days + 1, i + 1))
        times["drift"].append(time.perf_counter() - started)
        started = time.perf_counter()
        forecast = var.var_es_next(returns.iloc[i - var_config.window + 1:i + 1], var_config)
        times["var_es"].append(time.perf_counter() - started)
    assert len(forecast) == len(var_config.methods) * len(var_config.levels) and math.isfinite(forecast[0].var)
    assert state.evaluated == book.days[first + days - 1].date() and isinstance(state.evaluated, date)
    ms = {part: np.asarray(v) * 1e3 for part, v in times.items()}
    ms["total"] = ms["evaluate()"] + ms["drift"] + ms["var_es"]
    return {"days": days, "symbols": symbols, "first_call_s": first_call,
            "parts": {part: (pct(v, 50), pct(v, 99)) for part, v in ms.items()},
            "calibrate_ms": (pct(np.asarray(calibrations) * 1e3, 50), len(calibrations), recalibrate_every),
            "monitors": [r.monitor for r in report.results if r.available],
            "unavailable": [r.monitor for r in report.results if not r.available],
            "var_methods": len(var_config.methods) * len(var_config.levels), "actions": actions}


# ---------------------------------------------------------------------------------- 3. backtests

BACKTEST_SIDES = ("off", "armed", "on")


@dataclasses.dataclass
class Case:
    name: str
    market: Any
    plans: dict[str, Any]  # side -> plan
    configs: dict[str, Any]  # side -> BacktestConfig
    what_on: str


def never_binding(rules: Any) -> Any:
    """The same rules with thresholds no path reaches (99 %): evaluated every day, never acting."""
    if rules is None:
        return None
    update = {k: 0.99 for k in ("stock_stop", "portfolio_stop", "drawdown_halve") if getattr(rules, k) is not None}
    return rules.model_copy(update=update)


def backtest_case(name: str, store: Any) -> Case:
    """The strategy's defaults on the bundled data from the bundle's first day (``run.py demo``'s run).

    Sides: ``off`` (no plan rules, no account ladder), ``on`` (the strategy's own rules + the account
    ladder), ``armed`` (the same rules with unreachable thresholds: the cost of evaluating them, with the
    trades of ``off``)."""
    from vnpy_rotation.backtest.config import BacktestConfig
    from vnpy_rotation.backtest.loader import market_for
    from vnpy_rotation.backtest.sweep import plan_within
    from vnpy_rotation.bundled import manifest
    from vnpy_rotation.risk.config import DEFAULT_ACCOUNT_LADDER, DriftResponseConfig, RiskConfig
    from vnpy_rotation.strategies import create_strategy

    start = manifest()["span"]["start"]
    strategy = create_strategy(name)
    full = market_for(strategy, start, None, store)
    plan = strategy.targets(full)
    market = full.window(start, None)
    plan = plan_within(plan, market.days)
    rules = plan.risk
    own = ("none" if rules is None or not rules.active else
           ", ".join(f"{k} {v:.0%}" for k, v in (("stock_stop", rules.stock_stop),
                                                 ("portfolio_stop", rules.portfolio_stop),
                                                 ("drawdown_halve", rules.drawdown_halve)) if v is not None))
    ladder = DEFAULT_ACCOUNT_LADDER
    unreachable = ladder.model_copy(update={"reduce_at": 0.98, "halt_at": 0.99})
    what = f"own rules: {own}; account ladder REDUCING {ladder.reduce_at:.0%} / HALTED {ladder.halt_at:.0%}"
    plans = {"off": dataclasses.replace(plan, risk=None), "armed": dataclasses.replace(plan, risk=never_binding(rules)),
             "on": plan}
    configs = {"off": BacktestConfig(), "armed": BacktestConfig(risk=RiskConfig(ladder=unreachable)),
               "on": BacktestConfig(risk=RiskConfig(ladder=ladder)),
               "on+drift": BacktestConfig(risk=RiskConfig(ladder=ladder, drift=DriftResponseConfig(enabled=True)))}
    plans["on+drift"] = plan
    return Case(name, market, plans, configs, what)


class KernelClock:
    """Times each call of the compiled day loop (``kernel.run_days``) that ``simulate`` makes, by wrapping
    it while the benchmark runs: the loop alone, without ``simulate``'s preparation and allocations."""

    def __init__(self) -> None:
        from vnpy_rotation.backtest import engine

        self.engine, self.original, self.last = engine, engine.kernel.run_days, math.nan

    def __enter__(self) -> KernelClock:
        original = self.original

        def timed(*args: Any) -> Any:
            started = time.perf_counter()
            out = original(*args)
            self.last = time.perf_counter() - started
            return out

        self.engine.kernel.run_days = timed
        return self

    def __exit__(self, *exc: object) -> None:
        self.engine.kernel.run_days = self.original


def run_case(case: Case, side: str, tries: int = 1, clock: KernelClock | None = None
             ) -> tuple[float, float, Any, float]:
    """(simulate seconds: the fastest of ``tries`` back-to-back calls, to_result seconds, the raw run, the
    fastest day loop) of one side; the collector is off while timing (as in timeit)."""
    from vnpy_rotation.backtest.engine import simulate

    gc.disable()
    try:
        fastest, loop, raw = math.inf, math.inf, None
        for _ in range(tries):
            started = time.perf_counter()
            raw = simulate(case.market, case.plans[side], case.configs[side])
            fastest = min(fastest, time.perf_counter() - started)
            loop = min(loop, clock.last) if clock is not None else math.nan
        started = time.perf_counter()
        raw.to_result()
        return fastest, time.perf_counter() - started, raw, loop
    finally:
        gc.enable()


def order_counts(raw: Any) -> tuple[int, int, int]:
    """(orders, fills, risk orders) of a run."""
    from vnpy_rotation.backtest.kernel import ORDER_FIELDS

    rows = raw.order_rows
    cause = rows[:, ORDER_FIELDS.index("cause")]
    return len(rows), int((rows[:, ORDER_FIELDS.index("filled")] > 0).sum()), int((cause != 0).sum())


def bench_backtest(rounds: int, names: tuple[str, ...] = ("etf_rotation", "vqm")) -> list[dict[str, Any]]:
    from vnpy_rotation.data.store import BarStore

    store = BarStore()
    found = []
    for name in names:
        case = backtest_case(name, store)
        first = {side: run_case(case, side) for side in BACKTEST_SIDES}  # numba: compile or cache load
        sim: dict[str, list[float]] = {side: [] for side in BACKTEST_SIDES}
        full: dict[str, list[float]] = {side: [] for side in BACKTEST_SIDES}
        loop: dict[str, list[float]] = {side: [] for side in BACKTEST_SIDES}
        with KernelClock() as clock:
            for k in range(rounds):
                shift = k % len(BACKTEST_SIDES)  # the order rotates: no side always runs first
                for side in BACKTEST_SIDES[shift:] + BACKTEST_SIDES[:shift]:
                    s, r, _, day_loop = run_case(case, side, tries=3, clock=clock)
                    sim[side].append(s)
                    full[side].append(s + r)
                    loop[side].append(day_loop)

        # The drift response (off by default) recalibrates its monitors every 20 sessions: hundreds of
        # milliseconds per backtest, so a few rounds of its own (off, on+drift), simulate only.
        drift_rounds = max(2, rounds // 6)
        drift_times: dict[str, list[float]] = {"off": [], "on+drift": []}
        run_case(case, "on+drift")
        for _ in range(drift_rounds):
            for side in drift_times:
                drift_times[side].append(run_case(case, side)[0])

        def slowdown(times: dict[str, list[float]], side: str) -> float:
            """Median over rounds of side / off − 1 (adjacent runs: the machine's drift cancels)."""
            return statistics.median(b / a - 1.0 for a, b in zip(times["off"], times[side]))

        n_days, n_symbols = case.market.shape
        found.append({
            "name": name, "shape": (n_symbols, n_days), "days": (case.market.days[0].date(), case.market.days[-1].date()),
            "what_on": case.what_on, "rounds": rounds,
            "first_ms": {side: (first[side][0] + first[side][1]) * 1e3 for side in first},
            "counts": {side: order_counts(first[side][2]) for side in first},
            "simulate_ms": {side: statistics.median(v) * 1e3 for side, v in sim.items()},
            "full_ms": {side: statistics.median(v) * 1e3 for side, v in full.items()},
            "loop_ms": {side: statistics.median(v) * 1e3 for side, v in loop.items()},
            "slowdown_loop": {side: slowdown(loop, side) for side in ("armed", "on")},
            "slowdown": {side: slowdown(sim, side) for side in ("armed", "on")},
            "drift": {"rounds": drift_rounds, "ms": statistics.median(drift_times["on+drift"]) * 1e3,
                      "factor": statistics.median(b / a for a, b in zip(drift_times["off"], drift_times["on+drift"]))},
            "slowdown_full": {side: slowdown(full, side) for side in ("armed", "on")},
        })
    return found


# -------------------------------------------------------------------------------------------- main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30,
                        help="interleaved rounds: send_order batches per side, backtests per side")
    parser.add_argument("--orders", type=int, default=200, help="orders per send_order batch")
    parser.add_argument("--days", type=int, default=250, help="sessions of the daily evaluation")
    parser.add_argument("--home", type=Path, default=None, help="reuse (or fill) this home; default: a temp dir")
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    args = parser.parse_args()
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"--only: unknown part(s) {unknown}; choose from {', '.join(PARTS)}")
    run_in_home(args.home, "bench_risk_", lambda home: run_all(args, parts, home))


def run_all(args: argparse.Namespace, parts: list[str], home: Path) -> None:
    from vnpy.trader.setting import SETTINGS

    # vnpy prints every log event (one per order: "委托下单 -> …") on the console; they are still put
    # on the queue and handled (the log engine writes its file), just not printed.
    SETTINGS["log.console"] = False
    print(f"home: {home}; code: {code_version()}; {os.cpu_count()} CPUs; load average {load_text()}; "
          f"repeat {args.repeat}")
    rows: list[tuple[str, str, str]] = []  # (figure, value, what differs)
    steps: dict[str, Callable[[], None]] = {
        "send_order": lambda: rows.extend(report_send_order(bench_send_order(home, args.repeat, args.orders))),
        "daily": lambda: rows.extend(report_daily(bench_daily(args.days))),
        "backtest": lambda: rows.extend(report_backtest(bench_backtest(args.repeat))),
    }
    for part in parts:
        started = time.perf_counter()
        steps[part]()
        print(f"   ({part}: {time.perf_counter() - started:.1f} s)")
    print(f"\nload average at the end: {load_text()} (other processes share the {os.cpu_count()} CPUs: the "
          "wall-clock tails measure them too)")
    print("\n| figure | value | what differs |\n|---|---|---|")
    for figure, value, differs in rows:
        print(f"| {figure} | {value} | {differs} |")


def load_text() -> str:
    """The 1/5/15-minute load averages (runnable processes): how busy the machine was."""
    try:
        return " / ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


def report_send_order(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    print(f"\n== send_order: {r['rounds']} interleaved rounds × {r['per_batch']} orders per side "
          f"({r['orders']:,} orders per side); {r['note']}")
    names = {"none": "no rules (vnpy_riskmanager's list emptied)", "vnpy": "vnpy_riskmanager's own rules (peer)",
             "ours": "its rules + our ladder rule"}
    clocks = {"wall": "wall clock", "cpu": "CPU time of the sending thread"}
    rows = []
    for mode, label in (("paused", "event thread paused while timing"),
                        ("live", f"event thread live, {r['live_rounds']} rounds")):
        for clock in CLOCKS:
            s = r[mode][clock]
            print(f"   -- {label}; {clocks[clock]}")
            for side, v in s["sides"].items():
                print(f"   {names[side]:45s} p50 {v['p50']:7.1f} µs  p99 {v['p99']:8.1f} µs  mean {v['mean']:7.1f} µs")
                if mode == "paused":
                    rows.append((f"send_order, {names[side]} ({clocks[clock]})",
                                 f"p50 {v['p50']:.1f} µs, p99 {v['p99']:.1f} µs",
                                 "MainEngine + ReplayGateway (fills at the open) + RiskManager; every order passes"))
            if "added" not in s:
                continue
            a = s["added"]
            m50, lo50, hi50 = a["round_p50"]
            m99, lo99, hi99 = a["round_p99"]
            print(f"   added by our rule: p50 {a['p50']:+.1f} µs, p99 {a['p99']:+.1f} µs (target p99 < "
                  f"{TARGETS['send_order_p99_us']:.0f} µs); per round: p50 {m50:+.1f} µs [{lo50:+.1f}, {hi50:+.1f}], "
                  f"p99 {m99:+.1f} µs [{lo99:+.1f}, {hi99:+.1f}] (median [min, max])")
            bold = "**" if mode == "paused" else ""
            rows.append((f"added latency of our rule, {label}, {clocks[clock]} (target p99 < 50 µs)",
                         f"{bold}p50 {a['p50']:+.1f} µs, p99 {a['p99']:+.1f} µs{bold}",
                         f"ours − vnpy; per-round p99 differences {lo99:+.1f} … {hi99:+.1f} µs (the noise)"))
    for name, p50, p99 in r["rule_alone"]:
        print(f"   our rule's own check_allowed inside send_order ({name}), per order: p50 {p50:.2f} µs, "
              f"p99 {p99:.2f} µs (target p99 < {TARGETS['send_order_p99_us']:.0f} µs)")
        rows.append(("**added latency per order: our rule's check_allowed inside send_order** (target p99 < 50 µs)",
                     f"**p50 {p50:.2f} µs, p99 {p99:.2f} µs**",
                     "timed around the rule in vnpy_riskmanager's loop, same orders (every order passes)"))
    refusals = r.get("refusals")
    if refusals:
        (v50, v99), (o50, o99) = refusals["vnpy"], refusals["ours"]
        print(f"   a refused buy ({refusals['orders']} per side, event thread paused, wall clock): by vnpy_riskmanager's "
              f"order-size rule p50 {v50:.1f} µs, p99 {v99:.1f} µs; by our rule (account REDUCING) p50 {o50:.1f} µs, "
              f"p99 {o99:.1f} µs")
        rows.append(("send_order of a refused buy: vnpy_riskmanager's size rule / our rule (REDUCING)",
                     f"p50 {v50:.0f} / {o50:.0f} µs, p99 {v99:.0f} / {o99:.0f} µs",
                     "ours also keeps, saves (atomic file write) and publishes the refusal"))
    return rows


def report_daily(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    print(f"\n== daily evaluation: {r['symbols']} symbols, {r['days']} sessions of seeded synthetic data")
    what = {"evaluate()": f"Snapshot of {r['symbols']} holdings + evaluate(): 3 stop rules, account ladder, "
                          "daily loss limit",
            "drift": f"drift.evaluate: {len(r['monitors'])} monitors on 20 × {r['symbols']} rows",
            "var_es": f"var_es_next: {r['var_methods']} (method, level) on 250 returns",
            "total": "evaluate() + drift + var_es, per session",
            "compiled": "check_close + ladder_close on arrays (the backtest loop's; inside evaluate(), not added)"}
    for part in ("evaluate()", "drift", "var_es", "total", "compiled"):
        p50, p99 = r["parts"][part]
        print(f"   {part:11s} p50 {p50:8.3f} ms  p99 {p99:8.3f} ms   {what[part]}")
    cal50, count, every = r["calibrate_ms"]
    first_text = ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in r["first_call_s"].items())
    print(f"   drift calibration (every {every} sessions here, {count} in the run): median {cal50:.0f} ms; "
          f"first calls (numba compile or cache load): {first_text}")
    print(f"   monitors evaluated: {', '.join(r['monitors'])}; unavailable: {', '.join(r['unavailable']) or '-'} "
          f"(no ticks in daily data); decisions: {r['actions']}")
    rows = []
    for part in ("evaluate()", "drift", "var_es", "total", "compiled"):
        p50, p99 = r["parts"][part]
        value = f"p50 {p50:.2f} ms, p99 {p99:.2f} ms" if part != "compiled" else \
            f"p50 {p50 * 1e3:.0f} µs, p99 {p99 * 1e3:.0f} µs"
        if part == "total":
            rows.append((f"**daily evaluation, {r['symbols']} symbols: total** (target < {TARGETS['daily_ms']:.0f} ms)", f"**{value}**",
                         what[part]))
        else:
            rows.append((f"daily evaluation, {r['symbols']} symbols: {part}", value, what[part]))
    rows.append(("drift calibration (apart)", f"{cal50:.0f} ms per reference window",
                 "null distributions (1000 draws) on 500 × 300 rows; once per reference window"))
    rows.append(("first calls (apart)", first_text, "numba compile or cache load; once per process"))
    return rows


def report_backtest(results: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    rows = []
    for r in results:
        n_symbols, n_days = r["shape"]
        print(f"\n== backtest {r['name']}: {n_symbols} symbols × {n_days} days ({r['days'][0]} … {r['days'][1]}); "
              f"risk on = {r['what_on']}; armed = the same with unreachable thresholds; {r['rounds']} interleaved "
              f"rounds (medians)")
        for side in BACKTEST_SIDES:
            orders, fills, risk_orders = r["counts"][side]
            print(f"   risk {side:5s}: day loop {r['loop_ms'][side]:6.2f} ms, simulate {r['simulate_ms'][side]:7.2f} ms, "
                  f"simulate + to_result {r['full_ms'][side]:7.2f} ms; first call {r['first_ms'][side]:.0f} ms; "
                  f"{orders} orders, {fills} fills, {risk_orders} by risk rules")
        for side in ("armed", "on"):
            print(f"   slowdown {side} vs off (median of per-round ratios): day loop {r['slowdown_loop'][side]:+.1%}, "
                  f"simulate {r['slowdown'][side]:+.1%}, simulate + to_result {r['slowdown_full'][side]:+.1%} "
                  f"(target < {TARGETS['slowdown']:.0%})")
        d = r["drift"]
        print(f"   risk on + drift response (off by default; {d['rounds']} rounds, simulate only): {d['ms']:.0f} ms "
              f"= {d['factor']:.0f}× off")
        off, on = r["counts"]["off"], r["counts"]["on"]
        ms, lp = r["simulate_ms"], r["loop_ms"]
        rows += [
            (f"backtest {r['name']}: simulate, risk off / armed / on",
             f"{ms['off']:.2f} / {ms['armed']:.2f} / {ms['on']:.2f} ms (day loop {lp['off']:.2f} / {lp['armed']:.2f} / "
             f"{lp['on']:.2f} ms)",
             f"on: {r['what_on']}; orders {off[0]} → {on[0]} ({on[2]} by risk rules); armed: never binds"),
            (f"**backtest {r['name']}: slowdown, risk on** (target < 10 %)",
             f"**simulate {r['slowdown']['on']:+.1%}; simulate + to_result {r['slowdown_full']['on']:+.1%}** "
             f"(day loop {r['slowdown_loop']['on']:+.1%})",
             f"median of {r['rounds']} paired rounds; to_result builds the frames"),
            (f"backtest {r['name']}: slowdown, armed (evaluation only)",
             f"day loop {r['slowdown_loop']['armed']:+.1%}; simulate {r['slowdown']['armed']:+.1%} "
             f"({ms['armed'] - ms['off']:+.2f} ms); simulate + to_result {r['slowdown_full']['armed']:+.1%}",
             "same trades as off: the cost of evaluating the rules every day"),
            (f"backtest {r['name']}: simulate with risk on + the drift response",
             f"{d['ms']:.0f} ms = {d['factor']:.0f}× off",
             f"DriftResponseConfig(enabled=True) (off by default): basket monitors recalibrated every 20 sessions; "
             f"{d['rounds']} rounds"),
        ]
    return rows


if __name__ == "__main__":
    main()
