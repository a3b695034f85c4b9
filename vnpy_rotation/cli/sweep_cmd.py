"""``run.py sweep``: every combination of a strategy's grid backtested on one span, serially, in local
processes (``--workers``) or on a Dask cluster (``--cluster``); ``sweep.csv`` and ``best.md`` in ``--out``."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from ..errors import InputRejected, Problem

if TYPE_CHECKING:  # the sweep's modules only when a sweep runs: importing the CLI must stay cheap
    from ..research.sweep_spec import SweepSpec

def add_cluster_option(parser: argparse.ArgumentParser) -> None:
    """``--cluster`` (``run.py sweep`` and ``run.py walkforward``)."""
    parser.add_argument("--cluster", metavar="tcp://HOST:PORT|local:N",
                        help="run the grid on a Dask cluster: a running scheduler's address, or local:N to start "
                             "N worker processes on this machine (see docs/speed/cluster.md)")


def add_parsers(commands: Any, home: argparse.ArgumentParser, parse_date: Callable[[str], date]) -> None:
    sw = commands.add_parser("sweep", parents=[home],
                             help="backtest every combination of a strategy's grid; a results table and the best rows")
    sw.add_argument("--strategy", required=True, help="built-in strategy name, e.g. momentum_topn")
    sw.add_argument("--config", type=Path, help="YAML with sections strategy:, backtest:, benchmark: (and "
                                                "walkforward:, whose grid replaces the strategy's search_space)")
    sw.add_argument("--grid", action="append", metavar="NAME=V1,V2",
                    help="values of one parameter (repeatable; replaces that parameter's values in the search "
                         "space, adds a parameter it lacks)")
    sw.add_argument("--start", type=parse_date, help="first trading day of every backtest (earlier bars: warm-up)")
    sw.add_argument("--end", type=parse_date, help="last trading day of every backtest")
    sw.add_argument("--capital", type=float, help="initial capital in CNY (overrides the config)")
    sw.add_argument("--objective", default="sharpe",
                    help="what best.md ranks by, higher is better: sharpe (default), annual_return, calmar, "
                         "total_return")
    sw.add_argument("--top", type=int, default=10, help="rows in best.md (default 10)")
    sw.add_argument("--workers", type=int, default=1, help="local processes (default 1: serial)")
    add_cluster_option(sw)
    sw.add_argument("--out", type=Path, required=True, help="output folder (created): sweep.csv, best.md")
    sw.set_defaults(handler="vnpy_rotation.cli.sweep_cmd:run")


def run(args: argparse.Namespace) -> int:
    from ..ops.experiments import start_inputs, track
    from ..research.cluster import parse_cluster
    from ..research.sweep_spec import read_sweep_spec
    from ..research.wf_config import Objective

    started = time.perf_counter()
    if args.workers < 1:
        raise InputRejected(Problem("--workers", None, f"{args.workers}: must be at least 1"))
    if args.top < 1:
        raise InputRejected(Problem("--top", None, f"{args.top}: must be at least 1"))
    if args.objective not in get_args(Objective):
        raise InputRejected(Problem("--objective", None, f"{args.objective!r}: expected one of "
                                    f"{', '.join(get_args(Objective))}"))
    target = parse_cluster(args.cluster) if args.cluster else None
    if target is not None and args.workers > 1:
        raise InputRejected(Problem("--workers", None, "give --workers (local processes) or --cluster, not both"))
    spec = read_sweep_spec(args.strategy, args.config, args.start, args.end, args.capital, args.grid)
    inputs = start_inputs(spec.run.strategy_name, spec.run.strategy_settings, args.config, spec.run.start,
                          spec.run.end, spec.run.source, backtest=spec.run.config.model_dump(mode="json"),
                          grid={k: list(v) for k, v in spec.grid.items()}, objective=args.objective)
    with track("sweep", inputs, out=args.out) as experiment:
        experiment.exit_code = _run(spec, args, target, started, experiment)
    return experiment.exit_code


def _run(spec: SweepSpec, args: argparse.Namespace, target: Any, started: float, experiment: Any) -> int:
    from contextlib import ExitStack

    from ..research.cluster import open_client

    with ExitStack() as stack:  # the cluster is probed first: a wrong address fails before the market loads
        client = stack.enter_context(open_client(target)) if target is not None else None
        return _sweep(spec, args, target, client, started, experiment)


def _sweep(spec: SweepSpec, args: argparse.Namespace, target: Any, client: Any, started: float,
           experiment: Any) -> int:
    from ..backtest.sweep import sweep
    from ..data.store import BarStore
    from ..ops.experiments import data_identity
    from ..research.cluster import ClusterSweeper
    from ..research.sweep_spec import best_markdown, best_rows, cell, sweep_csv, write_together
    from ..research.walkforward import grid_market

    run_spec, combos = spec.run, spec.combos
    clipped, _ = grid_market(run_spec, combos, spec.grid_source, BarStore())
    market = clipped.market
    # as run.py backtest: from --start (earlier bars are warm-up) to --end, both cut to the stored bars
    span = None if clipped.start is None else (clipped.start, clipped.end or market.days[-1].date())
    traded = market if span is None else market.window(*span)
    if len(traded.days) < 2:
        raise InputRejected(Problem("--start/--end", None, f"fewer than 2 trading days with bars in "
                                    f"{run_spec.start or '…'} … {run_spec.end or '…'}"))
    if client is not None:
        sweeper = ClusterSweeper(client)
        frame = sweeper.sweep(market, run_spec.strategy_name, combos, run_spec.config,
                              base=run_spec.strategy_settings, span=span)
        where = f"on the Dask cluster {target} ({len(client.nthreads())} workers)"
    elif args.workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(args.workers) as pool:
            frame = sweep(market, run_spec.strategy_name, combos, run_spec.config, base=run_spec.strategy_settings,
                          executor=pool, span=span)
        where = f"in {args.workers} local processes"
    else:
        frame = sweep(market, run_spec.strategy_name, combos, run_spec.config, base=run_spec.strategy_settings,
                      span=span)
        where = "serially"
    window = f"{traded.days[0].date()} … {traded.days[-1].date()}"
    write_together(args.out, {"sweep.csv": sweep_csv(frame, list(spec.grid)),
                              "best.md": best_markdown(spec, frame, args.objective, args.top, window, where)})
    experiment.set_inputs(**data_identity(market, traded))
    experiment.sweep_done(frame, args.objective)
    for warning in clipped.warnings:
        print(f"warning: {warning}")
    best = best_rows(frame, args.objective, 1).to_dict("records")[0]
    chosen = ", ".join(f"{name}={cell(best[name])}" for name in spec.grid)
    print(f"sweep {run_spec.strategy_name}: {len(frame)} combinations ({spec.grid_source}) on {window}, {where}")
    print(f"best by {args.objective}: {chosen} ({args.objective} {best[args.objective]:.4g})")
    print(f"wrote {args.out / 'sweep.csv'} and {args.out / 'best.md'} in {time.perf_counter() - started:.1f}s")
    return 0
