"""Whole-market scale: a synthetic A-share market backtested with VQM and the full rules, size by size.

    python benchmarks/bench_market_scale.py [--sizes 500x5,1000x10,2500x20,5000x20] [--modes mmap,memory]
                                            [--repeat 3] [--walkforward] [--keep DIR] [--baseline DIR [--pairs N]]

Each size (stocks × years, ending 2025-12-31) is prepared in one process and backtested in another, fresh one
per mode, so each peak resident set is that phase's own. Timed apart:

1. imports (numpy, pandas, numba, vnpy's database layer, the project's engine and VQM): the fixed cost and the
   resident set after it;
2. generate (prepare process): :func:`vnpy_rotation.research.synthetic.generate` (prices, suspensions, limits,
   ex-dates) plus the quarterly reports and the index history (:mod:`vnpy_rotation.research.synthetic_fundamentals`);
3. load (prepare process): the loader's ``build_market_data`` (limit prices, split / dividend arrays, T+0, fees
   by date) and VQM's inputs (report panels, share basis, listing age, membership) by VQM's own functions;
   then store: the prepared market written as ``.npy`` files (:mod:`vnpy_rotation.research.synthetic_store`);
4. warm-up (backtest process): a 50-stock backtest (numba's cache load), reported apart; open: the stored
   market memory-mapped (``mmap``: a page becomes resident when the run reads it, and counts from then on) or
   read whole (``memory``);
5. the backtest, ``--repeat`` times (the minimum is reported): decide (``VqmStrategy.targets``), simulate
   (``engine.simulate``, ``BacktestConfig()`` defaults: lots, T+1, limits, suspension, corporate actions, costs,
   VQM's risk rules) and result frames (``RawRun.to_result``). Its peak resident set is measured from a
   high-water mark reset after the warm-up (``/proc/self/clear_refs``): the imports, the data the run holds or
   touches and everything the backtest allocates.

The kernel's order buffer holds 64 names a row; a plan that trades more runs the kernel twice ("passes").

``--walkforward``: VQM walk-forward (``research.walkforward.walk_forward``) on the largest size (memory-mapped),
grid ``top_n`` = 20, 50, rolling 4 train years and 4 test years from the second month, the last year a holdout,
then its look-ahead check: time and peak resident set.

``--baseline DIR``: the same sizes with another copy of the project as well (e.g. ``git archive`` of an older
commit unpacked in DIR), run as the child processes' ``PYTHONPATH``: each size is prepared and stored by each
side's own code, then the backtest processes alternate baseline, this tree, baseline, … (``--pairs`` of each per
mode); the table gives each side's minimum time and largest peak, and the ratios.

Ends with a markdown table and a least-squares fit of backtest time against cells (time per million cells).
Memory is printed in GB (10^9 bytes, the unit of the whole-market goal). Timings on a shared machine are
noisy: run it on a quiet one for figures to publish.
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
GB = 10 ** 9  # the resident-set figures are in decimal gigabytes (the goal's unit), not GiB


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


def imports() -> dict:
    started = time.perf_counter()
    import numba  # noqa: F401

    from vnpy_rotation.backtest.engine import simulate  # noqa: F401
    from vnpy_rotation.research.synthetic import generate  # noqa: F401
    from vnpy_rotation.strategies.vqm import VqmStrategy  # noqa: F401

    return {"import_s": time.perf_counter() - started, "fixed_rss": status("VmRSS")}


def prepare(stocks: int, years: int, folder: Path) -> dict:
    """Generate, load and store one size (a process of its own)."""
    out = imports()
    import numpy as np

    from vnpy_rotation.research.synthetic import SyntheticSpec, build, generate
    from vnpy_rotation.research.synthetic_fundamentals import draw_index, draw_reports, vqm_market
    from vnpy_rotation.research.synthetic_store import save_market

    def drawn(spec):
        synthetic = generate(spec)
        return synthetic, draw_reports(synthetic), draw_index(synthetic)

    def loaded(synthetic, reports, index):
        return vqm_market(build(synthetic), synthetic, reports, index)

    spec = SyntheticSpec(stocks=stocks, start=date(END.year - years + 1, 1, 1), end=END, seed=0)
    out["generate_s"], tables = timed(drawn, spec)
    out["load_s"], market = timed(loaded, *tables)
    out["days"], out["symbols"] = market.shape
    out["cells"] = market.shape[0] * market.shape[1]
    out["arrays_gb"] = (sum(getattr(market, f).nbytes for f in market.__dataclass_fields__
                            if isinstance(getattr(market, f), np.ndarray))
                        + sum(v.nbytes for v in market.extras.values())) / GB
    out["store_s"], _ = timed(save_market, market, folder)
    out["prepare_peak_rss"] = status("VmHWM")
    return out


def backtest(folder: Path, mode: str, repeat: int, walkforward: bool) -> dict:
    """Open a stored size and backtest it (a fresh process: its peak resident set is the backtest's)."""
    out = imports()
    import numpy as np

    from vnpy_rotation.backtest.config import BacktestConfig
    from vnpy_rotation.backtest.engine import simulate
    from vnpy_rotation.research.synthetic import SyntheticSpec, build, generate
    from vnpy_rotation.research.synthetic_fundamentals import draw_index, draw_reports, vqm_market
    from vnpy_rotation.research.synthetic_store import open_market
    from vnpy_rotation.strategies.vqm import VqmSettings, VqmStrategy

    config = BacktestConfig()

    def warm():  # numba's cache (or compilation) and the first calls, on a 50-stock market
        synthetic = generate(SyntheticSpec(stocks=50, start=date(END.year, 1, 1), end=END, seed=1))
        small = vqm_market(build(synthetic), synthetic, draw_reports(synthetic), draw_index(synthetic))
        plan = VqmStrategy(VqmSettings(symbols=list(small.symbols))).targets(small)
        simulate(small, plan, config).to_result()
    out["warmup_s"], _ = timed(warm)
    out["open_s"], market = timed(open_market, folder, mode == "mmap")
    out["peak_reset"] = reset_peak()
    out["rss_before_backtest"] = status("VmRSS")
    strategy = VqmStrategy(VqmSettings(symbols=list(market.symbols)))
    best: dict = {}
    for k in range(repeat):
        started = time.perf_counter()
        plan = strategy.targets(market)
        decided = time.perf_counter()
        run = simulate(market, plan, config)
        simulated = time.perf_counter()
        result = run.to_result()
        decide, sim, frames = decided - started, simulated - decided, time.perf_counter() - simulated
        if k == 0:  # the first run also faults in every page of the store it reads
            out["first_backtest_s"] = decide + sim + frames
        # Mapped file pages and allocated memory held at the end of the run (the peak has no such split).
        out["anon_after"], out["file_after"] = status("RssAnon"), status("RssFile")
        for name, value in (("decide_s", decide), ("simulate_s", sim), ("frames_s", frames),
                            ("backtest_s", decide + sim + frames)):
            best[name] = min(best.get(name, value), value)
        del plan, run, result
        gc.collect()
    out.update(best)
    out["backtest_peak_rss"] = status("VmHWM")
    plan = strategy.targets(market)
    run = simulate(market, plan, config)
    capacity = max(1024, 3 * len(plan.frame) * min(market.shape[1], 64))  # engine.simulate's first buffer
    out["orders"], out["fills"] = len(run.order_rows), len(run.fill_rows)
    out["passes"] = 1 if len(run.order_rows) <= capacity else 2
    out["names_per_row"] = int(np.max(np.count_nonzero(np.nan_to_num(plan.frame.to_numpy()) > 0, axis=1), initial=0))
    del plan, run
    if walkforward:
        out.update(walk(market, config))
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
    lines = ["| stocks × years | code | mode | cells (M) | generate s | load s | decide s | simulate s | frames s | "
             "backtest s | first run s | s / M cells | passes | data GB | RSS before run GB | peak RSS run GB |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cells = r["cells"] / 1e6
        lines.append(f"| {r['stocks']} × {r['years']} | {r['code']} | {r['mode']} | {cells:.1f} | {r['generate_s']:.1f} | "
                     f"{r['load_s']:.1f} | {r['decide_s']:.3f} | {r['simulate_s']:.3f} | {r['frames_s']:.3f} | "
                     f"{r['backtest_s']:.2f} | {r['first_backtest_s']:.2f} | {r['backtest_s'] / cells:.3f} | "
                     f"{r['passes']} | {r['arrays_gb']:.2f} | {r['rss_before_backtest'] / GB:.2f} | "
                     f"{r['backtest_peak_rss'] / GB:.2f} |")
    return "\n".join(lines)


def merged(runs: list[dict]) -> dict:
    """One side's pairs of one size and mode: the minimum of each time, the largest of each resident set."""
    out = dict(runs[0])
    for key in runs[0]:
        if key.endswith("_s") and key not in ("import_s", "generate_s", "load_s", "store_s", "prepare_import_s"):
            out[key] = min(r[key] for r in runs)
        elif key.endswith("rss") or key.endswith("_after"):
            out[key] = max(r[key] for r in runs)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="500x5,1000x10,2500x20,5000x20")
    parser.add_argument("--modes", default="mmap,memory", help="mmap, memory or both (comma-separated)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--walkforward", action="store_true", help="also a VQM walk-forward on the largest size")
    parser.add_argument("--keep", help="keep the largest prepared market in this folder")
    parser.add_argument("--baseline", help="a copy of the project to run alongside, e.g. an older commit's archive")
    parser.add_argument("--pairs", type=int, default=1, help="backtest processes per side, size and mode")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child.split(":")
        if kind == "prepare":
            result = prepare(int(rest[0]), int(rest[1]), Path(rest[2]))
        else:
            result = backtest(Path(rest[0]), rest[1], args.repeat, rest[2] == "1")
        print("RESULT " + json.dumps(result, default=str))
        return 0
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    modes = args.modes.split(",")
    codes = {"this": ROOT, **({"baseline": Path(args.baseline).resolve()} if args.baseline else {})}
    rows: list[dict] = []

    def call(code: str, *child: str) -> dict | None:
        command = [sys.executable, __file__, "--child", ":".join(child), "--repeat", str(args.repeat)]
        env = {**os.environ, "PYTHONPATH": str(codes[code])}
        done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=codes[code])
        line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if done.returncode or line is None:
            print(done.stdout[-2000:], done.stderr[-4000:], file=sys.stderr)
            return None
        return json.loads(line[len("RESULT "):])

    for k, (stocks, years) in enumerate(sizes):
        last = k == len(sizes) - 1
        folders, prepared = {}, {}
        for code in sorted(codes, reverse=True):  # (this, then baseline: each side stores with its own code)
            keep = args.keep and last and code == "this"
            folders[code] = Path(args.keep) if keep else Path(tempfile.mkdtemp(prefix="market_scale_"))
            prepared[code] = call(code, "prepare", str(stocks), str(years), str(folders[code]))
            if prepared[code] is None:
                return 1
        for mode in modes:
            runs: dict[str, list[dict]] = {code: [] for code in codes}
            for pair in range(args.pairs):
                for code in sorted(codes):  # baseline, this, baseline, this, …
                    wf = "1" if args.walkforward and last and mode == modes[0] and pair == 0 else "0"
                    ran = call(code, "run", str(folders[code]), mode, wf)
                    if ran is None:
                        return 1
                    runs[code].append(ran)
            for code in sorted(codes):
                row = {**prepared[code], **merged(runs[code]), "stocks": stocks, "years": years, "mode": mode,
                       "code": code, "prepare_import_s": prepared[code]["import_s"]}
                rows.append(row)
                print(json.dumps(row, default=str), flush=True)
        for code, folder in folders.items():
            if not (args.keep and last and code == "this"):
                for path in sorted(folder.rglob("*"), reverse=True):
                    path.unlink() if path.is_file() else path.rmdir()
                folder.rmdir()
    print()
    print(f"fixed cost of a process that imported numpy, pandas, numba and the project: "
          f"{rows[0]['fixed_rss'] / 2**20:.0f} MiB resident, {rows[0]['import_s']:.1f} s; numba warm-up "
          f"(a 50-stock backtest) {rows[0]['warmup_s']:.1f} s")
    if args.baseline:
        print(f"baseline: the code in {codes['baseline']}, this: {ROOT}; each side prepared and stored its own "
              f"market (same spec, same seed), backtest processes interleaved, {args.pairs} per side, size and mode")
    for code in sorted(codes):
        for mode in modes:
            mine = [r for r in rows if r["mode"] == mode and r["code"] == code]
            a, b = fit(mine)
            print(f"{code} {mode}: backtest s ≈ {a:.3f} + {b:.3f} × cells (M)")
    print()
    print(table(rows))
    if args.baseline:
        print()
        print("| stocks × years | mode | backtest s baseline → this | peak RSS GB baseline → this | ratio (this / baseline) time, memory |")
        print("|---|---|---|---|---|")
        for r in (r for r in rows if r["code"] == "this"):
            b = next(o for o in rows if o["code"] == "baseline" and (o["stocks"], o["years"], o["mode"]) ==
                     (r["stocks"], r["years"], r["mode"]))
            print(f"| {r['stocks']} × {r['years']} | {r['mode']} | {b['backtest_s']:.2f} → {r['backtest_s']:.2f} | "
                  f"{b['backtest_peak_rss'] / GB:.2f} → {r['backtest_peak_rss'] / GB:.2f} | "
                  f"{r['backtest_s'] / b['backtest_s']:.2f}, {r['backtest_peak_rss'] / b['backtest_peak_rss']:.2f} |")
    for r in rows:
        print(f"{r['stocks']} × {r['years']} {r['code']} {r['mode']}: at the end of a run {r['anon_after'] / GB:.2f} GB "
              f"allocated, {r['file_after'] / GB:.2f} GB of mapped file pages resident")
    wf = [r for r in rows if "wf_s" in r]
    for r in wf:
        print(f"\nVQM walk-forward on {r['stocks']} × {r['years']} ({r['code']}, {r['mode']}): {r['wf_windows']} windows × "
              f"{r['wf_combos']} combinations + holdout + look-ahead check: {r['wf_s']:.1f} s, peak RSS "
              f"{r['wf_peak_rss'] / GB:.2f} GB; holdout settings {r['wf_holdout']}; look-ahead "
              f"{'ok' if r['wf_lookahead_ok'] else 'FAILED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
