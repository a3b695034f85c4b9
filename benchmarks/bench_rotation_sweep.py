"""A 200-combination parameter sweep of the ETF rotation template through the sweep entry point.

    python benchmarks/bench_rotation_sweep.py [--home DIR] [--workers 2]

On the bundled real data (13 ETFs in 3 pools, 2017-01 … 2024-09, CSI 300 total-return index for the
relative-strength factor): ``vnpy_rotation.backtest.sweep.sweep(market, "etf_rotation", combos, ...)``
serially and through a ``ProcessPoolExecutor``, backtests per second per core, the best combinations.
For scale, one vnpy_portfoliostrategy backtest of a (simpler) top-N momentum rotation on the same
funds is timed in the same run (``vnpy_peer.py``) and multiplied by 200: what the same sweep would
cost on vnpy's engine if its strategy were no slower than momentum.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

FACTOR_MIXES = (
    {"mom_60": 0.4, "trend_60": 0.3, "mom_20": 0.2, "vol_20": 0.1},  # the default
    {"mom_20": 1.0},
    {"mom_60": 0.5, "rs_csi300_60": 0.5},
    {"risk_adj_mom_60": 0.6, "trend_60": 0.4},
    {"mom_120": 0.4, "ma_gap_120": 0.3, "mdd_60": 0.3},
)


def combos() -> list[dict]:
    from vnpy_rotation.backtest.sweep import grid

    found = grid(top_n=[1, 2], buffer=[0, 1, 2, 3, 4], schedule=["week_end", "month_end"],
                 absolute_factor=["mom_60", "mom_120"], factors=list(FACTOR_MIXES))
    assert len(found) == 200
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    temporary = args.home is None
    home = (args.home or Path(tempfile.mkdtemp(prefix="bench_rotation_"))).resolve()
    try:
        run(home, args.workers)
    finally:
        if temporary:
            shutil.rmtree(home, ignore_errors=True)


def run(home: Path, workers: int) -> None:
    from vnpy_rotation.runtime import settle_runtime

    settle_runtime(home)
    os.chdir(home)  # forked workers find ./.vntrader here
    import vnpy_peer

    from vnpy_rotation.backtest.config import BacktestConfig
    from vnpy_rotation.backtest.loader import ensure_bundled, load_market, with_benchmark
    from vnpy_rotation.backtest.sweep import sweep
    from vnpy_rotation.data.store import BarStore
    from vnpy_rotation.strategies import create_strategy

    store = BarStore()
    strategy = create_strategy("etf_rotation")
    ensure_bundled(strategy.symbols + ["H00300.SSE"], store)
    market = load_market(strategy.symbols, store=store)
    market, benchmark = with_benchmark(market, store)
    config = BacktestConfig()
    grid = combos()
    n_days, n_symbols = market.shape
    print(f"market: {n_symbols} ETFs × {n_days} days ({market.days[0].date()} … {market.days[-1].date()}), "
          f"benchmark {benchmark}; {len(grid)} combinations; {os.cpu_count()} CPUs")

    sweep(market, "etf_rotation", grid[:2], config)  # compile and warm caches outside the timing
    started = time.perf_counter()
    serial = sweep(market, "etf_rotation", grid, config)
    serial_s = time.perf_counter() - started
    print(f"serial              {serial_s:6.2f} s  {len(grid) / serial_s:7.1f} backtests/s/core")

    context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        list(pool.map(abs, range(workers)))  # start the workers before timing
        started = time.perf_counter()
        parallel = sweep(market, "etf_rotation", grid, config, executor=pool)
        parallel_s = time.perf_counter() - started
    assert parallel.equals(serial), "the parallel sweep must equal the serial one"
    print(f"{workers} processes         {parallel_s:6.2f} s  {len(grid) / parallel_s / workers:7.1f} "
          f"backtests/s/core ({len(grid) / parallel_s:.1f}/s in all)")

    ticks = dict(zip(market.symbols, market.tick.tolist()))
    peer = vnpy_peer.VnpyPeer(list(market.symbols), market.days[0].date(), market.days[-1].date(),
                              config.capital, 0.0003, ticks)
    peer.load()
    settings = dict(lookback=20, top_n=2, rebalance="week_end", absolute=True, invested=0.99,
                    notional=config.capital)
    peer.run(settings)
    vnpy_s = min(peer.run(settings).run_seconds for _ in range(2))
    print(f"vnpy_portfoliostrategy, one momentum backtest on the same funds: {vnpy_s * 1e3:.0f} ms "
          f"→ 200 backtests ≈ {200 * vnpy_s:.1f} s; ours serial is {200 * vnpy_s / serial_s:.0f}× faster")

    shown = serial.assign(factors=[",".join(f) for f in serial["factors"]])
    print("\nbest 5 by Sharpe:")
    print(shown.sort_values("sharpe", ascending=False).head(5).to_string(index=False))
    print("\n| figure | value |\n|---|---|")
    print(f"| 200 combinations, serial | {serial_s:.2f} s = {len(grid) / serial_s:.0f} backtests/s/core |")
    print(f"| 200 combinations, ProcessPoolExecutor({workers}) | {parallel_s:.2f} s = "
          f"{len(grid) / parallel_s / workers:.0f} backtests/s/core |")
    print(f"| vnpy_portfoliostrategy: one momentum backtest × 200 | {200 * vnpy_s:.1f} s |")


if __name__ == "__main__":
    main()
