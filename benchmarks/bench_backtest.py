"""Our backtester against vnpy_portfoliostrategy's: same answer, speed, peak memory, parameter sweep.

    python benchmarks/bench_backtest.py [--real ../shared/data/real] [--home DIR] [--skip-stocks]
                                        [--repeat N] [--skip-memory] [--skip-sweep] [--profile] [--cold]

Imports into the embedded SQLite database under ``--home`` (a temporary folder by default; an
already-filled home is reused):

- ``etf20``: 20 ETFs with unadjusted daily bars, 2015-10-08 … 2024-09-30 (9 years; TDX exports end on
  2024-09-30). The 20 earliest-listed unadjusted funds of ``etf_daily_unadjusted_tdx`` /
  ``etf_daily_unadjusted_em``: 9 trade from the start (510050 510880 159915 510300 510500 511010 159928
  512010 159941), the others join at listing (159949 512660 512880 2016, 513050 512800 2017, 512980
  2018, 512690 515880 2019, 159995 515030 159819 2020) -- both engines see the same NaN cells.
- ``stocks``: the 265 CSI 300 stocks of ``stocks_daily_unadjusted_baostock``, 2014-01-02 … 2023-12-29
  (those with bars in the span).

For each universe, in one run:

1. compatibility: our engine in ``BacktestConfig.vnpy_compatible`` mode (raw-close momentum, share
   sizing) against the same rotation in vnpy's ``BacktestingEngine`` (``vnpy_peer.py``): fills and daily
   equity compared, largest differences printed;
2. one backtest, like for like, in interleaved pairs (``fair.py``: vnpy, ours, ours, vnpy, …; the first
   call of each side untimed and reported apart -- numba's cache load, vnpy's lazy imports): vnpy =
   ``run_backtesting`` + ``calculate_result`` on loaded data; ours = ``strategy.targets`` + ``simulate``
   + ``to_result`` (every result frame), with the full A-share rules (defaults, weight sizing, adjusted
   momentum) and in vnpy-compatible mode; min and median of each side and their ratio, what differs
   printed beside each figure; each pair in its own interleaving. Our targets, kernel and ``to_result`` are
   also timed apart, interleaved among themselves.
   Data preparation (the database into each side's structures: vnpy ``load_data`` with its in-process
   cache cleared, ours ``load_panels`` + ``build_market_data``) is its own interleaved figure;
3. peak memory: each side loads and runs once in its own subprocess (``--child``), after a tiny
   warm-up run that loads its code; peak RSS (``VmHWM``, which is ``ru_maxrss`` of the child alone --
   see :func:`rss_mb`) above the warm reading is what the data and the run cost (see :func:`child`).

Then the sweep: 200 combinations (lookback × top_n × rebalance) on the ETF panel, serial and with a
``ProcessPoolExecutor(2)``. A markdown table of every figure closes the output.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(ROOT))  # measure this checkout (code_version describes it), not another installed copy
from bench_home import code_version, run_in_home  # noqa: E402
from fair import interleaved, markdown, ratio_line  # noqa: E402

ETF_TDX = ["510050", "510880", "510300", "159928", "512010", "159941", "159949", "512660", "512880",
           "513050", "512800", "512980", "512690", "515880", "159995", "515030", "159819"]
ETF_EM = ["159915", "510500", "511010"]
RATE = 0.0003  # vnpy's one symmetric commission rate, used by both sides in the compatibility run
TARGETS = {"speed": 100.0, "memory": 5.0, "sweep": 200.0}
TABLE_HEADER = ("figure", "universe", "vnpy", "ours", "ratio", "what differs")


@dataclass
class Universe:
    name: str
    start: date
    end: date
    capital: float
    lookback: int
    top_n: int
    rebalance: str = "week_end"
    symbols: list[str] = field(default_factory=list)

    def settings(self) -> dict:
        """The strategy parameters both engines share (vnpy's peer takes these names as they are)."""
        return dict(lookback=self.lookback, top_n=self.top_n, rebalance=self.rebalance, absolute=True,
                    invested=0.99, notional=self.capital)


def universes(skip_stocks: bool) -> list[Universe]:
    found = [Universe("etf20", date(2015, 10, 8), date(2024, 9, 30), 1_000_000.0, 20, 2)]
    if not skip_stocks:
        found.append(Universe("stocks", date(2014, 1, 2), date(2023, 12, 29), 10_000_000.0, 20, 10))
    return found


def rss_mb() -> float:
    """Peak resident memory of this process (MB).

    ``VmHWM`` where /proc exists: on Linux ``ru_maxrss`` survives fork + exec, so a child started by a
    big parent reports the parent's peak; ``VmHWM`` belongs to the child's own address space.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024  # bytes on macOS, kilobytes on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


# --------------------------------------------------------------------------------------------- data

def import_data(real: Path, store, skip_stocks: bool) -> None:
    from vnpy_rotation.data.importer import import_paths

    files = ([real / "etf_daily_unadjusted_tdx" / f"{c}.csv" for c in ETF_TDX]
             + [real / "etf_daily_unadjusted_em" / f"{c}.csv" for c in ETF_EM])
    if not skip_stocks:
        files.append(real / "stocks_daily_unadjusted_baostock")
    started = time.perf_counter()
    result = import_paths(files, store, progress=False)
    if not result.ok:
        raise SystemExit(f"import failed: {result.failures[:3]}")
    print(f"import: {len(result.reports)} files checked/imported in {time.perf_counter() - started:.1f}s "
          "(files already in --home are skipped)")


def resolve_symbols(universe: Universe, store) -> None:
    """The universe's vt_symbols that have at least one bar in its span (in a stable order)."""
    from vnpy_rotation.data.panels import load_panels

    if universe.name == "etf20":
        codes = ETF_TDX + ETF_EM
        candidates = [f"{c}.{'SZSE' if c.startswith('15') else 'SSE'}" for c in codes]
    else:
        candidates = sorted(f"{code}.{exchange}" for code, exchange in store.bar_signatures()
                            if code[0] in "036")  # stocks (funds start with 1 or 5)
    panels = load_panels(candidates, universe.start, universe.end, store=store)
    universe.symbols = [s for s in candidates if panels.close[s].notna().any()]


def load_ours(universe: Universe, store=None):
    """``load_market``'s two steps over exactly the span vnpy loads (``load_market`` would add 15 days
    before the start, and cutting them off with ``window`` copies every array)."""
    from vnpy_rotation.data.market_data import build_market_data
    from vnpy_rotation.data.panels import load_panels

    return build_market_data(load_panels(universe.symbols, universe.start, universe.end, store=store))


def full_rules_strategy(universe: Universe):
    from vnpy_rotation.strategies import create_strategy

    s = universe.settings()
    return create_strategy("momentum_topn", {"lookback": s["lookback"], "top_n": s["top_n"],
                                             "rebalance": s["rebalance"], "absolute": True,
                                             "symbols": universe.symbols})


def full_rules_config(universe: Universe):
    from vnpy_rotation.backtest.config import BacktestConfig

    return BacktestConfig(capital=universe.capital)


def ours_full(md, universe: Universe):
    strategy = full_rules_strategy(universe)
    from vnpy_rotation.backtest.engine import simulate

    return simulate(md, strategy.targets(md), full_rules_config(universe))


# ----------------------------------------------------------------------------------- compatibility

def compare(md, ours, theirs) -> dict:
    import numpy as np

    our_trades = sorted((t[0].date(), t[1], t[2], t[3], t[4]) for t in ours.trades)
    vnpy_trades = sorted(theirs.trades)
    same_days = [d.date() for d in md.days] == theirs.days
    mismatched, price_diff = 0, 0.0
    if len(our_trades) == len(vnpy_trades):
        for a, b in zip(our_trades, vnpy_trades):
            if (a[0], a[1], a[2], a[4]) != (b[0], b[1], b[2], b[4]):
                mismatched += 1
            else:
                price_diff = max(price_diff, abs(a[3] - b[3]))
    else:
        mismatched = len(set(our_trades) ^ set(vnpy_trades))
    equity_diff = float(np.abs(ours.equity() - np.asarray(theirs.equity)).max()) if same_days else float("inf")
    first = None
    if mismatched:
        only_ours = sorted(set(our_trades) - set(vnpy_trades))
        only_vnpy = sorted(set(vnpy_trades) - set(our_trades))
        first = (only_ours[:1], only_vnpy[:1])
    refused = sum(1 for o in ours.orders if o[8])
    ok = same_days and not mismatched and price_diff <= 1e-9 and equity_diff < 0.005
    return {"ok": ok, "trades": len(vnpy_trades), "our_trades": len(our_trades), "mismatched": mismatched,
            "price_diff": price_diff, "equity_diff": equity_diff, "same_days": same_days,
            "refused": refused, "first_mismatch": first}


def compat_run(md, universe: Universe, patched: bool = False):
    """Ours in vnpy mode. ``patched``: targets NaN (no order) where the symbol has no bar at the decision."""
    import numpy as np

    from vnpy_rotation.backtest.config import BacktestConfig
    from vnpy_rotation.backtest.engine import TargetPlan, simulate
    from vnpy_rotation.strategies import create_strategy

    strategy = create_strategy("momentum_topn", {**universe.settings(), "adjusted": False, "sizing": "shares",
                                                 "symbols": universe.symbols})
    plan = strategy.targets(md)
    if patched:
        rows = md.days.get_indexer(plan.frame.index)
        frame = plan.frame.where(np.isfinite(md.close[rows]))
        plan = TargetPlan(frame, kind=plan.kind, reason=plan.reason)
    return simulate(md, plan, BacktestConfig.vnpy_compatible(universe.capital, RATE))


# ------------------------------------------------------------------------------------------ timing

def best_of(repeat: int, func):
    times, value = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        value = func()
        times.append(time.perf_counter() - started)
    return min(times), value


def profile_ours(md, universe: Universe) -> None:
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(3):
        ours_full(md, universe)
    profiler.disable()
    print(f"--- cProfile: 3 × (targets + simulate), {universe.name}, by own time")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(12)


# ------------------------------------------------------------------------------------------ timing

FULL_DIFFERS = ("vnpy: run_backtesting + calculate_result, no A-share rules; ours: targets + simulate + to_result "
                "(trades, orders, positions, equity, values, P&L frames) with lots, T+1, limits, suspensions, "
                "fees with minimums and stamp duty, participation cap")
COMPAT_DIFFERS = ("same rules as vnpy (BacktestConfig.vnpy_compatible, raw-close momentum, share sizing); "
                  "ours still builds all its frames")
LOAD_DIFFERS = ("vnpy: load_data (BarData per symbol and day, its in-process cache cleared each round); "
                "ours: load_panels + build_market_data (day × symbol arrays with the rule arrays)")


def time_pair(md, universe: Universe, peer, settings: dict, rounds: int) -> dict:
    """vnpy's run and result frames against ours, each comparison in its own two-sided interleaving (see
    ``fair.py``: a side timed among several always follows the same neighbour); our targets, kernel and frames
    apart, interleaved among themselves. ``vnpy_compat``: vnpy's side of the compatible-rules pair."""
    from vnpy_rotation.backtest.engine import simulate

    strategy = full_rules_strategy(universe)
    config = full_rules_config(universe)
    plan = strategy.targets(md)
    raw = simulate(md, plan, config)
    timed = interleaved({"vnpy": lambda: peer.run(settings),
                         "ours": lambda: _with_frames(simulate(md, strategy.targets(md), config))}, rounds)
    compat = interleaved({"vnpy": lambda: peer.run(settings),
                          "ours_compat": lambda: _with_frames(compat_run(md, universe))}, rounds)
    timed.update(ours_compat=compat["ours_compat"], vnpy_compat=compat["vnpy"])
    timed.update(interleaved({"targets": lambda: strategy.targets(md), "kernel": lambda: simulate(md, plan, config),
                              "frames": raw.to_result}, rounds))
    return timed


def cold_parts(md, universe: Universe, rounds: int) -> dict[str, tuple[float, float]]:
    """Our full call and its parts timed warm (right after themselves) and cold (right after a 64 MB read and
    100 000 dict lookups, which evict the CPU caches as vnpy's run does in the interleaved pairs): the median of
    each, in seconds. Says where the cold-cache penalty of the one-backtest median falls."""
    import numpy as np

    from vnpy_rotation.backtest.engine import simulate

    strategy, config = full_rules_strategy(universe), full_rules_config(universe)
    plan = strategy.targets(md)
    raw = simulate(md, plan, config)
    parts = {"full": lambda: simulate(md, strategy.targets(md), config).to_result(),
             "targets": lambda: strategy.targets(md), "simulate": lambda: simulate(md, plan, config),
             "frames": raw.to_result}
    junk = np.ones(8 * 2**20)
    objects = [{"a": i, "b": str(i)} for i in range(300_000)]

    def evict() -> None:
        junk.sum()
        for item in objects[::3]:
            item["a"]

    times: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in parts}
    for _ in range(rounds):
        for name, call in parts.items():
            call()
            start = time.perf_counter()
            call()
            times[name][0].append(time.perf_counter() - start)
            evict()
            start = time.perf_counter()
            call()
            times[name][1].append(time.perf_counter() - start)
    return {name: (float(np.median(warm)), float(np.median(cold))) for name, (warm, cold) in times.items()}


