"""Scaling of a sweep on a Dask cluster: the same grid serially, on a LocalCluster of 1 worker and of 2 workers.

    python benchmarks/bench_cluster.py [--home DIR] [--repeats 3] [--combos 200]

The grid is ``bench_rotation_sweep.py``'s 200 combinations of the ETF rotation template on the bundled real data.
Serial is ``backtest.sweep.sweep(..., executor=None)`` in this process; the cluster sides are
``research.cluster.ClusterSweeper`` on ``LocalCluster(n_workers=N, threads_per_worker=1, processes=True)``
on loopback. The sides run interleaved (serial, 1 worker, 2 workers, serial, ...) so machine drift hits each
alike; the median and the minimum of each side are printed. Reported apart, never inside a sweep's time:
starting each cluster, scattering the market to its workers (once per cluster), and a warm-up sweep on every
side (numba's cache load and imports in each worker process). Every side's frame is checked equal to serial.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # this checkout's package (workers inherit sys.path when spawned)


def main() -> None:
    if os.environ.get("BENCH_TRACE"):  # where a stuck run waits
        import faulthandler

        faulthandler.dump_traceback_later(float(os.environ["BENCH_TRACE"]), exit=True)
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--combos", type=int, default=200, help="the first N of the 200-combination grid")
    args = parser.parse_args()
    temporary = args.home is None
    home = (args.home or Path(tempfile.mkdtemp(prefix="bench_cluster_"))).resolve()
    try:
        run(home, args.repeats, args.combos)
    finally:
        if temporary:
            shutil.rmtree(home, ignore_errors=True)


def _settle(client, keep: int = 1, timeout: float = 30) -> None:
    """Wait until the scheduler has forgotten the last sweep's tasks (only the market is held): a resubmitted
    chunk key would otherwise be served from the previous run's result instead of being computed."""
    deadline = time.monotonic() + timeout
    while client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)) > keep:
        if time.monotonic() > deadline:
            raise RuntimeError("the scheduler still holds the previous sweep's tasks")
        time.sleep(0.05)


def run(home: Path, repeats: int, count: int) -> None:
    from vnpy_rotation.runtime import settle_runtime

    settle_runtime(home)
    from bench_rotation_sweep import etf_combos

    from vnpy_rotation.backtest.config import BacktestConfig
    from vnpy_rotation.backtest.loader import ensure_bundled, load_market, with_benchmark
    from vnpy_rotation.data.store import BarStore
    from vnpy_rotation.research.cluster import ClusterSweeper, ClusterTarget, open_client
    from vnpy_rotation.strategies import create_strategy

    store = BarStore()
    strategy = create_strategy("etf_rotation")
    ensure_bundled(strategy.symbols + ["H00300.SSE"], store)
    market, benchmark = with_benchmark(load_market(strategy.symbols, store=store), store)
    config = BacktestConfig()
    grid = etf_combos()[:count]
    n_days, n_symbols = market.shape
    print(f"market: {n_symbols} ETFs × {n_days} days, benchmark {benchmark}; {len(grid)} combinations of "
          f"etf_rotation; {os.cpu_count()} CPUs; {repeats} interleaved repeats; load average "
          f"{os.getloadavg()[0]:.2f} at start")

    clusters, sweepers, setup = {}, {}, {}
    with ExitStack() as stack:
        for workers in (1, 2):
            started = time.perf_counter()
            client = stack.enter_context(open_client(ClusterTarget(None, workers)))
            client.wait_for_workers(workers)
            start_s = time.perf_counter() - started
            sweeper = ClusterSweeper(client)
            started = time.perf_counter()
            sweeper.market_future(market)
            scatter_s = time.perf_counter() - started
            clusters[workers], sweepers[workers], setup[workers] = client, sweeper, (start_s, scatter_s)
        warm, times, expected = measure(market, grid, config, sweepers, clusters, repeats)
    report(len(grid), warm, times, setup)


def measure(market, grid, config, sweepers, clusters, repeats):
    from vnpy_rotation.backtest.sweep import sweep

    def serial() -> object:
        return sweep(market, "etf_rotation", grid, config)

    def on(workers: int):
        def side() -> object:
            return sweepers[workers].sweep(market, "etf_rotation", grid, config)
        return side

    sides = {"serial": serial, "1 worker": on(1), "2 workers": on(2)}
    settle = {"1 worker": clusters[1], "2 workers": clusters[2]}  # waited for outside the timed part
    started = time.perf_counter()
    expected = serial()  # compiles / loads numba's cache in this process
    warm = {"serial": time.perf_counter() - started}
    for workers in (1, 2):  # imports and numba's cache in every worker process
        started = time.perf_counter()
        sweepers[workers].sweep(market, "etf_rotation", grid[:4 * workers], config, chunks=2 * workers)
        _settle(clusters[workers])
        warm[f"{workers} worker" + "s" * (workers > 1)] = time.perf_counter() - started
    times: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(repeats):
        for name, side in sides.items():
            started = time.perf_counter()
            frame = side()
            times[name].append(time.perf_counter() - started)
            if name in settle:
                _settle(settle[name])
            assert frame.equals(expected), f"{name}: the frame differs from the serial sweep"
    return warm, times, expected


def report(count, warm, times, setup) -> None:
    base = statistics.median(times["serial"])
    what = {"serial": "sweep(executor=None) in this process",
            "1 worker": "ClusterSweeper, LocalCluster(1 process × 1 thread); market scattered once (apart)",
            "2 workers": "ClusterSweeper, LocalCluster(2 processes × 1 thread); market scattered once (apart)"}
    print(f"\nload average {os.getloadavg()[0]:.2f} at end\n")
    print("| side | median s | min s | backtests/s | speed-up vs serial (median) | what runs |")
    print("|---|---|---|---|---|---|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.2f} | {min(values):.2f} | {count / median:.0f} | {base / median:.2f}× | "
              f"{what[name]} |")
    one, two = statistics.median(times["1 worker"]), statistics.median(times["2 workers"])
    print(f"\n2 workers vs 1 worker: {one / two:.2f}× (ideal 2×; the client gathers and orders the rows, the "
          f"scheduler adds a round trip per chunk)")
    print("\n| apart from the timings | 1 worker | 2 workers |\n|---|---|---|")
    print(f"| start the LocalCluster | {setup[1][0]:.2f} s | {setup[2][0]:.2f} s |")
    print(f"| scatter the market to every worker (once) | {setup[1][1]:.3f} s | {setup[2][1]:.3f} s |")
    print(f"| warm-up sweep (imports, numba cache in each worker) | {warm['1 worker']:.2f} s | "
          f"{warm['2 workers']:.2f} s |")
    print(f"\nserial warm-up (first sweep, compile/cache in this process): {warm['serial']:.2f} s")


if __name__ == "__main__":
    main()
