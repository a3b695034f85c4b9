"""Whole-market scale: a synthetic A-share market backtested with VQM and the full rules, size by size.

    python benchmarks/bench_market_scale.py [--sizes 500x5,1000x10,2500x20,5000x20] [--modes mmap,memory]
                                            [--repeat 3] [--walkforward] [--keep DIR]

Each size (stocks × years, ending 2025-12-31) runs in a fresh process, so every peak resident set is that size's
own. In it, one after the other and each timed apart:

1. imports (numpy, pandas, numba, the project's engine and VQM): the fixed cost, resident set after it;
2. warm-up: a 50-stock backtest (numba's cache load or compilation), reported apart;
3. generate: :func:`vnpy_rotation.research.synthetic.generate` (prices, suspensions, limits, ex-dates) plus the
   quarterly reports and the index history (:mod:`vnpy_rotation.research.synthetic_fundamentals`);
4. load: the loader's ``build_market_data`` (limit prices, split / dividend arrays, T+0, fees by date) and
   VQM's inputs (report panels, share basis, listing age, membership) by VQM's own functions;
5. store / open: the prepared market written as ``.npy`` files and opened again, memory-mapped (``mmap``: pages
   become resident when the run reads them) or read whole (``memory``);
6. the backtest, ``--repeat`` times (the minimum is reported): decide (``VqmStrategy.targets``), simulate
   (``engine.simulate``, ``BacktestConfig()`` defaults: lots, T+1, limits, suspension, corporate actions, costs,
   VQM's risk rules) and result frames (``RawRun.to_result``). The peak resident set of this phase is measured
   from a reset high-water mark (``/proc/self/clear_refs``), so it counts the data the run holds and touches
   plus everything the backtest allocates, not the generation before it.

The kernel's order buffer holds 64 names a row; a plan that trades more runs the kernel twice ("passes").

``--walkforward``: VQM walk-forward (``research.walkforward.walk_forward``) on the largest size (memory-mapped),
grid ``top_n`` = 20, 50, rolling 4 train years and 4 test years from the second month, the last year a holdout,
then its look-ahead check: time and peak resident set. (Each train sweep and each evaluation copies the market
up to its span's end: ``MarketData.window`` selects days with a boolean mask.)

Ends with a markdown table and a least-squares fit of backtest time against cells (time per million cells).
Timings on a shared machine are noisy: run it on a quiet one for figures to publish.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
END = date(2025, 12, 31)
GB = 1024 ** 3


def status(field: str) -> float:
    """``VmRSS`` / ``VmHWM`` of this process, bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return float(line.split()[1]) * 1024
    return float("nan")


