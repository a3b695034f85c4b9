"""The sweep entry point: any Executor, same rows as running each backtest alone."""

from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np

from vnpy_rotation.backtest.config import BacktestConfig
from vnpy_rotation.backtest.engine import simulate
from vnpy_rotation.backtest.sweep import grid, quick_metrics, sweep
from vnpy_rotation.strategies import create_strategy


def test_grid_is_the_cartesian_product():
    combos = grid(lookback=[5, 10, 20], top_n=[1, 2])
    assert len(combos) == 6 and {"lookback": 20, "top_n": 2} in combos


def test_quick_metrics_by_hand():
    m = quick_metrics(np.array([100.0, 110.0, 99.0, 121.0]))
    assert abs(m["total_return"] - 0.21) < 1e-12
    assert abs(m["max_drawdown"] - (99 / 110 - 1)) < 1e-12


def test_parallel_sweep_equals_serial_and_single_runs(bundled_market):
    combos = grid(lookback=[10, 40], top_n=[1, 3], rebalance=["week_end", "month_end"])
    config = BacktestConfig()
    base = {"symbols": list(bundled_market.symbols)}
    serial = sweep(bundled_market, "momentum_topn", combos, config, base=base)
    with ThreadPoolExecutor(2) as threads:
        threaded = sweep(bundled_market, "momentum_topn", combos, config, base=base, executor=threads)
    with ProcessPoolExecutor(2) as processes:
        forked = sweep(bundled_market, "momentum_topn", combos, config, base=base, executor=processes, chunks=3)
    assert len(serial) == len(combos)
    for frame in (threaded, forked):
        assert frame.equals(serial)
    one = combos[3]
    run = simulate(bundled_market, create_strategy("momentum_topn", {**base, **one}).targets(bundled_market), config)
    assert serial.iloc[3]["total_return"] == run.equity()[-1] / config.capital - 1
    assert serial.iloc[3]["trade_count"] == len(run.trades)
    assert serial["total_return"].nunique() == len(combos)  # the parameters really change the runs


def test_the_simulation_core_does_not_import_vnpy():
    """Sweep workers (spawned, Dask, Ray) import the core only: vnpy would pick a runtime folder."""
    import subprocess
    import sys

    code = ("import sys, vnpy_rotation.backtest.sweep, vnpy_rotation.backtest.engine, "
            "vnpy_rotation.backtest.metrics, vnpy_rotation.strategies; "
            "print(sorted(m for m in sys.modules if m == 'vnpy' or m.startswith('vnpy.')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