def _with_frames(raw):
    raw.to_result()
    return raw


def _pair_rows(figure: str, universe: str, vnpy, ours, differs: str) -> list[tuple[str, ...]]:
    """Table rows of one interleaved pair: wall time, then CPU time (steadier on a loaded machine)."""
    return [(figure, universe, f"{vnpy.best * 1e3:.0f} ms", f"{ours.best * 1e3:.1f} ms",
             f"{vnpy.best / ours.best:.0f}× (median {vnpy.median / ours.median:.0f}×)", differs),
            ("… the same, CPU time", universe, f"{vnpy.cpu_best * 1e3:.0f} ms", f"{ours.cpu_best * 1e3:.1f} ms",
             f"{vnpy.cpu_best / ours.cpu_best:.0f}× (median {vnpy.cpu_median / ours.cpu_median:.0f}×)",
             "this process's CPU seconds during each call, min over the rounds")]


def time_loads(universe: Universe, store, peer, rounds: int) -> dict:
    """Data preparation, interleaved: vnpy's load_data (its per-process bar cache cleared) against ours."""
    from vnpy_portfoliostrategy import backtesting

    def vnpy_load() -> None:
        backtesting.load_bar_data.cache_clear()
        peer.load()

    return interleaved({"vnpy": vnpy_load, "ours": lambda: load_ours(universe, store)}, rounds)