def reset_peak() -> bool:
    """Reset the high-water mark of the resident set (Linux ≥ 4.0); False where not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def timed(func, *args):
    started = time.perf_counter()
    value = func(*args)
    return time.perf_counter() - started, value


def child(stocks: int, years: int, mode: str, repeat: int, walkforward: bool, keep: str | None) -> dict:
    """One size, in this (fresh) process."""
    started = time.perf_counter()
    import numpy as np

    from vnpy_rotation.backtest import kernel
    from vnpy_rotation.backtest.config import BacktestConfig
    from vnpy_rotation.backtest.engine import simulate
    from vnpy_rotation.research.synthetic import SyntheticSpec, build, generate
    from vnpy_rotation.research.synthetic_fundamentals import draw_index, draw_reports, vqm_market
    from vnpy_rotation.research.synthetic_store import open_market, save_market
    from vnpy_rotation.strategies.vqm import VqmSettings, VqmStrategy

    out: dict = {"stocks": stocks, "years": years, "mode": mode, "import_s": time.perf_counter() - started,
                 "fixed_rss": status("VmRSS")}
    config = BacktestConfig()

    def prepared(spec):
        synthetic = generate(spec)
        reports, index = draw_reports(synthetic), draw_index(synthetic)
        return synthetic, reports, index

    def loaded(synthetic, reports, index):
        market = build(synthetic)
        return vqm_market(market, synthetic, reports, index)

    small = SyntheticSpec(stocks=50, start=date(2024, 1, 1), end=END, seed=1)
    def warm():
        m = loaded(*prepared(small))
        simulate(m, VqmStrategy(VqmSettings(symbols=list(m.symbols))).targets(m), config).to_result()
    out["warmup_s"], _ = timed(warm)

    spec = SyntheticSpec(stocks=stocks, start=date(END.year - years + 1, 1, 1), end=END, seed=0)
    out["generate_s"], drawn = timed(prepared, spec)
    out["load_s"], market = timed(loaded, *drawn)
    out["days"], out["symbols"] = market.shape
    out["cells"] = market.shape[0] * market.shape[1]
    out["arrays_gb"] = (sum(getattr(market, f).nbytes for f in market.__dataclass_fields__
                            if isinstance(getattr(market, f), np.ndarray))
                        + sum(v.nbytes for v in market.extras.values())) / GB
    out["generate_load_peak_rss"] = status("VmHWM")
    folder = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="market_scale_"))
    out["store_s"], _ = timed(lambda: save_market(market, folder))
    del market, drawn
    gc.collect()
    out["open_s"], market = timed(lambda: open_market(folder, mmap=mode == "mmap"))
    out["peak_reset"] = reset_peak()
    out["rss_before_backtest"] = status("VmRSS")
    strategy = VqmStrategy(VqmSettings(symbols=list(market.symbols)))
    best: dict = {}
    for _ in range(repeat):
        started = time.perf_counter()
        plan = strategy.targets(market)
        decided = time.perf_counter()
        run = simulate(market, plan, config)
        simulated = time.perf_counter()
        result = run.to_result()
        decide, sim, frames = decided - started, simulated - decided, time.perf_counter() - simulated
        for name, value in (("decide_s", decide), ("simulate_s", sim), ("frames_s", frames),
                            ("backtest_s", decide + sim + frames)):
            best[name] = min(best.get(name, value), value)
        del plan, run, result
        gc.collect()
    out.update(best)
    out["backtest_peak_rss"] = status("VmHWM")
    plan = strategy.targets(market)
    run = simulate(market, plan, config)
    per_row = int(np.max(np.count_nonzero(np.nan_to_num(plan.frame.to_numpy()) > 0, axis=1), initial=0))
    capacity = max(1024, 3 * len(plan.frame) * min(market.shape[1], 64))
    out["orders"], out["fills"] = len(run.order_rows), len(run.fill_rows)
    out["passes"] = 1 if len(run.order_rows) <= capacity else 2
    out["names_per_row"] = per_row
    out["kernel_signatures"] = len(kernel.run_days.signatures)
    del plan, run
    if walkforward:
        out.update(walk(market, config))
    if not keep:
        for path in sorted(folder.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        folder.rmdir()
    return out


def walk(market, config) -> dict:
    import pandas as pd

    from vnpy_rotation.research.walkforward import walk_forward
    from vnpy_rotation.research.wf_config import make_spec

    reset_peak()
    start = (market.days[0] + pd.Timedelta(days=31)).date()  # a month of warm-up history
    spec = make_spec("vqm", {"symbols": list(market.symbols)}, config, start=start, end=END, train_years=4,
                     test_years=4, holdout_years=1, grid={"top_n": [20, 50]})
    seconds, result = timed(lambda: walk_forward(market, spec))
    return {"wf_s": seconds, "wf_windows": len(result.windows), "wf_combos": len(spec.combos),
            "wf_peak_rss": status("VmHWM"), "wf_holdout": result.holdout_params,
            "wf_lookahead_ok": all(c.ok for c in result.lookahead)}


def fit(rows: list[dict]) -> tuple[float, float]:
    """Least squares ``backtest_s = a + b × cells``: (a seconds, b seconds per million cells)."""
    import numpy as np

    x = np.array([r["cells"] for r in rows], dtype=float) / 1e6
    y = np.array([r["backtest_s"] for r in rows])
    if len(rows) < 2:
        return float("nan"), float(y[0] / x[0]) if len(rows) else float("nan")
    b, a = np.polyfit(x, y, 1)
    return float(a), float(b)


def table(rows: list[dict]) -> str:
    lines = ["| stocks × years | mode | cells (M) | generate s | load s | decide s | simulate s | frames s | "
             "backtest s | s / M cells | passes | data GB | RSS before run GB | peak RSS run GB |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cells = r["cells"] / 1e6
        lines.append(f"| {r['stocks']} × {r['years']} | {r['mode']} | {cells:.1f} | {r['generate_s']:.1f} | "
                     f"{r['load_s']:.1f} | {r['decide_s']:.3f} | {r['simulate_s']:.3f} | {r['frames_s']:.3f} | "
                     f"{r['backtest_s']:.2f} | {r['backtest_s'] / cells:.3f} | {r['passes']} | "
                     f"{r['arrays_gb']:.2f} | {r['rss_before_backtest'] / GB:.2f} | {r['backtest_peak_rss'] / GB:.2f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="500x5,1000x10,2500x20,5000x20")
    parser.add_argument("--modes", default="mmap,memory", help="mmap, memory or both (comma-separated)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--walkforward", action="store_true", help="also a VQM walk-forward on the largest size")
    parser.add_argument("--keep", help="keep the largest prepared market in this folder")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        stocks, years, mode, walkforward = args.child.split(":")
        result = child(int(stocks), int(years), mode, args.repeat, walkforward == "1", args.keep)
        print("RESULT " + json.dumps(result, default=str))
        return 0
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    modes = args.modes.split(",")
    rows, env = [], {**os.environ, "PYTHONPATH": str(ROOT)}
    for k, (stocks, years) in enumerate(sizes):
        for mode in modes:
            last = k == len(sizes) - 1
            wf = "1" if args.walkforward and last and mode == modes[0] else "0"
            command = [sys.executable, __file__, "--child", f"{stocks}:{years}:{mode}:{wf}", "--repeat", str(args.repeat)]
            if args.keep and last and mode == modes[0]:
                command += ["--keep", args.keep]
            done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
            line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")), None)
            if done.returncode or line is None:
                print(done.stdout[-2000:], done.stderr[-4000:], file=sys.stderr)
                return 1
            row = json.loads(line[len("RESULT "):])
            rows.append(row)
            print(json.dumps(row, default=str), flush=True)
    print()
    print(f"fixed cost of a process that imported numpy, pandas, numba and the project: "
          f"{rows[0]['fixed_rss'] / GB * 1024:.0f} MB resident, {rows[0]['import_s']:.1f} s; numba warm-up "
          f"(a 50-stock backtest) {rows[0]['warmup_s']:.1f} s")
    for mode in modes:
        mine = [r for r in rows if r["mode"] == mode]
        a, b = fit(mine)
        print(f"{mode}: backtest s ≈ {a:.3f} + {b:.3f} × cells (M)")
    print()
    print(table(rows))
    wf = [r for r in rows if "wf_s" in r]
    for r in wf:
        print(f"\nVQM walk-forward on {r['stocks']} × {r['years']} ({r['mode']}): {r['wf_windows']} windows × "
              f"{r['wf_combos']} combinations + holdout + look-ahead check: {r['wf_s']:.1f} s, peak RSS "
              f"{r['wf_peak_rss'] / GB:.2f} GB; holdout settings {r['wf_holdout']}; look-ahead "
              f"{'ok' if r['wf_lookahead_ok'] else 'FAILED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
