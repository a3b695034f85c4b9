"""A full VQM backtest: ours against vnpy_portfoliostrategy doing the same selection, one run.

    python benchmarks/bench_vqm.py --real ../shared/data/real [--home DIR] [--repeat N]

Data: the 265 CSI 300 stocks of ``stocks_daily_unadjusted_baostock`` (every stock with bars in the span),
2014-01-02 … 2023-12-29, with Baostock's quarterly reports (``fundamentals_baostock``) and the CSI 300
change history + 2024-08-19 member list (``index_constituents``), imported into the embedded SQLite
database under ``--home`` (a temporary folder by default; files already imported there are skipped, so
a filled home is reused as it is).

Strategy: ``vqm`` with its defaults (top 20 by 0.6 × rank(−PE TTM) + 0.4 × rank(ROE annualised) among
the point-in-time CSI 300 members, month ends) and the risk rules off on our side (vnpy has none built
in). vnpy's side is ``vnpy_vqm_peer.py``: the same selection written as a vnpy ``StrategyTemplate``,
with the fundamentals, membership, flags and ex-date steps pre-loaded per symbol (``build_inputs``).

1. selection parity: the chosen set of every decision day, ours (``plan.frame > 0``) against the peer's
   record; mismatching days are counted (must be 0) and the first ones explained;
2. fills parity (extra): the same selection as share targets (whole lots of capital × 0.99 / 20 / close,
   decided at the close; no order for a symbol without a bar) in ``BacktestConfig.vnpy_compatible``
   mode against the peer's fills and daily equity;
3. one backtest, like for like, in interleaved pairs (``fair.py``; the first call of each side untimed and
   reported apart): vnpy = ``run_backtesting`` + ``calculate_result`` on loaded bars; ours =
   ``strategy.targets(market)`` + ``simulate`` + ``to_result`` (every result frame) with the full A-share
   rules (defaults, weight sizing); min and median and their ratio, what differs beside each figure;
4. data preparation as its own interleaved figure: vnpy ``load_data`` (cache cleared) + the peer's
   ``build_inputs``; ours ``load_panels`` + ``build_market_data`` + ``prepare_market`` (point-in-time
   fundamental panels, membership, listing age).

A markdown table of every figure closes the output.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_home import code_version, run_in_home  # noqa: E402
from fair import interleaved, markdown, ratio_line  # noqa: E402

START, END = date(2014, 1, 2), date(2023, 12, 29)
CAPITAL = 10_000_000.0
RATE = 0.0003  # vnpy's one symmetric commission rate
INDEX = "000300.SSE"
DATA_DIRS = ("stocks_daily_unadjusted_baostock", "fundamentals_baostock", "index_constituents")


def timed(func):
    started = time.perf_counter()
    value = func()
    return time.perf_counter() - started, value


# --------------------------------------------------------------------------------------------- data

def import_data(real: Path, store) -> None:
    from vnpy_rotation.data.importer import import_paths

    seconds, result = timed(lambda: import_paths([real / d for d in DATA_DIRS], store, progress=False))
    if not result.ok:
        raise SystemExit(f"import failed: {result.failures[:3]}")
    print(f"import: {len(result.reports) + len(result.tables)} files checked/imported in {seconds:.1f}s "
          "(files already in --home are skipped)")


def stock_symbols(store) -> list[str]:
    """Every stock in the database with at least one bar in the span, sorted (the 265 of the real data)."""
    from vnpy_rotation.data.panels import load_panels
    from vnpy_rotation.market.instruments import lookup

    candidates = sorted(f"{code}.{exchange}" for code, exchange in store.bar_signatures())
    candidates = [s for s in candidates if lookup(s).is_stock]
    panels = load_panels(candidates, START, END, store=store)
    return [s for s in candidates if panels.close[s].notna().any()]


def load_bars(symbols: list[str], store):
    """Bars and rule arrays over exactly the span vnpy loads (``market_for`` would add its warm-up days)."""
    from vnpy_rotation.data.market_data import build_market_data
    from vnpy_rotation.data.panels import load_panels

    return build_market_data(load_panels(symbols, START, END, store=store))


def our_strategy(symbols: list[str]):
    from vnpy_rotation.strategies import create_strategy

    return create_strategy("vqm", {"symbols": symbols, "index": INDEX, "stock_stop": None,
                                   "portfolio_stop": None, "drawdown_halve": None})


def peer_settings(strategy) -> dict:
    s = strategy.settings
    return {"w_pe": s.w_pe, "w_roe": s.roe_weight, "top_n": s.top_n, "min_listed_days": s.min_listed_days,
            "invested": s.invested, "notional": CAPITAL, "lot": 100}


# --------------------------------------------------------------------------------------- our side

def ours_full(md, strategy):
    from vnpy_rotation.backtest.config import BacktestConfig
    from vnpy_rotation.backtest.engine import simulate

    return simulate(md, strategy.targets(md), BacktestConfig(capital=CAPITAL))


def our_selections(plan) -> dict[date, set[str]]:
    frame = plan.frame
    chosen = frame.to_numpy() > 0
    columns = frame.columns.to_numpy()
    return {day.date(): set(columns[row]) for day, row in zip(frame.index, chosen)}


def share_plan(md, plan, budget: float):
    """The plan's selection as vnpy-style share targets: whole lots of ``budget / close`` at the decision
    close, 0 for the others, NaN (no order) where the symbol has no bar."""
    import numpy as np

    from vnpy_rotation.backtest.engine import TargetPlan

    rows = md.days.get_indexer(plan.frame.index)
    close = md.close[rows]
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(plan.frame.to_numpy() > 0, np.floor(budget / close / 100) * 100, 0.0)
    shares[~np.isfinite(close)] = np.nan
    frame = plan.frame.copy()
    frame[:] = shares
    return TargetPlan(frame, kind="shares", reason="vqm")


# ------------------------------------------------------------------------------------------ parity

def selection_parity(md, ours: dict[date, set[str]], theirs: dict[date, list[str]], strategy, inputs=None,
                     settings: dict | None = None) -> dict:
    """Decision days whose chosen sets differ; for the first three, each differing symbol's exclusions on our
    side and both sides' PE / ROE (ours also score and rank; the peer's from its ``fundamentals_on``, with its
    listing age)."""
    days = sorted(set(ours) | set(theirs))
    bad = [d for d in days if ours.get(d) != set(theirs.get(d, ()))]
    details = []
    if bad:
        import numpy as np
        import pandas as pd
        import vnpy_vqm_peer

        from vnpy_rotation.strategies.vqm import EXCLUSIONS

        rows = md.days.get_indexer([pd.Timestamp(d) for d in bad[:3]])
        ranking = strategy.rank_rows(md, rows)
        peer = None
        if inputs is not None:
            peer = vnpy_vqm_peer.strategy_class()(None, "parity", list(md.symbols), dict(settings or {}))
            peer.inputs = inputs
        for r, day in enumerate(bad[:3]):
            mine, chosen = ours.get(day, set()), set(theirs.get(day, ()))
            why = {}
            for s in sorted(mine ^ chosen):
                j = md.symbols.index(s)
                flags = [name for name, f in zip(EXCLUSIONS, ranking.excluded[:, r, j]) if f] or ["eligible"]
                text = (f"{'+'.join(flags)}: ours PE {ranking.pe[r, j]:.3f} ROE {ranking.roe[r, j]:.4f} "
                        f"score {ranking.score[r, j]:.4f} rank {ranking.rank[r, j]:.0f}")
                if peer is not None:
                    eps, roe = peer.fundamentals_on(s, day)
                    text += (f"; vnpy PE {md.close[rows[r], j] / eps:.3f} ROE {roe:.4f} "
                             f"sessions listed {peer.listed_days(s, day):g}")
                why[s] = text
            details.append((day, sorted(mine - chosen), sorted(chosen - mine), why,
                            int(np.sum(ranking.eligible[r]))))
    return {"days": len(days), "ours_days": len(ours), "vnpy_days": len(theirs), "mismatched": len(bad),
            "chosen": sum(len(v) for v in ours.values()), "details": details}


# -------------------------------------------------------------------------------------------- main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=Path, default=ROOT.parent / "shared" / "data" / "real")
    parser.add_argument("--home", type=Path, default=None, help="reuse (or fill) this home; default: a temp dir")
    parser.add_argument("--repeat", type=int, default=5, help="interleaved timed rounds per side")
    args = parser.parse_args()
    args.real = args.real.resolve()  # before run_all moves into the home: a relative path means the caller's
    run_in_home(args.home, "bench_vqm_", lambda home: run_all(args, home))


def run_all(args, home: Path) -> None:
    print(f"home: {home}; code: {code_version()}; {os.cpu_count()} CPUs; {args.repeat} interleaved rounds")
    import numpy as np
    import vnpy_vqm_peer
    from bench_backtest import compare

    from vnpy_rotation.backtest.config import BacktestConfig
    from vnpy_rotation.backtest.engine import simulate
    from vnpy_rotation.data.store import BarStore

    store = BarStore()
    import_data(args.real, store)
    symbols = stock_symbols(store)
    strategy = our_strategy(symbols)
    settings = peer_settings(strategy)

    # -- load and prepare, each side
    md = strategy.prepare_market(load_bars(symbols, store), store)
    n_days, n_symbols = md.shape
    cells = n_days * n_symbols
    print(f"\n== VQM, {n_symbols} stocks × {n_days} days = {cells:,} bar-cells ({md.days[0].date()} … "
          f"{md.days[-1].date()}), {int(np.isfinite(md.close).sum()):,} bars; top {strategy.settings.top_n}, "
          f"w_pe {strategy.settings.w_pe}, index {INDEX}")
    for warning in strategy.data_warnings:
        print(f"   data warning: {warning}")
    inputs = vnpy_vqm_peer.build_inputs(symbols, INDEX, strategy.settings.roe, store)
    ticks = dict(zip(md.symbols, md.tick.tolist()))
    peer = vnpy_vqm_peer.VnpyVqmPeer(symbols, START, END, CAPITAL, RATE, ticks)
    peer.load()

    # -- 1. selection parity (the first vnpy run is also its first timed run)
    theirs = peer.run(settings, inputs)
    plan = strategy.targets(md)
    ours_sel = our_selections(plan)
    parity = selection_parity(md, ours_sel, theirs.selections, strategy, inputs, settings)
    verdict = "MATCH" if parity["mismatched"] == 0 else "MISMATCH"
    print(f"selection parity: {verdict}: {parity['days']} decision days (ours {parity['ours_days']}, vnpy "
          f"{parity['vnpy_days']}), {parity['chosen']} picks; {parity['mismatched']} days differ")
    for day, only_ours, only_vnpy, why, eligible in parity["details"]:
        print(f"   {day}: only ours {only_ours}, only vnpy {only_vnpy}; {eligible} eligible (ours)")
        for symbol, text in why.items():
            print(f"      {symbol}: {text}")

    # -- 2. fills parity: the same selection as share targets in vnpy-compatible mode
    budget = CAPITAL * strategy.settings.invested / strategy.settings.top_n
    compat = simulate(md, share_plan(md, plan, budget), BacktestConfig.vnpy_compatible(CAPITAL, RATE))
    fills = compare(md, compat, theirs.run)
    print(f"fills parity (vnpy mode, share targets from our selection): {'MATCH' if fills['ok'] else 'MISMATCH'}: "
          f"{fills['trades']} vnpy fills, {fills['our_trades']} ours, {fills['mismatched']} differ; max |price "
          f"diff| {fills['price_diff']:.1e}; max |equity diff| {fills['equity_diff']:.2e} CNY")
    if not fills["ok"]:
        print(f"   first difference (ours only, vnpy only): {fills['first_mismatch']}")

    # -- 3. one backtest, like for like (each side's run and its result frames), interleaved pairs
    config = BacktestConfig(capital=CAPITAL)
    fixed_plan = strategy.targets(md)
    raw = simulate(md, fixed_plan, config)
    timed_runs = interleaved({  # the pair in its own interleaving (fair.py), our parts apart
        "vnpy": lambda: peer.run(settings, inputs),
        "ours": lambda: _with_frames(ours_full(md, strategy)),
    }, args.repeat)
    timed_runs.update(interleaved({
        "targets": lambda: strategy.targets(md),
        "kernel": lambda: simulate(md, fixed_plan, config),
        "frames": raw.to_result,
    }, args.repeat))
    vnpy, ours = timed_runs["vnpy"], timed_runs["ours"]
    raw = ours.value
    print(f"\none backtest, {args.repeat} interleaved rounds after one untimed call each (first calls: vnpy "
          f"{vnpy.warmup * 1e3:.0f} ms, ours {ours.warmup * 1e3:.0f} ms incl. numba cache load)")
    print(f"  {ratio_line(vnpy, ours)}\n    ({RUN_DIFFERS})")
    print(f"  ours: targets {timed_runs['targets'].best * 1e3:.1f} ms, kernel {timed_runs['kernel'].best * 1e3:.1f} ms, "
          f"to_result {timed_runs['frames'].best * 1e3:.1f} ms; {len(raw.trades)} fills, {len(raw.orders)} orders, "
          f"final equity {raw.equity()[-1]:,.0f}; vnpy {len(vnpy.value.run.trades)} fills, final equity "
          f"{vnpy.value.run.equity[-1]:,.0f}")

    # -- 4. data preparation: the database into each side's structures, interleaved
    from vnpy_portfoliostrategy import backtesting

    def vnpy_prepare() -> None:
        backtesting.load_bar_data.cache_clear()
        peer.load()
        vnpy_vqm_peer.build_inputs(symbols, INDEX, strategy.settings.roe, store)

    prep = interleaved({"vnpy": vnpy_prepare,
                        "ours": lambda: strategy.prepare_market(load_bars(symbols, store), store)},
                       max(2, args.repeat // 2))
    print(f"  data preparation: {ratio_line(prep['vnpy'], prep['ours'], 1.0, 's')}\n    ({PREP_DIFFERS})")
    whole_vnpy, whole_ours = vnpy.best + prep["vnpy"].best, ours.best + prep["ours"].best

    rows = [
        ("selection parity (chosen set per decision day)", "", "",
         f"{verdict}: {parity['days']} decision days, {parity['chosen']} picks, {parity['mismatched']} days differ",
         "ours with full rules, the peer the same selection in vnpy"),
        ("fills parity (vnpy mode, share targets of the same selection)", "", "",
         f"{'match' if fills['ok'] else 'MISMATCH'}: {fills['trades']} fills, max equity diff "
         f"{fills['equity_diff']:.1e} CNY", "ours in vnpy_compatible mode"),
        ("one backtest incl. result frames", f"{vnpy.best * 1e3:,.0f} ms", f"{ours.best * 1e3:.1f} ms",
         f"**{vnpy.best / ours.best:.0f}×** (median {vnpy.median / ours.median:.0f}×)", RUN_DIFFERS),
        ("of which ours: targets / kernel / to_result", "",
         f"{timed_runs['targets'].best * 1e3:.1f} / {timed_runs['kernel'].best * 1e3:.1f} / "
         f"{timed_runs['frames'].best * 1e3:.1f} ms", "", "timed apart, interleaved among themselves"),
        ("first call (compile / cache load, lazy imports)", f"{vnpy.warmup * 1e3:,.0f} ms",
         f"{ours.warmup * 1e3:.0f} ms", "", "not in the figures above"),
        ("data preparation (database → each side's structures)", f"{prep['vnpy'].best:.2f} s",
         f"{prep['ours'].best:.2f} s", f"{prep['vnpy'].best / prep['ours'].best:.1f}×", PREP_DIFFERS),
        ("preparation + one backtest", f"{whole_vnpy:.2f} s", f"{whole_ours:.2f} s",
         f"{whole_vnpy / whole_ours:.1f}×", "the sums of the minima above"),
    ]
    print(f"\n{n_symbols} stocks × {n_days} days ({md.days[0].date()} … {md.days[-1].date()}), {cells:,} cells; "
          f"CSI 300 point-in-time membership; top {strategy.settings.top_n}, month ends; loaded machine? re-run "
          "on a quiet one for published figures\n")
    print(markdown(rows, ("figure", "vnpy", "ours", "ratio (min)", "what differs")))


RUN_DIFFERS = ("vnpy: run_backtesting + calculate_result, its strategy selecting in on_bars from pre-loaded "
               "inputs, no A-share rules; ours: targets + simulate + to_result (every result frame) with lots, "
               "T+1, limits, suspensions, fees with minimums, stamp duty, participation cap; risk rules off")
PREP_DIFFERS = ("vnpy: load_data (its bar cache cleared) + the peer's build_inputs (fundamentals, membership, "
                "flags per symbol); ours: load_panels + build_market_data + prepare_market (point-in-time panels)")


def _with_frames(raw):
    raw.to_result()
    return raw


if __name__ == "__main__":
    main()
