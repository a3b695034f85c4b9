"""Parameter sweeps of the real templates (``etf_rotation`` and ``vqm``) against vnpy_portfoliostrategy, one run.

    python benchmarks/bench_rotation_sweep.py [--home DIR] [--rounds 5] [--workers 2] [--root CHECKOUT]

Data: the bundled real data (13 ETFs in 3 pools, 2017-01 … 2024-09, with the CSI 300 total-return index for
the relative-strength factor; the 55 bundled CSI 300 stocks with their point-in-time fundamentals and index
membership for VQM), imported into the embedded database under ``--home`` (a temporary folder by default).

Ours: ``vnpy_rotation.backtest.sweep.sweep(market, name, combos, config)`` serially on one core with the full
A-share rules (lots, T+1, price limits, suspensions, fees, corporate actions; VQM with its stop rules), each
row built by ``quick_metrics`` (the sweep's result construction). ``etf_rotation``: 200 combinations sharing
5 factor mixes; ``vqm``: 30 combinations (its search space × the single-stock stop on/off).

Peer: one vnpy_portfoliostrategy backtest (``run_backtesting`` + ``calculate_result``) on the same bars:
a top-2 20-day momentum rotation (``vnpy_peer.py``) beside ``etf_rotation``, the same VQM selection
(``vnpy_vqm_peer.py``, its pre-loaded inputs built apart) beside ``vqm``.

Fairness: the two sides alternate (peer backtest, our whole sweep, peer, sweep, …) ``--rounds`` times and
the medians are reported; compile and warm-up (numba's cache load, the first run of each side) are timed
apart. ``--root`` imports ``vnpy_rotation`` from another checkout (e.g. the code before a change) so the
same script measures both. A markdown table closes the output.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

RATE = 0.0003  # vnpy's one symmetric commission rate
FACTOR_MIXES = (
    {"mom_60": 0.4, "trend_60": 0.3, "mom_20": 0.2, "vol_20": 0.1},  # the default
    {"mom_20": 1.0},
    {"mom_60": 0.5, "rs_csi300_60": 0.5},
    {"risk_adj_mom_60": 0.6, "trend_60": 0.4},
    {"mom_120": 0.4, "ma_gap_120": 0.3, "mdd_60": 0.3},
)


def etf_combos() -> list[dict]:
    from vnpy_rotation.backtest.sweep import grid

    return grid(top_n=[1, 2], buffer=[0, 1, 2, 3, 4], schedule=["week_end", "month_end"],
                absolute_factor=["mom_60", "mom_120"], factors=list(FACTOR_MIXES))


def vqm_combos() -> list[dict]:
    from vnpy_rotation.backtest.sweep import grid
    from vnpy_rotation.strategies.vqm import VqmStrategy

    return grid(**VqmStrategy.search_space, stock_stop=[0.08, None])


def timed(func):
    started = time.perf_counter()
    value = func()
    return time.perf_counter() - started, value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved peer/ours pairs per template")
    parser.add_argument("--workers", type=int, default=2, help="also time a ProcessPoolExecutor sweep (0: skip)")
    parser.add_argument("--root", type=Path, default=None, help="import vnpy_rotation from this checkout")
    args = parser.parse_args()
    # this checkout's code (or --root's), not whatever the environment has installed
    sys.path.insert(0, str((args.root or Path(__file__).resolve().parents[1]).resolve()))
    from bench_home import code_version, run_in_home

    import vnpy_rotation

    code = code_version() if args.root is None else str(args.root)
    print(f"vnpy_rotation from {Path(vnpy_rotation.__file__).parent}; code {code}; {os.cpu_count()} CPUs; "
          f"load average {os.getloadavg()[0]:.1f}")
    run_in_home(args.home, "bench_sweep_", lambda home: run(args.rounds, args.workers))


def measure(name: str, combos: list[dict], store, config, rounds: int, workers: int) -> tuple:
    """Load ``name``'s market, then peer and sweep alternately; the figures of one table row."""
    import vnpy_peer
    import vnpy_vqm_peer

    from vnpy_rotation.backtest.loader import market_for
    from vnpy_rotation.backtest.sweep import sweep
    from vnpy_rotation.strategies import create_strategy

    strategy = create_strategy(name)
    load_s, market = timed(lambda: market_for(strategy, store=store))
    n_days, n_symbols = market.shape
    ticks = dict(zip(market.symbols, market.tick.tolist()))
    start, end = market.days[0].date(), market.days[-1].date()
    if name == "etf_rotation":
        peer = vnpy_peer.VnpyPeer(list(market.symbols), start, end, config.capital, RATE, ticks)
        settings = dict(lookback=20, top_n=2, rebalance="week_end", absolute=True, invested=0.99,
                        notional=config.capital)
        peer_run = lambda: peer.run(settings).run_seconds  # noqa: E731
        peer_what = "top-2 20-day momentum, weekly"
        inputs_s = 0.0
    else:
        s = strategy.settings
        inputs_s, inputs = timed(lambda: vnpy_vqm_peer.build_inputs(list(market.symbols), s.index, s.roe, store))
        peer = vnpy_vqm_peer.VnpyVqmPeer(list(market.symbols), start, end, config.capital, RATE, ticks)
        settings = {"w_pe": s.w_pe, "w_roe": s.roe_weight, "top_n": s.top_n, "min_listed_days": s.min_listed_days,
                    "invested": s.invested, "notional": config.capital, "lot": 100}
        peer_run = lambda: peer.run(settings, inputs).run.run_seconds  # noqa: E731
        peer_what = "the same VQM selection, no stop rules"
    peer_load_s = peer.load()
    print(f"\n== {name}: {n_symbols} symbols × {n_days} days ({start} … {end}), {len(combos)} combinations; "
          f"our load {load_s:.2f} s, vnpy load_data {peer_load_s:.2f} s" +
          (f", vnpy peer inputs {inputs_s:.2f} s" if inputs_s else ""))

    compile_s, _ = timed(lambda: sweep(market, name, combos[:2], config))  # numba cache load / compile
    peer_first_s = peer_run()
    print(f"warm-up (apart): our first 2-combination sweep {compile_s:.2f} s; vnpy first run {peer_first_s:.2f} s")
    peer_times, our_times = [], []
    frame = None
    for k in range(rounds):  # interleaved pairs: machine drift hits both sides alike
        peer_times.append(peer_run())
        seconds, frame = timed(lambda: sweep(market, name, combos, config))
        our_times.append(seconds)
        print(f"  round {k + 1}: vnpy one backtest {peer_times[-1] * 1e3:7.1f} ms | ours {len(combos)} backtests "
              f"{seconds:6.2f} s = {len(combos) / seconds:6.1f}/s")
    peer_s, ours_s = statistics.median(peer_times), statistics.median(our_times)
    ours_rate, peer_rate = len(combos) / ours_s, 1 / peer_s
    parallel = None
    if workers > 1:
        context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            list(pool.map(abs, range(workers)))  # start the workers before timing
            sweep(market, name, combos[:2 * workers], config, executor=pool)  # warm each worker
            seconds, found = timed(lambda: sweep(market, name, combos, config, executor=pool))
        assert found.equals(frame), "the parallel sweep must equal the serial one"
        parallel = len(combos) / seconds
    print(f"median: ours {ours_rate:.1f} backtests/s/core, vnpy {peer_rate:.2f} backtests/s/core "
          f"→ {ours_rate / peer_rate:.0f}×" + (f"; ProcessPoolExecutor({workers}): {parallel / workers:.1f} "
                                                f"backtests/s/core ({parallel:.1f}/s in all)" if parallel else ""))
    shown = frame.assign(**({"factors": [",".join(f) for f in frame["factors"]]} if "factors" in frame else {}))
    print("best 3 by Sharpe:\n" + shown.sort_values("sharpe", ascending=False).head(3).to_string(index=False))
    return name, n_symbols, n_days, len(combos), ours_rate, peer_rate, compile_s, parallel, workers, peer_what


def run(rounds: int, workers: int) -> None:
    from vnpy_rotation.backtest.config import BacktestConfig
    from vnpy_rotation.data.store import BarStore

    store, config = BarStore(), BacktestConfig()
    rows = [measure(name, combos, store, config, rounds, workers)
            for name, combos in (("etf_rotation", etf_combos()), ("vqm", vqm_combos()))]

    print("\n| template | data | ours, serial sweep | vnpy_portfoliostrategy, one backtest at a time | ratio | "
          "warm-up (apart) | what differs |\n|---|---|---|---|---|---|---|")
    for name, n_symbols, n_days, count, ours, peer, compile_s, parallel, workers, what in rows:
        extra = f"; {parallel / workers:.0f}/s/core on {workers} processes" if parallel else ""
        print(f"| {name} | {n_symbols} symbols × {n_days} days | {ours:.0f} backtests/s/core ({count} combinations"
              f"{extra}) | {peer:.2f} backtests/s | {ours / peer:.0f}× | {compile_s:.2f} s | ours: the real template "
              f"with full A-share rules, metrics per row; vnpy: {what}, one commission rate, no lots/T+1/limits, "
              f"calculate_result per run |")


if __name__ == "__main__":
    main()
