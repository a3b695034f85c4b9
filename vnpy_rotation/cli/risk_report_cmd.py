"""``run.py risk report``: VaR/ES and their exception tests, drift monitors, ladder and stops of one strategy's
history (a backtest, or a replay/live run's output folder), written to ``--out``."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any


def add_report_parser(subparsers: Any, parents: list[argparse.ArgumentParser] | None = None) -> argparse.ArgumentParser:
    """Add ``report`` to the ``risk`` command's subparsers (``parents``: the shared ``--home`` parser)."""
    from .main import parse_date  # here: main imports this module while it builds its parser
    report: argparse.ArgumentParser = subparsers.add_parser(
        "report", parents=parents or [],
        help="VaR/ES, exception tests (Kupiec, Christoffersen, traffic light, ES), drift, ladder and stops of "
             "a backtest or a replay/live run")
    report.add_argument("--strategy", required=True, help="built-in strategy name, e.g. vqm")
    report.add_argument("--config", type=Path, help="YAML with sections strategy:, backtest:, benchmark: (as backtest)")
    report.add_argument("--start", type=parse_date, help="first trading day of the history")
    report.add_argument("--end", type=parse_date, help="last trading day of the history")
    report.add_argument("--capital", type=float, help="initial capital in CNY (overrides the config)")
    report.add_argument("--run", type=Path, metavar="DIR",
                        help="read the history of this replay/live run (the --out folder of `run.py trade`: "
                             "daily_summary.csv, trades.csv) instead of running the backtest")
    report.add_argument("--out", type=Path, required=True, help="output folder (created)")
    report.set_defaults(handler="vnpy_rotation.cli.risk_report_cmd:run_report")
    return report


def run_report(args: argparse.Namespace) -> int:
    from ..research.risk_report import build_report, inputs_from_backtest, inputs_from_run_folder, write_report

    started = time.perf_counter()
    if args.run is not None:
        inputs = inputs_from_run_folder(args.run, args.strategy, args.start, args.end)
    else:
        from ..backtest.runner import read_spec, run_backtest

        spec = read_spec(args.strategy, args.config, args.start, args.end, args.capital)
        inputs = inputs_from_backtest(run_backtest(spec, lookahead_cuts=0))
    report = build_report(inputs)
    paths = write_report(report, args.out)
    from ..research.risk_report import headline

    print(f"risk report {inputs.strategy}: {inputs.source}")
    print(f"  {headline(report).replace('**', '')}")
    print(f"wrote {len(paths)} files to {args.out} in {time.perf_counter() - started:.1f}s "
          f"(report: {args.out / 'risk_report.html'})")
    return 0
