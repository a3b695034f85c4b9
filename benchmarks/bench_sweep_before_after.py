"""The real-template sweeps of two checkouts (e.g. the code before a speed change and after), interleaved.

    python benchmarks/bench_sweep_before_after.py --before CHECKOUT [--after CHECKOUT] [--rounds 9]

Each checkout runs in its own worker process that imports its own ``vnpy_rotation``, loads the bundled
markets with its own loader (``market_for``, from one database imported once under a temporary home) and
warms up (numba's cache load, a first sweep: reported apart). The parent then asks the two workers for a
whole serial sweep alternately -- before, after, after, before, … -- per template, so that machine drift
hits both sides alike, and prints the medians and their ratio. The grids are ``bench_rotation_sweep``'s
(``etf_rotation``: 200 combinations; ``vqm``: 30). What differs between the two sides: only the code.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEMPLATES = ("vqm", "etf_rotation")


def worker(root: Path, home: Path) -> None:
    """Load, warm up, then run one whole sweep per template name read from stdin and print its rate."""
    sys.path[:0] = [str(root), str(HERE)]
    from vnpy_rotation.runtime import settle_runtime

    settle_runtime(home)
    os.chdir(home)
    from bench_rotation_sweep import etf_combos, vqm_combos

    from vnpy_rotation.backtest.config import BacktestConfig
    from vnpy_rotation.backtest.loader import market_for
    from vnpy_rotation.backtest.sweep import sweep
    from vnpy_rotation.data.store import BarStore
    from vnpy_rotation.strategies import create_strategy

    config, store = BacktestConfig(), BarStore()
    combos = {"vqm": vqm_combos(), "etf_rotation": etf_combos()}
    markets = {name: market_for(create_strategy(name), store=store) for name in TEMPLATES}
    started = time.perf_counter()
    for name in TEMPLATES:
        sweep(markets[name], name, combos[name][:4], config)
    print(f"ready {time.perf_counter() - started:.2f}", flush=True)
    for line in sys.stdin:
        name = line.strip()
        started = time.perf_counter()
        sweep(markets[name], name, combos[name], config)
        print(f"rate {len(combos[name]) / (time.perf_counter() - started):.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", type=Path, required=True, help="a checkout, e.g. `git archive` of the old code")
    parser.add_argument("--after", type=Path, default=HERE.parent, help="default: this checkout")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker.resolve(), args.home)
        return
    sys.path.insert(0, str(HERE))
    from bench_home import run_in_home

    run_in_home(None, "bench_before_after_", lambda home: compare(args, home))


def answer(process: subprocess.Popen, tag: str) -> str:
    """The worker's next line starting with ``tag`` (anything else it prints is passed through)."""
    while True:
        line = process.stdout.readline()
        if not line:
            raise SystemExit("a worker stopped")
        if line.startswith(tag):
            return line.split()[1]
        print(line, end="")


def compare(args: argparse.Namespace, home: Path) -> None:
    sys.path.insert(0, str(args.after.resolve()))
    from vnpy_rotation.bundled import bundled_files, bundled_stock_files
    from vnpy_rotation.data.importer import import_paths
    from vnpy_rotation.data.store import BarStore

    assert import_paths(bundled_files() + bundled_stock_files(), BarStore(), progress=False).ok
    sides = {"before": args.before, "after": args.after}
    workers = {side: subprocess.Popen([sys.executable, __file__, "--before", str(args.before), "--worker",
                                       str(root), "--home", str(home)], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True)
               for side, root in sides.items()}
    for side, process in workers.items():  # (both load at once: only the sweeps below are timed)
        print(f"{side} ({sides[side]}): warm-up (apart) {answer(process, 'ready')} s")
    rates: dict[tuple[str, str], list[float]] = {(side, name): [] for side in sides for name in TEMPLATES}
    print(f"load average {os.getloadavg()[0]:.1f}")
    for k in range(args.rounds):
        for name in TEMPLATES:
            for side in ("before", "after") if k % 2 == 0 else ("after", "before"):
                workers[side].stdin.write(name + "\n")
                workers[side].stdin.flush()
                rates[side, name].append(float(answer(workers[side], "rate")))
    print(f"load average {os.getloadavg()[0]:.1f}\n\n| template | before | after | after / before |\n|---|---|---|---|")
    for name in TEMPLATES:
        before, after = (statistics.median(rates[side, name]) for side in sides)
        print(f"| {name} | {before:.0f} backtests/s/core | {after:.0f} backtests/s/core | {after / before:.2f}× |")
    for process in workers.values():
        process.stdin.close()
        process.wait()


if __name__ == "__main__":
    main()