# ------------------------------------------------------------------------------------------ memory

def child(args) -> None:
    """Load and run one backtest of ``args.child`` in this fresh process; print peak RSS as JSON.

    Each side imports only what it needs: ours the project (which reads vnpy's database through
    vnpy.trader.database), vnpy its backtesting engine and the peer strategy. Three readings: after the
    imports; after a tiny warm-up run (2 symbols, 3 months), when each side's code is loaded -- for us
    that includes numba's compiled kernel and LLVM, for vnpy the lazily imported parts; and the peak
    of the real run. Peak minus the warm reading is the memory the data and the run cost.
    """
    from vnpy_rotation.runtime import settle_runtime

    settle_runtime(args.home)
    spec = json.loads(Path(args.universe).read_text(encoding="utf-8"))
    universe = Universe(spec["name"], date.fromisoformat(spec["start"]), date.fromisoformat(spec["end"]),
                        spec["capital"], spec["lookback"], spec["top_n"], spec["rebalance"], spec["symbols"])
    tiny = Universe("warm-up", date(universe.end.year, 7, 1), universe.end, universe.capital, universe.lookback,
                    1, universe.rebalance, universe.symbols[:2])
    if args.child == "ours":
        from vnpy_rotation.backtest.engine import simulate  # noqa: F401
        from vnpy_rotation.data.market_data import build_market_data  # noqa: F401
        from vnpy_rotation.strategies import create_strategy  # noqa: F401

        def run(u: Universe) -> None:
            ours_full(load_ours(u), u).to_result()
    else:
        import vnpy_peer
        import vnpy_portfoliostrategy.backtesting  # noqa: F401

        def run(u: Universe) -> None:
            ticks = {s: vnpy_peer.default_pricetick(s) for s in u.symbols}
            peer = vnpy_peer.VnpyPeer(u.symbols, u.start, u.end, u.capital, RATE, ticks)
            peer.load()
            peer.run(u.settings())
    imported = rss_mb()
    run(tiny)
    warm = rss_mb()
    started = time.perf_counter()
    run(universe)
    print(json.dumps({"peak_mb": rss_mb(), "imported_mb": imported, "warm_mb": warm,
                      "seconds": time.perf_counter() - started}))


