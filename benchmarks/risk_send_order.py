"""Part 1 of bench_risk.py: ``send_order`` through a real vnpy MainEngine with none / vnpy's / our rules (see bench_risk)."""

from __future__ import annotations

import dataclasses
import gc
import queue
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from risk_common import TARGETS, pct  # noqa: F401

ETFS = ["510300.SSE", "510500.SSE", "159915.SZSE", "510050.SSE", "510880.SSE", "159949.SZSE"]
SESSION = "2024-06-24"  # a session of the bundled ETFs (any would do: the gateway fills at its open)
STRATEGY_REFERENCE = "etf_rotation|{day}|{k}"  # the rotation app's reference: "<strategy>|…"
BARRIER = "eBenchRiskBarrier"
SIDES = ("none", "vnpy", "ours")

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
