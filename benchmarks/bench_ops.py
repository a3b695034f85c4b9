"""What the operating routine adds to every run: the attribution table of a backtest report, the experiment row
of a command, the KPI snapshot after a session, and one dashboard refresh. One run, each figure beside the work
it rides on.

    python benchmarks/bench_ops.py [--repeat N] [--home DIR]

1. Per backtest, on the bundled ``etf_rotation`` and ``vqm`` defaults from the bundle's first day (as
   ``run.py demo`` runs them): the backtest itself (``run_backtest`` without the look-ahead re-runs: the
   simulation, result frames and metrics) against the attribution the report adds (``from_backtest`` +
   ``attribute``: the bridge, Brinson–Fachler, markouts; writing its CSVs is timed apart). ``--repeat``
   interleaved rounds (backtest, attribution, backtest, …), the median of each; the first backtest (numba's
   compile or cache load) is left out.
2. The experiment row a command records: ``track("backtest")`` with a backtest's results into the home's
   registry (git commit lookup, the bars' signature, one insert), median of ``--repeat``.
3. After each session of a replay (the bundled ETFs' last six weeks, run once, untimed): the daemon's KPI
   snapshot of the last session (its baseline backtest cached, as from the second session on), and one
   dashboard refresh (the JSON summary of the run folder), medians of ``--repeat``.

No peer: vnpy has none of these. What differs from a user's run: the look-ahead re-runs (three more
simulations per backtest command) are not in the backtest figure, so the ratios overstate the share.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_home import code_version, run_in_home  # noqa: E402


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000.0


def timed(call, *args):
    """(seconds, result) of ``call(*args)``."""
    started = time.perf_counter()
    result = call(*args)
    return time.perf_counter() - started, result


def bench(home: Path, repeat: int) -> None:
    from vnpy_rotation.attribution import attribute
    from vnpy_rotation.backtest.attribution_inputs import from_backtest
    from vnpy_rotation.backtest.runner import read_spec, run_backtest
    from vnpy_rotation.bundled import bundled_files, bundled_stock_files, manifest
    from vnpy_rotation.data.importer import import_paths
    from vnpy_rotation.data.store import BarStore

    import_paths(bundled_files() + bundled_stock_files(), BarStore())
    start = manifest()["span"]["start"]
    rows = []
    print(f"code {code_version()}; {repeat} interleaved rounds; medians in ms")
    for strategy in ("etf_rotation", "vqm"):
        spec = read_spec(strategy, None, start, None, None)
        run = run_backtest(spec, lookahead_cuts=0)  # compile or cache load: not timed
        backtest, attribution, write = [], [], []
        out = home / "bench_ops" / strategy
        for _ in range(repeat):
            backtest.append(timed(run_backtest, spec, None, 0)[0])
            seconds, report = timed(lambda book: attribute(from_backtest(book)), run)
            attribution.append(seconds)
            write.append(timed(report.write, out)[0])
        cells = len(run.market.days) * len(run.market.symbols)
        rows.append((f"{strategy}: backtest ({len(run.market.days)} days × {len(run.market.symbols)} symbols, "
                     f"{cells} cells)", median_ms(backtest), ""))
        rows.append((f"{strategy}: attribution (bridge, Brinson, markouts)", median_ms(attribution),
                     f"{median_ms(attribution) / median_ms(backtest):.1%} of the backtest"))
        rows.append((f"{strategy}: attribution files written", median_ms(write), ""))

    from vnpy_rotation.ops.experiments import track

    spec = read_spec("etf_rotation", None, start, None, None)
    run = run_backtest(spec, lookahead_cuts=0)
    def record() -> None:
        with track("backtest", out=home / "bench_ops" / "etf_rotation", output=lambda _: None) as experiment:
            experiment.backtest_done(run, None)

    recording = [timed(record)[0] for _ in range(repeat)]
    rows.append(("experiment row of a backtest command (commit, signature, insert)", median_ms(recording), ""))

    from vnpy.trader.setting import SETTINGS

    from vnpy_rotation.apps.rotation.daemon import TradeSpec, claim_out_folder, run_parameters, run_replay
    from vnpy_rotation.backtest.config import BacktestConfig
    from vnpy_rotation.market.calendar import default_calendar
    from vnpy_rotation.ops.kpi import snapshot_run
    from vnpy_rotation.web.data import RunFolder

    SETTINGS["log.active"] = False  # the engine's order lines would bury the table
    end = date.fromisoformat(str(manifest()["span"]["end"]))
    first = default_calendar().between(end - timedelta(weeks=6), end)[0].date()
    out = home / "bench_ops" / "replay"
    replay = TradeSpec("etf_rotation", {}, BacktestConfig(), out, first, end)
    claim_out_folder(out, run_parameters(replay, "replay"), fresh=True)
    run_replay(replay, output=lambda _: None)
    snapshot_run(out)  # the baseline backtest: cached for every later snapshot
    kpis = [timed(snapshot_run, out)[0] for _ in range(repeat)]
    rows.append(("KPI snapshot after a session (baseline cached)", median_ms(kpis), ""))
    folder = RunFolder(out)
    pages = [timed(folder.summary)[0] for _ in range(repeat)]
    rows.append(("dashboard refresh (JSON summary of the run folder)", median_ms(pages), ""))

    print("\n| what | median ms | note |\n|---|---:|---|")
    for what, ms, note in rows:
        print(f"| {what} | {ms:,.1f} | {note} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--home", type=Path, help="runtime folder to reuse (default: a temporary one)")
    args = parser.parse_args()
    run_in_home(args.home, "bench_ops_", lambda home: bench(home, args.repeat))


if __name__ == "__main__":
    main()