def measure_memory(home: Path, universe: Universe, side: str) -> dict:
    spec = home / f"universe_{universe.name}.json"
    spec.write_text(json.dumps({"name": universe.name, "start": universe.start.isoformat(),
                                "end": universe.end.isoformat(), "capital": universe.capital,
                                "lookback": universe.lookback, "top_n": universe.top_n,
                                "rebalance": universe.rebalance, "symbols": universe.symbols}), encoding="utf-8")
    done = subprocess.run([sys.executable, __file__, "--child", side, "--universe", str(spec),
                           "--home", str(home)], capture_output=True, text=True, cwd=home, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"child {side} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------- sweep

def run_sweep(md, universe: Universe, repeat: int) -> dict:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from vnpy_rotation.backtest.sweep import grid, sweep

    combos = grid(lookback=range(5, 105, 5), top_n=[1, 2, 3, 4, 5], rebalance=["week_end", "month_end"])
    config = full_rules_config(universe)
    base = {"symbols": universe.symbols}
    serial, frame = best_of(max(1, min(repeat, 2)), lambda: sweep(md, "momentum_topn", combos, config, base))
    assert len(frame) == len(combos)
    # fork: the workers inherit vnpy's settled runtime folder (a spawned worker would import vnpy afresh;
    # the cwd is the bench home, so it would still find ./.vntrader rather than the user's ~/.vntrader).
    context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    started = time.perf_counter()
    with ProcessPoolExecutor(2, mp_context=context) as pool:
        list(pool.map(abs, [1, 2]))  # start both workers before timing
        startup = time.perf_counter() - started
        parallel, frame2 = best_of(max(1, min(repeat, 2)),
                                   lambda: sweep(md, "momentum_topn", combos, config, base, executor=pool))
    assert frame2.equals(frame), "parallel sweep must give the serial result"
    return {"combos": len(combos), "serial_s": serial, "parallel_s": parallel, "pool_startup_s": startup,
            "serial_per_core": len(combos) / serial, "parallel_per_core": len(combos) / parallel / 2,
            "best": frame.sort_values("sharpe", ascending=False).head(3)}


# -------------------------------------------------------------------------------------------- main

def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--real", type=Path, default=ROOT.parent / "shared" / "data" / "real")
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--skip-stocks", action="store_true")
    parser.add_argument("--repeat", type=int, default=7, help="interleaved timed rounds per side")
    parser.add_argument("--skip-memory", action="store_true", help="no peak-memory subprocesses")
    parser.add_argument("--skip-sweep", action="store_true", help="no parameter sweep")
    parser.add_argument("--profile", action="store_true", help="cProfile our backtest on each universe")
    parser.add_argument("--cold", action="store_true",
                        help="also time our call and its parts warm and right after evicting the CPU caches")
    parser.add_argument("--child", choices=["ours", "vnpy"], help=argparse.SUPPRESS)
    parser.add_argument("--universe", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    real = args.real.resolve()  # before run_all moves into the home: a relative path means the caller's
    run_in_home(args.home, "bench_backtest_", lambda home: run_all(args, home, real))


def run_all(args, home: Path, real: Path) -> None:
    print(f"home: {home}; code: {code_version()}; {os.cpu_count()} CPUs")
    import numpy as np
    import vnpy_peer

    from vnpy_rotation.data.store import BarStore

    store = BarStore()
    import_data(real, store, args.skip_stocks)

    rows: list[tuple[str, ...]] = []  # (figure, universe, vnpy, ours, ratio, what differs) for the table
    sweep_md = None
    for universe in universes(args.skip_stocks):
        resolve_symbols(universe, store)
        first_load_s, md = best_of(1, lambda u=universe: load_ours(u, store))  # includes the one-time block cache
        n_days, n_symbols = md.shape
        cells = n_days * n_symbols
        print(f"\n== {universe.name}: {n_symbols} symbols × {n_days} days = {cells:,} bar-cells "
              f"({md.days[0].date()} … {md.days[-1].date()}), {int(np.isfinite(md.close).sum()):,} bars")
        if universe.name == "etf20":
            sweep_md = md
            print("   symbols:", " ".join(universe.symbols))

        ticks = dict(zip(md.symbols, md.tick.tolist()))
        peer = vnpy_peer.VnpyPeer(universe.symbols, universe.start, universe.end, universe.capital, RATE, ticks)
        peer.load()

        # 1. compatibility
        settings = universe.settings()
        theirs = peer.run(settings)
        verdict = compare(md, compat_run(md, universe), theirs)
        print(f"compat (lookback {settings['lookback']}, top {settings['top_n']}, {settings['rebalance']}): "
              f"{'MATCH' if verdict['ok'] else 'MISMATCH'}: {verdict['trades']} vnpy fills, "
              f"{verdict['our_trades']} ours, {verdict['mismatched']} differ; max |price diff| "
              f"{verdict['price_diff']:.1e}; max |equity diff| {verdict['equity_diff']:.2e} CNY; "
              f"{verdict['refused']} orders refused/reduced by us")
        compat_text = (f"{'match' if verdict['ok'] else 'MISMATCH'}: {verdict['trades']} fills, "
                       f"max equity diff {verdict['equity_diff']:.1e} CNY")
        if not verdict["ok"]:
            print(f"   first difference (ours only, vnpy only): {verdict['first_mismatch']}")
            patched = compare(md, compat_run(md, universe, patched=True), theirs)
            print(f"   diagnosis -- with targets forced to NaN where the symbol has no bar at the decision "
                  f"(vnpy's rebalance_portfolio only orders the slice): {'MATCH' if patched['ok'] else 'MISMATCH'}, "
                  f"{patched['mismatched']} differ, max |equity diff| {patched['equity_diff']:.2e} CNY")
            compat_text += (f"; with NaN targets for bar-less symbols: {'match' if patched['ok'] else 'MISMATCH'}"
                            f", max diff {patched['equity_diff']:.1e} CNY")
        rows.append(("vnpy compatibility (fills, daily equity)", universe.name, "", "", compat_text,
                     "ours in vnpy_compatible mode"))

        # 2. one backtest, like for like: each side's run and its result frames, interleaved pairs
        timed = time_pair(md, universe, peer, settings, args.repeat)
        vnpy, full, compat = timed["vnpy"], timed["ours"], timed["ours_compat"]
        raw = full.value
        print(f"one backtest, {args.repeat} interleaved rounds after one untimed call each "
              f"(first calls: vnpy {vnpy.warmup * 1e3:.0f} ms, ours {full.warmup * 1e3:.0f} ms incl. numba cache load)")
        print(f"  {ratio_line(vnpy, full)}\n    ({FULL_DIFFERS})")
        print(f"  {ratio_line(timed['vnpy_compat'], compat)}\n    ({COMPAT_DIFFERS})")
        print(f"  ours {cells / full.best / 1e6:.1f} M cells/s, vnpy {cells / vnpy.best / 1e3:.0f} k cells/s; "
              f"{len(raw.trades)} fills, {len(raw.orders)} orders; targets {timed['targets'].best * 1e3:.2f} ms, the kernel "
              f"{timed['kernel'].best * 1e3:.2f} ms, to_result {timed['frames'].best * 1e3:.2f} ms")
        prep = time_loads(universe, store, peer, args.repeat)
        print(f"  data preparation: {ratio_line(prep['vnpy'], prep['ours'])}\n    ({LOAD_DIFFERS})")
        rows += [row for label, peer_side, ours_side, differs in (
                     ("A-share rules", vnpy, full, FULL_DIFFERS),
                     ("vnpy-compatible rules", timed["vnpy_compat"], compat, COMPAT_DIFFERS))
                 for row in _pair_rows(f"one backtest incl. result frames, {label}", universe.name, peer_side,
                                       ours_side, differs)]
        rows += [
            ("of which ours: targets / kernel / to_result", universe.name, "",
             " / ".join(f"{timed[k].best * 1e3:.2f}" for k in ("targets", "kernel", "frames")) + " ms (CPU "
             + " / ".join(f"{timed[k].cpu_best * 1e3:.2f}" for k in ("targets", "kernel", "frames")) + " ms)", "",
             "timed apart, interleaved among themselves; kernel = simulate()"),
            ("first call (compile / cache load, lazy imports)", universe.name, f"{vnpy.warmup * 1e3:.0f} ms",
             f"{full.warmup * 1e3:.0f} ms", "", "not in the figures above"),
            ("data preparation (database → each side's structures)", universe.name,
             f"{prep['vnpy'].best:.2f} s", f"{prep['ours'].best:.2f} s",
             f"{prep['vnpy'].best / prep['ours'].best:.1f}×", LOAD_DIFFERS),
        ]
        if args.profile:
            profile_ours(md, universe)
        if args.cold:
            cold = cold_parts(md, universe, args.repeat)
            print("  ours warm → cold caches (median ms): " + ", ".join(
                f"{name} {warm * 1e3:.2f} → {after * 1e3:.2f}" for name, (warm, after) in cold.items()))
        peer = theirs = None  # drop vnpy's loaded bars: not needed by the memory children or the sweep
        if args.skip_memory:
            continue

        # 3. peak memory
        mem = {side: measure_memory(home, universe, side) for side in ("vnpy", "ours")}
        for side in ("vnpy", "ours"):
            m = mem[side]
            print(f"peak RSS {side:4s}: {m['peak_mb']:7.0f} MB (after imports {m['imported_mb']:.0f} MB, after a "
                  f"tiny warm-up run {m['warm_mb']:.0f} MB; load+run {m['seconds']:.1f}s)")
        ratio = mem["ours"]["peak_mb"] / mem["vnpy"]["peak_mb"]
        growth = ((mem["ours"]["peak_mb"] - mem["ours"]["warm_mb"])
                  / max(mem["vnpy"]["peak_mb"] - mem["vnpy"]["warm_mb"], 1e-9))
        print(f"memory ours/vnpy: data and run (peak above the warm-up) {growth:.2f} (target ≤ "
              f"{1 / TARGETS['memory']:.2f}); whole process {ratio:.2f}")
        rows += [
            ("peak RSS (MB); after a warm-up run", universe.name,
             f"{mem['vnpy']['peak_mb']:.0f}; {mem['vnpy']['warm_mb']:.0f}",
             f"{mem['ours']['peak_mb']:.0f}; {mem['ours']['warm_mb']:.0f}",
             f"ours/vnpy {growth:.2f} above warm-up ({ratio:.2f} whole process)",
             "each side alone in a fresh process, loading and running once"),
        ]

    if args.skip_sweep:
        print("\n" + markdown(rows, TABLE_HEADER))
        return

    # 4. sweep
    etf = universes(True)[0]
    resolve_symbols(etf, store)
    result = run_sweep(sweep_md, etf, args.repeat)
    print(f"\n== sweep: {result['combos']} combinations on etf20, A-share rules")
    print(f"serial        {result['serial_s']:.2f}s  {result['serial_per_core']:6.0f} backtests/s/core")
    print(f"2 processes   {result['parallel_s']:.2f}s  {result['parallel_per_core']:6.0f} backtests/s/core "
          f"(pool start-up {result['pool_startup_s']:.2f}s, not counted)")
    print("best by Sharpe:\n" + result["best"].to_string(index=False))
    rows += [
        ("sweep 200 combos, serial (target ≥ 200/s/core)", "etf20", "", f"{result['serial_s']:.2f} s",
         f"{result['serial_per_core']:.0f} backtests/s/core", "ours only"),
        ("sweep 200 combos, ProcessPoolExecutor(2)", "etf20", "", f"{result['parallel_s']:.2f} s",
         f"{result['parallel_per_core']:.0f} backtests/s/core", "ours only"),
    ]
    print("\n" + markdown(rows, TABLE_HEADER))


if __name__ == "__main__":
    main()
