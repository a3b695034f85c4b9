"""``run.py sweep``: every combination of a strategy's grid backtested on one span, serially, in local
processes (``--workers``) or on a Dask cluster (``--cluster``); ``sweep.csv`` and ``best.md`` in ``--out``."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from ..errors import InputRejected, Problem

if TYPE_CHECKING:  # pandas and numpy only when a sweep runs: importing the CLI must stay cheap
    import pandas as pd

METRICS = (("total_return", "pct"), ("annual_return", "pct"), ("sharpe", "num"), ("max_drawdown", "pct"),
           ("calmar", "num"), ("trade_count", "int"), ("total_cost", "money"))


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


@dataclass(frozen=True)
class SweepSpec:
    run: Any  # backtest.runner.RunSpec: strategy, base settings, backtest config, benchmark, span
    grid: dict[str, tuple[Any, ...]]  # typed values per parameter, in grid order
    grid_source: str  # where the values came from, e.g. "vqm.search_space + --grid"

    @property
    def combos(self) -> list[dict[str, Any]]:
        from ..backtest.sweep import grid

        return grid(**self.grid)


def read_sweep_spec(strategy: str, config_file: Path | None, start: date | None, end: date | None,
                    capital: float | None, grid_args: list[str] | None) -> SweepSpec:
    """The grid: the YAML's ``walkforward.grid``, else the strategy's ``search_space`` (the walk-forward's
    default), with each ``--grid`` parameter replacing (or adding) that parameter's values; every value is
    typed by the strategy's settings model, an error naming where the value came from and the parameter."""
    from ..backtest.runner import RunSpec, read_sections
    from ..config import validate_section
    from ..research.wf_config import WalkForwardSettings, no_grid, parse_grid_args, typed_grid
    from ..strategies import STRATEGIES

    raw, source, config, benchmark = read_sections(config_file, capital, ("walkforward",))
    base = dict(raw.get("strategy") or {})
    options = validate_section(WalkForwardSettings, raw.get("walkforward") or {}, f"{source}: walkforward")
    if options.grid is not None:
        default, where = options.grid, f"{source}: walkforward.grid"
    else:
        default, where = STRATEGIES[strategy].search_space if strategy in STRATEGIES else {}, f"{strategy}.search_space"
    given = parse_grid_args(grid_args) if grid_args else {}
    typed = {**typed_grid(strategy, base, default, where, f"{source}: strategy"),
             **typed_grid(strategy, base, given, "--grid", f"{source}: strategy")}
    if not typed:
        raise InputRejected(no_grid(strategy, "--grid"))
    sources = [where] * bool(default) + ["--grid"] * bool(given)
    return SweepSpec(RunSpec(strategy, base, config, benchmark, start, end, source), typed, " + ".join(sources))


def cell(value: Any) -> str:
    """A parameter's value in sweep.csv and best.md: lists and dicts as JSON (keys sorted), others as text."""
    import json

    return json.dumps(value, sort_keys=True) if _is_structured(value) else str(value)


def _is_structured(value: Any) -> bool:
    return isinstance(value, (dict, list, tuple))


def sweep_csv(frame: pd.DataFrame, params: list[str]) -> str:
    """sweep.csv's text: the frame, its list and dict parameters as JSON cells."""
    structured = [name for name in params if name in frame and frame[name].map(_is_structured).any()]
    return frame.assign(**{name: frame[name].map(cell) for name in structured}).to_csv(index=False)


def write_together(folder: Path, texts: dict[str, str]) -> None:
    """Every file written to a temporary name first, then each renamed over its target: a failure while
    writing leaves the folder's earlier files as they were (never a new sweep.csv beside an old best.md)."""
    import os
    import tempfile

    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, str] = {}
    try:
        for name, text in texts.items():
            handle, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
            written[name] = temporary
            with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
                out.write(text)
        for name, temporary in written.items():
            os.replace(temporary, folder / name)
    finally:
        for temporary in written.values():
            Path(temporary).unlink(missing_ok=True)


def best_rows(frame: pd.DataFrame, objective: str, top: int) -> pd.DataFrame:
    """The ``top`` rows by ``objective``, higher first; NaN last; a tie keeps grid order."""
    import numpy as np
    import pandas as pd

    scores = pd.to_numeric(frame[objective], errors="coerce").fillna(-np.inf)
    order = np.argsort(-scores.to_numpy(), kind="stable")
    return frame.iloc[order[:top]].assign(combination=order[:top] + 1)


def best_markdown(spec: SweepSpec, frame: pd.DataFrame, objective: str, top: int, span: str, where: str) -> str:
    from ..backtest.report_md import format_value

    best = best_rows(frame, objective, top)
    params = list(spec.grid)
    metrics = [(name, kind) for name, kind in METRICS if name in frame]
    head = ["rank", "combination", *params, *(name for name, _ in metrics)]
    lines = [f"# Sweep: {spec.run.strategy_name}", "",
             f"{len(frame)} combinations ({spec.grid_source}) on {span}, run {where}; the best {len(best)} by "
             f"{objective} (higher is better; a missing value ranks last; a tie keeps grid order).", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for rank, row in enumerate(best.to_dict("records"), 1):  # records keep each column's type
        cells = [str(rank), str(row["combination"]), *(cell(row[p]) for p in params),
                 *(format_value(row[name], kind) for name, kind in metrics)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "All combinations, in grid order: sweep.csv (metrics: backtest/sweep.py quick_metrics)."]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    from ..ops.experiments import start_inputs, track
    from ..research.cluster import parse_cluster
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
