"""Part 3 of bench_risk.py: the backtest slowdown with the risk engine off, armed and on (see bench_risk)."""

from __future__ import annotations

import dataclasses
import gc
import math
import statistics
import time
from typing import Any

from risk_common import TARGETS, pct  # noqa: F401

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
