"""The plan-level limits on a large weight plan: time per pass, every limit on.

    python benchmarks/bench_limits.py [--rows 2500] [--symbols 300] [--repeat 20]

Synthetic rows (about a tenth of the symbols held, weights up to 1/15, six pools), a position cap and a
pool cap that bind, and turnover and cost budgets that bind on most rows: the worst case, since every
row then depends on the limited row before it. Reported: the compiled pass (``limit_weights``) and the
reason texts of every limited cell (``reasons``), median of ``--repeat`` runs after one compiling run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vnpy_rotation.risk.limits import LimitsConfig, limit_weights, reasons  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2500)
    parser.add_argument("--symbols", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    shape = (args.rows, args.symbols)
    symbols = [f"{k:06d}.SSE" for k in range(args.symbols)]
    weights = np.where(rng.random(shape) < 0.1, rng.random(shape) / 15, 0.0)
    config = LimitsConfig(max_position_weight=0.05, max_pool_weight=0.3, max_turnover=0.2, cost_budget_bps=5,
                          pools={s: f"p{k % 6}" for k, s in enumerate(symbols)})
    buy = np.full(shape, 0.00025)
    sell = buy + 0.0005
    limited = limit_weights(weights, config, symbols, buy, sell)  # compiles (cached on disk afterwards)
    passes, texts = [], []
    for _ in range(args.repeat):
        start = time.perf_counter()
        limited = limit_weights(weights, config, symbols, buy, sell)
        passes.append(time.perf_counter() - start)
        start = time.perf_counter()
        reasons(limited, config, symbols)
        texts.append(time.perf_counter() - start)
    cells = int((limited.bound != 0).sum())
    print(f"| rows × symbols | limited cells | limit_weights | reasons |\n|---|---|---|---|\n"
          f"| {args.rows} × {args.symbols} | {cells} | {statistics.median(passes) * 1e3:.1f} ms "
          f"| {statistics.median(texts) * 1e3:.1f} ms |")


if __name__ == "__main__":
    main()
