"""``run.py regress``: the daily regression gate over the champion and candidate versions (exit 0 pass, 1 a
regression, 2 a user error). The parser is added without importing vnpy; the handler imports it when it runs."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path
from typing import Any


def add_parsers(commands: Any, home: argparse.ArgumentParser, parse_date: Any) -> None:
    regress = commands.add_parser("regress", parents=[home],
                                  help="re-run each champion and candidate version's backtest and compare with its "
                                       "baseline (exit 1 on a regression)")
    regress.add_argument("--date", type=parse_date,
                         help="the data as of this day (bars up to it; default: today)")
    regress.add_argument("--strategy", help="only this strategy's champion and candidate")
    regress.add_argument("--config", type=Path, help="YAML with a regress: section (thresholds)")
    regress.add_argument("--out", type=Path,
                         help="report folder (default: HOME/.vntrader/regress/<date>)")
    regress.set_defaults(handler="vnpy_rotation.cli.regress_cmd:run")


def run(args: argparse.Namespace) -> int:
    from vnpy.trader.utility import TEMP_DIR  # settled by run.py --home

    from ..ops.regress import read_thresholds, run_regression, verdict, write_report

    thresholds = read_thresholds(args.config)
    as_of = args.date or date.today()
    report = run_regression(as_of, thresholds, args.strategy)
    out = args.out or Path(TEMP_DIR) / "regress" / as_of.isoformat()
    md, _ = write_report(report, out)
    for check in report.checks:
        print(f"{check.strategy} {check.version.id} ({', '.join(check.aliases)}): {verdict(check)}")
    print(f"report: {md} (and regress.csv)")
    return 1 if report.regression else 0
