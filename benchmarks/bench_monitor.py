"""Market-monitor latency: quote → indicators → alerts for a whole watchlist at a realistic rate.

    python benchmarks/bench_monitor.py [--symbols 500] [--minutes 10] [--seed 7]

A synthetic session for ``--symbols`` A-share codes (a quarter each SSE main board, SZSE main board,
ChiNext, STAR): the 09:25 auction print; the 09:30 burst (every symbol once within one second, 2 ms
apart); then 3-second snapshots per symbol with staggered offsets (500 symbols ≈ 167 quotes/s) for
``--minutes`` minutes. Prices random-walk; one symbol in 25 trends to its limit-up, seals and opens, so the
limit, spike and surge rules fire and the storm limiter works. ``MonitorCore.on_timer`` runs once a
simulated second (bar clock, stale checks, storm summary).

Figures (wall time of each call, ``time.perf_counter_ns``, one process, garbage collector on):

- service time of ``on_quote`` (the whole path: bars, indicators, every rule, cool-down, storm) per phase;
- tick → alert latency including queueing: each quote arrives at its simulated time and waits while the
  core is busy with earlier ones (a single consumer, as the vnpy event engine is);
- the same calls' CPU time (``time.thread_time_ns``), which a busy shared machine does not inflate;
- ``on_timer`` for all symbols.

Symbols are registered with ``MonitorCore.watch`` before the day (instrument look-ups are setup, not
per-tick work); the scripted stream is built first and frozen out of the garbage collector (``gc.freeze``),
since a live feed does not keep its quotes. The machine may be shared: read p99 as an upper bound.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vnpy_rotation.monitor import MonitorCore, Quote, Reference  # noqa: E402
from vnpy_rotation.monitor.core import find_instrument  # noqa: E402
from vnpy_rotation.monitor.indicators import limit_prices  # noqa: E402

DAY = datetime(2024, 3, 1)
PREFIXES = (("600", "SSE"), ("000", "SZSE"), ("300", "SZSE"), ("688", "SSE"))


def symbols(n: int) -> list[str]:
    out = []
    for k in range(n):
        prefix, exchange = PREFIXES[k % 4]
        out.append(f"{prefix}{k // 4 + 1:03d}.{exchange}")
    return out


@dataclass
class Stream:
    """Arrival time (seconds since 09:25) and quote of every scripted tick, in arrival order."""

    arrivals: list[float]
    quotes: list[Quote]
    phases: list[str]


def script(names: list[str], minutes: int, seed: int) -> Stream:
    rng = np.random.default_rng(seed)
    n = len(names)
    pre = np.round(rng.uniform(5, 50, n), 2)
    price = pre.copy()
    volume = np.zeros(n)
    turnover = np.zeros(n)
    up = np.array([limit_prices(find_instrument(s), DAY.date(), p)[0] for s, p in zip(names, pre)])  # type: ignore[arg-type]
    trending = np.arange(n) % 25 == 0
    arrivals: list[float] = []
    quotes: list[Quote] = []
    phases: list[str] = []

    def emit(j: int, at: float, phase: str, opened: float) -> None:
        moment = DAY + timedelta(hours=9, minutes=25, seconds=at)
        last = float(price[j])
        sealed = last >= up[j] - 1e-9
        quotes.append(Quote(names[j], moment, last, float(pre[j]), float(volume[j]), float(turnover[j]), opened,
                            bid1=round(last - 0.01, 2) if not sealed else last, ask1=0.0 if sealed else last))
        arrivals.append(at)
        phases.append(phase)

    open_price = np.round(pre * (1 + rng.normal(0, 0.01, n)), 2)
    price[:] = open_price
    added = rng.integers(1, 50, n) * 100.0
    volume += added
    turnover += added * price
    for j in range(n):  # the 09:25 auction print
        emit(j, j * 0.002, "09:25 auction", float(open_price[j]))
    price_before = price.copy()
    for j in range(n):  # the 09:30 burst: every symbol within one second
        step = rng.normal(0, 0.002)
        price[j] = np.round(price_before[j] * (1 + step), 2)
        added_j = float(rng.integers(1, 20) * 100)
        volume[j] += added_j
        turnover[j] += added_j * price[j]
        emit(j, 300 + j * (1.0 / n), "09:30 burst", float(open_price[j]))
    offsets = rng.uniform(0, 3, n)
    order = np.argsort(offsets)
    rounds = minutes * 20
    for r in range(1, rounds):
        for j in order:
            t = 300 + 3 * r + offsets[j]
            drift = 0.004 if trending[j] else 0.0
            new = price[j] * (1 + drift + rng.normal(0, 0.0015))
            if trending[j] and r % 60 == 30:  # the seal opens (开板) now and then
                new = up[j] * 0.99
            price[j] = min(np.round(new, 2), up[j])
            added_j = float(rng.integers(0, 30) * 100) * (8 if rng.random() < 0.002 else 1)
            volume[j] += added_j
            turnover[j] += added_j * price[j]
            emit(int(j), float(t), "3-s snapshots", float(open_price[j]))
    return Stream(arrivals, quotes, phases)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def run(n: int, minutes: int, seed: int) -> tuple[dict[str, list[float]], dict[str, list[float]],
                                                   dict[str, list[float]], list[float], int, float]:
    names = symbols(n)
    refs = [Reference(s, avg_volume_5d=1e6) for s in names]
    stream = script(names, minutes, seed)
    core = MonitorCore(references=refs)
    core.watch(names, DAY + timedelta(hours=9, minutes=15))
    # The scripted stream keeps ~100 000 quotes alive, which a live feed never does: freeze them out of
    # the collector's full passes so its pauses are the monitor's own.
    gc.collect()
    gc.freeze()
    service: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    latency: dict[str, list[float]] = {}
    timers: list[float] = []
    alerts = 0
    busy_until = 0.0  # simulated seconds since 09:25 at which the consumer is free
    next_timer = 1.0
    clock, cpu_clock = time.perf_counter_ns, time.thread_time_ns
    start_all = time.perf_counter()
    for at, quote, phase in zip(stream.arrivals, stream.quotes, stream.phases):
        while next_timer <= at:
            t0 = clock()
            alerts += len(core.on_timer(DAY + timedelta(hours=9, minutes=25, seconds=next_timer)))
            spent = (clock() - t0) / 1e9
            timers.append(spent)
            busy_until = max(busy_until, next_timer) + spent
            next_timer += 1.0
        c0, t0 = cpu_clock(), clock()
        alerts += len(core.on_quote(quote))
        spent = (clock() - t0) / 1e9
        cpu.setdefault(phase, []).append((cpu_clock() - c0) / 1e9)
        begin = max(at, busy_until)
        busy_until = begin + spent
        service.setdefault(phase, []).append(spent)
        latency.setdefault(phase, []).append(busy_until - at)
    return service, cpu, latency, timers, alerts, time.perf_counter() - start_all


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    service, cpu, latency, timers, alerts, total = run(args.symbols, args.minutes, args.seed)
    rate = len(service.get("3-s snapshots", [])) / max(args.minutes * 60 - 3, 1)
    print(f"{args.symbols} symbols, {sum(map(len, service.values()))} quotes "
          f"({rate:.0f}/s in the 3-s phase), {alerts} alerts after cool-down and storm limiting, "
          f"{total:.2f} s wall in all\n")
    print("| phase | quotes | on_quote p50 | on_quote p99 | on_quote max | CPU p99 | tick → alert p99 "
          "(with queueing) |")
    print("|---|---|---|---|---|---|---|")
    for phase, values in service.items():
        print(f"| {phase} | {len(values)} | {percentile(values, 50) * 1e6:.0f} µs | "
              f"{percentile(values, 99) * 1e6:.0f} µs | {max(values) * 1e6:.0f} µs | "
              f"{percentile(cpu[phase], 99) * 1e6:.0f} µs | {percentile(latency[phase], 99) * 1e3:.2f} ms |")
    print(f"| on_timer ({args.symbols} symbols) | {len(timers)} | {percentile(timers, 50) * 1e3:.2f} ms | "
          f"{percentile(timers, 99) * 1e3:.2f} ms | {max(timers) * 1e3:.2f} ms | – | – |")
    print("\nWall times include preemption by other processes; CPU is this thread's own time "
          "(time.thread_time_ns).")


if __name__ == "__main__":
    main()
